/**
 * Security rules, checked on the source and on the BUILT page:
 * - the Content-Security-Policy of index.html and of `vite build`'s output allows no
 *   'unsafe-eval' and no script from elsewhere;
 * - no eval / new Function / string timers in src/ or in the built JS bundle;
 * - no HTML sinks (innerHTML, outerHTML, insertAdjacentHTML, document.write) in src/: strings
 *   from shards (keys, .json, .cls) and from files can only reach the page as text;
 * (That the gated-dataset token is stored nowhere is checked on what the page actually stores,
 * after a run from a gated URL: test/app/setup.test.ts.)
 * The build takes ~10-30 s here; it goes to a temporary folder, not dist/.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(n) ? [p] : [];
  });
}

/** The CSP of an HTML page's meta tag, as directive -> sources. */
function csp(html: string): Map<string, string[]> {
  const m = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]+)"/i.exec(html);
  expect(m, 'the page has a CSP meta tag').not.toBeNull();
  return new Map(m![1]!.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k!, v]));
}

function expectStrictCsp(html: string): void {
  const policy = csp(html);
  const scripts = policy.get('script-src') ?? policy.get('default-src');
  expect(scripts).toEqual(["'self'"]);
  for (const [directive, sources] of policy) {
    expect(sources, directive).not.toContain("'unsafe-eval'");
    expect(sources, directive).not.toContain("'wasm-unsafe-eval'");
  }
  expect(policy.get('worker-src')?.every((s) => s === "'self'" || s === 'blob:')).toBe(true);
}

// eval(, new Function(, Function(, setTimeout("...") / setInterval('...'); not a method
// called or declared `eval` (Module.eval(), switching to inference mode).
const EVAL = /(?<![.\w])eval\s*\((?!\)\s*[:{])|\bnew\s+Function\s*\(|(?<![.\w])Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*['"`]/;
const HTML_SINK = /\.(?:innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|createContextualFragment|srcdoc/;

describe('security', () => {
  let dist = '';
  beforeAll(() => {
    dist = mkdtempSync(join(tmpdir(), 'webspark-dist-'));
    execFileSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--outDir', dist, '--emptyOutDir', '--logLevel', 'error'], { cwd: root, stdio: 'pipe' });
  }, 180_000);
  afterAll(() => rmSync(dist, { recursive: true, force: true }));

  it('index.html and the built page have a CSP without unsafe-eval and with scripts from self only', () => {
    expectStrictCsp(readFileSync(join(root, 'index.html'), 'utf8'));
    expectStrictCsp(readFileSync(join(dist, 'index.html'), 'utf8'));
  });

  it('no eval or new Function in src/ or in the built JS', () => {
    const src = files(join(root, 'src'), /\.(ts|mjs|js)$/);
    expect(src.length).toBeGreaterThan(50);
    expect(src.filter((f) => EVAL.test(readFileSync(f, 'utf8'))).map((f) => f.slice(root.length))).toEqual([]);
    const built = files(dist, /\.js$/);
    expect(built.length).toBeGreaterThan(0);
    const offenders = built.flatMap((f) => {
      const m = EVAL.exec(readFileSync(f, 'utf8'));
      return m ? [`${f.slice(dist.length)}: ...${readFileSync(f, 'utf8').slice(Math.max(0, m.index - 60), m.index + 40)}...`] : [];
    });
    expect(offenders).toEqual([]);
    // The rule itself catches what it must (so an empty result means something).
    for (const bad of ['eval(x)', 'new Function("a", b)', 'x = Function("return 1")', "setTimeout('go()', 1)"]) expect(EVAL.test(bad), bad).toBe(true);
    for (const ok of ['evaluate(x)', 'model.eval()', '  eval(): this {', '}eval(){return 1}', 'isFunction(x)', 'setTimeout(() => 1, 5)']) expect(EVAL.test(ok), ok).toBe(false);
  });

  it('no HTML sinks in src/: shard keys, .json and .cls text can only reach the page as text', () => {
    const src = files(join(root, 'src'), /\.(ts|mjs|js)$/).concat([join(root, 'index.html')]);
    expect(src.filter((f) => HTML_SINK.test(readFileSync(f, 'utf8'))).map((f) => f.slice(root.length))).toEqual([]);
    for (const bad of ['el.innerHTML = key', 'el.outerHTML += s', 'el.insertAdjacentHTML("beforeend", s)', 'document.write(s)']) expect(HTML_SINK.test(bad), bad).toBe(true);
    expect(HTML_SINK.test('el.textContent = key')).toBe(false);
  });
});
