// Prints the adapter Dawn finds, or exits 1. Used by setup.sh to decide whether a driver must be installed.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) { console.error('no adapter'); process.exit(1); }
const info = adapter.info ?? {};
console.log(`${info.vendor ?? ''} ${info.device || info.description || 'unknown'} (${info.architecture ?? ''})`.trim());
process.exit(0);
