/**
 * Compute pipelines and what a launch binds to them. A pipeline's bind group layout is
 * explicit and lists every binding its WGSL file declares (wgsl-bindings.ts), so all entry
 * points of one file share a layout and bind by name. What each entry point's code names
 * (wgsl-source.ts) decides which bindings a launch must give; the file's uniform struct
 * (wgsl-uniforms.ts) is packed from the launch's named values.
 */
import type { GpuStats } from './command-stream.ts';
import { BufferUsage, ShaderStage } from './constants.ts';
import type { ShaderLoader } from './device.ts';
import type { RecordedEntry } from './recording.ts';
import { parseBindings, type BindingDecl } from './wgsl-bindings.ts';
import { referencedBy } from './wgsl-source.ts';
import { packUniforms, parseUniformLayout, type UniformLayout, type UniformValues } from './wgsl-uniforms.ts';

export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/**
 * A launch's storage buffers by WGSL name: a buffer, or null where this launch does not read
 * the binding (the code that does is switched off by an override constant or a uniform flag).
 */
export type LaunchBuffers = Readonly<Record<string, BufferBinding | null | undefined>>;

export interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly bindings: ReadonlyMap<string, BindingDecl>;
  /** The storage bindings the entry point's code names (its body and the functions it calls). */
  readonly referenced: ReadonlySet<string>;
  /** The file's uniform struct, packed from each launch's named values; null if it has none. */
  readonly uniform: UniformLayout | null;
  readonly layout: GPUBindGroupLayout;
  /** `shader:entry:constants`, the cache key; errors name it. */
  readonly label: string;
}

/**
 * The storage types of a pipeline's activation bindings: the shader is compiled with
 * `alias act = <act>; alias act4 = vec4<act>; alias act_out = <out>;` in front of its text
 * (and `enable f16;` when either is f16). Bindings that hold activations or their gradients are
 * declared `array<act>` / `array<act4>`; a result binding that one entry point writes as an
 * activation and another as f32 (conv2d's `dst`: an activation in the forward and input-gradient
 * passes, a weight gradient in the weight pass) is `array<act_out>`; weights, statistics and
 * index tables keep their own types. One shader file serves both precisions with no copy;
 * kernels load `f32(x[i])`, accumulate in f32 and store `act(v)`. A storage type, not a tuning
 * knob: tuning stays with `override` constants.
 */
export interface StorageVariant {
  /** Activation storage (default f32). */
  act?: 'f32' | 'f16';
  /** The `act_out` result storage (default: `act`). */
  out?: 'f32' | 'f16';
}

/** The text put in front of a shader for `variant` (WGSL wants `enable` before anything else). */
export function variantPrelude(variant: StorageVariant): string {
  const act = variant.act ?? 'f32';
  const out = variant.out ?? act;
  const enable = act === 'f16' || out === 'f16' ? 'enable f16;\n' : '';
  return `${enable}alias act = ${act};\nalias act4 = vec4<${act}>;\nalias act_out = ${out};\n`;
}

/** The part of a pipeline's cache key its variant adds ('' for all-f32, today's keys). */
function variantKey(variant: StorageVariant): string {
  const act = variant.act ?? 'f32';
  const out = variant.out ?? act;
  return `${act === 'f32' ? '' : `:act=${act}`}${out === act ? '' : `:out=${out}`}`;
}

export class PipelineCache {
  private pipelines = new Map<string, Pipeline>();
  private placeholders = new Map<number, GPUBuffer>();

  constructor(
    private device: GPUDevice,
    private loadShader: ShaderLoader,
    private stats: GpuStats,
  ) {}

  /**
   * The pipeline for `entry` in `shaders/<shader>.wgsl`, specialised by `override` constants,
   * its activations stored as `variant.act` (default f32).
   */
  get(shader: string, entry: string, constants: Record<string, number | boolean>, variant: StorageVariant = {}): Pipeline {
    const keys = Object.keys(constants).sort();
    const key = `${shader}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(',')}${variantKey(variant)}`;
    const cached = this.pipelines.get(key);
    if (cached) return cached;
    if (/f16/.test(variantKey(variant)) && !this.device.features.has('shader-f16')) {
      throw new Error(`${key}: f16 storage needs the WebGPU feature 'shader-f16', which this device lacks (use precision f32)`);
    }
    const code = variantPrelude(variant) + this.loadShader(shader);
    const bindings = parseBindings(code);
    const uniform = parseUniformLayout(code);
    const referenced = referencedBy(code, entry, bindings.keys());
    const layout = this.device.createBindGroupLayout({
      label: shader,
      entries: [...bindings.values()].map((b) => ({
        binding: b.binding,
        visibility: ShaderStage.COMPUTE,
        buffer: { type: b.type },
      })),
    });
    const module = this.device.createShaderModule({ code, label: shader });
    const numeric: Record<string, number> = {};
    for (const k of keys) numeric[k] = Number(constants[k]);
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants: numeric },
    });
    const made: Pipeline = { pipeline, bindings, referenced, uniform, layout, label: key };
    this.pipelines.set(key, made);
    this.stats.pipelines++;
    return made;
  }

  /**
   * The bind group entries of one launch of `p`, checked before anything is allocated: every
   * binding the entry point names is given (a buffer or null), no name is unknown, and the
   * params pack into the uniform struct. `uniform` places the packed params (the arena).
   */
  entries(
    p: Pipeline,
    buffers: LaunchBuffers,
    params: UniformValues | null,
    uniform: (bytes: Uint8Array) => GPUBufferBinding,
  ): RecordedEntry[] {
    for (const name of Object.keys(buffers)) {
      if (!p.bindings.has(name)) throw new Error(`${p.label}: no binding named '${name}' in the shader`);
    }
    if (params && !p.uniform) throw new Error(`${p.label}: params were given but the shader declares no var<uniform>`);
    const packed = p.uniform && params ? packUniforms(p.uniform, params, p.label) : null;
    if (p.uniform && !packed) throw new Error(`${p.label}: the shader declares uniform '${p.uniform.variable}' but no params were given`);
    for (const [name, decl] of p.bindings) {
      if (decl.type !== 'uniform' && buffers[name] === undefined && p.referenced.has(name)) {
        throw new Error(
          `${p.label}: the entry point uses binding '${name}' but no buffer was given ` +
            '(pass null where this launch does not read it: code an override constant or a flag switches off)',
        );
      }
    }
    // Nothing can throw past here: the uniform's arena slot is taken only for a launch that happens.
    return [...p.bindings].map(([name, decl]): RecordedEntry => {
      if (decl.type === 'uniform') return { binding: decl.binding, ...uniform(packed!) };
      const given = buffers[name];
      if (given === undefined || given === null) return { binding: decl.binding, buffer: this.placeholder(decl.binding) };
      return isBinding(given) ? { binding: decl.binding, ...given } : { binding: decl.binding, buffer: given };
    });
  }

  /** A placeholder for a storage binding a launch does not read (one per slot). */
  private placeholder(binding: number): GPUBuffer {
    let b = this.placeholders.get(binding);
    if (!b) {
      b = this.device.createBuffer({ size: 256, usage: BufferUsage.STORAGE, label: `unused-${binding}` });
      this.placeholders.set(binding, b);
    }
    return b;
  }
}

/** A `{buffer, offset, size}` binding rather than a whole buffer (GPUBuffer has no `buffer`). */
function isBinding(b: BufferBinding): b is { buffer: GPUBuffer; offset?: number; size?: number } {
  return 'buffer' in b;
}
