// Depthwise 2-D convolution (ConvNeXt's 7x7 dwconv; groups = C), dense or submanifold sparse.
//
// Shapes: x [in_rows, C] on an input layout B x in_h x in_w; y [out_rows, C] on an output
// layout B x out_h x out_w; w [C, 1, K, K] (PyTorch OIHW with groups = C, so w[c*K*K + tap],
// tap = ky*K + kx); bias [C]. out = (in + 2*pad - K) / stride + 1.
//   y[o, c] = bias[c] + sum_{ky,kx} w[c, ky, kx] * x(b, oy*stride - pad + ky, ox*stride - pad + kx, c)
// Out-of-image taps are padding (0). Sparse layouts (SPARSE = true) store rows only at active
// sites: `sites[row]` is a row's grid index and `row_of[grid]` the row at a site or -1, which
// reads as 0 (submanifold: equal to dense conv on the zero-filled map, then keeping the active
// output rows, the official SparK simulation). Dense layouts compute the same indices directly.
// Both layouts of one call are dense or both are sparse.
//
// Each thread computes 4 consecutive channels (c0 = 4g .. 4g+3) of one row it walks, as a vec4;
// when C is not a multiple of 4 the last group's loads and stores are guarded per lane. The
// 4 channels share the row's site decode and neighbour lookups, which dominate the cost.
//
// Entry points (bindings are shared; their role per pass is listed here):
//   forward          walks output rows. src = x, dst = y, sites = output sites,
//                    row_of = input rows. Threads: out_rows * G (G = ceil(C/4)).
//   backward_input   walks input rows: dx = the same gather over the flipped kernel, reading
//                    gy at the outputs whose window covers this input (oy*stride = iy + pad - ky,
//                    so with stride > 1 only taps that divide evenly contribute).
//                    src = gy, dst = dx, sites = input sites, row_of = output rows.
//                    Threads: in_rows * G.
//   backward_weight  first pass of dw and db: each (chunk of output rows, channel group, tap)
//                    sums gy * x over the chunk's rows; tap index K*K stands for the bias (sum
//                    of gy). Writes partial[chunk, width] with width = C*K*K + C: dw in OIHW
//                    order first, then db, so the chunks sum (chunks.wgsl) straight into both.
//                    src = x, gy = gy, dst = partial, sites = output sites, row_of = input rows.
//                    Dispatch: x = ceil(G*(K*K+1) / 64), y = chunks. Every thread of a workgroup
//                    walks the same rows, so gy and x rows are shared through the cache.
//
// Dispatch of the row-walking passes: ceil(threads / 64) workgroups of 64 (2-D split past the
// per-dimension limit); thread index = (wid.x + wid.y * nwg.x) * 64 + lid.x.

// Storage: src and gy hold activations or their gradients (`act`: f32, or f16 under precision
// f16; src/gpu/pipelines.ts puts the aliases in front); dst is written as `act_out`, the
// activation type in forward and backward_input, f32 in backward_weight (partial sums of the
// weight and bias gradients). w and bias are f32; loads convert to f32, sums run in f32.

struct Params {
  rows: u32,        // rows walked: out_rows (forward, backward_weight) or in_rows (backward_input)
  C: u32,
  K: u32,
  stride: u32,
  pad: u32,
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  chunk_rows: u32,  // backward_weight: rows per chunk
  _pad0: u32,
  _pad1: u32,
}

override SPARSE: bool = false;
override HAS_BIAS: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<act>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<act_out>;
@group(0) @binding(5) var<storage, read> sites: array<u32>;
@group(0) @binding(6) var<storage, read> row_of: array<i32>;
@group(0) @binding(7) var<storage, read> gy: array<act>;

const WG: u32 = 64u;

// #include "window-quads.wgsl"

fn groups() -> u32 {
  return (params.C + 3u) / 4u;
}

fn load_gy(r: u32, c0: u32) -> vec4<f32> {
  let i = quad_cells(r, c0);
  return select(vec4<f32>(0.0), vec4<f32>(f32(gy[i.x]), f32(gy[i.y]), f32(gy[i.z]), f32(gy[i.w])), quad_mask(c0));
}

// w[c, 0, ky, kx] for the four channels at tap = ky*K + kx.
fn load_w(c0: u32, tap: u32) -> vec4<f32> {
  let kk = params.K * params.K;
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (c0 + k < params.C) { v[k] = w[(c0 + k) * kk + tap]; }
  }
  return v;
}

fn load_bias(c0: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (c0 + k < params.C) { v[k] = bias[c0 + k]; }
  }
  return v;
}

fn store_dst(r: u32, c0: u32, v: vec4<f32>) {
  let base = r * params.C + c0;
  for (var k = 0u; k < 4u; k++) {
    if (c0 + k < params.C) { dst[base + k] = act_out(v[k]); }
  }
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let at = quad(wid, nwg, lid.x);
  if (!at.valid) { return; }
  let plane = params.out_h * params.out_w;
  let b = at.site / plane;
  let oy = (at.site % plane) / params.out_w;
  let ox = at.site % params.out_w;
  var acc = vec4<f32>(0.0);
  if (HAS_BIAS) { acc = load_bias(at.c0); }
  let y0 = i32(oy * params.stride) - i32(params.pad);
  let x0 = i32(ox * params.stride) - i32(params.pad);
  for (var ky = 0u; ky < params.K; ky++) {
    let iy = y0 + i32(ky);
    if (iy < 0 || iy >= i32(params.in_h)) { continue; }
    let line = (b * params.in_h + u32(iy)) * params.in_w;
    for (var kx = 0u; kx < params.K; kx++) {
      let ix = x0 + i32(kx);
      if (ix < 0 || ix >= i32(params.in_w)) { continue; }
      let r = lookup(line + u32(ix));
      if (r < 0) { continue; }
      acc += load_src(u32(r), at.c0) * load_w(at.c0, ky * params.K + kx);
    }
  }
  store_dst(at.row, at.c0, acc);
}

@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let at = quad(wid, nwg, lid.x);
  if (!at.valid) { return; }
  let plane = params.in_h * params.in_w;
  let b = at.site / plane;
  let iy = i32((at.site % plane) / params.in_w);
  let ix = i32(at.site % params.in_w);
  let s = i32(params.stride);
  var acc = vec4<f32>(0.0);
  for (var ky = 0u; ky < params.K; ky++) {
    // The output oy whose tap ky lands on iy: oy*stride - pad + ky = iy.
    let ny = iy + i32(params.pad) - i32(ky);
    if (ny < 0 || ny % s != 0) { continue; }
    let oy = u32(ny / s);
    if (oy >= params.out_h) { continue; }
    let line = (b * params.out_h + oy) * params.out_w;
    for (var kx = 0u; kx < params.K; kx++) {
      let nx = ix + i32(params.pad) - i32(kx);
      if (nx < 0 || nx % s != 0) { continue; }
      let ox = u32(nx / s);
      if (ox >= params.out_w) { continue; }
      let r = lookup(line + ox);
      if (r < 0) { continue; }
      acc += load_src(u32(r), at.c0) * load_w(at.c0, ky * params.K + kx);
    }
  }
  store_dst(at.row, at.c0, acc);
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let G = groups();
  let kk = params.K * params.K;
  let i = wid.x * WG + lid.x;
  if (i >= G * (kk + 1u)) { return; }
  let c0 = (i % G) * 4u;
  let tap = i / G;
  let chunk = wid.y;
  let first = chunk * params.chunk_rows;
  let last = min(first + params.chunk_rows, params.rows);
  let ky = tap / params.K;
  let kx = tap % params.K;
  let plane = params.out_h * params.out_w;
  var acc = vec4<f32>(0.0);
  for (var row = first; row < last; row++) {
    let g = load_gy(row, c0);
    if (tap == kk) {
      acc += g;
      continue;
    }
    let site = site_of(row);
    let b = site / plane;
    let oy = (site % plane) / params.out_w;
    let ox = site % params.out_w;
    let iy = i32(oy * params.stride + ky) - i32(params.pad);
    let ix = i32(ox * params.stride + kx) - i32(params.pad);
    if (iy < 0 || iy >= i32(params.in_h) || ix < 0 || ix >= i32(params.in_w)) { continue; }
    let r = lookup((b * params.in_h + u32(iy)) * params.in_w + u32(ix));
    if (r < 0) { continue; }
    acc += g * load_src(u32(r), c0);
  }
  let width = params.C * kk + params.C;
  let base = chunk * width;
  for (var k = 0u; k < 4u; k++) {
    let c = c0 + k;
    if (c >= params.C) { break; }
    if (tap == kk) {
      dst[base + params.C * kk + c] = act_out(acc[k]);
    } else {
      dst[base + c * kk + tap] = act_out(acc[k]);
    }
  }
}
