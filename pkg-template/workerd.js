// Cloudflare Workers (workerd): the runtime compiles the imported .wasm to a WebAssembly.Module.
import wasm from "./tollgate.wasm";
import { initSync } from "./core.js";

initSync(wasm);

export * from "./core.js";
