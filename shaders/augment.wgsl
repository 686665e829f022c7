// Data augmentation on the GPU: horizontal flip and ImageNet mean/std normalisation of a
// batch of decoded crops, into the dense feature map the model takes.
//
// Input  pixels: B x H x W x C bytes (C = 3 for RGB, 4 for RGBA whose alpha is ignored), rows
//        top to bottom, packed four bytes per u32, little-endian (byte i is bits 8*(i%4)..).
//        flips: B u32 flags, 1 = mirror the image horizontally.
// Output y: [B*H*W, 3] f32, channels last, dense SiteLayout rows: row = (b*H + y)*W + x,
//        y[row, c] = (pixels[b, y, x', c] / 255 - mean[c]) / std[c], x' = W-1-x if flipped.
//        This is torchvision's ToTensor + Normalize, in f32 like PyTorch.
//
// Dispatch: ceil(B*H*W / 256) workgroups of 256 (split over x and y past the per-dimension
// limit); each thread makes one output row (one pixel's three channels).

struct Params {
  batch: u32,
  height: u32,
  width: u32,
  channels: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> flips: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
const MEAN = vec3<f32>(0.485, 0.456, 0.406);
const STD = vec3<f32>(0.229, 0.224, 0.225);

fn byte_at(i: u32) -> f32 {
  return f32((pixels[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
}

@compute @workgroup_size(256)
fn flip_normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid.x;
  let hw = params.height * params.width;
  if (row >= params.batch * hw) { return; }
  let b = row / hw;
  let yy = (row - b * hw) / params.width;
  let x = row - b * hw - yy * params.width;
  var xs = x;
  if (flips[b] != 0u) { xs = params.width - 1u - x; }
  let src = ((b * params.height + yy) * params.width + xs) * params.channels;
  let rgb = vec3<f32>(byte_at(src), byte_at(src + 1u), byte_at(src + 2u));
  let v = (rgb / 255.0 - MEAN) / STD;
  y[row * 3u] = v.x;
  y[row * 3u + 1u] = v.y;
  y[row * 3u + 2u] = v.z;
}
