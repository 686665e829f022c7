/**
 * Every op that can appear on the tape. Recording an op requires its backward rule (see
 * `Tape.record`), so an op without one does not compile.
 */
export type OpName =
  // elementwise.ts
  | 'add'
  | 'mul'
  | 'scale'
  | 'sum'
  | 'relu'
  | 'relu6'
  | 'gelu'
  | 'toActivation'
  | 'fromActivation'
  // matmul.ts
  | 'linear'
  // conv2d.ts (dense and submanifold sparse)
  | 'conv2d'
  | 'convTranspose2d'
  | 'depthwiseConv2d'
  // norm.ts
  | 'batchNorm'
  | 'layerNorm'
  // sparse.ts and friends
  | 'channelScale'
  | 'maxPool'
  | 'dropPath'
  | 'maskFill'
  | 'scatterToDense'
  | 'gatherSites'
  // loss.ts, cross-entropy.ts, global-pool.ts
  | 'maskedPatchLoss'
  | 'crossEntropy'
  | 'globalAvgPool'
  | 'reshape';
