// One invocation per (row, 4 channels) of a channels-last feature map, walking the rows of one
// layout and reading neighbours through the other (depthwise.wgsl, pool.wgsl; launched by
// src/ops/depthwise.ts and src/ops/pool.ts). Needs: const WG, override SPARSE, params.rows and
// params.C, and the bindings src, sites (walked layout) and row_of (read layout).

struct Quad {
  row: u32,     // walked row
  c0: u32,      // first of its 4 channels
  site: u32,    // grid index of the row
  valid: bool,  // false past rows * ceil(C / 4)
}

fn quad(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Quad {
  let t = (wid.x + wid.y * nwg.x) * WG + lid;
  let G = (params.C + 3u) / 4u;
  var q: Quad;
  q.valid = t < params.rows * G;
  q.row = t / G;
  q.c0 = (t % G) * 4u;
  if (q.valid) { q.site = site_of(q.row); }
  return q;
}

// Grid index of a walked row.
fn site_of(row: u32) -> u32 {
  if (SPARSE) { return sites[row]; }
  return row;
}

// Row at a grid index of the layout read through neighbours, or -1 if inactive.
fn lookup(grid: u32) -> i32 {
  if (SPARSE) { return row_of[grid]; }
  return i32(grid);
}

// Element indices of channels c0 .. c0+3 of row r, clamped to the row's last channel so that
// a read past C stays inside the row; `quad_mask` says which of the four are channels.
fn quad_cells(r: u32, c0: u32) -> vec4<u32> {
  let base = r * params.C + c0;
  return min(vec4<u32>(base, base + 1u, base + 2u, base + 3u), vec4<u32>(r * params.C + params.C - 1u));
}

fn quad_mask(c0: u32) -> vec4<bool> {
  return vec4<u32>(c0, c0 + 1u, c0 + 2u, c0 + 3u) < vec4<u32>(params.C);
}

// Four channels of src row `r` starting at c0, zeros past C.
fn load_src(r: u32, c0: u32) -> vec4<f32> {
  let i = quad_cells(r, c0);
  return select(vec4<f32>(0.0), vec4<f32>(f32(src[i.x]), f32(src[i.y]), f32(src[i.z]), f32(src[i.w])), quad_mask(c0));
}
