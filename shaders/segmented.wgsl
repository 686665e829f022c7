// Segmented sums of squares over flat f32 buffers (the norms LAMB needs: per-parameter
// ||w||, ||update||, and the global ||g||), driven by a work table so the number of
// dispatches does not grow with the number of segments.
//
// Tables (u32 pairs, built on the CPU by src/ops/segmented.ts):
//   chunks   (start, len) per chunk: a piece of at most CHUNK = 256 * PER_THREAD elements of
//            one segment, start in elements of x. Chunks are listed in segment order, so the
//            partials of a segment are contiguous.
//   segments (first, count) per segment: its partials are partial[first .. first + count);
//            count = 0 for an empty segment (its sum is 0).
// Both live in one buffer `work`; params.work_base says where this dispatch's rows begin.
//
// Entry points and dispatch:
//   chunk_sums    one workgroup of 256 per chunk (2-D split past the limit): each thread adds
//                 the squares of PER_THREAD elements strided by 256, then a tree sum;
//                 partial[partial_base + chunk] = the chunk's sum of squares.
//   segment_sums  one workgroup of 256 per segment: strided sum of its partials, then a tree;
//                 y[segment] = the segment's sum of squares.
// f32 throughout: every term is >= 0, so the relative error is at most (depth) * 2^-24 with
// depth = 1 + (PER_THREAD - 1) + 8 + ceil(count / 256) + 8 additions on the longest path.

struct Params {
  count: u32,        // chunks (chunk_sums) or segments (segment_sums) in this dispatch
  work_base: u32,    // first row of `work` for this dispatch
  partial_base: u32, // chunk_sums: where this dispatch's partials go
  _pad0: u32,
}

override PER_THREAD: u32 = 16u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> work: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> red: array<f32, 256>;

fn tree_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(256)
fn chunk_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid3: vec3<u32>) {
  let chunk = wid.x + wid.y * nwg.x;
  if (chunk >= params.count) { return; } // uniform per workgroup
  let lid = lid3.x;
  let w = work[params.work_base + chunk];
  var acc = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = k * WG + lid; // consecutive threads read consecutive elements
    if (i < w.y) {
      let v = x[w.x + i];
      acc += v * v;
    }
  }
  let total = tree_sum(acc, lid);
  if (lid == 0u) { partial[params.partial_base + chunk] = total; }
}

@compute @workgroup_size(256)
fn segment_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid3: vec3<u32>) {
  let seg = wid.x + wid.y * nwg.x;
  if (seg >= params.count) { return; }
  let lid = lid3.x;
  let s = work[params.work_base + seg];
  var acc = 0.0;
  for (var k = lid; k < s.y; k += WG) { acc += partial[s.x + k]; }
  let total = tree_sum(acc, lid);
  if (lid == 0u) { y[seg] = total; }
}
