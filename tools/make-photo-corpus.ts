#!/usr/bin/env node
// Builds the photo corpus that the demo model is pre-trained on: real, licensed photographs
// from Debian packages, packed as WebDataset shards with a held-out split and credits.
//
//   node --import tsx tools/make-photo-corpus.ts [--cache DIR]      (default DIR: .cache/photo-corpus)
//
// Packages are fetched with `apt-get download` into DIR/debs and unpacked with `dpkg-deb -x`
// into DIR/pkg (nothing is installed). Licence and authors come from each package's
// usr/share/doc/<package>/copyright (DEP-5), per file. Each photo is resized so its shorter
// side is 256 px (Lanczos; smaller photos keep their size), re-encoded as JPEG q90 without
// metadata, and stored as <key>.jpg + <key>.json. Output:
//   DIR/train/photos-train-NNNNNN.tar      the photos trained on
//   DIR/heldout/photos-heldout-NNNNNN.tar  the held-out photos (tools/photo-corpus-split.ts)
//   DIR/corpus.json, DIR/CREDITS.md, and docs/photo-corpus-credits.md (the same credits)
// A second run with the same packages and settings only checks and prints "up to date".
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { fileStanzas, parseCopyright, stanzaFor, type CopyrightStanza } from './debian-copyright.ts';
import { EXCLUDED, SOURCES, type PhotoSource } from './photo-corpus-sources.ts';
import { HELD_OUT_SHARE, MIN_HELD_OUT_SHARE, SPLIT_SEED, isHeldOut, keyFraction } from './photo-corpus-split.ts';
import { creditsMarkdown, type CorpusManifest, type PackageInfo, type PhotoCredit } from './photo-corpus-credits.ts';

const root = new URL('..', import.meta.url).pathname;
const SHORT_SIDE = 256;
const JPEG_QUALITY = 90;
const PHOTOS_PER_SHARD = 200;
/** Bumped when the output format changes, so cached outputs are rebuilt. */
const FORMAT = 1;

/** A photo of the corpus: its credits and where its unpacked file lies. */
interface Photo extends Omit<PhotoCredit, 'split' | 'width' | 'height' | 'sourceWidth' | 'sourceHeight'> {
  path: string;
}

interface Encoded {
  data: Buffer;
  width: number;
  height: number;
  sourceWidth: number;
  sourceHeight: number;
}

interface Item {
  photo: Photo;
  jpg: Encoded;
  json: PhotoCredit;
}

function parseArgs(argv: string[]): { cache: string } {
  const i = argv.indexOf('--cache');
  if (argv.some((a) => a.startsWith('--') && a !== '--cache')) {
    throw new Error(`unknown option ${argv.find((a) => a.startsWith('--') && a !== '--cache')} (known: --cache DIR)`);
  }
  return { cache: resolve(i >= 0 && argv[i + 1] ? argv[i + 1] : join(root, '.cache/photo-corpus')) };
}

function need(cmd: string, why: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cmd} not found: it is needed to ${why} (a Debian or Ubuntu system has it)`);
  }
}

/** Downloads (once) and unpacks (once) a package; returns { dir, deb, version }. */
function fetchPackage(cache: string, pkg: string): { dir: string } & PackageInfo {
  const debs = join(cache, 'debs');
  mkdirSync(debs, { recursive: true });
  let deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) {
    console.log(`downloading ${pkg}`);
    try {
      execFileSync('apt-get', ['download', pkg], { cwd: debs, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`apt-get download ${pkg} failed (${String(err.stderr ?? err.message).trim()}); run apt-get update, or check that the package exists in this release`);
    }
    deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no ${pkg}_*.deb in ${debs}`);
  }
  const dir = join(cache, 'pkg', pkg);
  const stamp = join(dir, '.unpacked-from');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== deb) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('dpkg-deb', ['-x', join(debs, deb), dir]);
    writeFileSync(stamp, deb);
  }
  return { dir, deb, version: deb.split('_')[1].replace('%3a', ':') };
}

/** A Plasma wallpaper's largest image (the others are the same photo at other sizes). */
function plasmaImage(dir: string, name: string): string {
  const images = join('usr/share/wallpapers', name, 'contents/images');
  const files = readdirSync(join(dir, images)).filter((f) => /^\d+x\d+\.(jpg|png)$/.test(f));
  if (files.length === 0) throw new Error(`plasma-workspace-wallpapers: ${images} holds no WxH.jpg/png`);
  const area = (f: string) => f.split('.')[0].split('x').reduce((a, b) => a * Number(b), 1);
  return join(images, files.sort((a, b) => area(b) - area(a))[0]);
}

/** The files one source entry stands for: itself, a Plasma wallpaper's image, or a folder's. */
function expand(dir: string, pkg: string, entry: PhotoSource): { file: string; plasma: string | null }[] {
  if (entry.file.startsWith('plasma:')) {
    const plasma = entry.file.slice('plasma:'.length);
    return [{ file: plasmaImage(dir, plasma), plasma }];
  }
  if (entry.file.startsWith('folder:')) {
    const folder = entry.file.slice('folder:'.length);
    if (!existsSync(join(dir, folder))) throw new Error(`${pkg} has no folder ${folder}: update tools/photo-corpus-sources.ts`);
    const except = new Set(entry.except ?? []);
    const names = readdirSync(join(dir, folder)).filter((f) => /\.(jpe?g|png)$/i.test(f) && !except.has(f));
    return names.sort().map((f) => ({ file: join(folder, f), plasma: null }));
  }
  return [{ file: entry.file, plasma: null }];
}

/** Licence and authors as the copyright file states them; every stanza where patterns overlap. */
function debianCredits(stanzas: CopyrightStanza[], pkg: string, file: string): { licence: string; author: string; debianLicence: string } {
  const last = stanzaFor(stanzas, file);
  if (!last) throw new Error(`${pkg}: its copyright file covers no stanza for ${file}`);
  const holders = (s: CopyrightStanza) => {
    const who = s.copyright.join('; ');
    // "Various" says nothing by itself; the licence text then says where the files came from.
    return /^various$/i.test(who) && s.licenseText ? `${who} (${s.licenseText.split('. ')[0]!.replace(/\.$/, '')})` : who;
  };
  // Stanzas that say the same (two patterns for one source) count once.
  const named = [...new Map(fileStanzas(stanzas, file).map((s) => [`${s.license}|${holders(s)}`, s])).values()];
  if (named.length > 1) {
    return {
      licence: `${named.map((s) => s.license).join(' and ')} (${named.length} stanzas of the Debian copyright name this file)`,
      author: named.map(holders).join(' / '),
      debianLicence: last.license,
    };
  }
  return { licence: last.license, author: holders(last), debianLicence: last.license };
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');

/** Resolves every listed photo to its file, key and credits. */
function collectPhotos(cache: string): { photos: Photo[]; packages: Record<string, PackageInfo> } {
  const photos: Photo[] = [];
  const packages: Record<string, PackageInfo> = {};
  for (const [pkg, list] of Object.entries(SOURCES)) {
    const { dir, deb, version } = fetchPackage(cache, pkg);
    packages[pkg] = { deb, version };
    const copyrightPath = join(dir, 'usr/share/doc', pkg, 'copyright');
    if (!existsSync(copyrightPath)) throw new Error(`${pkg}: no usr/share/doc/${pkg}/copyright in ${deb}`);
    const stanzas = parseCopyright(readFileSync(copyrightPath, 'utf8'));
    for (const { entry, file, plasma } of list.flatMap((entry) => expand(dir, pkg, entry).map((f) => ({ entry, ...f })))) {
      if (!existsSync(join(dir, file))) throw new Error(`${pkg} ${version} has no ${file}: update tools/photo-corpus-sources.ts`);
      const debian = debianCredits(stanzas, pkg, file);
      let author = entry.author ?? debian.author;
      let licence = entry.licence ?? debian.licence;
      if (plasma) {
        const meta = JSON.parse(readFileSync(join(dir, 'usr/share/wallpapers', plasma, 'metadata.json'), 'utf8')).KPlugin ?? {};
        if (meta.Authors?.length) author = meta.Authors.map((a: { Name: string }) => a.Name).join(', ');
        if (meta.License) licence = `${debian.licence} (Debian copyright); ${meta.License} (wallpaper metadata.json)`;
      }
      const name = plasma ?? file.slice(file.lastIndexOf('/') + 1).replace(/\.[^.]+$/, '');
      const key = `${slug(pkg)}-${slug(name)}`;
      photos.push({ key, package: pkg, version, file: `/${file}`, path: join(dir, file), licence, debianLicence: debian.debianLicence, author });
    }
  }
  const keys = new Set(photos.map((p) => p.key));
  if (keys.size !== photos.length) throw new Error('two photos got the same key: rename one in tools/photo-corpus-sources.ts');
  return { photos, packages };
}

/** scipy's face.dat is a bz2-compressed 768x1024x3 raw array; Debian's Python unpacks it. */
function loadInput(path: string): Sharp {
  if (!path.endsWith('face.dat')) return sharp(readFileSync(path));
  const raw = execFileSync('python3', ['-c', 'import bz2,sys; sys.stdout.buffer.write(bz2.decompress(open(sys.argv[1],"rb").read()))', path], {
    maxBuffer: 64 * 2 ** 20,
  });
  return sharp(raw, { raw: { width: 1024, height: 768, channels: 3 } });
}

async function encode(photo: Photo): Promise<Encoded> {
  const input = loadInput(photo.path);
  const meta = await input.metadata();
  const sourceWidth = meta.width ?? 0;
  const sourceHeight = meta.height ?? 0;
  if (!sourceWidth || !sourceHeight) throw new Error(`${photo.package} ${photo.file}: sharp read no image size`);
  const scale = Math.min(1, SHORT_SIDE / Math.min(sourceWidth, sourceHeight));
  const { data, info } = await input
    .removeAlpha()
    .toColourspace('srgb')
    .resize(Math.round(sourceWidth * scale), Math.round(sourceHeight * scale), { kernel: 'lanczos3' })
    .jpeg({ quality: JPEG_QUALITY, chromaSubsampling: '4:2:0' })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, sourceWidth, sourceHeight };
}

/** Writes shards of at most PHOTOS_PER_SHARD photos; tar with sorted names, owner 0, mtime 0. */
function writeShards(dir: string, prefix: string, items: Item[]): string[] {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const staging = join(dir, '.staging');
  const names: string[] = [];
  for (let s = 0; s * PHOTOS_PER_SHARD < items.length; s++) {
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
    const members: string[] = [];
    for (const { photo, jpg, json } of items.slice(s * PHOTOS_PER_SHARD, (s + 1) * PHOTOS_PER_SHARD)) {
      writeFileSync(join(staging, `${photo.key}.jpg`), jpg.data);
      writeFileSync(join(staging, `${photo.key}.json`), `${JSON.stringify(json)}\n`);
      members.push(`${photo.key}.jpg`, `${photo.key}.json`);
    }
    const name = `${prefix}-${String(s).padStart(6, '0')}.tar`;
    // Members in shuffled-by-hash order, .jpg before .json of each key: a shard read in order
    // mixes the packages, so a small shuffle buffer still sees every source early.
    execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--mode=a=r,u+w', '--format=ustar',
      '-cf', join(dir, name), '-C', staging, ...members]);
    names.push(name);
  }
  rmSync(staging, { recursive: true, force: true });
  return names;
}

function fingerprint(packages: Record<string, PackageInfo>): string {
  const script = ['make-photo-corpus.ts', 'photo-corpus-sources.ts', 'photo-corpus-split.ts', 'photo-corpus-credits.ts', 'debian-copyright.ts']
    .map((f) => readFileSync(join(root, 'tools', f), 'utf8'));
  return createHash('sha256').update(JSON.stringify({ FORMAT, packages, script, sharp: sharp.versions })).digest('hex');
}

async function main() {
  const { cache } = parseArgs(process.argv.slice(2));
  need('apt-get', 'download the Debian packages that hold the photos');
  need('dpkg-deb', 'unpack the downloaded packages');
  const started = performance.now();
  const { photos, packages } = collectPhotos(cache);
  const manifestPath = join(cache, 'corpus.json');
  const stamp = fingerprint(packages);
  if (existsSync(manifestPath)) {
    const old = JSON.parse(readFileSync(manifestPath, 'utf8')) as CorpusManifest;
    const present = [...old.train.shards.map((s) => join(cache, 'train', s)), ...old.heldout.shards.map((s) => join(cache, 'heldout', s))];
    if (old.fingerprint === stamp && present.every(existsSync)) {
      console.log(`up to date: ${old.train.photos} training + ${old.heldout.photos} held-out photos in ${cache}`);
      return;
    }
  }
  const train: Item[] = [];
  const heldout: Item[] = [];
  for (const photo of photos.sort((a, b) => keyFraction(a.key, 'order') - keyFraction(b.key, 'order'))) {
    const jpg = await encode(photo);
    const split = isHeldOut(photo.key) ? 'heldout' : 'train';
    const { path: _path, ...credit } = photo;
    const json: PhotoCredit = { ...credit, split, width: jpg.width, height: jpg.height, sourceWidth: jpg.sourceWidth, sourceHeight: jpg.sourceHeight };
    (split === 'heldout' ? heldout : train).push({ photo, jpg, json });
    console.log(`${split.padEnd(7)} ${photo.key}: ${jpg.sourceWidth}x${jpg.sourceHeight} -> ${jpg.width}x${jpg.height}`);
  }
  if (heldout.length < MIN_HELD_OUT_SHARE * photos.length) {
    throw new Error(`only ${heldout.length} of ${photos.length} photos are held out (< ${MIN_HELD_OUT_SHARE * 100} %): change SPLIT_SEED in tools/photo-corpus-split.ts`);
  }
  const manifest: CorpusManifest = {
    fingerprint: stamp,
    shortSide: SHORT_SIDE,
    heldOutRule: { hash: 'FNV-1a 32 of "<seed>:<key>"', seed: SPLIT_SEED, share: HELD_OUT_SHARE },
    packages,
    train: { photos: train.length, shards: writeShards(join(cache, 'train'), 'photos-train', train) },
    heldout: { photos: heldout.length, shards: writeShards(join(cache, 'heldout'), 'photos-heldout', heldout) },
  };
  const credits = creditsMarkdown([...train, ...heldout].map((i) => i.json), packages, EXCLUDED, manifest);
  writeFileSync(join(cache, 'CREDITS.md'), credits);
  writeFileSync(join(root, 'docs/photo-corpus-credits.md'), credits);
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const bytes = [...train, ...heldout].reduce((n, i) => n + i.jpg.data.length, 0);
  console.log(`wrote ${train.length} training and ${heldout.length} held-out photos (${(bytes / 2 ** 20).toFixed(1)} MiB of JPEG) ` +
    `to ${cache}/{train,heldout} in ${((performance.now() - started) / 1000).toFixed(1)} s; credits in docs/photo-corpus-credits.md`);
}

main().catch((e) => {
  console.error(`make-photo-corpus: ${e.message}`);
  process.exit(1);
});
