/**
 * The offline set of the static build (tools/precache-plugin.ts) and the service worker's
 * routing (src/platform/browser/offline-cache.ts), in Node: the list is every built file but
 * sw.js, its version changes with any file's bytes or name and with nothing else, the list is
 * written into the worker exactly once; only same-origin GETs within the scope are answered,
 * the listed files from the cache, navigations network-first, the rest left to the network.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { routeFor, type RequestFacts } from '../../src/platform/browser/offline-cache.ts';
import { injectManifest, precacheManifest } from '../../tools/precache-plugin.ts';
import { tempDir, writeTree } from '../data/helpers.ts';

describe('the offline set of a build', () => {
  const tmp = tempDir('precache');
  afterAll(() => tmp.remove());

  const build = (name: string, files: Record<string, string>) => {
    const dir = join(tmp.path, name);
    writeTree(dir, files);
    return dir;
  };
  const files = { 'index.html': '<html>', 'assets/index-abc.js': 'x', 'models/m.safetensors': '12345', 'sw.js': 'old worker' };

  it('lists every built file but the worker, sorted, with sizes; the version follows the bytes and names', () => {
    const m = precacheManifest(build('a', files));
    expect(m.files).toEqual([
      { path: 'assets/index-abc.js', bytes: 1 },
      { path: 'index.html', bytes: 6 },
      { path: 'models/m.safetensors', bytes: 5 },
    ]);
    expect(m.version).toMatch(/^[0-9a-f]{16}$/);
    expect(precacheManifest(build('same', files)).version).toBe(m.version);
    expect(precacheManifest(build('worker-differs', { ...files, 'sw.js': 'another worker' })).version).toBe(m.version);
    expect(precacheManifest(build('bytes-differ', { ...files, 'models/m.safetensors': '12346' })).version).not.toBe(m.version);
    const { 'assets/index-abc.js': js, ...rest } = files;
    expect(precacheManifest(build('name-differs', { ...rest, 'assets/index-abd.js': js })).version).not.toBe(m.version);
  });

  it('writes the list into the worker once, and refuses a worker without the placeholder or with two', () => {
    const m = { version: '0123456789abcdef', files: [{ path: 'index.html', bytes: 6 }] };
    const code = injectManifest('var a=JSON.parse("__WEBSPARK_PRECACHE_MANIFEST__");', m);
    expect(JSON.parse(JSON.parse(code.slice('var a=JSON.parse('.length, -2)))).toEqual(m);
    expect(() => injectManifest('var a=1;', m)).toThrow(/placeholder once .* found it 0 times/);
    expect(() => injectManifest('`__WEBSPARK_PRECACHE_MANIFEST__`+\'__WEBSPARK_PRECACHE_MANIFEST__\'', m)).toThrow(/found it 2 times/);
  });
});

describe('which requests the service worker answers', () => {
  const scope = 'https://app.example/spark/';
  const list = new Set(['index.html', 'models/demo model.safetensors', 'data/sample-000000.tar']);
  const get = (url: string, extra: Partial<RequestFacts> = {}) => routeFor({ url, method: 'GET', mode: 'cors', hasRange: false, ...extra }, scope, list);

  it('listed files from the cache, navigations network-first', () => {
    expect(get('https://app.example/spark/data/sample-000000.tar')).toBe('cache');
    expect(get('https://app.example/spark/models/demo%20model.safetensors')).toBe('cache');
    expect(get('https://app.example/spark/', { mode: 'navigate' })).toBe('navigate');
    expect(get('https://app.example/spark/index.html?x=1', { mode: 'navigate' })).toBe('navigate');
  });

  it('everything else to the network: other origins, outside the scope, unlisted, queries, ranges, other methods', () => {
    expect(get('https://data.example/spark/data/sample-000000.tar')).toBe('network');
    expect(get('http://app.example/spark/data/sample-000000.tar')).toBe('network');
    expect(get('https://other.example/', { mode: 'navigate' })).toBe('network');
    expect(get('https://app.example/other/data/sample-000000.tar')).toBe('network');
    expect(get('https://app.example/spark/data/sample-000001.tar')).toBe('network');
    expect(get('https://app.example/spark/gated/data/sample-000000.tar')).toBe('network');
    expect(get('https://app.example/spark/data/sample-000000.tar?token=abc')).toBe('network');
    expect(get('https://app.example/spark/data/sample-000000.tar', { hasRange: true })).toBe('network');
    expect(get('https://app.example/spark/data/sample-000000.tar', { method: 'POST' })).toBe('network');
    expect(get('https://app.example/spark/data/sample-000000.tar', { method: 'HEAD' })).toBe('network');
  });
});
