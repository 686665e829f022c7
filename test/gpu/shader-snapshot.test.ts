/**
 * A Node process reads its shaders when it loads its code (src/platform/node/shader-snapshot.ts):
 * a shader file read at its first dispatch could be newer than the code that binds it (a
 * checkout rebased under a running process; a `lamb.wgsl` reading a `hyper` buffer the old
 * code does not bind trains with lr 0). These tests rule that read out.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { snapshotShaders } from '../../src/platform/node/shader-snapshot.ts';

const made: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'webspark-shaders-'));
  made.push(dir);
  return dir;
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('shader snapshot', () => {
  it('serves the text a shader had when the snapshot was taken, not what the file says later', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'lamb.wgsl'), '// version 1');
    writeFileSync(join(dir, 'notes.txt'), 'not a shader');
    const load = snapshotShaders(dir);
    writeFileSync(join(dir, 'lamb.wgsl'), '// version 2 (a rebase landed)');
    writeFileSync(join(dir, 'added.wgsl'), '// new');
    expect(load('lamb')).toBe('// version 1');
    // A shader that appeared later is refused with what to do, not read.
    expect(() => load('added')).toThrow(/not in .* when this process started.*restart/);
    expect(() => load('notes')).toThrow(/notes\.wgsl/);
  });

  it('a missing folder fails when a shader is asked for, naming the folder and WEBSPARK_SHADERS', () => {
    const missing = join(tempDir(), 'nope');
    const load = snapshotShaders(missing);
    expect(() => load('lamb')).toThrow(/nope\/ did not exist.*WEBSPARK_SHADERS/);
  });

  it("the Node platform's loader is a snapshot taken when the module loads", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'lamb.wgsl'), '// loaded with the code');
    vi.stubEnv('WEBSPARK_SHADERS', dir);
    vi.resetModules();
    const { loadShaderFile } = await import('../../src/platform/node/gpu.ts');
    writeFileSync(join(dir, 'lamb.wgsl'), '// changed under the running process');
    expect(loadShaderFile('lamb')).toBe('// loaded with the code');
  });

  it('the default folder is the repository shaders/ (every shader the engine ships is served)', async () => {
    vi.resetModules();
    const { loadShaderFile } = await import('../../src/platform/node/gpu.ts');
    const file = fileURLToPath(new URL('../../shaders/lamb.wgsl', import.meta.url));
    expect(loadShaderFile('lamb')).toBe(readFileSync(file, 'utf8'));
    expect(loadShaderFile('batchnorm')).toContain('fn running_update');
  });
});
