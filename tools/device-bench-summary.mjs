// The figures tools/device-bench.sh leaves in its output folder, side by side: per run, webspark's
// ms/step, images/s and peak pool memory (f32, and f16 where run) against PyTorch's ms/step,
// images/s and peak allocated memory in fp32 (TF32 off) and with TF32; then the profile's
// families and the features only Dawn's allow_unsafe_apis toggle shows. Plain Node, no
// dependencies: it runs with the node that .gpu/ brings.
//   node tools/device-bench-summary.mjs device-out
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'device-out';
const read = (name) => {
  const f = join(dir, name);
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch {
    return null;
  }
};
const mib = (b) => (b === null || b === undefined ? '-' : `${(b / 2 ** 20).toFixed(0)} MiB`);
const fixed = (x, d = 1) => (x === null || x === undefined ? '-' : x.toFixed(d));

const names = [...new Set(readdirSync(dir).map((f) => /^(?:train|torch)-(.+)-(?:f32|f16|fp32|tf32)\.json$/.exec(f)?.[1]).filter(Boolean))];
const lines = ['step comparison: ms/step | images/s | peak memory (webspark: pool peak; PyTorch: max allocated)'];
for (const name of names.sort()) {
  lines.push(name);
  const cells = [];
  for (const p of ['f32', 'f16']) {
    const s = read(`train-${name}-${p}.json`)?.summary?.train;
    if (s) cells.push([`webspark ${p}`, s.msPerStep, s.imagesPerSecond, s.peakBytes, s.model + ` B${s.batch} ${s.inputSize}px`]);
  }
  for (const p of ['fp32', 'tf32']) {
    const t = read(`torch-${name}-${p}.json`);
    const r = t?.records?.[0];
    if (r) cells.push([`pytorch ${p}`, r.ms, t.summary?.imagesPerSecond ?? null, t.summary?.peakBytes ?? r.bytes, r.shape]);
  }
  if (cells.length === 0) lines.push('  no figures (see the logs)');
  for (const [impl, ms, ips, bytes, shape] of cells) {
    lines.push(`  ${impl.padEnd(14)} ${fixed(ms).padStart(9)} ms/step ${fixed(ips).padStart(8)} img/s ${mib(bytes).padStart(10)}   ${shape}`);
  }
  const ws = cells.find((c) => c[0] === 'webspark f32');
  for (const ref of ['pytorch fp32', 'pytorch tf32']) {
    const t = cells.find((c) => c[0] === ref);
    if (ws && t) lines.push(`  webspark f32 / ${ref}: ${(ws[1] / t[1]).toFixed(2)}x the time`);
  }
}

for (const f of readdirSync(dir).filter((f) => f.startsWith('profile-') && f.endsWith('.json')).sort()) {
  const p = read(f)?.summary?.train?.profile;
  if (!p) continue;
  lines.push('', `${f}: ${p.dispatches} dispatches, kernel time ${fixed(p.kernelMs, 2)} ms of ${fixed(p.stepMs, 2)} ms/step (gap ${fixed(100 * p.gapShare)} %)`);
  for (const x of p.families) {
    const unit = x.measure === 'flops' ? 'GFLOP/s' : 'GB/s';
    lines.push(`  ${x.family.padEnd(20)} ${String(x.dispatches).padStart(5)} ${fixed(x.ms, 3).padStart(10)} ms ${fixed(100 * x.share).padStart(5)} % ${fixed(x.rate).padStart(9)} ${unit}`);
  }
}

const feat = read('features.json');
if (feat) lines.push('', `features only with allow_unsafe_apis: ${feat.onlyWithToggle?.length ? feat.onlyWithToggle.join(', ') : 'none'}`);
console.log(lines.join('\n'));
