// Second pass of the split reductions (weight, bias, gamma and mask-token gradients).
//
// A first pass, owned by each op, reduces chunks of rows to `partial[chunks, width]`
// (chunk-major: one row of `width` sums per chunk). This pass adds the chunks up:
//   out[i] = sum_j partial[j * width + i]      for i < width.
// One thread per output element, looping over the chunks in order (so the sum is
// deterministic); consecutive threads read consecutive addresses of each chunk's row.
//
// Dispatch: ceil(width / 256) workgroups of 256 (2-D split past the per-dimension limit).

struct Params {
  width: u32,
  chunks: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn sum_chunks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.width) { return; }
  var acc = 0.0;
  for (var j = 0u; j < params.chunks; j++) {
    acc += partial[j * params.width + i];
  }
  out[i] = acc;
}
