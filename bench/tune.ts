/**
 * `webspark bench tune` (and `bench --autotune ...`): the conv auto-tune (src/ops/autotune.ts)
 * on the `kernels` suite's conv and transposed-conv shapes. The shapes run forward and
 * backward once (so their keys are seen), then every key is tuned: per key the candidates'
 * median ms, the checks, the winner. The winners stay installed on this Gpu, so suites run
 * after it in the same command (`bench tune tfjs`, or `--autotune`) use the tuned kernels.
 */
import type { Context } from '../src/tensor/context.ts';
import { SiteLayout } from '../src/tensor/layout.ts';
import { conv2d, convTranspose2d } from '../src/ops/conv2d.ts';
import { formatTuneReport, resetConvTuning, tuneConvs, type KeyReport, type TuneStore } from '../src/ops/autotune.ts';
import { configLabel } from '../src/ops/autotune-candidates.ts';
import { FULL, random, SMALL } from './kernels.ts';
import { record, type BenchRecord } from './harness.ts';

export interface TuneBench {
  records: BenchRecord[];
  reports: KeyReport[];
  text: string;
}

/** Runs the bench's conv shapes once, eagerly, so the tuner knows their keys. */
function runShapes(ctx: Context): void {
  const s = ctx.gpu.adapter.isFallbackAdapter ? SMALL : FULL;
  ctx.tidy(() => {
    const { b, c, hw } = s.conv;
    const x = random(ctx, [b * hw * hw, c], 3, SiteLayout.dense(b, hw, hw));
    const w = random(ctx, [c, c, 3, 3], 4);
    x.requiresGrad = w.requiresGrad = true;
    const y = conv2d(x, w, null, { padding: 1 });
    ctx.backward(y, y);
    const t = s.convT;
    const xt = random(ctx, [t.b * t.hw * t.hw, t.cin], 5, SiteLayout.dense(t.b, t.hw, t.hw));
    const wt = random(ctx, [t.cin, t.cout, 4, 4], 6);
    xt.requiresGrad = wt.requiresGrad = true;
    const yt = convTranspose2d(xt, wt, null, { stride: 2, padding: 1 });
    ctx.backward(yt, yt);
    x.requiresGrad = w.requiresGrad = xt.requiresGrad = wt.requiresGrad = false;
  });
}

export async function benchTune(ctx: Context, opts: { quick?: boolean; store?: TuneStore | null } = {}): Promise<TuneBench> {
  resetConvTuning(ctx);
  runShapes(ctx);
  await ctx.gpu.sync();
  const log: string[] = [];
  const reports = await tuneConvs(ctx, {
    rounds: opts.quick ? 3 : 5,
    budgetMs: opts.quick ? 15_000 : 60_000,
    store: opts.store ?? null,
    log: (l) => log.push(l),
  });
  const records: BenchRecord[] = [];
  for (const r of reports) {
    for (const [i, c] of r.candidates.entries()) {
      if (c.ms !== null) records.push(record('tune', r.key, `${configLabel(c.config)}${i === r.winner ? ' *' : ''}`, '', c.ms, null));
    }
  }
  return { records, reports, text: [formatTuneReport(reports), ...log.filter((l) => !l.includes(': rejected '))].join('\n') };
}
