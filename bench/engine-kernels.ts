/** The engine's kernels without peers at MoE-Fusion's shapes, for bench/kernels.ts: now in src/bench/kernels.ts (`moefusion bench --kernels`). */
export { engineCases, type EngineCase } from '../src/bench/kernels.ts';
