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
// Entry points (same output, bit for bit; src/ops/augment.ts picks one):
//   flip_normalize:  any width. ceil(B*H*W / 256) workgroups of 256 (split over x and y past
//                    the per-dimension limit); each thread makes one output row (one pixel).
//   flip_normalize4: width % 4 == 0 (224, 192, 96...). ceil(B*H*W/4 / 256) workgroups; each
//                    thread makes four neighbouring pixels of one image row: whole-word loads
//                    (4 words of RGBA or 3 of RGB), three vec4 stores into y4 (the same buffer
//                    as y, seen as vec4s). On SwiftShader (WebGPU on the CPU) this is ~4x
//                    cheaper than one thread per pixel, which was most of the browser pipeline's
//                    non-decode time (docs/benchmarks.md, data section).

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
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;

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

fn rgb_of(w: u32) -> vec3<f32> {
  return vec3<f32>(f32(w & 0xffu), f32((w >> 8u) & 0xffu), f32((w >> 16u) & 0xffu));
}

// The same f32 expression as flip_normalize, so both entries give the same bits.
fn normalized(rgb: vec3<f32>) -> vec3<f32> {
  return (rgb / 255.0 - MEAN) / STD;
}

// Quads (runs of four pixels) each thread of flip_normalize4 makes, along one image row.
override QUADS_PER_THREAD: u32 = 1u;

@compute @workgroup_size(256)
fn flip_normalize4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = (wid.x + wid.y * nwg.x) * WG + lid.x;
  let quads = params.width / 4u;
  let runs = (quads + QUADS_PER_THREAD - 1u) / QUADS_PER_THREAD;
  let per_image = params.height * runs;
  if (t >= params.batch * per_image) { return; }
  let b = t / per_image;
  let rem = t - b * per_image;
  let yy = rem / runs;
  let q0 = (rem - yy * runs) * QUADS_PER_THREAD;
  let flip = flips[b] != 0u;
  let line = (b * params.height + yy) * params.width;
  for (var q = q0; q < min(q0 + QUADS_PER_THREAD, quads); q++) {
    let x0 = q * 4u;
    // The four source pixels, left to right; mirrored, output x0..x0+3 reads W-1-x0..W-4-x0.
    var s0 = x0;
    if (flip) { s0 = params.width - 4u - x0; }
    let src = line + s0;  // a multiple of 4 pixels
    var p0: vec3<f32>;
    var p1: vec3<f32>;
    var p2: vec3<f32>;
    var p3: vec3<f32>;
    if (params.channels == 4u) {
      p0 = rgb_of(pixels[src]);
      p1 = rgb_of(pixels[src + 1u]);
      p2 = rgb_of(pixels[src + 2u]);
      p3 = rgb_of(pixels[src + 3u]);
    } else {
      // 4 RGB pixels = 12 bytes = words w..w+2: r0 g0 b0 r1 | g1 b1 r2 g2 | b2 r3 g3 b3.
      let w = src / 4u * 3u;
      let a = pixels[w];
      let c = pixels[w + 1u];
      let d = pixels[w + 2u];
      p0 = rgb_of(a);
      p1 = rgb_of((a >> 24u) | (c << 8u));
      p2 = rgb_of((c >> 16u) | (d << 16u));
      p3 = rgb_of(d >> 8u);
    }
    if (flip) {
      let t0 = p0;
      let t1 = p1;
      p0 = p3;
      p1 = p2;
      p2 = t1;
      p3 = t0;
    }
    let v0 = normalized(p0);
    let v1 = normalized(p1);
    let v2 = normalized(p2);
    let v3 = normalized(p3);
    // Output rows r..r+3 are floats 3r..3r+11: three whole vec4s (r % 4 == 0).
    let o = (line + x0) / 4u * 3u;
    y4[o] = vec4<f32>(v0, v1.x);
    y4[o + 1u] = vec4<f32>(v1.yz, v2.xy);
    y4[o + 2u] = vec4<f32>(v2.z, v3);
  }
}
