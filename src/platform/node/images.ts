/**
 * Node image helpers for the CLI: load a photo as the model's input (shorter side resized to
 * the input size with bicubic filtering, then centre-cropped, as the official visualisation
 * loader does; an image already at that size is used as is), and write RGB grids as PNG.
 */
import sharp from 'sharp';

/**
 * RGB bytes (HWC) of `path` (a file, or an encoded image's bytes) at size x size. With `cropPct` < 1 (timm's evaluation, 0.875) the
 * shorter side goes to floor(size / cropPct) and the centre size x size is kept.
 */
export async function loadSquareRgb(path: string | Uint8Array, size: number, cropPct = 1): Promise<Uint8Array> {
  let image = sharp(typeof path === 'string' ? path : Buffer.from(path.buffer, path.byteOffset, path.byteLength), { failOn: 'error' });
  const meta = await image.metadata();
  image = image.rotate().removeAlpha().toColourspace('srgb');
  if (meta.width !== size || meta.height !== size) {
    const side = Math.max(size, Math.floor(size / cropPct));
    image = image.resize(side, side, { fit: 'cover', position: 'centre', kernel: 'cubic' });
    const off = Math.round((side - size) / 2);
    if (side !== size) image = image.extract({ left: off, top: off, width: size, height: size });
  }
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== size || info.height !== size) {
    throw new Error(`${typeof path === 'string' ? path : 'image'}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Writes tiles (each size x size RGB) as a PNG grid of `columns` columns with a 2 px gap. */
export async function writeGridPng(path: string, tiles: Uint8Array[], size: number, columns: number): Promise<void> {
  const gap = 2;
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * size + (columns - 1) * gap;
  const height = rows * size + (rows - 1) * gap;
  const canvas = new Uint8Array(width * height * 3).fill(255);
  tiles.forEach((tile, k) => {
    const ox = (k % columns) * (size + gap);
    const oy = Math.floor(k / columns) * (size + gap);
    for (let y = 0; y < size; y++) {
      canvas.set(tile.subarray(y * size * 3, (y + 1) * size * 3), ((oy + y) * width + ox) * 3);
    }
  });
  await sharp(canvas, { raw: { width, height, channels: 3 } }).png().toFile(path);
}
