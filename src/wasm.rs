//! WebAssembly bindings (feature `wasm`): conversions between JS values and the engine, no
//! business logic. The npm package in `pkg-template/` wraps these.
