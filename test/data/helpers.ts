/** Shared helpers for the data tests: temp folders, GNU tar, small real images. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import type { Sample } from '../../src/data/types.ts';

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `webspark-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes `files` (relative path -> contents) under `root`, making folders as needed. */
export function writeTree(root: string, files: Record<string, Uint8Array | string>): void {
  for (const [rel, data] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
  }
}

/** Runs GNU tar in `cwd` with `args` (e.g. ['--format=pax', '-cf', out, ...members]). */
export function gnuTar(cwd: string, args: string[]): void {
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', ...args], { cwd });
}

/** A small real JPEG: a colour gradient with a seed-dependent tint, `w` x `h`. */
export async function jpeg(w: number, h: number, seed: number, quality = 90): Promise<Uint8Array> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      raw[i] = (x * 255) / Math.max(1, w - 1);
      raw[i + 1] = (y * 255) / Math.max(1, h - 1);
      raw[i + 2] = (seed * 37) % 256;
    }
  }
  return new Uint8Array(await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality }).toBuffer());
}

export async function collect(samples: AsyncIterable<Sample>): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of samples) out.push(s);
  return out;
}

/** Collects samples until the stream throws; returns both. */
export async function collectUntilError(samples: AsyncIterable<Sample>): Promise<{ samples: Sample[]; error: Error | null }> {
  const out: Sample[] = [];
  try {
    for await (const s of samples) out.push(s);
  } catch (err) {
    return { samples: out, error: err as Error };
  }
  return { samples: out, error: null };
}

export const bytesEqual = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
