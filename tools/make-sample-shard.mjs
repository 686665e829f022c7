#!/usr/bin/env node
// Rebuilds public/data/sample-000000.tar, the bundled WebDataset shard of real colour photos,
// and public/data/CREDITS.md, from images that Debian packages ship with clear licences.
//
//   node tools/make-sample-shard.mjs          (as root: installs the packages with apt)
//
// Each photo is resized so its shorter side is 256 px (Lanczos), re-encoded as JPEG q90 with
// metadata stripped, and stored as <key>.jpg + <key>.cls (class index) + <key>.json (source,
// licence). The tar has sorted names, zero owners and mtime 0, so the same package versions
// and the same sharp/libvips give the same bytes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const PACKAGES = ['python3-skimage', 'python3-sklearn', 'python3-scipy', 'python-matplotlib-data', 'mate-backgrounds'];
const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
const SKLEARN = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const MATE = '/usr/share/backgrounds/mate/nature';
const CLASSES = ['people', 'animals', 'flowers', 'plants', 'landscapes', 'objects', 'science'];

const CC0 = 'CC0-1.0';
const PD = 'public domain';
const MATE_LICENCE = 'GPL-2+';
/** [key, class, package, file, licence, note] */
const PHOTOS = [
  ['astronaut', 'people', 'python3-skimage', `${SKIMAGE}/astronaut.png`, PD, 'Eileen Collins, NASA; no known copyright restrictions'],
  ['grace_hopper', 'people', 'python-matplotlib-data', '/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg', PD, 'US Navy photograph'],
  ['chelsea', 'animals', 'python3-skimage', `${SKIMAGE}/chelsea.png`, CC0, 'photo by Stefan van der Walt'],
  ['raccoon', 'animals', 'python3-scipy', '/usr/lib/python3/dist-packages/scipy/misc/face.dat', PD, 'raccoon-procyon-lotor.jpg from public-domain-image.com (scipy.misc.face)'],
  ['ladybird', 'animals', 'mate-backgrounds', `${MATE}/LadyBird.jpg`, MATE_LICENCE, '2008 Charles Barbin'],
  ['flower', 'flowers', 'python3-sklearn', `${SKLEARN}/flower.jpg`, 'CC-BY-2.0', 'vultilion on Flickr (see sklearn/datasets/images/README.txt)'],
  ['fresh_flower', 'flowers', 'mate-backgrounds', `${MATE}/FreshFlower.jpg`, MATE_LICENCE, '2005 Jens Ansorg'],
  ['garden', 'flowers', 'mate-backgrounds', `${MATE}/Garden.jpg`, MATE_LICENCE, '2008 Charles Barbin'],
  ['yellow_flower', 'flowers', 'mate-backgrounds', `${MATE}/YellowFlower.jpg`, MATE_LICENCE, '2008 Charles Barbin'],
  ['two_wings', 'flowers', 'mate-backgrounds', `${MATE}/TwoWings.jpg`, MATE_LICENCE, '2008 Charles Barbin, Hylke Bons'],
  ['blinds', 'plants', 'mate-backgrounds', `${MATE}/Blinds.jpg`, MATE_LICENCE, '2008 Lennart Poettering, Andrea Cimitan'],
  ['green_meadow', 'plants', 'mate-backgrounds', `${MATE}/GreenMeadow.jpg`, MATE_LICENCE, '2005 Timothy Schellhase, 2008 Lapo Calamandrei'],
  ['rain_drops', 'plants', 'mate-backgrounds', `${MATE}/RainDrops.jpg`, MATE_LICENCE, '2008 "blackcombwhistler07"'],
  ['china', 'landscapes', 'python3-sklearn', `${SKLEARN}/china.jpg`, 'CC-BY-2.0', 'danielbuechele on Flickr (see sklearn/datasets/images/README.txt)'],
  ['dune', 'landscapes', 'mate-backgrounds', `${MATE}/Dune.jpg`, MATE_LICENCE, '2007 Marco Cogoni, 2008 Hylke Bons'],
  ['storm', 'landscapes', 'mate-backgrounds', `${MATE}/Storm.jpg`, MATE_LICENCE, '2008 Sergey Nazarov'],
  ['coffee', 'objects', 'python3-skimage', `${SKIMAGE}/coffee.png`, CC0, 'photo by Rachel Michetti'],
  ['motorcycle', 'objects', 'python3-skimage', `${SKIMAGE}/motorcycle_left.png`, 'Middlebury 2014 stereo data set terms (use and publication permitted, citation requested); Debian: BSD-3-Clause', 'Scharstein et al., GCPR 2014'],
  ['rocket', 'objects', 'python3-skimage', `${SKIMAGE}/rocket.jpg`, PD, 'DSCOVR launch on Falcon 9, released by SpaceX into the public domain'],
  ['aqua', 'objects', 'mate-backgrounds', `${MATE}/Aqua.jpg`, MATE_LICENCE, '2008 Charles Barbin'],
  ['wood', 'objects', 'mate-backgrounds', `${MATE}/Wood.jpg`, MATE_LICENCE, '2008 Jean-François Fortin Tam'],
  ['hubble_deep_field', 'science', 'python3-skimage', `${SKIMAGE}/hubble_deep_field.jpg`, PD, 'NASA'],
  ['ihc', 'science', 'python3-skimage', `${SKIMAGE}/ihc.png`, PD, 'immunohistochemistry image; no known copyright restrictions'],
  ['retina', 'science', 'python3-skimage', `${SKIMAGE}/retina.jpg`, CC0, 'Häggström, Mikael (2014), Wikimedia Commons'],
];

const root = new URL('..', import.meta.url).pathname;
const outDir = join(root, 'public/data');
const SHORT_SIDE = 256;

function ensurePackages() {
  const missing = PACKAGES.filter((p) => {
    try {
      execFileSync('dpkg', ['-s', p], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')}`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** scipy's face.dat is a bz2-compressed 768x1024x3 raw array; Python (Debian's) unpacks it. */
function loadInput(path) {
  if (!path.endsWith('face.dat')) return sharp(readFileSync(path));
  const raw = execFileSync('python3', ['-c', `import bz2,sys; sys.stdout.buffer.write(bz2.decompress(open('${path}','rb').read()))`], {
    maxBuffer: 64 * 2 ** 20,
  });
  return sharp(raw, { raw: { width: 1024, height: 768, channels: 3 } });
}

async function main() {
  ensurePackages();
  const work = mkdtempSync(join(tmpdir(), 'sample-shard-'));
  const members = [];
  let total = 0;
  for (const [n, [key, cls, pkg, file, licence, note]] of PHOTOS.entries()) {
    if (!existsSync(file)) throw new Error(`${file} (from ${pkg}) is missing`);
    const input = loadInput(file);
    const meta = await input.metadata();
    const scale = SHORT_SIDE / Math.min(meta.width, meta.height);
    const jpg = await input
      .removeAlpha()
      .toColourspace('srgb')
      .resize(Math.round(meta.width * scale), Math.round(meta.height * scale), { kernel: 'lanczos3' })
      .jpeg({ quality: 90, chromaSubsampling: '4:2:0' })
      .toBuffer({ resolveWithObject: true });
    const name = `${String(n).padStart(3, '0')}_${key}`;
    const json = { key: name, class: cls, package: pkg, file, licence, note, width: jpg.info.width, height: jpg.info.height };
    writeFileSync(join(work, `${name}.jpg`), jpg.data);
    writeFileSync(join(work, `${name}.cls`), String(CLASSES.indexOf(cls)));
    writeFileSync(join(work, `${name}.json`), `${JSON.stringify(json)}\n`);
    members.push(`${name}.cls`, `${name}.jpg`, `${name}.json`);
    total += jpg.data.length;
    console.log(`${name}: ${jpg.info.width}x${jpg.info.height}, ${(jpg.data.length / 1024).toFixed(0)} KiB`);
  }
  mkdirSync(outDir, { recursive: true });
  const tarPath = join(outDir, 'sample-000000.tar');
  execFileSync('tar', [
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--mode=a=r,u+w',
    '--format=ustar', '-cf', tarPath, '-C', work, ...members.sort(),
  ]);
  rmSync(work, { recursive: true, force: true });
  writeFileSync(join(outDir, 'sample.json'), `${JSON.stringify({ shards: ['sample-000000.tar'], classes: CLASSES, images: PHOTOS.length }, null, 2)}\n`);
  writeFileSync(join(outDir, 'CREDITS.md'), credits());
  console.log(`wrote ${tarPath}: ${PHOTOS.length} photos, ${(total / 2 ** 20).toFixed(2)} MiB of JPEG`);
}

function credits() {
  const rows = PHOTOS.map(
    ([key, cls, pkg, file, licence, note], n) =>
      `| \`${String(n).padStart(3, '0')}_${key}\` | ${cls} | ${pkg} | \`${file}\` | ${licence} | ${note} |`,
  );
  return `# Credits for the bundled sample data

\`sample-000000.tar\` is a WebDataset shard of ${PHOTOS.length} colour photographs taken from Debian
packages, resized to a shorter side of ${SHORT_SIDE} px and re-encoded as JPEG (quality 90). Each
\`<key>.jpg\` has a \`<key>.cls\` (index into the classes of \`sample.json\`) and a \`<key>.json\`
naming its source. \`tools/make-sample-shard.mjs\` rebuilds the shard and this file.

Licences, as stated by the packages (\`/usr/share/doc/<package>/copyright\`, scikit-image's
\`skimage/data/_fetchers.py\` docstrings, \`sklearn/datasets/images/README.txt\`, scipy's
\`scipy.misc.face\` docstring). The mate-backgrounds photos are GPL-2+: their modified versions
here are under the same licence, and the source (the original pictures) is in the Debian
package \`mate-backgrounds\`.

| key | class | package | file | licence | author / note |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

await main();
