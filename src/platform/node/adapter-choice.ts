/**
 * Which Vulkan driver Dawn sees in Node, and why. Dawn asks the Vulkan loader for every driver
 * it knows; the loader reads its driver list from the environment once, when the first
 * instance is made, so the choice is made before `webgpu` loads and holds for the process.
 *
 * Order (the first that applies wins):
 * 1. `WEBSPARK_ADAPTER=hardware|lavapipe|swiftshader` forces one (an error if it is missing).
 * 2. An explicit `VK_ICD_FILENAMES` / `VK_DRIVER_FILES` is respected as it is.
 * 3. A hardware GPU (device nodes under /dev): the system's drivers, the best software driver
 *    added behind them (VK_ADD_DRIVER_FILES) so a broken hardware driver still leaves one.
 * 4. Mesa's lavapipe, unpacked into the project's cache by tools/setup-test-env.sh: a CPU
 *    driver 2-7x faster than SwiftShader on our kernels, with shader-f16.
 * 5. SwiftShader, from Debian's chromium package.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Written by tools/setup-test-env.sh. */
export const LAVAPIPE_ICD = fileURLToPath(new URL('../../../.cache/lavapipe/lvp_icd.json', import.meta.url));

export type AdapterKind = 'hardware' | 'lavapipe' | 'swiftshader' | 'explicit';
export const FORCEABLE: readonly AdapterKind[] = ['hardware', 'lavapipe', 'swiftshader'];

export interface AdapterChoice {
  kind: AdapterKind;
  /** One sentence a user can act on: what was chosen and what decided it. */
  why: string;
  /** Variables to set (a string) or remove (null) before the first Vulkan instance. */
  env: Record<string, string | null>;
}

/** What the choice looks at; tests pass their own. */
export interface AdapterProbe {
  env: Readonly<Record<string, string | undefined>>;
  exists(path: string): boolean;
  /** The GPU device node found, if any (/dev/nvidia0, /dev/dxg, /dev/dri/renderD128...). */
  gpuDeviceNode(): string | null;
  lavapipeIcd: string;
  swiftshaderIcd: string;
}

export function nodeProbe(): AdapterProbe {
  return {
    env: process.env,
    exists: existsSync,
    gpuDeviceNode,
    lavapipeIcd: LAVAPIPE_ICD,
    swiftshaderIcd: SWIFTSHADER_ICD,
  };
}

const SETUP_HINT = 'run `bash tools/setup-test-env.sh` (Debian; installs chromium for SwiftShader, unpacks lavapipe)';

/** Applies a choice to an environment (process.env before `webgpu` loads). */
export function applyChoice(choice: AdapterChoice, env: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(choice.env)) {
    if (value === null) delete env[name];
    else env[name] = value;
  }
}

export function chooseAdapter(p: AdapterProbe): AdapterChoice {
  const forced = p.env.WEBSPARK_ADAPTER?.trim().toLowerCase();
  if (forced) return forcedChoice(forced, p);

  const explicit = p.env.VK_ICD_FILENAMES || p.env.VK_DRIVER_FILES;
  if (explicit) {
    return { kind: 'explicit', why: `the Vulkan driver list set in the environment (${explicit})`, env: {} };
  }
  const node = p.gpuDeviceNode();
  const software = p.exists(p.lavapipeIcd) ? p.lavapipeIcd : p.exists(p.swiftshaderIcd) ? p.swiftshaderIcd : null;
  if (node) {
    const behind: Record<string, string> = software && !p.env.VK_ADD_DRIVER_FILES ? { VK_ADD_DRIVER_FILES: software } : {};
    return { kind: 'hardware', why: `a GPU device node was found (${node}); the system's Vulkan drivers`, env: behind };
  }
  if (software === p.lavapipeIcd) {
    return {
      kind: 'lavapipe',
      why: `no GPU device node; Mesa's lavapipe is unpacked in the project's cache (${p.lavapipeIcd})`,
      env: { VK_DRIVER_FILES: p.lavapipeIcd },
    };
  }
  if (software === p.swiftshaderIcd) {
    return {
      kind: 'swiftshader',
      why: `no GPU device node and no lavapipe in the project's cache; SwiftShader from chromium (${p.swiftshaderIcd}). For a 2-7x faster CPU adapter, ${SETUP_HINT}`,
      env: { VK_DRIVER_FILES: p.swiftshaderIcd },
    };
  }
  // Leave the loader to its defaults; creating the device will say that nothing was found.
  return { kind: 'hardware', why: `no GPU device node and no software driver; to get one, ${SETUP_HINT}`, env: {} };
}

/** A forced choice removes the other ways of naming drivers, so the loader sees only it. */
const ONLY_THIS = { VK_ICD_FILENAMES: null, VK_ADD_DRIVER_FILES: null };

function forcedChoice(forced: string, p: AdapterProbe): AdapterChoice {
  const why = `WEBSPARK_ADAPTER=${forced}`;
  switch (forced) {
    case 'lavapipe':
      if (!p.exists(p.lavapipeIcd)) throw new Error(`${why}, but lavapipe is not in the project's cache (${p.lavapipeIcd}): ${SETUP_HINT}`);
      return { kind: 'lavapipe', why, env: { VK_DRIVER_FILES: p.lavapipeIcd, ...ONLY_THIS } };
    case 'swiftshader':
      if (!p.exists(p.swiftshaderIcd)) throw new Error(`${why}, but SwiftShader is not installed (${p.swiftshaderIcd}): ${SETUP_HINT}`);
      return { kind: 'swiftshader', why, env: { VK_DRIVER_FILES: p.swiftshaderIcd, ...ONLY_THIS } };
    case 'hardware': {
      const node = p.gpuDeviceNode();
      if (!node) throw new Error(`${why}, but this machine has no GPU device node (/dev/nvidia0, /dev/dri/renderD*, /dev/dxg)`);
      // The system's drivers only: no software driver for the loader to fall back on.
      return { kind: 'hardware', why: `${why} (${node})`, env: { VK_DRIVER_FILES: null, ...ONLY_THIS } };
    }
    default:
      throw new Error(`${why} is not one of ${FORCEABLE.join(', ')} (or unset, to choose automatically)`);
  }
}

function gpuDeviceNode(): string | null {
  for (const path of ['/dev/nvidia0', '/dev/dxg']) if (existsSync(path)) return path;
  try {
    const render = readdirSync('/dev/dri').find((n) => n.startsWith('renderD'));
    return render ? `/dev/dri/${render}` : null;
  } catch {
    return null;
  }
}
