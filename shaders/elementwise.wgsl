// Elementwise ops over flat arrays of n elements (any layout: feature-map rows, weights,
// gradients), stored as `act` (f32, or f16 for activations under precision f16: the loader
// puts `alias act = ...` in front of this text). Values are loaded as f32, computed in f32
// and stored as act, so the f32 variant computes exactly what f32 code would.
//
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y when past the
// per-dimension limit; thread i handles element i = (wid.x + wid.y * nwg.x) * 256 + lid.x.
//
// Bindings: a, b are inputs; y the output (read_write for the in-place `axpy`), all `act`;
// `wide` an f32 input (the loss gradient `broadcast_scalar` spreads, the f32 tensor `from_f32`
// converts) and `wide_out` an f32 output (`to_f32`): the casts at the edge of the precision
// policy, where f32 data becomes an activation and its gradient returns to f32.

struct Params {
  n: u32,
  alpha: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
@group(0) @binding(4) var<storage, read> wide: array<f32>;
@group(0) @binding(5) var<storage, read_write> wide_out: array<f32>;

const WG: u32 = 256u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(f32(a[i]) + f32(b[i]));
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(f32(a[i]) * f32(b[i]));
}

// y = alpha * a
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(params.alpha * f32(a[i]));
}

// y += alpha * a, in place (parameter-gradient accumulation).
@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(f32(y[i]) + params.alpha * f32(a[i]));
}

// y = alpha everywhere.
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(params.alpha);
}

// y = alpha * wide[0] everywhere (the backward of a sum to a scalar).
@compute @workgroup_size(256)
fn broadcast_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(params.alpha * wide[0]);
}

// y = wide, stored as act (an f32 tensor entering the activations).
@compute @workgroup_size(256)
fn from_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(wide[i]);
}

// wide_out = a, widened to f32 (the gradient of from_f32).
@compute @workgroup_size(256)
fn to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  wide_out[i] = f32(a[i]);
}

@compute @workgroup_size(256)
fn relu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(max(f32(a[i]), 0.0));
}

// a = x, b = dy. The gradient at exactly 0 is 0, as in PyTorch.
@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(select(0.0, f32(b[i]), f32(a[i]) > 0.0));
}

@compute @workgroup_size(256)
fn relu6(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = act(clamp(f32(a[i]), 0.0, 6.0));
}

// PyTorch's hardtanh backward: gradient passes strictly inside (0, 6).
@compute @workgroup_size(256)
fn relu6_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let x = f32(a[i]);
  y[i] = act(select(0.0, f32(b[i]), x > 0.0 && x < 6.0));
}

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), which WGSL lacks.
fn erf(x: f32) -> f32 {
  let s = sign(x);
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1.0 - p * exp(-x * x));
}

const SQRT1_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

// GELU, exact form x * Phi(x) (PyTorch's default, used by ConvNeXt).
@compute @workgroup_size(256)
fn gelu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let x = f32(a[i]);
  y[i] = act(0.5 * x * (1.0 + erf(x * SQRT1_2)));
}

// d/dx x*Phi(x) = Phi(x) + x*phi(x). a = x, b = dy.
@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let x = f32(a[i]);
  let cdf = 0.5 * (1.0 + erf(x * SQRT1_2));
  let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
  y[i] = act(f32(b[i]) * (cdf + x * pdf));
}
