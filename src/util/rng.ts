/**
 * A small seeded generator (mulberry32) for everything random the engine decides on the CPU:
 * initialisation, masks, drop-path draws. Its state is one u32, so a checkpoint can store it
 * and a resumed run draws the same numbers.
 */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi) (torch.randint(lo, hi)). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Normal(0, std) truncated to [lo, hi] by rejection (PyTorch's trunc_normal_ bounds are absolute). */
  truncatedNormal(std: number, lo: number, hi: number): number {
    for (;;) {
      const v = this.normal() * std;
      if (v >= lo && v <= hi) return v;
    }
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    return idx;
  }
}

/** Python 3's round(): halves go to the even neighbour (SparK computes len_keep and warm-up iterations with it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
