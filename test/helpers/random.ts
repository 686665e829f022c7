import { Rng as EngineRng } from '../../src/util/rng.ts';

/**
 * The engine's seeded generator (mulberry32) with test conveniences, so every test input is
 * reproducible from its seed. `int(n)` here is [0, n).
 */
export class Rng {
  private base: EngineRng;

  constructor(seed: number) {
    this.base = new EngineRng(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.base.next();
  }

  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** `n` values, uniform in [lo, hi), as float64 (round to f32 with `f32()` before use). */
  array(n: number, lo = -1, hi = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  normals(n: number, std = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }

  /** A random 0/1 pattern with exactly `ones` ones among `n`. */
  choose(n: number, ones: number): Uint8Array {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    const out = new Uint8Array(n);
    for (let i = 0; i < ones; i++) out[idx[i]!] = 1;
    return out;
  }
}

/** Rounds to float32 values (kept as float64), so references see exactly what the GPU sees. */
export function f32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}
