// The column geometry of the norm reductions (batchnorm.wgsl, layernorm.wgsl; src/ops/norm.ts
// `reduceColumns`): a workgroup of WG threads is TC channels x (WG / TC) row lanes, one
// workgroup per (channel tile, chunk of rows), linear workgroup id g = wid.x + wid.y * nwg.x.
// Thread (lane, c) walks rows first, first + WG/TC, ... of its chunk, per_thread of them.
// Needs: const WG, override TC, and params.n, .c, .tiles, .chunks, .per_thread.

struct Column {
  chunk: u32,
  ch: u32,       // channel this thread reduces
  lane: u32,
  valid: bool,   // ch < C and the chunk exists (threads past the end still hit barriers)
  first: u32,    // first row (or input chunk) of this thread
}

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Column {
  let g = wid.x + wid.y * nwg.x;
  var col: Column;
  col.chunk = g / params.tiles;
  col.ch = (g % params.tiles) * TC + lid % TC;
  col.lane = lid / TC;
  col.valid = col.ch < params.c && col.chunk < params.chunks;
  col.first = col.chunk * (WG / TC) * params.per_thread + col.lane;
  return col;
}

// One past this thread's last row: per_thread rows from `first`, none at or past n.
fn column_end(col: Column) -> u32 {
  return min(params.n, col.first + params.per_thread * (WG / TC));
}
