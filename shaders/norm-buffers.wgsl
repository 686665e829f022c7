// The buffers of the norm kernels (batchnorm.wgsl, layernorm.wgsl), bound by name by
// src/ops/norm.ts: the same names and kinds in both, so `reduceColumns` serves both.
// x, dy and y hold activations or their gradients (`act` / `act_out`: f32, or f16 under
// precision f16; src/gpu/pipelines.ts puts the aliases in front); everything else is f32
// (gamma, beta, statistics, partial sums). BatchNorm's running_update writes an f32 running
// statistic through y, launched with every alias f32.
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> dy: array<act>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read> part_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> part_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<act_out>;
