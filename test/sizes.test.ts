/**
 * Small files with one job (tools/check-sizes.ts): the code as it is has no file and no
 * function over the limits, and the check finds each kind of excess in text made to have it.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkSizes, MAX_FILE_LINES, MAX_FUNCTION_LINES, oversized } from '../tools/check-sizes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');

describe('file and function sizes', () => {
  it(`src/, bench/, tools/ and shaders/ have no file over ${MAX_FILE_LINES} lines and no function over ${MAX_FUNCTION_LINES}`, () => {
    expect(checkSizes(root)).toEqual([]);
  });

  it('finds a long file, a long function, method and arrow, and lets the limits themselves pass', () => {
    const atLimit = `function ok() {\n${body(MAX_FUNCTION_LINES - 2)}\n}\n`;
    expect(oversized('a.ts', atLimit)).toEqual([]);
    const long = `function big() {\n${body(MAX_FUNCTION_LINES - 1)}\n}\n`;
    expect(oversized('a.ts', long)).toEqual([`a.ts:1: big is ${MAX_FUNCTION_LINES + 1} lines (at most ${MAX_FUNCTION_LINES})`]);
    const method = `class C {\n  m() {\n${body(MAX_FUNCTION_LINES)}\n  }\n}\n`;
    expect(oversized('b.ts', method)).toEqual([`b.ts:2: m is ${MAX_FUNCTION_LINES + 2} lines (at most ${MAX_FUNCTION_LINES})`]);
    const arrow = `export const f = () => {\n${body(MAX_FUNCTION_LINES)}\n};\n`;
    expect(oversized('c.ts', arrow)).toEqual([`c.ts:1: function at line 1 is ${MAX_FUNCTION_LINES + 2} lines (at most ${MAX_FUNCTION_LINES})`]);
    const file = `let x = 0;\n${Array.from({ length: MAX_FILE_LINES }, (_, i) => `x += ${i};`).join('\n')}\n`;
    expect(oversized('d.ts', file)).toEqual([`d.ts: ${MAX_FILE_LINES + 1} lines (at most ${MAX_FILE_LINES})`]);
    // A shader counts by its length only.
    const shader = `fn big() {\n${body(MAX_FUNCTION_LINES)}\n}\n`;
    expect(oversized('e.wgsl', shader)).toEqual([]);
    expect(oversized('f.wgsl', file)).toEqual([`f.wgsl: ${MAX_FILE_LINES + 1} lines (at most ${MAX_FILE_LINES})`]);
  });
});
