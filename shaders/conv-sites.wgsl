// Sites and taps of shaders/conv2d.wgsl's GEMM (included by `// #include "conv-sites.wgsl"`,
// src/util/shader-includes.ts): how a GEMM row or K index maps to a grid site, an input or
// output row and a kernel tap, per pass and parity class. It reads conv2d.wgsl's overrides
// (PASS, SPARSE, POINTWISE, FLIP, PACKED_W) and bindings (params, sites, row_of): WGSL module
// scope is order-free, so the text only has to be part of the same shader.

// A site of the grid: image b and coordinates (y, x); b < 0 marks "no row" (past M).
struct Site {
  b: i32,
  y: i32,
  x: i32,
}

fn decode(grid: u32, h: u32, w: u32) -> Site {
  let plane = h * w;
  let b = grid / plane;
  let r = grid - b * plane;
  let y = r / w;
  return Site(i32(b), i32(y), i32(r - y * w));
}

// Grid index of walked row m of the output layout (passes 0 and 2).
fn out_site(m: u32) -> Site {
  if (SPARSE) { return decode(sites[m], params.out_h, params.out_w); }
  return decode(m, params.out_h, params.out_w);
}

// Row of input site (b, iy, ix), or -1 outside the image or at an inactive site.
fn in_row(b: i32, iy: i32, ix: i32) -> i32 {
  if (iy < 0 || ix < 0 || iy >= i32(params.in_h) || ix >= i32(params.in_w)) { return -1; }
  let grid = (u32(b) * params.in_h + u32(iy)) * params.in_w + u32(ix);
  if (SPARSE) { return row_of[grid]; }
  return i32(grid);
}

// Row of the output site that input site s meets through tap (ky, kx), or -1.
fn out_row(s: Site, ky: i32, kx: i32) -> i32 {
  let st = i32(params.stride);
  let ny = s.y + i32(params.pad) - ky;
  let nx = s.x + i32(params.pad) - kx;
  if (ny < 0 || nx < 0 || ny % st != 0 || nx % st != 0) { return -1; }
  let oy = ny / st;
  let ox = nx / st;
  if (oy >= i32(params.out_h) || ox >= i32(params.out_w)) { return -1; }
  let grid = (u32(s.b) * params.out_h + u32(oy)) * params.out_w + u32(ox);
  if (SPARSE) { return row_of[grid]; }
  return i32(grid);
}

// Taps that inputs of one class meet in pass 1: ky = cy + jy*step (jy < nty), likewise x.
// Dense: class (cy, cx) = the parity of (iy + pad, ix + pad), step = stride; its inputs are
// iy = ry + qy*stride (qy < hc). Sparse: one class with every tap (step 1), rows from `sites`.
struct Class {
  cy: i32,
  cx: i32,
  step: i32,
  nty: u32,
  ntx: u32,
  ry: u32,
  rx: u32,
  hc: u32,
  wc: u32,
}

fn count_from(first: u32, n: u32, step: u32) -> u32 {
  return select(0u, (n - first + step - 1u) / step, n > first);
}

fn input_class(e: u32) -> Class {
  if (SPARSE || POINTWISE) {
    return Class(0, 0, 1, params.kh, params.kw, 0u, 0u, params.in_h, params.in_w);
  }
  let s = params.stride;
  let p = i32(params.pad);
  let cy = e / s;
  let cx = e - cy * s;
  let ry = u32(((i32(cy) - p) % i32(s) + i32(s)) % i32(s));
  let rx = u32(((i32(cx) - p) % i32(s) + i32(s)) % i32(s));
  return Class(i32(cy), i32(cx), i32(s), count_from(cy, params.kh, s), count_from(cx, params.kw, s),
               ry, rx, count_from(ry, params.in_h, s), count_from(rx, params.in_w, s));
}

// Input site of pass-1 row m.
fn class_site(cl: Class, m: u32) -> Site {
  if (SPARSE) { return decode(sites[m], params.in_h, params.in_w); }
  let plane = cl.hc * cl.wc;
  let b = m / plane;
  let r = m - b * plane;
  let qy = r / cl.wc;
  let qx = r - qy * cl.wc;
  return Site(i32(b), i32(cl.ry + qy * params.stride), i32(cl.rx + qx * params.stride));
}

fn class_rows(cl: Class) -> u32 {
  if (SPARSE) { return params.rows; }
  return params.batch * cl.hc * cl.wc;
}

// ---- the GEMM -----------------------------------------------------------------------------

// What the M/N-fast B loaders (passes 1, 2) need about reduction index k, decoded once per
// step by KT threads instead of by every thread: pass 1, the offset of wp[g*cout_g + co][tap]
// (k = (class tap, co)); pass 2, output row k's window origin (b, oy*s - p, ox*s - p).
// x < 0 marks k past the end.
// Tap j of the sub-pixel class `cl` (pass 1) as kernel (ky, kx).
fn class_tap(j: u32, cl: Class) -> vec2<i32> {
  let jy = j / max(cl.ntx, 1u);
  return vec2<i32>(cl.cy + i32(jy) * cl.step, cl.cx + i32(j - jy * cl.ntx) * cl.step);
}

// The A operand's K index of passes 0/1 as (ky, kx, channel): k = tap * per_tap + channel,
// the tap of the kernel (pass 0: in channels per tap) or of the class (pass 1: out channels).
fn a_tap(k: u32, cl: Class) -> vec3<u32> {
  let per_tap = select(params.cout_g, params.cin_g, PASS == 0u);
  let j = k / max(per_tap, 1u);
  let c = k - j * per_tap;
  if (PASS == 0u) { return vec3<u32>(j / params.kw, j % params.kw, c); }
  let t = class_tap(j, cl);
  return vec3<u32>(u32(t.x), u32(t.y), c);
}

fn decode_step(k: u32, k_end: u32, g: u32, cl: Class) -> vec3<i32> {
  if (k >= k_end) { return vec3<i32>(-1, 0, 0); }
  if (PASS == 1u) {
    let j = k / params.cout_g;
    let co = k - j * params.cout_g;
    let t = class_tap(j, cl);
    let ky = u32(t.x);
    let kx = u32(t.y);
    if (!PACKED_W) {
      // OIHW as given: w[g*cout_g + co][ci][tap], ci at a stride of kh*kw (see PACKED_W).
      return vec3<i32>(i32((g * params.cout_g + co) * params.cin_g * params.kh * params.kw + ky * params.kw + kx), 0, 0);
    }
    return vec3<i32>(i32(((g * params.cout_g + co) * params.kh * params.kw + ky * params.kw + kx) * params.cin_g), 0, 0);
  }
  if (POINTWISE) { return vec3<i32>(i32(k), 0, 0); }
  let s = out_site(k);
  return vec3<i32>(s.b, s.y * i32(params.stride) - i32(params.pad), s.x * i32(params.stride) - i32(params.pad));
}
