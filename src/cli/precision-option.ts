/** The `--precision` option, declared once for every command that trains or times training. */
export const PRECISION_OPTION = {
  type: 'string',
  value: 'NAME',
  defaultText: '`f16` where the adapter has `shader-f16`, else `f32`',
  help: '`f16` or `f32`: storage of activations and their gradients (f32 accumulation, weights and optimizer state either way)',
} as const;
