// SparK's masked patch loss (official spark.py, lines 112-146), its backward, and the
// visualisation composite.
//
// Tensors (f32 but for rec and y, see Storage):
//   x     image, ImageNet-normalized, dense rows [B*H*W, 3]: element ((b*H + y)*W + xx)*3 + c
//   rec   decoder prediction, same shape and layout (in the patch-normalized space)
//   vis   [B*ph*pw] patch flags, 1.0 = visible (kept), 0.0 = masked; patch g = (b*ph + i)*pw + j
//   stats [B*ph*pw] vec4 per patch: (shift, mean of x - shift, std, 0), see below
//   err   [B*ph*pw] per patch: mean over its p*p*3 values of (rec - t)^2, 0 at visible patches
//   gy    [1] upstream gradient of the loss (read on the GPU, no CPU round trip)
//   y     output: the [1] loss, d rec, or one of the composite images
//
// Storage: rec is an activation (`act`: f32, or f16 under precision f16; src/gpu/pipelines.ts
// puts the aliases in front), read into f32; y is written as `act_out`: the activation type for
// d rec (loss_backward), f32 for the loss and the composites. Everything is computed in f32.
//
// Patch statistics (official): over all p*p*3 values of the patch jointly, mean and
// std = sqrt(unbiased var + 1e-6). The order in which a patch is flattened does not matter.
// Numerics: x - shift with shift = the patch's first value is exact for values within a
// factor of 2 of each other (Sterbenz), so a large per-patch offset does not eat the f32
// mantissa; the mean of the shifted values and then the centred sum of squares (two passes,
// not E[x^2] - E[x]^2) keep the variance accurate. t = ((x - shift) - mean_d) / std.
//
// Entry points and dispatch:
//   patch_forward   one workgroup of 256 per patch (B*ph*pw, 2-D split past the limit); the
//                   threads stride over the patch's p*p*3 values, three workgroup tree sums
//                   (mean, variance, squared error). WITH_ERROR = false skips the error.
//   loss_reduce     one workgroup of 256: strided sum of err, tree, times 1/(nMasked + 1e-8).
//   loss_backward   one thread per element of rec (B*H*W*3), 256 per workgroup.
//   compose         one thread per element; OUTPUT 0 = masked image, 1 = reconstruction
//                   (rec * std + mean with the true patch stats), 2 = composite.

struct Params {
  batch: u32,
  height: u32,   // H, image rows (sites)
  width: u32,    // W
  p: u32,        // patch side in sites
  ph: u32,       // patches per column, H / p
  pw: u32,       // patches per row, W / p
  count: u32,    // patches (reduce) or elements B*H*W*3 (backward, compose)
  scale: f32,    // reduce: 1/(nMasked + 1e-8); backward: 2 / (p*p*3) / (nMasked + 1e-8)
}

override WITH_ERROR: bool = true;
override OUTPUT: u32 = 0u;

const WG: u32 = 256u;
const EPS: f32 = 1e-6;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rec: array<act>;
@group(0) @binding(3) var<storage, read> vis: array<f32>;
@group(0) @binding(4) var<storage, read> gy: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> err: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<act_out>;

var<workgroup> red: array<f32, 256>;

// Tree sum of one value per thread; every thread gets the total. Call in uniform control flow.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // nobody overwrites red[0] before everyone has read it
  return total;
}

// Flat index in x / rec of value k of patch (b, i, j), values in (row, column, channel) order:
// each of the patch's p rows is p*3 contiguous floats.
fn patch_element(b: u32, i: u32, j: u32, k: u32) -> u32 {
  let rowLen = params.p * 3u;
  let py = k / rowLen;
  let r = k - py * rowLen;
  return ((b * params.height + i * params.p + py) * params.width + j * params.p) * 3u + r;
}

@compute @workgroup_size(256)
fn patch_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid3: vec3<u32>) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= params.batch * params.ph * params.pw) { return; } // uniform per workgroup
  let lid = lid3.x;
  let j = g % params.pw;
  let bi = g / params.pw;
  let i = bi % params.ph;
  let b = bi / params.ph;
  let n = params.p * params.p * 3u;
  let shift = x[patch_element(b, i, j, 0u)];

  var acc = 0.0;
  for (var k = lid; k < n; k += WG) { acc += x[patch_element(b, i, j, k)] - shift; }
  let mean_d = workgroup_sum(acc, lid) / f32(n);

  acc = 0.0;
  for (var k = lid; k < n; k += WG) {
    let d = (x[patch_element(b, i, j, k)] - shift) - mean_d;
    acc += d * d;
  }
  let sd = sqrt(workgroup_sum(acc, lid) / f32(n - 1u) + EPS);

  if (WITH_ERROR) {
    acc = 0.0;
    if (vis[g] == 0.0) { // visible patches contribute nothing: skip their reads
      for (var k = lid; k < n; k += WG) {
        let e = patch_element(b, i, j, k);
        let d = f32(rec[e]) - ((x[e] - shift) - mean_d) / sd;
        acc += d * d;
      }
    }
    let total = workgroup_sum(acc, lid);
    if (lid == 0u) { err[g] = total / f32(n); }
  }
  if (lid == 0u) { stats[g] = vec4<f32>(shift, mean_d, sd, 0.0); }
}

@compute @workgroup_size(256)
fn loss_reduce(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var acc = 0.0;
  for (var k = lid; k < params.count; k += WG) { acc += err[k]; }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) { y[0] = act_out(total * params.scale); }
}

// Patch index of element e of a dense [B*H*W, 3] map.
fn patch_of(e: u32) -> u32 {
  let site = e / 3u;
  let xx = site % params.width;
  let by = site / params.width;
  let yy = by % params.height;
  let b = by / params.height;
  return (b * params.ph + yy / params.p) * params.pw + xx / params.p;
}

// d rec = 2 (rec - t) / (p*p*3) / (nMasked + 1e-8) * gy at masked patches, 0 at visible ones.
@compute @workgroup_size(256)
fn loss_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (e >= params.count) { return; }
  let g = patch_of(e);
  if (vis[g] != 0.0) {
    y[e] = act_out(0.0);
    return;
  }
  let s = stats[g];
  let t = ((x[e] - s.x) - s.y) / s.z;
  y[e] = act_out((f32(rec[e]) - t) * params.scale * gy[0]);
}

@compute @workgroup_size(256)
fn compose(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (e >= params.count) { return; }
  let g = patch_of(e);
  let visible = vis[g] != 0.0;
  if (OUTPUT == 0u) {
    y[e] = act_out(select(0.0, x[e], visible));
    return;
  }
  let s = stats[g];
  let r = f32(rec[e]) * s.z + (s.x + s.y);
  if (OUTPUT == 1u) {
    y[e] = act_out(r);
  } else {
    y[e] = act_out(select(r, x[e], visible));
  }
}
