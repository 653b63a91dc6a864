// Node.js and Bun: the module is read next to this file and instantiated synchronously.
import { readFileSync } from "node:fs";
import { initSync } from "./core.js";

initSync(readFileSync(new URL("./tollgate.wasm", import.meta.url)));

export * from "./core.js";
