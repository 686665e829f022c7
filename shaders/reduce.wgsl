// Sum (or sum of squares) of n values stored as `act` (f32, or f16 under precision f16; the
// loader puts `alias act = ...` in front), in passes: each workgroup of 256 threads reduces
// a contiguous chunk of CHUNK = 256 * PER_THREAD values to one partial sum in `y[wgIndex]`;
// the op repeats on the partials until one value is left.
//
// Dispatch: ceil(n / CHUNK) workgroups (2-D split past the per-dimension limit).
// Accumulation is in f32 with a tree in workgroup memory: error grows ~log(n), not n. The
// partial sums `y` are f32; the passes after the first read them with act = f32.

struct Params {
  n: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

override SQUARE: bool = false;
const PER_THREAD: u32 = 8u;
const CHUNK: u32 = 2048u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  let group = wid.x + wid.y * nwg.x;
  let base = group * CHUNK;
  var acc = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = base + k * 256u + lid.x;
    if (i < params.n) {
      let v = f32(x[i]);
      acc += select(v, v * v, SQUARE);
    }
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride = stride >> 1u) {
    if (lid.x < stride) {
      partial[lid.x] += partial[lid.x + stride];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && base < params.n) {
    y[group] = partial[0];
  }
}
