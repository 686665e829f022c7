// The CREDITS listing of the photo corpus (tools/make-photo-corpus.ts): per photo its split,
// package, file, licence and author; per package the counts; and what was left out and why.

export interface PhotoCredit {
  key: string;
  split: 'train' | 'heldout';
  package: string;
  version: string;
  /** Path inside the package, from its root. */
  file: string;
  licence: string;
  /** What the package's copyright file states for the file. */
  debianLicence: string;
  author: string;
  width: number;
  height: number;
  sourceWidth: number;
  sourceHeight: number;
}

export interface PackageInfo {
  deb: string;
  version: string;
}

export interface CorpusManifest {
  fingerprint: string;
  shortSide: number;
  heldOutRule: { hash: string; seed: string; share: number };
  packages: Record<string, PackageInfo>;
  train: { photos: number; shards: string[] };
  heldout: { photos: number; shards: string[] };
}

const cell = (s: string) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

function countTable(rows: PhotoCredit[], packages: Record<string, PackageInfo>): string {
  const byPackage = new Map<string, { train: number; heldout: number; licences: Set<string> }>();
  for (const r of rows) {
    const c = byPackage.get(r.package) ?? { train: 0, heldout: 0, licences: new Set() };
    c[r.split]++;
    for (const l of r.licence.replace(/ \([^)]*\)/g, '').split(/; | and /)) c.licences.add(l);
    byPackage.set(r.package, c);
  }
  return [...byPackage]
    .map(([pkg, c]) => `| ${pkg} | ${packages[pkg].version} | ${c.train} | ${c.heldout} | ${cell([...c.licences].sort().join('; '))} |`)
    .join('\n');
}

export function creditsMarkdown(
  rows: PhotoCredit[],
  packages: Record<string, PackageInfo>,
  excluded: ReadonlyArray<readonly [string, string, string]>,
  manifest: CorpusManifest,
): string {
  const sorted = [...rows].sort((a, b) => (a.split === b.split ? a.key.localeCompare(b.key) : a.split === 'heldout' ? -1 : 1));
  const total = rows.length;
  return `# Credits for the photo corpus

The demo model's pre-training corpus: ${total} photographs from ${Object.keys(packages).length} Debian
packages, ${manifest.train.photos} for training and ${manifest.heldout.photos} held out (never trained on). Each was resized
so its shorter side is ${manifest.shortSide} px (Lanczos) and re-encoded as JPEG (quality 90). A photo is
held out when the 32-bit FNV-1a hash of \`${manifest.heldOutRule.seed}:<key>\` is below
${manifest.heldOutRule.share} x 2^32. \`node --import tsx tools/make-photo-corpus.ts\` downloads the packages, rebuilds the
shards and writes this file.

Licences are what each package's \`usr/share/doc/<package>/copyright\` states for the file
(Plasma wallpapers: also their \`metadata.json\`); the sample images of library packages
(scikit-image, scikit-learn, SciPy, Matplotlib) are covered there by the library's licence,
and their own licence is the one their documentation states, named in brackets. Photos under
GPL-2+, LGPL or CC-BY-SA are redistributed here modified (resized, re-encoded) under the same
licence; the originals are in the named Debian packages.

## Per package

| package | version | training | held out | licences |
| --- | --- | --- | --- | --- |
${countTable(rows, packages)}

## Photos

| key | split | package | file | licence | author |
| --- | --- | --- | --- | --- | --- |
${sorted.map((r) => `| \`${r.key}\` | ${r.split} | ${r.package} | \`${r.file}\` | ${cell(r.licence)} | ${cell(r.author)} |`).join('\n')}

## Not in the corpus

Images of these packages that are not photographs of a scene, or whose licence is unclear:

| package | images | reason |
| --- | --- | --- |
${excluded.map(([pkg, what, why]) => `| ${pkg} | ${cell(what)} | ${cell(why)} |`).join('\n')}
`;
}
