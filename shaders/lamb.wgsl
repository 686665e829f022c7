// LAMB (timm 0.5.4 semantics, as SparK uses it) and AdamW, on the GPU with no CPU round trip.
//
// One optimizer step is:
//   1. sums of squares of every gradient (shaders/segmented.wgsl), summed to one value;
//   2. the state pass (shaders/grad-state.wgsl `global_state`, one thread): global grad norm, the clip divisor max(1, norm / maxNorm),
//      a skip flag when the norm is not finite, and the step counter (advanced only when the
//      step is applied). state = [clip, skip, norm, step].
//   3. `moments` per parameter (one thread per element): m, v updated in place and the
//      update u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps) + wd * p written to a scratch buffer;
//   4. for parameters with weight decay (LAMB), sums of squares of p and u;
//   5. `apply` per parameter: p -= lr * trust * u, trust = |p| / |u| (1 if either is 0) where
//      the trust ratio applies, 1 otherwise.
// Bias corrections come from the GPU step counter, so a skipped step changes nothing.
// 1 - beta^t is computed as -expm1(t ln beta) from ln beta (host, float64): `1 - pow(beta, t)`
// cancels catastrophically for beta near 1 (beta2 = 0.999: pow(0.999, 2) on lavapipe, via
// exp2(t log2 beta), was 5e-4 off in relative terms, and so was every early update).
// 1 - beta also comes from the host, rounded once, as PyTorch's `1 - beta` is.
//
// Non-finite detection reads the exponent bits: WGSL lets compilers assume floats are finite,
// so `x != x` may be folded away.
//
// The scheduled lr and weight decay are read from `hyper` = [lr, wd], a buffer the host
// writes each step, not from the uniform: a recorded step is replayed with new values.
//
// With dynamic loss scaling, grad-state.wgsl `scaled_state` takes the place of
// `global_state`: its state[0] is clip x scale, so `moments` unscales in its one division.
//
// Dispatch: ceil(n / 256) workgroups of 256 (2-D split).

struct Params {
  n: u32,
  norm_index: u32,   // this parameter's slot in `norms` (pairs: |p|^2, |u|^2)
  adapt: u32,        // 1: apply the trust ratio
  decay: u32,        // 1: this parameter takes weight decay (hyper[1])
  beta1: f32,
  beta2: f32,
  eps: f32,
  max_norm: f32,     // global grad-norm clip (<= 0: no clipping)
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  ln_beta1: f32,
  ln_beta2: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> u: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read> norms: array<f32>;
@group(0) @binding(8) var<storage, read> hyper: array<f32>;

const WG: u32 = 256u;

fn not_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// 1 - beta^t = -expm1(t ln beta) to float32 precision for any t >= 1. For |x| < 0.5 the
// Taylor series of expm1 (10 terms: the next is under 2^-30 of the sum) keeps the relative
// error at a few ulp; beyond, 1 - exp(x) >= 0.39 has no cancellation.
fn one_minus_pow(ln_beta: f32, t: f32) -> f32 {
  let x = t * ln_beta;
  if (x < -0.5) {
    return 1.0 - exp(x);
  }
  var term = x;
  var sum = x;
  for (var k = 2.0; k <= 10.0; k = k + 1.0) {
    term = term * x / k;
    sum = sum + term;
  }
  return -sum;
}

@compute @workgroup_size(256)
fn moments(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (i >= params.n) { return; }
  if (state[1] != 0.0) {
    u[i] = 0.0;
    return;
  }
  let step = state[3];
  let bc1 = one_minus_pow(params.ln_beta1, step);
  let bc2 = one_minus_pow(params.ln_beta2, step);
  let grad = g[i] / state[0];
  let mi = params.beta1 * m[i] + params.one_minus_beta1 * grad;
  let vi = params.beta2 * v[i] + params.one_minus_beta2 * grad * grad;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(bc2) + params.eps;
  let wd = select(0.0, hyper[1], params.decay != 0u);
  u[i] = (mi / bc1) / denom + wd * p[i];
}

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (i >= params.n) { return; }
  if (state[1] != 0.0) { return; }
  var trust = 1.0;
  if (params.adapt != 0u) {
    let w_norm = sqrt(norms[2u * params.norm_index]);
    let u_norm = sqrt(norms[2u * params.norm_index + 1u]);
    if (w_norm > 0.0 && u_norm > 0.0) {
      trust = w_norm / u_norm;
    }
  }
  p[i] = p[i] - hyper[0] * trust * u[i];
}
