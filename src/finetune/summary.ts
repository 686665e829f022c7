/**
 * The fine-tuning comparison's figures: per (initialisation, label fraction), the mean top-1
 * over seeds and its standard error (sample sd / sqrt(runs)), and pre-training's gain over a
 * baseline with the standard error of a difference of two independent means.
 */

export interface RunResultRow {
  init: string;
  fraction: number;
  seed: number;
  top1: number;
}

export interface Cell {
  init: string;
  fraction: number;
  runs: number;
  mean: number;
  /** Standard error of the mean; NaN with one run. */
  se: number;
}

export function summarize(rows: readonly RunResultRow[]): Cell[] {
  const groups = new Map<string, RunResultRow[]>();
  for (const r of rows) {
    const key = `${r.init}\u0000${r.fraction}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  return [...groups.values()].map((g) => {
    const n = g.length;
    const mean = g.reduce((a, r) => a + r.top1, 0) / n;
    const variance = n > 1 ? g.reduce((a, r) => a + (r.top1 - mean) ** 2, 0) / (n - 1) : NaN;
    return { init: g[0]!.init, fraction: g[0]!.fraction, runs: n, mean, se: Math.sqrt(variance / n) };
  });
}

/** mean(a) - mean(b) and its standard error sqrt(se_a^2 + se_b^2). */
export function gain(a: Cell, b: Cell): { diff: number; se: number } {
  return { diff: a.mean - b.mean, se: Math.sqrt(a.se ** 2 + b.se ** 2) };
}
