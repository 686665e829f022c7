// The optimizer's state pass, one thread between the gradients' sum of squares and
// shaders/lamb.wgsl's `moments`: `global_state` without loss scaling, `scaled_state` with it
// (torch.amp.GradScaler semantics). A file of its own: lamb.wgsl's entry points share one
// layout, and these buffers there would pass the 8 storage buffers per stage every adapter
// allows (test/gpu/binding-limits.test.ts).
//
// `global_state`: the global grad norm, the clip divisor max(1, norm / max_norm), a skip flag
// when the norm is not finite, and the step counter (advanced only when the step is applied).
// state = [clip, skip, norm, applied steps].
//
// `scaled_state`: the loss's backward seed was `scale[0]`, so the gradients arrive multiplied by it. The norm
// is divided by the scale and state[0] becomes clip * scale, so lamb.wgsl's `moments` pass
// unscales and clips in the one division it already does (the scale is a power of 2: this
// equals unscaling first, bit for bit, barring underflow). state = [clip * scale, skip, norm,
// applied steps], as `global_state` writes it.
//
// Then the scaler's update, as torch._amp_update_scale_: non-finite gradients (the step is
// skipped) multiply the scale by backoff_factor and reset the clean-step count; otherwise the
// count grows, and at growth_interval the scale is multiplied by growth_factor (if that stays
// finite) and the count resets. The step's own update used the scale before this change.
//
// Non-finite detection reads the exponent bits (WGSL lets compilers fold `x != x` away).
// Dispatch: one workgroup of one thread.

struct Params {
  max_norm: f32,         // global grad-norm clip (<= 0: no clipping)
  growth_factor: f32,    // these three: scaled_state only (0 for global_state)
  backoff_factor: f32,
  growth_interval: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;
@group(0) @binding(2) var<storage, read> grad_sumsq: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;        // [loss scale]
@group(0) @binding(4) var<storage, read_write> clean_steps: array<f32>;  // [steps since the last overflow or growth]

fn not_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(1)
fn global_state() {
  let norm = sqrt(grad_sumsq[0]);
  let skip = not_finite(grad_sumsq[0]);
  var clip = 1.0;
  if (params.max_norm > 0.0 && norm > params.max_norm) {
    clip = norm / params.max_norm;
  }
  state[0] = clip;
  state[1] = select(0.0, 1.0, skip);
  state[2] = norm;
  if (!skip) {
    state[3] = state[3] + 1.0;
  }
}

@compute @workgroup_size(1)
fn scaled_state() {
  let s = scale[0];
  let skip = not_finite(grad_sumsq[0]);
  let norm = sqrt(grad_sumsq[0]) / s;
  var clip = 1.0;
  if (params.max_norm > 0.0 && norm > params.max_norm) {
    clip = norm / params.max_norm;
  }
  state[0] = clip * s;
  state[1] = select(0.0, 1.0, skip);
  state[2] = norm;
  if (skip) {
    scale[0] = s * params.backoff_factor;
    clean_steps[0] = 0.0;
    return;
  }
  state[3] = state[3] + 1.0;
  let clean = clean_steps[0] + 1.0;
  if (clean >= params.growth_interval) {
    let grown = s * params.growth_factor;
    if (!not_finite(grown)) {
      scale[0] = grown;
    }
    clean_steps[0] = 0.0;
  } else {
    clean_steps[0] = clean;
  }
}
