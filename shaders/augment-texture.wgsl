// Data augmentation from a texture: the browser's fast path. Decoded crops (ImageBitmaps) are
// copied into the layers of an rgba8unorm 2d-array texture with copyExternalImageToTexture (no
// CPU readback), and this pass flips and normalises them into the same dense feature map that
// augment.wgsl's flip_normalize makes from bytes.
//
// Input  images: layer l = image base + l of the batch, width x height texels, top row first.
//        flips: B u32 flags for the whole batch, 1 = mirror the image horizontally.
// Output y: [B*H*W, 3] f32, channels last, row = (b*H + y)*W + x (as augment.wgsl).
//
// Bit-identical to augment.wgsl: textureLoad of rgba8unorm gives byte/255 computed however the
// driver likes, so the byte is recovered exactly (round(v*255); the error is far below 0.5)
// and the same f32 expression as the buffer path is applied to it.
//
// Dispatch: ceil(layers*H*W / 256) workgroups of 256 (split over x and y past the per-dimension
// limit); each thread makes one output row (one pixel's three channels).

struct Params {
  layers: u32,  // images in this pass (texture layers used)
  height: u32,
  width: u32,
  base: u32,    // index in the batch of layer 0
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var images: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read> flips: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
const MEAN = vec3<f32>(0.485, 0.456, 0.406);
const STD = vec3<f32>(0.229, 0.224, 0.225);

@compute @workgroup_size(256)
fn flip_normalize_texture(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  let hw = params.height * params.width;
  if (i >= params.layers * hw) { return; }
  let l = i / hw;
  let yy = (i - l * hw) / params.width;
  let x = i - l * hw - yy * params.width;
  let b = params.base + l;
  var xs = x;
  if (flips[b] != 0u) { xs = params.width - 1u - x; }
  let texel = textureLoad(images, vec2<u32>(xs, yy), l, 0);
  let rgb = round(texel.rgb * 255.0);
  let v = (rgb / 255.0 - MEAN) / STD;
  let row = b * hw + yy * params.width + x;
  y[row * 3u] = v.x;
  y[row * 3u + 1u] = v.y;
  y[row * 3u + 2u] = v.z;
}
