// The uniform of the conv kernels, shared by shaders/conv2d.wgsl and shaders/conv-direct.wgsl
// (included by `// #include "conv-params.wgsl"`, src/util/shader-includes.ts): one
// geometry, packed by field name by the launcher (src/ops/conv-launch.ts). Fields a kernel
// does not read are 0.

struct Params {
  batch: u32,
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  cin: u32,         // row stride of x / dx
  cout: u32,        // row stride of y / dy
  cin_g: u32,
  cout_g: u32,
  kh: u32,
  kw: u32,
  stride: u32,
  pad: u32,
  rows: u32,        // GEMM: walked rows: out rows (passes 0, 2), sparse in rows (pass 1)
  m_tiles: u32,     // GEMM: M tiles of this dispatch (the largest class's in pass 1)
  n_tiles: u32,
  groups: u32,
  chunk_rows: u32,  // GEMM pass 2: rows per chunk
  chunks: u32,      // reduce_partials: number of partials
  _pad0: u32,
}
