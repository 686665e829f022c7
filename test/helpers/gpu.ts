/**
 * One Gpu + Context per test file, on the driver adapter-setup.ts chose for the run.
 * Call `useContext()` at the top of a describe block; it returns a getter.
 */
import { afterAll, beforeAll } from 'vitest';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';

export function useContext(): () => Context {
  let ctx: Context | null = null;
  beforeAll(async () => {
    ctx = new Context(await createNodeGpu());
  });
  afterAll(async () => {
    if (!ctx) return;
    await ctx.gpu.throwIfFailed();
    ctx.dispose();
    ctx.gpu.destroy();
    ctx = null;
  });
  return () => {
    if (!ctx) throw new Error('useContext(): no context (beforeAll did not run or failed)');
    return ctx;
  };
}
