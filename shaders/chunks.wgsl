// Column reductions over rows (src/ops/chunks.ts): weight, bias, gamma and mask-token
// gradients.
//
// A first pass reduces chunks of rows to `partial[chunks, width]` (chunk-major: one row of
// `width` sums per chunk): `column_partials` for a plain [rows, width] matrix, or an op's own
// kernel when it computes what it sums. `sum_chunks` adds the chunks up:
//   out[i] = sum_j partial[j * width + i]      for i < width.
// One thread per output element, looping over the chunks in order (so the sum is
// deterministic); consecutive threads read consecutive addresses of each chunk's row.
//
// `src` is stored as `act` (an activation gradient: f32, or f16 under precision f16; the loader
// puts `alias act = ...` in front); the partials and sums are f32.
//
// Dispatch: sum_chunks: ceil(width / 256) workgroups of 256 (2-D split past the per-dimension
// limit); column_partials: x = ceil(width / 64) (64 columns x 4 row lanes), y = chunk.

struct Params {
  width: u32,
  chunks: u32,      // sum_chunks: number of partials
  rows: u32,        // column_partials: rows of src
  chunk_rows: u32,  // column_partials: rows per chunk
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<act>;

var<workgroup> lanes: array<f32, 256>;

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

// out[chunk * C + c] = sum of src[r * C + c] over rows r of the chunk (C = params.width).
@compute @workgroup_size(256)
fn column_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let C = params.width;
  let c = wid.x * 64u + lidx % 64u;
  let lane = lidx / 64u;
  let r_beg = wid.y * params.chunk_rows;
  let r_end = min(params.rows, r_beg + params.chunk_rows);
  var acc = 0.0;
  if (c < C) {
    for (var r = r_beg + lane; r < r_end; r += 4u) { acc += f32(src[r * C + c]); }
  }
  lanes[lidx] = acc;
  workgroupBarrier();
  if (lane == 0u && c < C) {
    out[wid.y * C + c] = (lanes[lidx] + lanes[lidx + 64u]) + (lanes[lidx + 128u] + lanes[lidx + 192u]);
  }
}
