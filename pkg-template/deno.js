// Deno: a source-phase import gives the compiled WebAssembly.Module without any permission.
import source wasm from "./tollgate.wasm";
import { initSync } from "./core.js";

initSync(wasm);

export * from "./core.js";
