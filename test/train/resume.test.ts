/**
 * Resuming is exact: N steps straight give the same weights, optimizer state and BN statistics
 * as k steps, a checkpoint, and the remaining N-k steps in a FRESH PROCESS (new device, new
 * loader positioned by the checkpoint's data cursor, same masks and drop-path draws from the
 * stored random states). Also: the loss falls on a short run, and a killed save leaves the
 * previous checkpoint loadable.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { NodeCheckpointStore } from '../../src/platform/node/checkpoint-store.ts';
import { useContext } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/check.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

const N = 4;
const K = 2;
const script = fileURLToPath(new URL('./tiny-run.ts', import.meta.url));

describe('training runs', () => {
  const getCtx = useContext();

  it(`resume: ${N} steps straight equal ${K} steps + checkpoint + ${N - K} steps in a fresh process`, async () => {
    const ctx = getCtx();
    const straightDir = mkdtempSync(join(tmpdir(), 'webspark-straight-'));
    const splitDir = mkdtempSync(join(tmpdir(), 'webspark-split-'));
    const losses: number[] = [];
    const straight = await tinyTrainer(ctx, tinyConfig(N), straightDir, { metrics: (m) => void losses.push(m.loss) });
    expect(await straight.trainer.train()).toBe('finished');
    ctx.dispose();

    const first = await tinyTrainer(ctx, tinyConfig(N), splitDir);
    expect(await first.trainer.train(K)).toBe('stopped');
    const mid = first.store.latest()!;
    expect(mid.step).toBe(K);
    ctx.dispose();

    const out = execFileSync(process.execPath, ['--import', 'tsx', script, mid.path, splitDir, String(N)], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ state: 'finished', step: N });

    const a = readWeightFile(readFileSync(straight.store.latest()!.path), 'a');
    const b = readWeightFile(readFileSync(new NodeCheckpointStore(splitDir).latest()!.path), 'b');
    expect([...b.arrays.keys()]).toEqual([...a.arrays.keys()]);
    // Same kernels in the same order on the same adapter: the runs agree to float32 rounding.
    for (const [key, va] of a.arrays) {
      expectClose(b.arrays.get(key)!.data, va.data, { atol: 1e-6, rtol: 1e-5 }, key);
    }
    const runA = JSON.parse(a.metadata['webspark.run']!);
    const runB = JSON.parse(b.metadata['webspark.run']!);
    expect(runB.cursor).toEqual(runA.cursor);
    expect(runB.maskRng).toBe(runA.maskRng);
    expect(losses).toHaveLength(N);
    // Three runs, one in a child process: ~40 s alone, past the 120 s default on a loaded machine.
  }, 300_000);

  it('a save killed mid-write leaves the previous checkpoint loadable, and the partial file is removed next time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webspark-kill-'));
    const store = new NodeCheckpointStore(dir);
    const good = store.save(1, [new TextEncoder().encode('x'.repeat(64))]);
    // A child process starts writing checkpoint 2 through the store and is killed mid-write.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import { NodeCheckpointStore } from ${JSON.stringify(fileURLToPath(new URL('../../src/platform/node/checkpoint-store.ts', import.meta.url)))};
         const s = new NodeCheckpointStore(${JSON.stringify(dir)});
         const big = new Uint8Array(1 << 20);
         const parts = Array.from({ length: 4096 }, () => big);
         process.stdout.write('writing\\n');
         s.save(2, parts);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const names = readdirSync(dir);
    expect(names.some((n) => n.includes('.partial'))).toBe(true);
    expect(existsSync(good)).toBe(true);
    expect(readFileSync(good).length).toBe(64);
    const reopened = new NodeCheckpointStore(dir);
    expect(reopened.latest()!.step).toBe(1);
    expect(readdirSync(dir).some((n) => n.includes('.partial'))).toBe(false);
    writeFileSync(join(dir, 'unrelated.txt'), 'kept');
    expect(readdirSync(dir)).toContain('unrelated.txt');
  });
});
