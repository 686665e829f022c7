/**
 * Kernel configurations the conv reference tests force on every conv (`withConvConfig`), so that
 * every value of every override the auto-tune may choose (src/ops/autotune.ts
 * `candidatesFor`) is checked against the float64 reference: RB 4 and 8, tiles forced to 32
 * (several tiles where the default is 64) and to 64 (padding where the default is 32), mixed
 * 64x32 and 32x64 (a GPU's default for a GEMM long on one side and short on the other; the
 * CPU adapters the tests run on default to 32x32, conv-plan.ts `uniformTiles`), KT 32
 * with 32x32 tiles (a K step of 32: K = 20..288 here, so partial last steps too), split-K
 * chunks of 16 rows (several chunks at test sizes), the two switches off, and the direct
 * input-gradient kernel (shaders/conv-direct.wgsl; the GEMM settings next to it are ignored by
 * the input gradient and exercised by the other passes).
 */
import { it, type TestContext } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { ConvConfig } from '../../src/ops/conv-plan.ts';
import { withConvConfig } from '../../src/ops/conv-tuning.ts';

export const FORCED_CONFIGS: Record<string, ConvConfig> = {
  'rb=8': { rb: 8 },
  'rb=8 tm=tn=32 chunks of 16': { rb: 8, tm: 32, tn: 32, minChunkRows: 16 },
  'tm=tn=64 chunks of 16, no flip': { tm: 64, tn: 64, minChunkRows: 16, flip: false },
  'rb=8 tm=tn=64 no vec4': { rb: 8, tm: 64, tn: 64, vec4: false },
  'tm=tn=32 no vec4': { tm: 32, tn: 32, vec4: false },
  'rb=8 tm=tn=32 kt=32 chunks of 16': { rb: 8, tm: 32, tn: 32, kt: 32, minChunkRows: 16 },
  'tm=tn=32 kt=32 no vec4, no flip, unpacked w': { tm: 32, tn: 32, kt: 32, vec4: false, flip: false, packW: false },
  'rb=8 tm=64 tn=32 unpacked w': { rb: 8, tm: 64, tn: 32, packW: false },
  'direct dx 1 px, tm=tn=32 chunks of 16': { direct: 1, tm: 32, tn: 32, minChunkRows: 16 },
  'direct dx 2 px, rb=8 tm=32 tn=64': { direct: 2, rb: 8, tm: 32, tn: 64 },
  'direct dx 4 px, OIHW weight': { direct: 4, packW: false },
};

/**
 * Registers one test per forced configuration and case: `check(tc)` with that configuration
 * forced on every conv, the default restored afterwards even when the check fails.
 */
export function itUnderForcedConfigs<C extends { name: string }>(
  gpu: () => Gpu, cases: C[], check: (tc: C, t: TestContext) => Promise<void>, suffix = '',
): void {
  for (const [label, cfg] of Object.entries(FORCED_CONFIGS)) {
    for (const tc of cases) {
      it(`${tc.name} [tuned config ${label}${suffix}]`, (t) => withConvConfig(gpu(), cfg, () => check(tc, t)));
    }
  }
}

/**
 * The default kernels' two switches turned off, alone and together: the flipped stride-1
 * input gradient (acts on stride-1 convs with k > 1) and the vec4 gather (on channels per
 * group a multiple of 4).
 */
export const SWITCH_CONFIGS: { label: string; config: ConvConfig }[] = [
  { label: 'no flip, no vec4', config: { flip: false, vec4: false } },
  { label: 'no vec4', config: { vec4: false } },
  { label: 'no flip', config: { flip: false } },
];
