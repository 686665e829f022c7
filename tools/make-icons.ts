/**
 * Renders public/icon.svg into the raster icons the page and its web app manifest name:
 * public/icon-192.png, public/icon-512.png and public/favicon.ico (a 32 x 32 and a 16 x 16 PNG
 * in an ICO container, for browsers and tools that ask for /favicon.ico whatever the page says).
 *
 *   node --import tsx tools/make-icons.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

const publicDir = new URL('../public/', import.meta.url).pathname;
const svg = readFileSync(`${publicDir}icon.svg`);

const png = (size: number) => sharp(svg, { density: (72 * size) / 64 }).resize(size, size).png({ compressionLevel: 9 }).toBuffer();

/** An ICO file whose images are PNGs (allowed since Windows Vista; every browser reads it). */
function ico(images: { size: number; data: Buffer }[]): Buffer {
  const header = Buffer.alloc(6 + 16 * images.length);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(images.length, 4);
  let offset = header.length;
  images.forEach(({ size, data }, i) => {
    const e = 6 + 16 * i;
    header.writeUInt8(size >= 256 ? 0 : size, e); // width (0 means 256)
    header.writeUInt8(size >= 256 ? 0 : size, e + 1); // height
    header.writeUInt8(0, e + 2); // palette size
    header.writeUInt8(0, e + 3); // reserved
    header.writeUInt16LE(1, e + 4); // colour planes
    header.writeUInt16LE(32, e + 6); // bits per pixel
    header.writeUInt32LE(data.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += data.length;
  });
  return Buffer.concat([header, ...images.map((i) => i.data)]);
}

for (const size of [192, 512]) writeFileSync(`${publicDir}icon-${size}.png`, await png(size));
writeFileSync(`${publicDir}favicon.ico`, ico([{ size: 32, data: await png(32) }, { size: 16, data: await png(16) }]));
console.log('wrote public/icon-192.png, public/icon-512.png, public/favicon.ico');
