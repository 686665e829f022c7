/**
 * Segmented sums of squares (src/ops/segmented.ts) against float64 sums, on awkward
 * segment lengths (around the workgroup size and the chunk size, empty, one element, large),
 * many segments, overlapping segments, and the dispatch count that must not grow with them.
 */
import { describe, expect, it } from 'vitest';
import {
  SEGMENT_CHUNK,
  SEGMENT_PER_THREAD,
  SEGMENT_WG,
  STAGING_LIMITS,
  segmentedSumOfSquares,
  sumsOfSquares,
  type Segment,
} from '../../src/ops/segmented.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';

/** Float64 reference: sum of x[i]^2 over each segment. */
function sumsOfSquaresF64(x: ArrayLike<number>, segments: readonly Segment[]): Float64Array {
  return Float64Array.from(segments, (s) => {
    let acc = 0;
    for (let i = s.offset; i < s.offset + s.length; i++) acc += x[i]! * x[i]!;
    return acc;
  });
}

/**
 * f32 tolerance, per segment. Every term is >= 0, so the f32 result's relative error is at
 * most depth * 2^-24 (to first order), depth = roundings on the longest path from a value to
 * the result: 1 (the square) + (PER_THREAD - 1) sequential adds + 8 tree levels in pass 1,
 * ceil(chunks / 256) sequential adds + 8 tree levels in pass 2. That is a bound, not an
 * estimate: ~2e-6 for a segment of 100003 values. Dropping or doubling one value of a
 * segment changes its sum by ~1/length relative, which is far above it (1e-5 at 100003).
 */
function relativeBound(length: number): number {
  const chunks = Math.ceil(length / SEGMENT_CHUNK);
  const depth = 1 + (SEGMENT_PER_THREAD - 1) + Math.log2(SEGMENT_WG) + Math.ceil(chunks / SEGMENT_WG) + Math.log2(SEGMENT_WG);
  return depth * 2 ** -24 * 1.01;
}

function expectSums(actual: Float32Array, x: ArrayLike<number>, segments: readonly Segment[], what: string): void {
  const want = sumsOfSquaresF64(x, segments);
  expect(actual.length, `${what}: count`).toBe(segments.length);
  segments.forEach((s, k) => {
    const err = Math.abs(actual[k]! - want[k]!);
    const bound = relativeBound(s.length) * want[k]!;
    if (!(err <= bound)) {
      expect.fail(`${what}: segment ${k} (offset ${s.offset}, length ${s.length}) is ${actual[k]}, ` +
        `expected ${want[k]} (|diff| ${err.toExponential(3)} > ${bound.toExponential(3)})`);
    }
  });
}

const AWKWARD = [0, 1, 255, 256, 257, 100003, 4095, 4096, 4097, 8193, 0, 3, 511, 12289];

describe('segmented sums of squares', () => {
  const getCtx = useContext();

  it('awkward lengths and hundreds of segments, in two dispatches', async () => {
    const ctx = getCtx();
    const rng = new Rng(1);
    const lengths = [...AWKWARD];
    for (let k = 0; k < 300; k++) lengths.push(rng.next() < 0.1 ? 0 : rng.int(3000));
    // Segments laid out with gaps between them (values in the gaps must not be counted)...
    const segments: Segment[] = [];
    let at = 0;
    for (const length of lengths) {
      at += rng.int(5);
      segments.push({ offset: at, length });
      at += length;
    }
    const total = at + 7;
    // ...plus some that overlap others or start at the end of the buffer.
    segments.push({ offset: 3, length: 300000 }, { offset: total - 1, length: 1 }, { offset: total, length: 0 });
    const x = f32(rng.array(total, -3, 3));
    const flat = ctx.fromArray(x, [total]);
    const before = ctx.gpu.stats.dispatches;
    const y = segmentedSumOfSquares(flat, segments);
    expect(ctx.gpu.stats.dispatches - before).toBe(2);
    expectSums(await y.read(), x, segments, 'segmentedSumOfSquares');
    ctx.dispose();
  });

  it('a segment of more than 256 chunks (pass 2 loops) and one that is all zeros', async () => {
    const ctx = getCtx();
    const rng = new Rng(2);
    const n = 257 * SEGMENT_CHUNK + 11;
    const x = new Float32Array(n + 1000);
    for (let i = 0; i < n; i++) x[i] = rng.uniform(-1, 1);
    const segments = [
      { offset: 0, length: n },
      { offset: n, length: 1000 },
    ];
    const y = segmentedSumOfSquares(ctx.fromArray(x, [x.length]), segments);
    const got = await y.read();
    expectSums(got, x, segments, 'large segment');
    expect(got[1]).toBe(0);
    ctx.dispose();
  });

  it('only empty segments, and no segments', async () => {
    const ctx = getCtx();
    const flat = ctx.fromArray([1, 2, 3], [3]);
    expect(Array.from(await segmentedSumOfSquares(flat, [{ offset: 0, length: 0 }, { offset: 3, length: 0 }]).read())).toEqual([0, 0]);
    expect(segmentedSumOfSquares(flat, []).size).toBe(0);
    expect(() => segmentedSumOfSquares(flat, [{ offset: 2, length: 2 }])).toThrow(/outside/);
    ctx.dispose();
  });

  it('sumsOfSquares: small tensors staged in one batch, a large one reduced in place', async () => {
    const ctx = getCtx();
    const rng = new Rng(3);
    const sizes = [1, 255, 256, 257, 100003, 7, STAGING_LIMITS.directMin + 3, 4097, 3, 64 * 3 * 3 * 3];
    const data = sizes.map((n) => f32(rng.array(n, -2, 2)));
    const tensors = data.map((d) => ctx.fromArray(d, [d.length]));
    const before = ctx.gpu.stats.dispatches;
    const y = sumsOfSquares(tensors);
    // pass 1 for the batch of small tensors, pass 1 for the large one, pass 2
    expect(ctx.gpu.stats.dispatches - before).toBe(3);
    const got = await y.read();
    data.forEach((d, k) => expectSums(got.subarray(k, k + 1), d, [{ offset: 0, length: d.length }], `tensor ${k}`));
    ctx.dispose();
  });

  it('sumsOfSquares with small limits: several staging batches (buffer reused) and direct tensors', async () => {
    const ctx = getCtx();
    const rng = new Rng(4);
    const sizes = [1, 255, 256, 257, 7, 1728, 3, 4097, 0, 600, 599, 2, 100003, 9];
    const data = sizes.map((n) => f32(rng.array(n, -2, 2)));
    const tensors = data.map((d) => (d.length ? ctx.fromArray(d, [d.length]) : ctx.empty([0])));
    const limits = { directMin: 600, stagingMax: 600 };
    // batches: [1, 255, 256] [257, 7, 3, 0] [599] [2, 9]; direct: 1728, 4097, 600, 100003
    const before = ctx.gpu.stats.dispatches;
    const y = sumsOfSquares(tensors, limits);
    expect(ctx.gpu.stats.dispatches - before).toBe(4 + 4 + 1);
    const got = await y.read();
    data.forEach((d, k) => expectSums(got.subarray(k, k + 1), d, [{ offset: 0, length: d.length }], `tensor ${k}`));
    ctx.dispose();
  });
});
