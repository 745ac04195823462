/** Seeded random numbers (mulberry32 + Box-Muller) whose state can be saved and restored (exact resume). */
export class Rng {
  private s: number;
  constructor(seed = 1) {
    this.s = seed >>> 0 || 1;
  }
  get state(): number {
    return this.s;
  }
  set state(v: number) {
    this.s = v >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  uniform(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
  normal(n: number, std = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(1e-12, this.next());
      a[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
    }
    return a;
  }
  /** Uniform values whose magnitude is at least `gap`: keeps finite differences away from kinks at 0. */
  awayFromZero(n: number, gap = 0.05): Float32Array {
    const a = this.uniform(n);
    for (let i = 0; i < n; i++) if (Math.abs(a[i]) < gap) a[i] = a[i] < 0 ? -gap - Math.abs(a[i]) : gap + a[i];
    return a;
  }
}
