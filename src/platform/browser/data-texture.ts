/**
 * The browser's fast path from decoded crops to the model's input: each ImageBitmap goes
 * straight into a layer of an rgba8unorm 2d-array texture (`queue.copyExternalImageToTexture`,
 * no getImageData readback, no staging copy), and one compute pass (shaders/augment-texture.wgsl)
 * flips and normalises the batch into the same dense [B*H*W, 3] feature map, bit for bit, that
 * flipNormalize makes from bytes (test/data/browser-texture.test.ts checks this).
 *
 * Ordering: copyExternalImageToTexture runs on the queue at once, while the Gpu records other
 * work into an encoder it submits later. So the Gpu's pending work is flushed first (the previous
 * batch's pass may still read the texture), and this pass is submitted on its own right after its
 * copies; the queue keeps the order copy -> pass -> whatever the caller records next.
 */
import type { Gpu } from '../../gpu/gpu.ts';
import { packUniforms, parseUniformLayout, type UniformLayout } from '../../gpu/wgsl-uniforms.ts';
import type { Context } from '../../tensor/context.ts';
import { SiteLayout } from '../../tensor/layout.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { loadBundledShader } from './gpu.ts';

const WG = 256;
const U = { UNIFORM: 0x40, STORAGE: 0x80, COPY_DST: 0x08 } as const;
const T = { COPY_DST: 0x02, TEXTURE_BINDING: 0x04, RENDER_ATTACHMENT: 0x10 } as const;

/** Per-device state: the pipeline and a texture, flag and params buffer reused batch to batch. */
class TextureUploader {
  private pipeline: GPUComputePipeline;
  private layout: GPUBindGroupLayout;
  private texture: GPUTexture | null = null;
  private flips: GPUBuffer | null = null;
  private params: GPUBuffer[] = [];
  private uniform: UniformLayout;

  constructor(private gpu: Gpu) {
    const device = gpu.device;
    const code = loadBundledShader('augment-texture');
    this.uniform = parseUniformLayout(code)!;
    this.layout = device.createBindGroupLayout({
      label: 'augment-texture',
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'float', viewDimension: '2d-array' } },
        { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
        { binding: 3, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ],
    });
    this.pipeline = device.createComputePipeline({
      label: 'augment-texture:flip_normalize_texture',
      layout: device.createPipelineLayout({ bindGroupLayouts: [this.layout] }),
      compute: { module: device.createShaderModule({ code, label: 'augment-texture' }), entryPoint: 'flip_normalize_texture' },
    });
  }

  private textureFor(size: number, layers: number): GPUTexture {
    const t = this.texture;
    if (t && t.width === size && t.depthOrArrayLayers >= layers) return t;
    t?.destroy();
    this.texture = this.gpu.device.createTexture({
      label: 'augment-images',
      size: [size, size, layers],
      format: 'rgba8unorm',
      usage: T.COPY_DST | T.TEXTURE_BINDING | T.RENDER_ATTACHMENT,
    });
    return this.texture;
  }

  private flagBuffer(count: number): GPUBuffer {
    const bytes = Math.max(16, count * 4);
    if (!this.flips || this.flips.size < bytes) {
      this.flips?.destroy();
      this.flips = this.gpu.device.createBuffer({ label: 'augment-flips', size: bytes, usage: U.STORAGE | U.COPY_DST });
    }
    return this.flips;
  }

  private paramBuffer(chunk: number): GPUBuffer {
    while (this.params.length <= chunk) {
      this.params.push(this.gpu.device.createBuffer({ label: 'augment-texture-params', size: this.uniform.size, usage: U.UNIFORM | U.COPY_DST }));
    }
    return this.params[chunk]!;
  }

  toTensor(ctx: Context, bitmaps: readonly ImageBitmap[], flips: Uint8Array, size: number): Tensor {
    const batch = bitmaps.length;
    if (flips.length !== batch) throw new Error(`bitmapsToTensor: ${flips.length} flip flags for a batch of ${batch}`);
    for (const [i, b] of bitmaps.entries()) {
      if (b.width !== size || b.height !== size) {
        throw new Error(`bitmapsToTensor: image ${i} is ${b.width}x${b.height}, expected ${size}x${size} (was it closed?)`);
      }
    }
    const gpu = this.gpu;
    const device = gpu.device;
    const y = ctx.empty([batch * size * size, 3], SiteLayout.dense(batch, size, size));
    gpu.flush();
    const flagBuf = this.flagBuffer(batch);
    device.queue.writeBuffer(flagBuf, 0, Uint32Array.from(flips));
    const maxLayers = device.limits.maxTextureArrayLayers;
    const texture = this.textureFor(size, Math.min(batch, maxLayers));
    const view = texture.createView({ dimension: '2d-array' });
    for (let base = 0, chunk = 0; base < batch; base += maxLayers, chunk++) {
      const layers = Math.min(maxLayers, batch - base);
      for (let l = 0; l < layers; l++) {
        device.queue.copyExternalImageToTexture({ source: bitmaps[base + l]! }, { texture, origin: [0, 0, l] }, [size, size, 1]);
      }
      const p = this.paramBuffer(chunk);
      device.queue.writeBuffer(p, 0, packUniforms(this.uniform, { layers, height: size, width: size, base }, 'augment-texture:flip_normalize_texture'));
      const bindGroup = device.createBindGroup({
        layout: this.layout,
        entries: [
          { binding: 0, resource: { buffer: p } },
          { binding: 1, resource: view },
          { binding: 2, resource: { buffer: flagBuf } },
          { binding: 3, resource: { buffer: y.buffer } },
        ],
      });
      const encoder = device.createCommandEncoder({ label: 'augment-texture' });
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.pipeline);
      pass.setBindGroup(0, bindGroup);
      const [gx, gy] = gpu.grid(Math.ceil((layers * size * size) / WG));
      pass.dispatchWorkgroups(gx, gy);
      pass.end();
      device.queue.submit([encoder.finish()]);
      gpu.stats.submits++;
      gpu.stats.dispatches++;
      gpu.stats.workgroups += gx * gy;
    }
    return y;
  }
}

const uploaders = new WeakMap<Gpu, TextureUploader>();

/**
 * Flips (where `flips[b]` is 1) and normalises `bitmaps` (each size x size) into the dense
 * feature map, as flipNormalize does for bytes. The bitmaps are not closed: the caller may
 * upload a batch twice (the trainer's preview does).
 */
export function bitmapsToTensor(ctx: Context, bitmaps: readonly ImageBitmap[], flips: Uint8Array, size: number): Tensor {
  let u = uploaders.get(ctx.gpu);
  if (!u) {
    u = new TextureUploader(ctx.gpu);
    uploaders.set(ctx.gpu, u);
  }
  return u.toTensor(ctx, bitmaps, flips, size);
}
