// The "direct" input-gradient pass of a dense conv (= the transposed conv's forward): one
// invocation per input pixel and 4 input channels, summing the taps that reach it and all
// output channels of its group straight from global memory. No workgroup memory and no
// barriers: the shape of tfjs's naive convT, which beats a tiled GEMM on an emulated GPU
// (SwiftShader) for small channel counts, where the GEMM has few tiles (too little
// parallelism for the thread pool) and pays its barriers per invocation. An auto-tune
// candidate (ConvConfig.direct, src/ops/conv-plan.ts), never the default: on a real GPU the
// tiled GEMM reuses each loaded value TM or TN times, this kernel 4 times.
//
// dx[row(b, iy, ix), g*cin_g + ci] = bias[g*cin_g + ci] + sum over taps (ky, kx) with
//   oy*stride = iy + pad - ky (exact, 0 <= oy < out_h) and the same along x, and over co in
//   the group, of dy[row(b, oy, ox), g*cout_g + co] * w[g*cout_g + co][tap][ci]
// with w the OHWI packing of conv2d.wgsl's pack_weights (wp[o][tap][ci], ci contiguous), or
// the OIHW weight itself (PACKED_W false).
// Only the taps of the input pixel's sub-pixel class are visited (ky = (iy + pad) % stride,
// then every stride-th): the same MACs as the sub-pixel GEMMs, no masked ones.
//
// PX pixels per invocation (1, 2 or 4; an override): ix, ix + stride, ... of one image row
// share their sub-pixel class, hence the taps and every weight load, so a weight vec4 feeds
// 4*PX multiply-adds (fewer, longer invocations: loads are what SwiftShader pays for most).
// Invocation id = (slot * groups + g) * quads + q, quads = ceil(cin_g / 4), slot =
// ((b * in_h + iy) * stride + cx) * xslots + xs with cx = ix % stride and xslots =
// ceil(ceil(in_w / stride) / PX): pixel j of the slot is ix = cx + stride * (xs * PX + j),
// absent (not stored, its loads masked) past in_w. The 4-channel groups of one slot are
// adjacent (they read the same dy values and consecutive weights).
// Dispatch: ceil(slots * groups * quads / WG) workgroups, linear id wid.x + wid.y * nwg.x.
//
// Storage: dy (`gy`, `gy4`) and dx (`dst`) are stored as `act` (f32, or f16 under precision
// f16; src/gpu/pipelines.ts puts the aliases in front), weights and bias f32; loads convert to
// f32, the sums run in f32, the store converts once.

// #include "conv-params.wgsl"

override HAS_BIAS: bool = false;
// VEC4: cin_g % 4 == 0 and cout_g % 4 == 0, so 4 output channels of dy and 4 input channels
// of a packed weight row are one aligned vec4 each (the launcher decides). Otherwise every
// element is read alone, guarded.
override VEC4: bool = false;
override WG: u32 = 64u;
override PX: u32 = 1u;  // 1, 2 or 4 (the launcher's rule)
// PACKED_W: wp is the OHWI packing (4 input channels one vec4); false reads the OIHW weight as
// given (wp[o][ci][tap], 4 strided scalars), saving the pack dispatch, ~20 % of a convT 4x4/2
// forward's time at 32 channels on SwiftShader.
override PACKED_W: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<act>;
@group(0) @binding(2) var<storage, read> wp: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<act>;
@group(0) @binding(5) var<storage, read> gy4: array<act4>;
@group(0) @binding(6) var<storage, read> wp4: array<vec4<f32>>;

// wp[i] if `ok` (the channel exists), else 0: the last quad of a cin_g % 4 != 0 group.
fn w_at(i: u32, ok: bool) -> f32 {
  if (ok) { return wp[i]; }
  return 0.0;
}

// The weights of output channel `o` (global), tap `tap`, input channels ci0..ci0+3 of the
// group (0 past cin_g).
fn wquad(o: u32, tap: u32, ci0: u32) -> vec4<f32> {
  let taps = params.kh * params.kw;
  if (PACKED_W) {
    let i = (o * taps + tap) * params.cin_g + ci0;
    if (VEC4) { return wp4[i / 4u]; }
    let n = params.cin_g - ci0;
    return vec4<f32>(wp[i], w_at(i + 1u, n > 1u), w_at(i + 2u, n > 2u), w_at(i + 3u, n > 3u));
  }
  let i = (o * params.cin_g + ci0) * taps + tap;
  if (VEC4) { return vec4<f32>(wp[i], wp[i + taps], wp[i + 2u * taps], wp[i + 3u * taps]); }
  let n = params.cin_g - ci0;
  return vec4<f32>(wp[i], w_at(i + taps, n > 1u), w_at(i + 2u * taps, n > 2u), w_at(i + 3u * taps, n > 3u));
}

@compute @workgroup_size(WG)
fn direct_input_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  let s = params.stride;
  let quads = (params.cin_g + 3u) / 4u;
  let per_slot = quads * params.groups;
  let xslots = ((params.in_w + s - 1u) / s + PX - 1u) / PX;
  let slot = id / per_slot;
  if (slot >= params.batch * params.in_h * s * xslots) { return; }
  let rest = id - slot * per_slot;
  let g = rest / quads;
  let ci0 = (rest - g * quads) * 4u;
  let xs = slot % xslots;
  let cx = (slot / xslots) % s;
  let line = slot / (xslots * s);          // b * in_h + iy
  let iy = line % params.in_h;
  let b = line / params.in_h;
  let ix0 = cx + s * xs * PX;              // pixel j: ix0 + j * s

  let py = iy + params.pad;
  let px0 = ix0 + params.pad;
  // Pixel j's accumulator, dy row offset and validity as named variables, not arrays (a
  // dynamically indexed local array lives in memory on SwiftShader); `PX > j` is constant.
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  // Taps increase along the class, so oy decreases: past py no tap can reach (break), above
  // the grid a later one still can (continue). Along x each pixel checks its own range.
  for (var ky = py % s; ky < params.kh; ky += s) {
    if (ky > py) { break; }
    let oy = (py - ky) / s;
    if (oy >= params.out_h) { continue; }
    let yline = (b * params.out_h + oy) * params.out_w;
    for (var kx = px0 % s; kx < params.kw; kx += s) {
      let p0 = pixel(0u, ix0, px0, kx, yline, g);
      let p1 = pixel(1u, ix0, px0, kx, yline, g);
      let p2 = pixel(2u, ix0, px0, kx, yline, g);
      let p3 = pixel(3u, ix0, px0, kx, yline, g);
      if (p0.ok == 0u && p1.ok == 0u && p2.ok == 0u && p3.ok == 0u) { continue; }
      let tap = ky * params.kw + kx;
      let o0 = g * params.cout_g;
      if (VEC4) {
        for (var co = 0u; co < params.cout_g; co += 4u) {
          let w0 = wquad(o0 + co, tap, ci0);
          let w1 = wquad(o0 + co + 1u, tap, ci0);
          let w2 = wquad(o0 + co + 2u, tap, ci0);
          let w3 = wquad(o0 + co + 3u, tap, ci0);
          let d0 = select(vec4<f32>(0.0), vec4<f32>(gy4[(p0.base + co) / 4u]), p0.ok != 0u);
          acc0 += d0.x * w0 + d0.y * w1 + d0.z * w2 + d0.w * w3;
          if (PX > 1u) {
            let d1 = select(vec4<f32>(0.0), vec4<f32>(gy4[(p1.base + co) / 4u]), p1.ok != 0u);
            acc1 += d1.x * w0 + d1.y * w1 + d1.z * w2 + d1.w * w3;
          }
          if (PX > 2u) {
            let d2 = select(vec4<f32>(0.0), vec4<f32>(gy4[(p2.base + co) / 4u]), p2.ok != 0u);
            acc2 += d2.x * w0 + d2.y * w1 + d2.z * w2 + d2.w * w3;
            let d3 = select(vec4<f32>(0.0), vec4<f32>(gy4[(p3.base + co) / 4u]), p3.ok != 0u);
            acc3 += d3.x * w0 + d3.y * w1 + d3.z * w2 + d3.w * w3;
          }
        }
      } else {
        for (var co = 0u; co < params.cout_g; co++) {
          let w = wquad(o0 + co, tap, ci0);
          acc0 += select(0.0, f32(gy[p0.base + co]), p0.ok != 0u) * w;
          if (PX > 1u) { acc1 += select(0.0, f32(gy[p1.base + co]), p1.ok != 0u) * w; }
          if (PX > 2u) {
            acc2 += select(0.0, f32(gy[p2.base + co]), p2.ok != 0u) * w;
            acc3 += select(0.0, f32(gy[p3.base + co]), p3.ok != 0u) * w;
          }
        }
      }
    }
  }
  let line_base = (b * params.in_h + iy) * params.in_w;
  store(ix0, line_base, g, ci0, acc0);
  if (PX > 1u) { store(ix0 + s, line_base, g, ci0, acc1); }
  if (PX > 2u) {
    store(ix0 + 2u * s, line_base, g, ci0, acc2);
    store(ix0 + 3u * s, line_base, g, ci0, acc3);
  }
}

struct Pixel {
  base: u32,  // dy offset of the output row this pixel meets through the tap, plus g*cout_g
  ok: u32,    // 1 if it meets one (the pixel exists, j < PX, the output column is on the grid)
}

// Pixel j of a slot (ix = ix0 + j*stride) through tap column kx: output column
// ox = (ix + pad - kx) / stride (exact: same class) when that is in [0, out_w). A pixel that
// meets none reads dy row `yline` (in range) and masks the value.
fn pixel(j: u32, ix0: u32, px0: u32, kx: u32, yline: u32, g: u32) -> Pixel {
  let s = params.stride;
  let pxj = px0 + j * s;
  let ox = (pxj - min(kx, pxj)) / s;
  let ok = j < PX && kx <= pxj && ox < params.out_w && ix0 + j * s < params.in_w;
  return Pixel((yline + select(0u, ox, ok)) * params.cout + g * params.cout_g, select(0u, 1u, ok));
}

// dx[ix of this line, g*cin_g + ci0 .. +3] (+ bias), the channels and the pixel that exist.
fn store(ix: u32, line_base: u32, g: u32, ci0: u32, v: vec4<f32>) {
  if (ix >= params.in_w) { return; }
  let base = (line_base + ix) * params.cin + g * params.cin_g + ci0;
  for (var c = 0u; c < 4u; c++) {
    if (ci0 + c < params.cin_g) {
      var x = v[c];
      if (HAS_BIAS) { x += bias[g * params.cin_g + ci0 + c]; }
      dst[base + c] = act(x);
    }
  }
}
