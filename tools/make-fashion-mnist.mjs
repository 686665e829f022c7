#!/usr/bin/env node
// Converts Fashion-MNIST (Debian's dataset-fashion-mnist: gzipped idx files) into WebDataset
// shards: <split>/<index>.png (grayscale, `--size` px) + <split>/<index>.cls (class 0..9).
//
//   apt-get install -y dataset-fashion-mnist
//   node tools/make-fashion-mnist.mjs --out data/fashion-mnist [--size 28] [--train 60000] [--test 10000] [--per-shard 10000]
//
// Writes train-NNNNNN.tar and test-NNNNNN.tar (sorted names, zero owners, mtime 0: the same
// input gives the same bytes) and classes.json. At 28 px the whole set is ~35 MB; the eval
// and pre-training loaders resize to the model's input size, so upsampling here is optional
// (`--size 64` stores bicubic-upsampled PNGs, about 3x larger). Not committed: regenerate it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

const SOURCE = '/usr/share/datasets/fashion-mnist';
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return v;
}

function readIdx(file) {
  let bytes;
  try {
    bytes = gunzipSync(readFileSync(join(SOURCE, file)));
  } catch (e) {
    throw new Error(`${join(SOURCE, file)}: ${e.message} (install it: apt-get install -y dataset-fashion-mnist)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = view.getUint8(3);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  return { shape, data: bytes.subarray(4 + 4 * dims) };
}

/** One ustar header + data padded to 512 bytes. */
function tarEntry(name, data) {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return [header, Buffer.from(data), pad];
}

async function writeSplit(out, split, images, labels, count, size, perShard) {
  const [, h, w] = images.shape;
  const shards = [];
  for (let s = 0; s * perShard < count; s++) {
    const parts = [];
    for (let i = s * perShard; i < Math.min(count, (s + 1) * perShard); i++) {
      const raw = images.data.subarray(i * h * w, (i + 1) * h * w);
      let img = sharp(Buffer.from(raw), { raw: { width: w, height: h, channels: 1 } });
      if (size !== w) img = img.resize(size, size, { kernel: 'cubic' });
      const png = await img.png({ compressionLevel: 9 }).toBuffer();
      const key = `${split}/${String(i).padStart(6, '0')}`;
      parts.push(...tarEntry(`${key}.cls`, Buffer.from(String(labels.data[i]))), ...tarEntry(`${key}.png`, png));
    }
    parts.push(Buffer.alloc(1024));
    const name = `${split}-${String(s).padStart(6, '0')}.tar`;
    writeFileSync(join(out, name), Buffer.concat(parts));
    shards.push(name);
  }
  return shards;
}

async function main() {
  const out = option('out', 'data/fashion-mnist');
  const size = Number(option('size', '28'));
  const perShard = Number(option('per-shard', '10000'));
  if (!Number.isInteger(size) || size < 8) throw new Error(`--size must be an integer >= 8, got ${size}`);
  mkdirSync(out, { recursive: true });
  const summary = { classes: CLASSES, size, shards: {} };
  for (const [split, prefix, max] of [['train', 'train', 60000], ['test', 't10k', 10000]]) {
    const images = readIdx(`${prefix}-images-idx3-ubyte.gz`);
    const labels = readIdx(`${prefix}-labels-idx1-ubyte.gz`);
    const count = Math.min(Number(option(split, String(max))), images.shape[0]);
    summary.shards[split] = await writeSplit(out, split, images, labels, count, size, perShard);
    console.log(`${split}: ${count} images -> ${summary.shards[split].join(', ')}`);
  }
  writeFileSync(join(out, 'classes.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
