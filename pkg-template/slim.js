// The API without loading the module: call `await init(moduleOrBytesOrUrl)` or
// `initSync(moduleOrBytes)` once before using it.
export * from "./core.js";
