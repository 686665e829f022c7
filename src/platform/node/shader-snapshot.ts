/**
 * The WGSL shaders of a Node process, read once, when the process loads its code.
 *
 * Why: the TypeScript that binds a shader's buffers and packs its uniform is loaded when the
 * process starts, but a pipeline used to read `shaders/<name>.wgsl` from disk at its first
 * dispatch, possibly minutes later. A checkout that changes under a running process (a
 * `git rebase`, `checkout` or `pull` in the worktree it runs from) then paired old code with a
 * new shader. That is what made the linear probe of docs/evaluation.md's experiment report
 * chance accuracy (issue 9): the rebase landed while the run extracted features, and the
 * probe's first optimizer step compiled the new `lamb.wgsl`, which reads the learning rate
 * from a `hyper` buffer the old code did not bind. Gpu.dispatch binds a zero placeholder for
 * bindings a caller leaves out, so the step ran with lr 0 and the head never trained.
 * Reading every shader at start-up keeps code and shaders of one process from one moment.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ShaderLoader } from '../../gpu/gpu.ts';

/**
 * Reads every `*.wgsl` file in `dir` now and returns a loader that serves those texts. A
 * missing folder is reported when a shader is first asked for, not here, so importing the
 * Node platform code never fails by itself.
 */
export function snapshotShaders(dir: string): ShaderLoader {
  const folder = dir.endsWith('/') ? dir : `${dir}/`;
  const texts = new Map<string, string>();
  const present = existsSync(folder);
  if (present) {
    for (const file of readdirSync(folder)) {
      if (file.endsWith('.wgsl')) texts.set(file.slice(0, -'.wgsl'.length), readFileSync(`${folder}${file}`, 'utf8'));
    }
  }
  return (name: string) => {
    const text = texts.get(name);
    if (text !== undefined) return text;
    if (!present) {
      throw new Error(`shader ${name}.wgsl: the shader folder ${folder} did not exist when this process started (set WEBSPARK_SHADERS to the folder with the .wgsl files)`);
    }
    throw new Error(
      `shader ${name}.wgsl was not in ${folder} when this process started (shaders are read at start-up, ` +
        'so that a run never mixes its code with shaders changed later); restart the process after adding it',
    );
  };
}
