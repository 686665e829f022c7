/**
 * The auto-tune's candidate configurations (autotune.ts): which configs a key may try, how a
 * persisted one is read back, and how a config is named in reports. Two candidates that would
 * run the same launches on a shape are one: they are compared through their plans
 * (conv-plan.ts `planConv`), never through a copy of the launch rules.
 */
import { planConv, reductionStepRefusal, type ConvConfig, type ConvGeometry, type ConvPass, type DevicePlanOptions } from './conv-plan.ts';

/** No key ever runs or times more candidates than this (the default included). */
export const MAX_CANDIDATES = 6;

export function configLabel(c: ConvConfig): string {
  const parts = Object.entries(c).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : 'default';
}

/**
 * A persisted entry as a config, or null if it is not one this code can run (a cache written
 * by another version, or edited by hand): unknown fields or values are refused, not passed on
 * as override constants.
 */
export function parseConfig(v: unknown): ConvConfig | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const allowed: Record<string, (x: unknown) => boolean> = {
    rb: (x) => x === 4 || x === 8,
    tm: (x) => x === 32 || x === 64,
    tn: (x) => x === 32 || x === 64,
    kt: (x) => x === 16 || x === 32,
    vec4: (x) => typeof x === 'boolean',
    flip: (x) => typeof x === 'boolean',
    packW: (x) => typeof x === 'boolean',
    direct: (x) => x === 1 || x === 2 || x === 4,
    minChunkRows: (x) => Number.isInteger(x) && (x as number) >= 16 && (x as number) <= 2 ** 20,
  };
  for (const [k, x] of Object.entries(v)) if (!allowed[k]?.(x)) return null;
  const c = v as ConvConfig;
  if (reductionStepRefusal(c.kt ?? 16, c.tm, c.tn)) return null;
  return c;
}

/**
 * What a config does on this pass and shape: its plan, as text. Two configs with the same
 * signature run the same kernels on the same grids; a config the plan refuses is its refusal.
 */
export function planSignature(pass: ConvPass, g: ConvGeometry, c: ConvConfig, device: DevicePlanOptions): string {
  try {
    return JSON.stringify(planConv(pass, g, c, { bias: false, ...device }));
  } catch (err) {
    return `refused: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Every candidate of a pass, the default first; `candidatesFor` keeps those distinct on a shape. */
const CANDIDATES: Record<ConvPass, ConvConfig[]> = {
  fwd: [{}, { rb: 8 }, { tm: 32 }, { rb: 8, tm: 32 }, { vec4: false }, { rb: 8, tm: 32, tn: 32, kt: 32 }],
  // dx of a strided conv is also the transposed conv's forward: its sub-pixel classes have
  // few rows each, hence the 32-row tile candidates, and the direct kernel (no GEMM; 4 or 2
  // pixels per invocation, 1 lost everywhere; on the OIHW weight, no pack dispatch:
  // docs/performance.md "The direct kernel"). A strided key keeps the first six that differ
  // (the flips do not), a stride-1 key the first six (the GEMM's unpacked weight does not).
  dx: [
    {}, { rb: 8 }, { flip: false }, { rb: 8, tm: 32, tn: 32, kt: 32 }, { direct: 4 },
    { direct: 4, packW: false }, { rb: 8, flip: false }, { direct: 2, packW: false },
    { rb: 8, tm: 32, tn: 32, kt: 32, packW: false },
  ],
  // Split-K: more, shorter chunks (more workgroups) or fewer, longer ones (fewer partials to
  // sum, fewer workgroups to schedule: SwiftShader prefers those).
  dw: [{}, { rb: 8 }, { minChunkRows: 64 }, { minChunkRows: 512 }, { rb: 8, minChunkRows: 512 }, { rb: 8, tm: 32, tn: 32, kt: 32, minChunkRows: 512 }],
};

/** Candidate configurations of a key, the default first, distinct in effect, at most `max`. */
export function candidatesFor(
  pass: ConvPass, g: ConvGeometry, device: DevicePlanOptions, max = MAX_CANDIDATES, list: ConvConfig[] = CANDIDATES[pass],
): ConvConfig[] {
  const seen = new Set<string>();
  const out: ConvConfig[] = [];
  for (const c of list) {
    const s = planSignature(pass, g, c, device);
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(c);
    if (out.length >= Math.min(max, MAX_CANDIDATES)) break;
  }
  return out;
}
