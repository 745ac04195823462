/** Installs WebGPU's globals (GPUBufferUsage, GPUBuffer, …) from Dawn's bindings; imported before any use. */
import { globals } from 'webgpu';

Object.assign(globalThis, globals);
// Mesa warns on every start without it.
process.env.XDG_RUNTIME_DIR ??= '/tmp';
