/**
 * The WGSL shaders of a Node process, read once, when the process loads its code.
 *
 * Why: the TypeScript that binds a shader's buffers and packs its uniform is loaded when the
 * process starts, and a pipeline is made at its first dispatch, possibly minutes later. Read
 * from disk then, a shader changed under the running process (a `git rebase`, `checkout` or
 * `pull` in the checkout it runs from) would meet code older than itself: a `lamb.wgsl` that
 * reads the learning rate from a `hyper` buffer the old code does not bind stops the run at
 * its first launch (Gpu.dispatch refuses a binding the entry point uses but was not given),
 * and a change that keeps the names but changes what a buffer holds runs on wrong data.
 * Reading every shader at start-up keeps code and shaders of one process from one moment.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ShaderLoader } from '../../gpu/gpu.ts';
import { withIncludes } from '../../util/shader-includes.ts';

/**
 * Reads every `*.wgsl` file in `dir` now and returns a loader that serves those texts, their
 * `// #include` lines resolved (src/util/shader-includes.ts) from the same snapshot. A
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
  return withIncludes((name: string) => {
    const text = texts.get(name);
    if (text !== undefined) return text;
    if (!present) {
      throw new Error(`shader ${name}.wgsl: the shader folder ${folder} did not exist when this process started (set WEBSPARK_SHADERS to the folder with the .wgsl files)`);
    }
    throw new Error(
      `shader ${name}.wgsl was not in ${folder} when this process started (shaders are read at start-up, ` +
        'so that a run never mixes its code with shaders changed later); restart the process after adding it',
    );
  });
}
