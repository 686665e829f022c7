/**
 * The figures of the shipped demo model, for tools/ship-demo-model.ts: the training loss curve
 * as a PNG (an SVG drawn here, rasterised by sharp), and the section of docs/demo-model.md that
 * states the model's figures, rewritten between two marker lines.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { heldOutProtocol, type DemoModelCard } from '../src/models/demo-model.ts';

export const DOC_BEGIN = '<!-- shipped-model:begin (written by tools/ship-demo-model.ts; do not edit by hand) -->';
export const DOC_END = '<!-- shipped-model:end -->';

export interface LossPoint {
  step: number;
  loss: number;
}

/** The steps up to `lastStep` (inclusive) from a run's metrics.jsonl (one JSON object per step). */
export function readLossCurve(metricsJsonl: string, lastStep: number): LossPoint[] {
  const byStep = new Map<number, number>();
  for (const line of metricsJsonl.split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as { step?: number; loss?: number };
    // A resumed run repeats steps after its checkpoint: the last record of a step is the one kept.
    if (typeof m.step === 'number' && typeof m.loss === 'number' && m.step <= lastStep) byStep.set(m.step, m.loss);
  }
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([step, loss]) => ({ step, loss }));
}

/** The loss per step (thin) and its running mean over 10 steps (thick), the held-out figure as a dashed line. */
export async function writeLossCurvePng(path: string, points: LossPoint[], heldOut: number, title: string): Promise<void> {
  if (points.length === 0) throw new Error('metrics.jsonl has no steps up to the checkpoint: no loss curve to draw');
  const W = 720;
  const H = 360;
  const left = 60;
  const right = 20;
  const top = 36;
  const bottom = 44;
  const maxStep = Math.max(1, points[points.length - 1]!.step);
  const hi = Math.max(1.05, heldOut + 0.1, ...points.map((p) => p.loss));
  const lo = Math.min(0, heldOut);
  const x = (s: number) => left + ((W - left - right) * s) / maxStep;
  const y = (l: number) => top + ((H - top - bottom) * (hi - l)) / (hi - lo);
  const line = (ps: LossPoint[]) => ps.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ');
  const smooth = points.map((p, i) => {
    const w = points.slice(Math.max(0, i - 9), i + 1);
    return { step: p.step, loss: w.reduce((a, q) => a + q.loss, 0) / w.length };
  });
  const yTicks = [0, 0.25, 0.5, 0.75, 1].filter((t) => t >= lo && t <= hi);
  const xTicks = Array.from({ length: 5 }, (_, i) => Math.round((maxStep * i) / 4));
  const text = (tx: number, ty: number, s: string, anchor = 'middle') =>
    `<text x="${tx}" y="${ty}" text-anchor="${anchor}" font-family="DejaVu Sans, sans-serif" font-size="12">${s}</text>`;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...yTicks.map((t) => `<line x1="${left}" x2="${W - right}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>` + text(left - 8, y(t) + 4, t.toFixed(2), 'end')),
    ...xTicks.map((t) => text(x(t), H - bottom + 18, String(t))),
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="#444"/>`,
    `<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="#444"/>`,
    `<polyline points="${line(points)}" fill="none" stroke="#9bb8e0" stroke-width="1"/>`,
    `<polyline points="${line(smooth)}" fill="none" stroke="#1f5fb4" stroke-width="2.5"/>`,
    `<line x1="${left}" x2="${W - right}" y1="${y(heldOut)}" y2="${y(heldOut)}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/>`,
    text(W - right - 4, y(heldOut) - 6, `held-out loss ${heldOut.toFixed(3)} (inference mode)`, 'end'),
    text(W / 2, 22, `${title}: training loss per step (thin) and its 10-step mean (thick)`),
    text(W / 2, H - 8, 'step'),
    '</svg>',
  ].join('\n');
  await sharp(Buffer.from(svg)).png().toFile(path);
}

/** The markdown that states the shipped model's figures (between the markers). */
export function docSection(card: DemoModelCard, bytes: number, command: string, evalCommand: string): string {
  const h = card.heldOut;
  const wall = card.wallSeconds === null ? 'not recorded' : `${(card.wallSeconds / 3600).toFixed(2)} h (${card.wallSource})`;
  return [
    DOC_BEGIN,
    `## The shipped model: ${card.title}`,
    '',
    `**Held-out loss: ${h.mean.toFixed(3)}** (${heldOutProtocol(h)}); per seed ${h.perSeed.map((l) => l.toFixed(3)).join(', ')}. ` +
      'A mean predictor scores 1.0.',
    '',
    '| | |',
    '| --- | --- |',
    `| file | \`public/models/demo-model.safetensors\`, ${(bytes / 1e6).toFixed(1)} MB, ${card.storage} |`,
    `| model | SparK ${card.model} encoder + LightDecoder width ${card.decoderWidth}, input ${card.inputSize} px |`,
    `| training | ${card.steps} steps at batch ${card.batchSize} (checkpoint \`${card.checkpoint}\`) |`,
    `| data | ${card.data} |`,
    `| hardware | ${card.hardware} |`,
    `| wall time | ${wall} |`,
    '',
    'Trained with',
    '',
    '```sh',
    command,
    '```',
    '',
    'and shipped, with the held-out loss measured on the shipped (float16) weights, with',
    '',
    '```sh',
    evalCommand,
    '```',
    '',
    'The held-out loss is the mean of `npx webspark reconstruct --mask-ratio 0.6 --seed S --json` over seeds',
    `${h.seeds[0]}..${h.seeds[h.seeds.length - 1]}, each run on all ${h.photos} held-out photos (sorted by key) in one batch; the tool calls the same code.`,
    '',
    `![Training loss of the shipped model](images/demo-model-loss.png)`,
    '',
    `![Held-out photos (never trained on), seed-0 masks: original, masked, reconstruction, composite](images/demo-model-heldout.png)`,
    '',
    'Each row of the grid: original | masked input | reconstruction | composite (visible patches from the input).',
    DOC_END,
  ].join('\n');
}

/** Replaces the marked section of the doc (or appends it when the doc has none). */
export function rewriteDocSection(path: string, section: string): void {
  const doc = readFileSync(path, 'utf8');
  const begin = doc.indexOf(DOC_BEGIN);
  const end = doc.indexOf(DOC_END);
  if ((begin < 0) !== (end < 0) || end < begin) throw new Error(`${path}: the markers of the shipped-model section are broken (one without the other)`);
  const next = begin < 0 ? `${doc.trimEnd()}\n\n${section}\n` : `${doc.slice(0, begin)}${section}${doc.slice(end + DOC_END.length)}`;
  writeFileSync(path, next);
}

/** The held-out figure the doc states, or null when it states none. */
export function heldOutInDoc(doc: string): number | null {
  const m = /\*\*Held-out loss: (\d+\.\d+)\*\*/.exec(doc);
  return m ? Number(m[1]) : null;
}
