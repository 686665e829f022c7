// BatchNorm over the rows of a feature map (src/ops/norm.ts), forward and backward.
//
// x, y, dy, dx: [N, C] channels-last rows (dense: every site; sparse: the active sites only,
// so the statistics cover exactly the active sites of the whole batch, as SparK's
// SparseBatchNorm2d). gamma, beta: [C].
//
// Per-channel reductions over N rows are split over workgroups ("column reductions"):
//   a workgroup of 256 threads is TC channels x LANES = 256 / TC row lanes; it owns channel
//   tile `tile` (channels tile*TC ..) and chunk `chunk` (rows chunk*CH .. , CH = LANES *
//   per_thread). Each thread walks per_thread rows strided by LANES, then the LANES partial
//   results of each channel are merged by a tree in workgroup memory. Linear workgroup id
//   g = wid.x + wid.y * nwg.x, tile = g % tiles, chunk = g / tiles (2-D split past the limit).
//   The per-chunk results go to `part_out`, one plane per quantity:
//   part[(plane * chunks + chunk) * C + c]. The *_combine entry points apply the same
//   geometry to the partials themselves (their "rows" are the input chunks), until one chunk
//   is left. So no thread ever loops over all rows.
//
// Statistics use Welford per thread and Chan's parallel merge between threads and chunks
// (planes: count, mean, M2): stable when |mean| >> std, where sum / sum-of-squares is not.
//
// Entry points (forward):
//   stats_partial   x -> part_out (count, mean, M2), column geometry.
//   stats_combine   part_in -> part_out (count, mean, M2), column geometry.
//   finalize_train  one thread per channel: part_in (1 chunk) -> stats = [mean | invstd] (biased
//                   variance) and part_out = [mean | unbiased variance] for the running update.
//   finalize_eval   one thread per channel: part_in = [running_mean | running_var] -> stats.
//   running_update  one thread per channel: y[c] += momentum * (part_in[offset + c] - y[c]).
//   apply           one thread per element: y = (x - mean) * invstd * gamma + beta.
// Entry points (backward; stats as saved by the forward):
//   grad_partial    x, dy -> part_out (sum dy, sum dy * xhat), column geometry.
//   grad_combine    part_in -> part_out (the same two sums), column geometry.
//   dx_train        one thread per element, part_in = [sum dy | sum dy*xhat] over all rows:
//                   dx = gamma * invstd * (dy - sum_dy / N - xhat * sum_dy_xhat / N).
//   dx_eval         one thread per element: dx = dy * gamma * invstd (statistics are constants).
//
// Element-wise entry points use ceil(N*C / 256) workgroups, per-channel ones ceil(C / 256).
//
// Storage (norm-buffers.wgsl): x, dy, y as the activations (act), read into f32; statistics,
// partials and the sums in f32; the running update runs with every alias f32.

struct Params {
  n: u32,           // rows (or input chunks, for *_combine)
  c: u32,           // channels
  tiles: u32,       // channel tiles = ceil(C / TC)
  chunks: u32,      // chunks this dispatch writes (planes of part_out are this long)
  in_chunks: u32,   // planes of part_in are this long (*_combine, finalize_*, dx_train)
  per_thread: u32,  // rows each thread walks in the column geometry
  offset: u32,      // running_update: where the statistic starts in part_in
  _pad0: u32,
  eps: f32,
  momentum: f32,
  _pad1: u32,
  _pad2: u32,
}

// Channels per workgroup tile in the column geometry (a power of two dividing 256).
override TC: u32 = 64u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
// stats: [mean (C) | invstd (C)]
// #include "norm-buffers.wgsl"

// One slot per thread: (count, mean, M2) for statistics, (sum dy, sum dy*xhat, -) for grads.
var<workgroup> w: array<vec3<f32>, 256>;

// #include "column-geometry.wgsl"

// Chan et al.'s merge of two (count, mean, M2) summaries.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  if (b.x == 0.0) { return a; }
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

// Trees over the LANES = 256 / TC lanes of each channel of the tile (slot lane*TC + c);
// the result lands in lane 0. Called by every thread (barriers need uniform control flow).
fn tree_welford(lid: u32) {
  for (var s = WG / TC / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid / TC < s) { w[lid] = chan(w[lid], w[lid + s * TC]); }
  }
  workgroupBarrier();
}

fn tree_sums(lid: u32) {
  for (var s = WG / TC / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid / TC < s) { w[lid] = w[lid] + w[lid + s * TC]; }
  }
  workgroupBarrier();
}

fn out_index(plane: u32, col: Column) -> u32 {
  return (plane * params.chunks + col.chunk) * params.c + col.ch;
}

fn in_index(plane: u32, chunk: u32, ch: u32) -> u32 {
  return (plane * params.in_chunks + chunk) * params.c + ch;
}

fn write_partial(col: Column, lid: u32, planes: u32) {
  if (col.valid && col.lane == 0u) {
    for (var p = 0u; p < planes; p++) { part_out[out_index(p, col)] = w[lid][p]; }
  }
}

@compute @workgroup_size(256)
fn stats_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  // Welford: mean += d / n; M2 += d * (v - new mean).
  var acc = vec3<f32>(0.0);
  if (col.valid) {
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      let v = f32(x[r * params.c + col.ch]);
      let n = acc.x + 1.0;
      let d = v - acc.y;
      let mean = acc.y + d / n;
      acc = vec3<f32>(n, mean, acc.z + d * (v - mean));
    }
  }
  w[lid] = acc;
  tree_welford(lid);
  write_partial(col, lid, 3u);
}

@compute @workgroup_size(256)
fn stats_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  var acc = vec3<f32>(0.0);
  if (col.valid) {
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      let b = vec3<f32>(part_in[in_index(0u, r, col.ch)], part_in[in_index(1u, r, col.ch)],
                        part_in[in_index(2u, r, col.ch)]);
      acc = chan(acc, b);
    }
  }
  w[lid] = acc;
  tree_welford(lid);
  write_partial(col, lid, 3u);
}

@compute @workgroup_size(256)
fn finalize_train(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.c) { return; }
  let n = part_in[c];
  let mean = part_in[params.c + c];
  let m2 = part_in[2u * params.c + c];
  // Normalization uses the biased variance; the running update the unbiased one (N >= 2,
  // checked by the op).
  stats[c] = mean;
  stats[params.c + c] = 1.0 / sqrt(m2 / n + params.eps);
  part_out[c] = mean;
  part_out[params.c + c] = m2 / (n - 1.0);
}

@compute @workgroup_size(256)
fn finalize_eval(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.c) { return; }
  stats[c] = part_in[c];
  stats[params.c + c] = 1.0 / sqrt(part_in[params.c + c] + params.eps);
}

// running = (1 - momentum) * running + momentum * batch, written as one fused step.
@compute @workgroup_size(256)
fn running_update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.c) { return; }
  y[c] = act_out((1.0 - params.momentum) * f32(y[c]) + params.momentum * part_in[params.offset + c]);
}

fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = element(wid, nwg, lid);
  if (i >= params.n * params.c) { return; }
  let c = i % params.c;
  // (x - mean) first: with a large common offset x*scale + shift would cancel badly.
  y[i] = act_out((f32(x[i]) - stats[c]) * stats[params.c + c] * gamma[c] + beta[c]);
}

@compute @workgroup_size(256)
fn grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  var acc = vec3<f32>(0.0);
  if (col.valid) {
    let mean = stats[col.ch];
    let invstd = stats[params.c + col.ch];
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      let i = r * params.c + col.ch;
      let g = f32(dy[i]);
      acc += vec3<f32>(g, g * (f32(x[i]) - mean) * invstd, 0.0);
    }
  }
  w[lid] = acc;
  tree_sums(lid);
  write_partial(col, lid, 2u);
}

@compute @workgroup_size(256)
fn grad_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  var acc = vec3<f32>(0.0);
  if (col.valid) {
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      acc += vec3<f32>(part_in[in_index(0u, r, col.ch)], part_in[in_index(1u, r, col.ch)], 0.0);
    }
  }
  w[lid] = acc;
  tree_sums(lid);
  write_partial(col, lid, 2u);
}

@compute @workgroup_size(256)
fn dx_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = element(wid, nwg, lid);
  if (i >= params.n * params.c) { return; }
  let c = i % params.c;
  let invstd = stats[params.c + c];
  let xhat = (f32(x[i]) - stats[c]) * invstd;
  let inv_n = 1.0 / f32(params.n);
  y[i] = act_out(gamma[c] * invstd * (f32(dy[i]) - part_in[c] * inv_n - xhat * part_in[params.c + c] * inv_n));
}

@compute @workgroup_size(256)
fn dx_eval(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = element(wid, nwg, lid);
  if (i >= params.n * params.c) { return; }
  let c = i % params.c;
  y[i] = act_out(f32(dy[i]) * gamma[c] * stats[params.c + c]);
}
