/**
 * Image dimensions from the first bytes of a JPEG, PNG, WebP, GIF or BMP, without decoding:
 * the crop box must be chosen before the decoder crops and resizes in one call.
 */
export interface ImageDims {
  width: number;
  height: number;
}

function u16be(b: Uint8Array, i: number) {
  return (b[i]! << 8) | b[i + 1]!;
}
function u16le(b: Uint8Array, i: number) {
  return b[i]! | (b[i + 1]! << 8);
}
function u32be(b: Uint8Array, i: number) {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}
function u24le(b: Uint8Array, i: number) {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
}

function jpegSize(b: Uint8Array): ImageDims | null {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const length = u16be(b, i + 2);
    // Start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = u16be(b, i + 5);
      const width = u16be(b, i + 7);
      return width > 0 && height > 0 ? { width, height } : null;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data before any frame header
    i += 2 + length;
  }
  return null;
}

/** Width and height of an encoded image, or null when the header is not understood. */
export function imageSize(b: Uint8Array): ImageDims | null {
  if (b.length < 16) return null;
  if (b[0] === 0xff && b[1] === 0xd8) return jpegSize(b);
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b.length >= 24) {
    return { width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { width: u16le(b, 6), height: u16le(b, 8) };
  if (b[0] === 0x42 && b[1] === 0x4d && b.length >= 26) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)) };
  }
  const tag = String.fromCharCode(...b.subarray(0, 4), ...b.subarray(8, 16));
  if (tag.startsWith('RIFFWEBPVP8') && b.length >= 30) {
    const kind = String.fromCharCode(b[15]!);
    if (kind === ' ') return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    if (kind === 'L') {
      const bits = (b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)) >>> 0;
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (kind === 'X') return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  }
  return null;
}
