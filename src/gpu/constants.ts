/**
 * WebGPU flag values (from the spec). Spelled out so modules can use them at load time in
 * Node, where the `GPUBufferUsage` globals exist only after the `webgpu` package installs them.
 */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  QUERY_RESOLVE: 0x200,
} as const;
export const ShaderStage = { COMPUTE: 0x4 } as const;
export const MapMode = { READ: 0x1 } as const;
