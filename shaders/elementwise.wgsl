// Elementwise ops over flat f32 arrays of n elements (any layout: feature-map rows,
// weights, gradients).
//
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y when past the
// per-dimension limit; thread i handles element i = (wid.x + wid.y * nwg.x) * 256 + lid.x.
//
// Bindings: a, b are inputs; y the output (read_write for the in-place `axpy`).

struct Params {
  n: u32,
  alpha: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = a[i] + b[i];
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = a[i] * b[i];
}

// y = alpha * a
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = params.alpha * a[i];
}

// y += alpha * a, in place (parameter-gradient accumulation).
@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = y[i] + params.alpha * a[i];
}

// y = alpha everywhere.
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = params.alpha;
}

// y = alpha * a[0] everywhere (the backward of a sum to a scalar).
@compute @workgroup_size(256)
fn broadcast_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = params.alpha * a[0];
}

@compute @workgroup_size(256)
fn relu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = max(a[i], 0.0);
}

// a = x, b = dy. The gradient at exactly 0 is 0, as in PyTorch.
@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = select(0.0, b[i], a[i] > 0.0);
}

@compute @workgroup_size(256)
fn relu6(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y[i] = clamp(a[i], 0.0, 6.0);
}

// PyTorch's hardtanh backward: gradient passes strictly inside (0, 6).
@compute @workgroup_size(256)
fn relu6_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let x = a[i];
  y[i] = select(0.0, b[i], x > 0.0 && x < 6.0);
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
  let x = a[i];
  y[i] = 0.5 * x * (1.0 + erf(x * SQRT1_2));
}

// d/dx x*Phi(x) = Phi(x) + x*phi(x). a = x, b = dy.
@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let x = a[i];
  let cdf = 0.5 * (1.0 + erf(x * SQRT1_2));
  let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
  y[i] = b[i] * (cdf + x * pdf);
}
