/**
 * Packs a shader's `struct Params` (u32 / i32 / f32 fields, in declaration order) into a
 * uniform block padded to 16 bytes. Mirror the WGSL struct field by field.
 */
export class ParamWriter {
  private words: number[] = [];
  private kinds: ('u' | 'i' | 'f')[] = [];

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`u32 param out of range: ${v}`);
    this.words.push(v);
    this.kinds.push('u');
    return this;
  }

  i32(v: number): this {
    if (!Number.isInteger(v)) throw new Error(`i32 param not an integer: ${v}`);
    this.words.push(v);
    this.kinds.push('i');
    return this;
  }

  f32(v: number): this {
    this.words.push(v);
    this.kinds.push('f');
    return this;
  }

  build(): Uint8Array {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    this.words.forEach((v, k) => {
      const kind = this.kinds[k];
      if (kind === 'u') u[k] = v;
      else if (kind === 'i') i[k] = v;
      else f[k] = v;
    });
    return new Uint8Array(buf);
  }
}

export function params(): ParamWriter {
  return new ParamWriter();
}
