/**
 * The photo corpus tools (tools/make-photo-corpus.ts): the Debian copyright reader, the
 * held-out rule, and, when the corpus has been built in .cache/photo-corpus, its shards as the
 * project's own WebDataset reader sees them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DataLoader } from '../../src/data/loader.ts';
import { newMetrics } from '../../src/data/types.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { fileStanzas, parseCopyright, stanzaFor } from '../../tools/debian-copyright.ts';
import type { CorpusManifest, PhotoCredit } from '../../tools/photo-corpus-credits.ts';
import { HELD_OUT_SHARE, MIN_HELD_OUT_SHARE, fnv1a32, isHeldOut, keyFraction } from '../../tools/photo-corpus-split.ts';

// Shaped like lomiri-wallpapers' and mate-backgrounds' files: a catch-all first, upstream
// sub-folders that differ from the installed paths, a glob, continuation lines, a licence text.
const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wallpapers

Files: *
Copyright: 2010 Some team
License: LGPL-2.1+

Files: 16.04/Bridge_by_Sander_Klootwijk.jpg
Copyright: 2018. Sander Klootwijk
License: CC-BY-SA-4.0

Files: nature/Aqua.jpg
       nature/LadyBird.jpg
Copyright: 2008, Charles Barbin
           2009, Someone Else
License: GPL-2+

Files: desktop/MATE-Stripes-*.png
Copyright: 2014 Adam Erdman
License: GPL-2+

Files: images/land/*-sfiera*
Copyright: Chris Pickel
License: CC-BY-SA-4.0

Files:
 images/land/fields1*
 images/land/fields2*
Copyright: Various
License: public-domain
 Taken from unsplash.com, a collection of photographs.

Files: debian/*
Copyright: 2018, Packager
License: Expat

License: GPL-2+
 This program is free software; you can redistribute it ...
`;

describe('Debian copyright reader', () => {
  const stanzas = parseCopyright(COPYRIGHT);

  it('reads every Files stanza, with multi-line fields and short licence names', () => {
    expect(stanzas.map((s) => s.license)).toEqual(['LGPL-2.1+', 'CC-BY-SA-4.0', 'GPL-2+', 'GPL-2+', 'CC-BY-SA-4.0', 'public-domain', 'Expat']);
    expect(stanzas[5]!.patterns).toEqual(['images/land/fields1*', 'images/land/fields2*']);
    expect(stanzas[5]!.licenseText).toBe('Taken from unsplash.com, a collection of photographs.');
    expect(stanzas[2]!.patterns).toEqual(['nature/Aqua.jpg', 'nature/LadyBird.jpg']);
    expect(stanzas[2]!.copyright).toEqual(['2008, Charles Barbin', '2009, Someone Else']);
  });

  it('finds the stanza of an installed file; the most specific (last) match wins', () => {
    expect(stanzaFor(stanzas, 'usr/share/backgrounds/mate/nature/LadyBird.jpg')!.copyright[0]).toBe('2008, Charles Barbin');
    expect(stanzaFor(stanzas, 'usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg')!.license).toBe('CC-BY-SA-4.0');
    expect(stanzaFor(stanzas, 'usr/share/backgrounds/mate/desktop/MATE-Stripes-Dark.png')!.copyright).toEqual(['2014 Adam Erdman']);
    // Not named anywhere: the catch-all, never debian/* (whose last component is a bare *).
    expect(stanzaFor(stanzas, 'usr/share/backgrounds/other.jpg')!.license).toBe('LGPL-2.1+');
    // Overlapping patterns: DEP-5 applies the last; fileStanzas names both for the credits.
    const land = 'usr/share/games/endless-sky/images/land/fields10-sfiera.jpg';
    expect(stanzaFor(stanzas, land)!.license).toBe('public-domain');
    expect(fileStanzas(stanzas, land).map((s) => s.license)).toEqual(['CC-BY-SA-4.0', 'public-domain']);
    expect(fileStanzas(stanzas, 'usr/share/games/endless-sky/images/land/fields2.jpg').map((s) => s.copyright[0])).toEqual(['Various']);
    expect(fileStanzas(stanzas, 'usr/share/backgrounds/other.jpg')).toEqual([]);
    expect(stanzaFor(parseCopyright(COPYRIGHT.replace(/Files: \*\n[^\n]*\n[^\n]*\n/, '')), 'usr/share/x.jpg')).toBeNull();
  });
});

describe('held-out rule', () => {
  it('hashes with 32-bit FNV-1a (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('holds out about its share of keys, decided by the key alone', () => {
    const keys = Array.from({ length: 20000 }, (_, i) => `pkg_${i % 7}-photo_${i}`);
    const share = keys.filter(isHeldOut).length / keys.length;
    // Binomial standard deviation at n = 20000, p = 0.15 is 0.0025: 4 sigma either side.
    expect(Math.abs(share - HELD_OUT_SHARE)).toBeLessThan(0.01);
    expect(keys.map(isHeldOut)).toEqual(keys.map((k) => keyFraction(k) < HELD_OUT_SHARE));
    expect(keyFraction('a', 'seed-1')).not.toBe(keyFraction('a', 'seed-2'));
  });
});

const cache = new URL('../../.cache/photo-corpus/', import.meta.url).pathname;
const built = existsSync(`${cache}corpus.json`);

describe.skipIf(!built)('built photo corpus (node --import tsx tools/make-photo-corpus.ts)', () => {
  async function read(split: 'train' | 'heldout') {
    const { shards } = await nodeShards(`${cache}${split}`);
    const metrics = newMetrics();
    const out: { key: string; json: PhotoCredit; image: Uint8Array }[] = [];
    for (const shard of shards) {
      for await (const s of shard.samples(0, metrics)) out.push({ key: s.key, json: JSON.parse(s.json!) as PhotoCredit, image: s.image });
    }
    expect(metrics.ignoredEntries + metrics.skippedShards).toBe(0);
    return out;
  }

  it('splits by the held-out rule, never shares a photo between splits, and credits every photo', async () => {
    const manifest = JSON.parse(readFileSync(`${cache}corpus.json`, 'utf8')) as CorpusManifest;
    const train = await read('train');
    const heldout = await read('heldout');
    expect(train.length).toBe(manifest.train.photos);
    expect(heldout.length).toBe(manifest.heldout.photos);
    expect(heldout.length).toBeGreaterThanOrEqual(MIN_HELD_OUT_SHARE * (train.length + heldout.length));
    for (const s of heldout) expect(isHeldOut(s.key), s.key).toBe(true);
    for (const s of train) expect(isHeldOut(s.key), s.key).toBe(false);
    const all = [...train, ...heldout];
    // No photo twice, not even under two keys: the JPEG bytes are distinct as well.
    expect(new Set(all.map((s) => s.key)).size).toBe(all.length);
    expect(new Set(all.map((s) => createHash('sha256').update(s.image).digest('hex'))).size).toBe(all.length);
    const credits = readFileSync(`${cache}CREDITS.md`, 'utf8');
    for (const s of all) {
      expect(s.json.key).toBe(s.key);
      expect(s.json.licence.length, s.key).toBeGreaterThan(0);
      expect(s.json.author.length, s.key).toBeGreaterThan(0);
      expect(credits).toContain(`| \`${s.key}\` | ${s.json.split} | ${s.json.package} | \`${s.json.file}\` |`);
      const meta = await sharp(s.image).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', s.json.width, s.json.height, 3]);
      expect(Math.min(meta.width!, meta.height!), s.key).toBe(Math.min(256, s.json.sourceWidth, s.json.sourceHeight));
    }
  });

  it('feeds the training data path (`pretrain --data .cache/photo-corpus/train`): one epoch of 192 px crops', async () => {
    const { shards } = await nodeShards(`${cache}train`);
    const loader = new DataLoader({ shards, decoder: new SharpDecoder(), batchSize: 32, epochs: 1, seed: 0, augment: { size: 192 } });
    let images = 0;
    for (let b = await loader.next(); b; b = await loader.next()) {
      expect(b.pixels.length).toBe(b.batch * 192 * 192 * 3);
      images += b.batch;
    }
    const manifest = JSON.parse(readFileSync(`${cache}corpus.json`, 'utf8')) as CorpusManifest;
    expect(images).toBe(manifest.train.photos);
    expect(loader.metrics.skippedDecode + loader.metrics.ignoredEntries + loader.metrics.skippedShards).toBe(0);
  });
});
