// tollgate/slim in a Worker-like setting: the module is loaded explicitly. Checked by tsc.
import { Engine, init, initSync, isInitialized } from "tollgate/slim";

declare const wasmModule: WebAssembly.Module;
declare const snapshotText: string;

initSync(wasmModule);
await init(fetch("/tollgate.wasm"));
await init(new URL("https://example.com/tollgate.wasm"));
const ready: boolean = isInitialized();
const engine = Engine.fromSnapshot(snapshotText);
export const allowed: boolean = ready && engine.check("cus_acme", "priority-queue").allowed;
