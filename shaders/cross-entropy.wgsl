// Softmax cross-entropy with label smoothing over rows of logits (PyTorch's
// CrossEntropyLoss(label_smoothing=eps), timm's LabelSmoothingCrossEntropy):
//
//   q[i, c]  = (1 - eps) [c == y_i] + eps / K          (the smoothed target)
//   loss     = (1/B) sum_i ( logsumexp(z_i) - sum_c q[i, c] z[i, c] )
//   dL/dz    = (softmax(z_i) - q_i) / B
//
// Shapes: z [B, K] logits, labels [B] (u32 class indices), rows [B] per-row losses,
// d [B, K] the gradient for an upstream gradient of 1 (saved for backward), loss [1],
// gy [1] the upstream gradient, gz [B, K] the gradient of the logits.
//
// Entry points:
//   ce_rows      one thread per row: max, sum of exp(z - max) in f32, the row's loss and its
//                gradient row. Dispatch ceil(B / 64) workgroups. K is the class count (tens
//                to a thousand), so a row is a short serial loop.
//   ce_mean      loss[0] = sum_i rows[i] / B, one workgroup of 256 threads: strided partial
//                sums, then a tree in workgroup memory.
//   ce_backward  gz[i] = d[i] * gy[0]. One thread per element; ceil(B*K / 256) workgroups.

struct Params {
  B: u32,
  K: u32,
  smoothing: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;
@group(0) @binding(5) var<storage, read_write> d: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> gz: array<f32>;

@compute @workgroup_size(64)
fn ce_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.B) { return; }
  let K = params.K;
  let base = i * K;
  var m = z[base];
  for (var c = 1u; c < K; c++) { m = max(m, z[base + c]); }
  var sum = 0.0;
  for (var c = 0u; c < K; c++) { sum += exp(z[base + c] - m); }
  let lse = m + log(sum);
  let y = labels[i];
  let off = params.smoothing / f32(K);
  let on = 1.0 - params.smoothing + off;
  let invB = 1.0 / f32(params.B);
  var target_dot = 0.0;
  for (var c = 0u; c < K; c++) {
    let q = select(off, on, c == y);
    let zc = z[base + c];
    target_dot += q * zc;
    d[base + c] = (exp(zc - m) / sum - q) * invB;
  }
  rows[i] = lse - target_dot;
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn ce_mean(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < params.B; i += 256u) { acc += rows[i]; }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride = stride >> 1u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { loss[0] = partial[0] / f32(params.B); }
}

@compute @workgroup_size(256)
fn ce_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.B * params.K) { return; }
  gz[i] = d[i] * gy[0];
}
