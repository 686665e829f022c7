// 2-D convolution as implicit GEMM (dense or submanifold sparse), its input and weight
// gradients, and with them linear (a 1x1 conv) and convTranspose2d (the input-gradient pass
// of the adjoint conv). ONE tiled GEMM core serves every pass; the override PASS picks how
// the two operands are gathered and where the tile is written.
//
// Shapes. x [in_rows, cin] on an input layout B x in_h x in_w, y [out_rows, cout] on an output
// layout B x out_h x out_w (channels last, rows as in src/tensor/layout.ts); out = (in + 2*pad
// - kh) / stride + 1. Groups G: cin_g = cin / G, cout_g = cout / G. Weights are packed once per
// call from OIHW to OHWI, wp[co][tap][ci] (tap = ky*kw + kx; for 1x1 kernels OIHW is OHWI), so
// for a fixed output channel the GEMM's K index k = tap*cin_g + ci is contiguous.
// Sparse layouts (SPARSE): `sites[row]` = grid index of a walked row, `row_of[grid]` = row of
// the gathered layout or -1, read as 0 (submanifold conv = dense conv on the zero-filled map,
// then keeping the active output rows, the official SparK simulation). POINTWISE (1x1, stride 1,
// pad 0, same layout in and out) skips all site arithmetic: the gathered row is the walked row.
//
// The GEMM of each pass, per group g (C[M, N] = sum_k A[m, k] B[k, n]):
//   PASS 0 forward      M = out rows, N = cout_g, K = kh*kw*cin_g.
//                        A[m, (tap, ci)] = x[row_in(site(m) shifted by tap), g*cin_g + ci]
//                        B[(tap, ci), co] = wp[g*cout_g + co][tap][ci]; C -> y (+ bias).
//   PASS 1 input grad   M = input rows, N = cin_g, K = taps*cout_g.
//                        A[m, (tap, co)] = dy[row_out(oy, ox), g*cout_g + co] with
//                        oy*stride = iy + pad - ky (exact division, inside the output grid);
//                        B[(tap, co), ci] = wp[g*cout_g + co][tap][ci]; C -> dx (+ bias for
//                        convTranspose2d, whose forward this pass is).
//                        Dense: stride*stride sub-pixel GEMMs, z = parity class (cy, cx). Inputs
//                        with (iy + pad) % stride == cy meet exactly the taps ky = cy + j*stride,
//                        so no MAC is spent on a tap that cannot contribute (ConvT k4 s2 p1 =
//                        4 GEMMs of 2x2 taps). Sparse: one GEMM over the active input rows with
//                        all kh*kw taps, invalid taps masked to 0 (wasteful only for the few
//                        strided encoder layers; a class split would need per-class row lists).
//                        (Dense input gradients have a GEMM-free alternative, an auto-tune
//                        candidate: shaders/conv-direct.wgsl.)
//   PASS 2 weight grad  M = cout_g, N = kh*kw*cin_g, reduction over output rows, SPLIT-K: z
//                        also picks a chunk of chunk_rows rows; each chunk writes its own
//                        partial[chunk][co][tap][ci] and `reduce_partials` sums the chunks into
//                        OIHW. A[co, m] = dy[m, g*cout_g + co]; B[m, (tap, ci)] = forward's A.
//
// Tiling. A workgroup computes a TM x TN tile of C (TM, TN in {32, 64}, overrides; 64x64
// unless a GEMM dimension is <= 32 or the auto-tune chose otherwise), with WG = TM*TN/(4*RB)
// threads (256 for 64x64 and RB = 4), each owning an RBx4 register block: rows
// ty*RB..ty*RB+RB-1, columns tx*4..tx*4+3 (tx = lid % (TN/4)). The
// reduction advances in steps of KT = 16 (32 with 32x32 tiles, an auto-tune choice): the
// workgroup stages A[KT][TM] and B[KT][TN] in workgroup memory (as vec4 along M / N, 8 KiB in
// all), then each thread does KT rank-1
// updates of its block from two vec4 reads. Global loads are mapped so consecutive threads
// read consecutive addresses: along K when the operand is contiguous in K (x and dy gathered
// rows in passes 0/1, wp in pass 0), along M/N otherwise (wp in pass 1, dy and the gathered
// rows in pass 2). Out-of-range elements load 0 (any M, N, K, channels not a multiple of 4);
// stores are guarded.
// Index arithmetic is hoisted out of the inner loads: a tile's gathered rows (passes 0/1) are
// decoded once into `tile_rows`; each K step's tap/channel split is done once per thread (K-fast
// loaders) or once per k by KT threads into the double-buffered `step_info` (M/N-fast loaders
// of passes 1/2), a step ahead, so no extra barrier is needed.
// Register blocks: 4x4 is the default; 8x4 (RB = 8, half the threads) is a candidate of the
// per-adapter auto-tune (src/ops/autotune.ts), because fewer invocations per barrier suit
// SwiftShader (its barriers cost per invocation) and not an H100 (docs/performance.md). Figures
// and the command that measures them: docs/benchmarks.md (`npx webspark bench kernels`).
//
// Dispatch of `gemm`: x, y = the M tiles of this dispatch (linear id wid.x + wid.y * nwg.x,
// split over y past the per-dimension limit; ids >= m_tiles return), z = n_tile + n_tiles *
// (g + G * e) with e the parity class (pass 1 dense) or the row chunk (pass 2). Sparse passes
// 0/1 therefore dispatch ceil(active rows / TM) M tiles: work and memory follow the active sites.
//
// Other entry points (workgroups of 256, linear id wid.x + wid.y * nwg.x):
//   pack_weights     dst[o][t][i] = src[o][i][t] (OIHW -> OHWI); one thread per element.
//                    FLIP: the OHWI weight of the stride-1 adjoint conv (taps reversed, in and
//                    out channels swapped), whose forward pass is this conv's input gradient.
//   reduce_partials  dst[o][i][t] = sum over chunks of partial[chunk][o][t][i] (split-K second
//                    pass, writing OIHW).

// #include "conv-params.wgsl"

override PASS: u32 = 0u;
override SPARSE: bool = false;
override POINTWISE: bool = false;
override HAS_BIAS: bool = false;
// VEC4_A (passes 0 and 1; cin_g resp. cout_g % 4 == 0): A is gathered 4 channels at a time
// through `src4` (the same buffer as `src`), so the site/tap index math runs once per 4
// elements; 4 consecutive k never straddle a tap.
override VEC4_A: bool = false;
// PACKED_W (pass 1): wp is the OHWI packing (consecutive input channels adjacent); false reads
// the OIHW weight as given, saving the pack dispatch of every call at strided loads (an
// auto-tune candidate: cheaper on an emulated GPU, worse coalescing on a real one).
override PACKED_W: bool = true;
// FLIP (pack_weights only): pack the flipped, transposed weight of the adjoint conv (below).
override FLIP: bool = false;
override TM: u32 = 64u;
override TN: u32 = 64u;
// RB: rows of C per thread, 4 (4x4 register blocks, the default) or 8 (8x4 blocks, half the
// threads: fewer invocations per barrier, which SwiftShader rewards and an H100 does not;
// chosen per shape by the auto-tune, src/ops/autotune.ts).
override RB: u32 = 4u;
override WG: u32 = TM * TN / (4u * RB);

// KT: reduction step (rows of K staged per barrier pair), 16, or 32 with TM = TN = 32 (the
// staging arrays hold KT*TM/4 and KT*TN/4 vec4: 256 each): half the barriers per K, which is
// what an emulated GPU pays for per invocation. The launcher refuses other combinations.
override KT: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<act>;
@group(0) @binding(2) var<storage, read> wp: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> gy: array<act>;
@group(0) @binding(5) var<storage, read_write> dst: array<act_out>;
@group(0) @binding(6) var<storage, read> sites: array<u32>;
@group(0) @binding(7) var<storage, read> row_of: array<i32>;
@group(0) @binding(8) var<storage, read> src4: array<act4>;

var<workgroup> As: array<vec4<f32>, 256>;  // [KT][TM / 4]
var<workgroup> Bs: array<vec4<f32>, 256>;  // [KT][TN / 4]
var<workgroup> tile_rows: array<vec3<i32>, 64>;  // decoded sites of the tile's rows (b < 0: past M)
var<workgroup> step_info: array<vec3<i32>, 64>;  // [2][KT]: per-k decode of this / the next step

// Storage types (src/gpu/pipelines.ts puts the aliases in front of this text): in the gemm and
// direct passes `src`, `src4` and `gy` hold activations or their gradients (`act`: f32, or f16
// under precision f16) and `dst` is written as `act_out`: the activation type in passes 0 and
// 1, f32 in pass 2 (weight-gradient partials). Weights and bias are f32. pack_weights and
// reduce_partials run with every alias f32 (they move weights and partials only). Every load
// converts to f32, the GEMM stages and accumulates in f32, the store converts once.

// ---- sites and taps -----------------------------------------------------------------------

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

fn put_a(kk: u32, mm: u32, v: f32) {
  As[kk * (TM / 4u) + mm / 4u][mm % 4u] = v;
}

fn put_b(kk: u32, nn: u32, v: f32) {
  Bs[kk * (TN / 4u) + nn / 4u][nn % 4u] = v;
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
  let mt = wid.x + wid.y * nwg.x;
  if (mt >= params.m_tiles) { return; }
  let nt = wid.z % params.n_tiles;
  let ge = wid.z / params.n_tiles;
  let g = ge % params.groups;
  let e = ge / params.groups;  // parity class (pass 1) or row chunk (pass 2)
  let m0 = mt * TM;
  let n0 = nt * TN;
  let taps = params.kh * params.kw;

  // This tile's GEMM: sizes, reduction range [k_beg, k_end).
  var M = params.rows;
  var N = params.cout_g;
  var k_beg = 0u;
  var k_end = taps * params.cin_g;
  var cl = input_class(e);
  if (PASS == 1u) {
    M = class_rows(cl);
    N = params.cin_g;
    k_end = cl.nty * cl.ntx * params.cout_g;
  } else if (PASS == 2u) {
    M = params.cout_g;
    N = taps * params.cin_g;
    k_beg = e * params.chunk_rows;
    k_end = min(params.rows, k_beg + params.chunk_rows);
  }
  if (m0 >= M) { return; }

  // Per-thread load assignments (see the header): K-fast or M/N-fast.
  let a_kfast = PASS != 2u;
  let b_kfast = PASS == 0u;
  let a_loads = KT * TM / WG;
  let b_loads = KT * TN / WG;

  // The rows A gathers in passes 0/1 are fixed over the K loop: decode them once per tile.
  if (a_kfast && !POINTWISE) {
    for (var r = lidx; r < TM; r += WG) {
      let m = m0 + r;
      var v = vec3<i32>(-1, 0, 0);
      if (m < M) {
        if (PASS == 0u) {
          let s = out_site(m);
          v = vec3<i32>(s.b, s.y * i32(params.stride) - i32(params.pad), s.x * i32(params.stride) - i32(params.pad));
        } else {
          let s = class_site(cl, m);
          v = vec3<i32>(s.b, s.y, s.x);
        }
      }
      tile_rows[r] = v;
    }
  }
  if (!b_kfast && lidx < KT) { step_info[lidx] = decode_step(k_beg + lidx, k_end, g, cl); }
  workgroupBarrier();
  // Pass 2 gathers B[m, (tap, ci)] with a fixed column per thread: decode its tap once.
  let b_col = n0 + lidx % TN;
  let b_tap = b_col / max(params.cin_g, 1u);
  let b_ci = b_col - b_tap * params.cin_g;
  let b_ky = i32(b_tap / params.kw);
  let b_kx = i32(b_tap % params.kw);

  // This thread's RBx4 block of C: rows ty*RB .. ty*RB+RB-1, columns tx*4 .. tx*4+3.
  // (Named vectors, not an array: a dynamically indexed array may live in memory. acc4..7
  // exist only for RB = 8; with RB = 4 the constant-false branches drop them.)
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  let tx = lidx % (TN / 4u);
  let ty = lidx / (TN / 4u);

  for (var k0 = k_beg; k0 < k_end; k0 += KT) {
    let buf = ((k0 - k_beg) / KT) % 2u;
    // Decode the next step (its buffer was last read before the previous step's barrier).
    if (!b_kfast && lidx < KT) { step_info[(1u - buf) * KT + lidx] = decode_step(k0 + KT + lidx, k_end, g, cl); }
    // ---- stage A[KT][TM] ----
    if (VEC4_A && PASS != 2u) {
      // Thread loads k = k0 + kq*4 .. +3 (one tap) for rows mm = lidx/(KT/4) + i*WG/(KT/4).
      let kq = lidx % (KT / 4u);
      let k = k0 + kq * 4u;
      let tap = a_tap(k, cl);
      let ky = i32(tap.x);
      let kx = i32(tap.y);
      let c = tap.z;
      for (var i = 0u; i < TM * (KT / 4u) / WG; i++) {  // KT * RB / TN: exact for the tiles allowed
        let mm = lidx / (KT / 4u) + i * (WG / (KT / 4u));
        let m = m0 + mm;
        var v = vec4<f32>(0.0);
        if (k < k_end && m < M) {
          var row = i32(m);
          if (PASS == 0u) {
            if (!POINTWISE) {
              let s = tile_rows[mm];
              row = in_row(s.x, s.y + ky, s.z + kx);
            }
            if (row >= 0) { v = vec4<f32>(src4[(u32(row) * params.cin + g * params.cin_g + c) / 4u]); }
          } else {
            if (!POINTWISE) {
              let s = tile_rows[mm];
              row = out_row(Site(s.x, s.y, s.z), ky, kx);
            }
            if (row >= 0) { v = vec4<f32>(src4[(u32(row) * params.cout + g * params.cout_g + c) / 4u]); }
          }
        }
        put_a(kq * 4u, mm, v.x);
        put_a(kq * 4u + 1u, mm, v.y);
        put_a(kq * 4u + 2u, mm, v.z);
        put_a(kq * 4u + 3u, mm, v.w);
      }
    } else if (a_kfast) {
      let kk = lidx % KT;
      let k = k0 + kk;
      // Decode k once per step: (tap, channel) in pass 0, (tap of the class, out channel) in pass 1.
      let tap = a_tap(k, cl);
      let ky = i32(tap.x);
      let kx = i32(tap.y);
      let c = tap.z;
      for (var i = 0u; i < a_loads; i++) {
        let mm = lidx / KT + i * (WG / KT);
        let m = m0 + mm;
        var v = 0.0;
        if (k < k_end && m < M) {
          if (PASS == 0u) {
            var row = i32(m);
            if (!POINTWISE) {
              let s = tile_rows[mm];  // decoded, since m < M
              row = in_row(s.x, s.y + ky, s.z + kx);
            }
            if (row >= 0) { v = f32(src[u32(row) * params.cin + g * params.cin_g + c]); }
          } else {
            var row = i32(m);
            if (!POINTWISE) {
              let s = tile_rows[mm];
              row = out_row(Site(s.x, s.y, s.z), ky, kx);
            }
            if (row >= 0) { v = f32(src[u32(row) * params.cout + g * params.cout_g + c]); }
          }
        }
        put_a(kk, mm, v);
      }
    } else {
      // Pass 2: A[co, r] = dy[r, g*cout_g + co], consecutive threads on consecutive co.
      let mm = lidx % TM;
      let co = m0 + mm;
      for (var i = 0u; i < a_loads; i++) {
        let kk = lidx / TM + i * (WG / TM);
        let r = k0 + kk;
        var v = 0.0;
        if (r < k_end && co < M) { v = f32(gy[r * params.cout + g * params.cout_g + co]); }
        put_a(kk, mm, v);
      }
    }
    // ---- stage B[KT][TN] ----
    if (b_kfast) {
      // Pass 0: B[k, co] = wp[g*cout_g + co][k], consecutive threads on consecutive k.
      let kk = lidx % KT;
      let k = k0 + kk;
      for (var i = 0u; i < b_loads; i++) {
        let nn = lidx / KT + i * (WG / KT);
        let n = n0 + nn;
        var v = 0.0;
        if (k < k_end && n < N) { v = wp[(g * params.cout_g + n) * k_end + k]; }
        put_b(kk, nn, v);
      }
    } else {
      let nn = lidx % TN;
      for (var i = 0u; i < b_loads; i++) {
        let kk = lidx / TN + i * (WG / TN);
        let info = step_info[buf * KT + kk];
        var v = 0.0;
        if (info.x >= 0 && b_col < N) {
          if (PASS == 1u) {
            // B[(j, co), ci] = wp[g*cout_g + co][tap(j)][ci]
            v = wp[u32(info.x) + select(b_col * params.kh * params.kw, b_col, PACKED_W)];
          } else {
            // Pass 2: B[r, (tap, ci)] = x at output row r shifted by the tap.
            var row = info.x;
            if (!POINTWISE) { row = in_row(info.x, info.y + b_ky, info.z + b_kx); }
            if (row >= 0) { v = f32(src[u32(row) * params.cin + g * params.cin_g + b_ci]); }
          }
        }
        put_b(kk, nn, v);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      let a = As[kk * (TM / 4u) + ty * (RB / 4u)];
      let b = Bs[kk * (TN / 4u) + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
      if (RB == 8u) {
        let a2 = As[kk * (TM / 4u) + ty * 2u + 1u];
        acc4 += a2.x * b;
        acc5 += a2.y * b;
        acc6 += a2.z * b;
        acc7 += a2.w * b;
      }
    }
    workgroupBarrier();
  }

  let m = m0 + ty * RB;
  let n = n0 + tx * 4u;
  store(cl, g, e, m, n, M, N, acc0);
  store(cl, g, e, m + 1u, n, M, N, acc1);
  store(cl, g, e, m + 2u, n, M, N, acc2);
  store(cl, g, e, m + 3u, n, M, N, acc3);
  if (RB == 8u) {
    store(cl, g, e, m + 4u, n, M, N, acc4);
    store(cl, g, e, m + 5u, n, M, N, acc5);
    store(cl, g, e, m + 6u, n, M, N, acc6);
    store(cl, g, e, m + 7u, n, M, N, acc7);
  }
}

// Writes C[m, n..n+3] of the tile where this pass keeps it.
fn store(cl: Class, g: u32, e: u32, m: u32, n: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  var base: u32;
  var boff: u32;
  if (PASS == 0u) {
    base = m * params.cout + g * params.cout_g;
    boff = g * params.cout_g;
  } else if (PASS == 1u) {
    var row = m;
    if (!SPARSE && !POINTWISE) {
      let s = class_site(cl, m);
      row = (u32(s.b) * params.in_h + u32(s.y)) * params.in_w + u32(s.x);
    }
    base = row * params.cin + g * params.cin_g;
    boff = g * params.cin_g;
  } else {
    base = ((e * params.groups + g) * params.cout_g + m) * N;
    boff = 0u;
  }
  for (var j = 0u; j < 4u; j++) {
    if (n + j < N) {
      var val = v[j];
      if (HAS_BIAS && PASS != 2u) { val += bias[boff + n + j]; }
      dst[base + n + j] = act_out(val);
    }
  }
}

// ---- small passes -------------------------------------------------------------------------

// OIHW -> OHWI: dst[(o*T + t)*I + i] = src[(o*I + i)*T + t], I = cin_g, T = kh*kw, O = cout.
@compute @workgroup_size(256)
fn pack_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
  let d = (wid.x + wid.y * nwg.x) * 256u + lidx;
  let I = params.cin_g;
  let T = params.kh * params.kw;
  if (d >= params.cout * T * I) { return; }
  if (FLIP) {
    // The adjoint conv's OHWI weight: dst[(o'*T + t')*Og + i'] = src[((g*Og + i')*I + ci)*T +
    // T-1-t'] with o' = g*I + ci an input channel of this conv and i' < Og = cout_g one of its
    // output channels in group g (a stride-1 conv's input gradient is the forward conv of dy
    // with this weight and padding k-1-pad).
    let Og = params.cout_g;
    let o2 = d / (T * Og);
    let r2 = d - o2 * T * Og;
    let t2 = r2 / Og;
    let i2 = r2 - t2 * Og;
    let gg = o2 / I;
    let ci = o2 - gg * I;
    dst[d] = act_out(src[((gg * Og + i2) * I + ci) * T + (T - 1u - t2)]);
    return;
  }
  let o = d / (T * I);
  let r = d - o * T * I;
  let t = r / I;
  let i = r - t * I;
  dst[d] = act_out(src[(o * I + i) * T + t]);
}

// dst[(o*I + i)*T + t] = sum over chunks of src[((chunk*O + o)*T + t)*I + i] (O = cout,
// I = cin_g, T = kh*kw), chunks in order so the sum is deterministic.
@compute @workgroup_size(256)
fn reduce_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lidx: u32) {
  let d = (wid.x + wid.y * nwg.x) * 256u + lidx;
  let I = params.cin_g;
  let T = params.kh * params.kw;
  let size = params.cout * I * T;
  if (d >= size) { return; }
  let o = d / (I * T);
  let r = d - o * I * T;
  let i = r / T;
  let t = r - i * T;
  let at = (o * T + t) * I + i;
  var acc = 0.0;
  for (var c = 0u; c < params.chunks; c++) { acc += f32(src[c * size + at]); }
  dst[d] = act_out(acc);
}
