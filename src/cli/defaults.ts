/** Paths the CLI uses by default. */
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
export const DEFAULT_WEIGHTS = resolve(root, 'weights/moefusion.safetensors');
