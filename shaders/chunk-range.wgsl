// The rows [x, y) of chunk `chunk` in the first pass of a column reduction (src/ops/chunks.ts
// `chunkPlan`): chunk_rows rows each, the last chunk shorter. Needs params.n (rows) and
// params.chunk_rows.
fn chunk_range(chunk: u32) -> vec2<u32> {
  let first = chunk * params.chunk_rows;
  return vec2<u32>(first, min(first + params.chunk_rows, params.n));
}
