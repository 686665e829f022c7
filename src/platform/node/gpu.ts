/**
 * A Gpu for Node, on Dawn (the `webgpu` package). On a machine without a GPU, Vulkan has no
 * hardware driver; Debian's chromium package ships SwiftShader's Vulkan driver. Where the
 * machine has GPU device nodes we add SwiftShader to the loader's search (VK_ADD_DRIVER_FILES
 * keeps the hardware drivers, and the hardware adapter wins); where it has none we point the
 * loader at SwiftShader alone, which also keeps Mesa's CPU driver (rejected by Dawn) quiet.
 * Nothing for the user to set; an explicit VK_ICD_FILENAMES / VK_DRIVER_FILES is respected.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Gpu, type GpuOptions } from '../../gpu/gpu.ts';
import { snapshotShaders } from './shader-snapshot.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// WEBSPARK_SHADERS overrides the folder for bundled builds of the CLI (the device benchmark).
const shaderDir = process.env.WEBSPARK_SHADERS
  ? `${process.env.WEBSPARK_SHADERS.replace(/\/$/, '')}/`
  : fileURLToPath(new URL('../../../shaders/', import.meta.url));

// Read when this module loads, with the rest of the code: a checkout changing under a running
// process must not pair old code with new shaders (shader-snapshot.ts, issue 9).
const shaders = snapshotShaders(shaderDir);

export function loadShaderFile(name: string): string {
  return shaders(name);
}

let dawn: GPU | null = null;

function hasGpuDeviceNodes(): boolean {
  if (existsSync('/dev/nvidia0') || existsSync('/dev/dxg')) return true;
  try {
    return readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

async function nodeGpu(): Promise<GPU> {
  if (dawn) return dawn;
  const env = process.env;
  const chosen = env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES;
  if (!chosen && !env.VK_ADD_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
    if (hasGpuDeviceNodes()) env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
    else env.VK_DRIVER_FILES = SWIFTSHADER_ICD;
  }
  // Mesa's drivers print noise about XDG_RUNTIME_DIR when it is unset (headless servers).
  env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  dawn = webgpu.create([]);
  return dawn;
}

/** Creates a Gpu in Node. Throws with install advice when no adapter can be found. */
export async function createNodeGpu(options: GpuOptions = {}): Promise<Gpu> {
  const gpu = await nodeGpu();
  try {
    return await Gpu.create(gpu, loadShaderFile, options);
  } catch (err) {
    if (!existsSync(SWIFTSHADER_ICD)) {
      throw new Error(
        `${(err as Error).message}\nNo Vulkan driver was found. Without a GPU, install SwiftShader with ` +
          '`apt-get install chromium` (Debian), or run `bash tools/setup-test-env.sh`.',
      );
    }
    throw err;
  }
}
