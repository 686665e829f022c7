/**
 * A small seeded fuzz run over both readers (tools/fuzz-io.ts runs the full count): every
 * mutated file must parse or fail with the format's own error, never another exception, and
 * never take long. The 1 s bound is a hang detector, not a benchmark: these files are under
 * 16 KB and parse in about a millisecond, so only a runaway loop or allocation could reach it.
 */
import { describe, expect, it } from 'vitest';
import { FuzzRng, fuzzOne, runFuzz, seeds } from '../../tools/fuzz-io.ts';

describe('fuzzed weight files', () => {
  for (const format of ['safetensors', 'pth'] as const) {
    it(`${format}: 500 mutated files give a parse or a ${format === 'pth' ? 'PthError' : 'SafetensorsError'}, each within 1 s`, () => {
      const { counts, failures } = runFuzz(format, 500, 20240601, 1000);
      expect(failures.map((f) => `${f.outcome} after ${f.kind} (${f.ms.toFixed(0)} ms): ${f.message}`)).toEqual([]);
      expect(counts.other + counts.slow).toBe(0);
      // Both outcomes must occur, or the loop would prove nothing.
      expect(counts.ok).toBeGreaterThan(0);
      expect(counts[format === 'pth' ? 'PthError' : 'SafetensorsError']).toBeGreaterThan(250);
    });
  }

  it('pickle damage reaches the unpickler, past the zip CRC', () => {
    const rng = new FuzzRng(7);
    const pool = seeds().pth.filter((s) => s.crcAt !== undefined);
    expect(pool.length).toBe(2); // the stored archives; the deflated one cannot be patched in place
    let pickleLevel = 0;
    for (let i = 0; i < 300; i++) {
      const r = fuzzOne(rng, pool[i % pool.length]!, 'pth');
      expect(r.outcome === 'ok' || r.outcome === 'PthError', r.message).toBe(true);
      if (r.kind === 'header' && r.message && !r.message.includes('zip:')) pickleLevel++;
    }
    expect(pickleLevel).toBeGreaterThan(20);
  });
});
