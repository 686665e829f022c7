// Global average pooling of a dense feature map and its gradient (the classifier's pooling
// of the encoder's last stage, timm's SelectAdaptivePool2d('avg') / torch.mean over H, W).
//
// Shapes: x [B*S, C] (dense feature-map rows, channels last, row = b*S + site), y [B, C],
// S = H*W sites per image; gy [B, C] and gx [B*S, C] their gradients.
//
// Entry points:
//   pool_forward   y[b, c] = sum_s x[b*S + s, c] / S. One thread per (b, c); adjacent threads
//                  read adjacent channels of the same row. Dispatch ceil(B*C / 256) workgroups.
//                  The sum runs in f32 in site order (S is at most a few hundred sites).
//   pool_backward  gx[b*S + s, c] = gy[b, c] / S. One thread per element of gx; dispatch
//                  ceil(B*S*C / 256) workgroups of 256 (2-D split).

// Storage: x, y, gy, gx are activations or their gradients (`act`: f32, or f16 under precision
// f16; src/gpu/pipelines.ts puts the aliases in front); the sum runs in f32.

struct Params {
  n: u32,       // outputs of the pass: B*C (forward) or B*S*C (backward)
  C: u32,
  S: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<storage, read> gy: array<act>;
@group(0) @binding(4) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(256)
fn pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let b = i / params.C;
  let c = i % params.C;
  var acc = 0.0;
  for (var s = 0u; s < params.S; s++) {
    acc += f32(x[(b * params.S + s) * params.C + c]);
  }
  y[i] = act(acc / f32(params.S));
}

@compute @workgroup_size(256)
fn pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let row = i / params.C;
  let c = i % params.C;
  gx[i] = act(f32(gy[(row / params.S) * params.C + c]) / f32(params.S));
}
