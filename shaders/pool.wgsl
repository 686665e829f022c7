// Max pooling (ResNet's 3x3 stride-2 pad-1 stem pool), dense or sparse, with a recorded argmax.
//
// Shapes: x [in_rows, C] on an input layout B x in_h x in_w; y [out_rows, C] on an output
// layout B x out_h x out_w, out = (in + 2*pad - K) / stride + 1 (floor, PyTorch's ceil_mode
// off). argmax [out_rows, C] (i32).
//
// Numerics follow the official SparK simulation: a dense max pool of the zero-filled map,
// then masked. So an in-image neighbour at an inactive site counts as the value 0; out-of-image
// padding is ignored (-inf). Taps are scanned in raster order (ky, then kx) and only a strictly
// larger value replaces the best, so the FIRST maximum wins, as in PyTorch; its gradient goes
// there. argmax holds that input's ROW, or -1 when the winner is an inactive site (its gradient
// is dropped, as the official masking drops it).
//
// Sparse layouts (SPARSE = true): `sites[row]` is a walked row's grid index, `row_of[grid]` the
// row at a site of the other layout, -1 if inactive. Dense layouts compute indices directly.
//
// Each thread handles 4 consecutive channels of one row as vec4 (lanes past C are guarded),
// sharing the site decode and the neighbour lookups.
//
// Entry points (bindings are shared; roles per pass):
//   forward   walks output rows: src = x, dst = y, argmax written, sites = output sites,
//             row_of = input rows. Threads: out_rows * G, G = ceil(C/4).
//   backward  walks input rows (a gather, so no atomics and no zero-fill): each input row looks
//             at the <= ceil(K/stride)^2 outputs whose window holds it and sums gy where that
//             output's argmax is this row. src = gy, dst = dx, argmax read, sites = input sites,
//             row_of = output rows. Threads: in_rows * G.
//
// Dispatch: ceil(threads / 64) workgroups of 64 (2-D split past the per-dimension limit).

// Storage: src and dst (x, y, dy, dx) are activations or their gradients (`act`: f32, or f16
// under precision f16; src/gpu/pipelines.ts puts the aliases in front), loaded into f32 and
// compared and summed in f32; argmax and the site tables are i32/u32.

struct Params {
  rows: u32,   // rows walked: out_rows (forward) or in_rows (backward)
  C: u32,
  K: u32,
  stride: u32,
  pad: u32,
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

override SPARSE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<act>;
@group(0) @binding(2) var<storage, read_write> dst: array<act>;
@group(0) @binding(3) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(4) var<storage, read> sites: array<u32>;
@group(0) @binding(5) var<storage, read> row_of: array<i32>;

const WG: u32 = 64u;

// #include "window-quads.wgsl"

fn load_argmax(r: u32, c0: u32) -> vec4<i32> {
  let i = quad_cells(r, c0);
  return select(vec4<i32>(-1), vec4<i32>(argmax[i.x], argmax[i.y], argmax[i.z], argmax[i.w]), quad_mask(c0));
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let at = quad(wid, nwg, lid.x);
  if (!at.valid) { return; }
  let plane = params.out_h * params.out_w;
  let b = at.site / plane;
  let y0 = i32(((at.site % plane) / params.out_w) * params.stride) - i32(params.pad);
  let x0 = i32((at.site % params.out_w) * params.stride) - i32(params.pad);
  var best = vec4<f32>(0.0);
  var arg = vec4<i32>(-1);
  var seen = false;  // the first in-image tap is taken as is (the -inf start)
  for (var ky = 0u; ky < params.K; ky++) {
    let iy = y0 + i32(ky);
    if (iy < 0 || iy >= i32(params.in_h)) { continue; }
    let line = (b * params.in_h + u32(iy)) * params.in_w;
    for (var kx = 0u; kx < params.K; kx++) {
      let ix = x0 + i32(kx);
      if (ix < 0 || ix >= i32(params.in_w)) { continue; }
      let r = lookup(line + u32(ix));
      var v = vec4<f32>(0.0);  // an inactive site holds 0 in the zero-filled map
      if (r >= 0) { v = load_src(u32(r), at.c0); }
      let better = (v > best) | vec4<bool>(!seen);
      best = select(best, v, better);
      arg = select(arg, vec4<i32>(r), better);
      seen = true;
    }
  }
  let base = at.row * params.C + at.c0;
  for (var k = 0u; k < 4u; k++) {
    if (at.c0 + k < params.C) {
      dst[base + k] = act(best[k]);
      argmax[base + k] = arg[k];
    }
  }
}

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let at = quad(wid, nwg, lid.x);
  if (!at.valid) { return; }
  let plane = params.in_h * params.in_w;
  let b = at.site / plane;
  let iy = i32((at.site % plane) / params.in_w);
  let ix = i32(at.site % params.in_w);
  let s = i32(params.stride);
  let k = i32(params.K);
  let p = i32(params.pad);
  // Outputs o with o*s - p <= i <= o*s - p + K - 1, i.e. ceil((i + p - K + 1)/s) <= o <= floor((i + p)/s).
  let oy_lo = max(0, (iy + p - k + 1 + s - 1) / s);  // numerator may be < 0: clamped by max
  let oy_hi = min(i32(params.out_h) - 1, (iy + p) / s);
  let ox_lo = max(0, (ix + p - k + 1 + s - 1) / s);
  let ox_hi = min(i32(params.out_w) - 1, (ix + p) / s);
  let me = vec4<i32>(i32(at.row));
  var acc = vec4<f32>(0.0);
  for (var oy = oy_lo; oy <= oy_hi; oy++) {
    let line = (b * params.out_h + u32(oy)) * params.out_w;
    for (var ox = ox_lo; ox <= ox_hi; ox++) {
      let r = lookup(line + u32(ox));
      if (r < 0) { continue; }
      let mine = load_argmax(u32(r), at.c0) == me;
      acc += select(vec4<f32>(0.0), load_src(u32(r), at.c0), mine);
    }
  }
  let base = at.row * params.C + at.c0;
  for (var q = 0u; q < 4u; q++) {
    if (at.c0 + q < params.C) { dst[base + q] = act(acc[q]); }
  }
}
