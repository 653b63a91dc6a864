// Browsers, bundlers and other ES-module runtimes: the module is fetched next to this file
// (bundlers follow `new URL(..., import.meta.url)`) and instantiated before the import resolves.
import { init } from "./core.js";

await init(new URL("./tollgate.wasm", import.meta.url));

export * from "./core.js";
