// tollgate/slim: the same API, without loading the WebAssembly module. Load it once with
// `await init(...)` or `initSync(...)` before the first call (others throw `not_initialized`).
export * from "./index.js";

/** What the module can be loaded from: a compiled module, its bytes, a URL or a fetch Response. */
export type ModuleInput = WebAssembly.Module | BufferSource | URL | string | Response;

/** Loads the module (once; later calls do nothing). */
export declare function init(input: ModuleInput | Promise<ModuleInput>): Promise<void>;
/** Loads the module synchronously from a compiled `WebAssembly.Module` or its bytes (once). */
export declare function initSync(module: WebAssembly.Module | BufferSource): void;
