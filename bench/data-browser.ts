/**
 * `bench data --browser`: builds a page around bench/data-page.ts with Vite,
 * serves it and the bundled shard from 127.0.0.1, and runs it in headless Chromium (Debian's
 * /usr/bin/chromium through playwright-core; WebGPU on SwiftShader where there is no GPU).
 * `node --import tsx bench/data-browser.ts [--no-gpu] [--images N] [--concurrency C]
 * [--compare] [--rounds R]`: --compare times the path training uses ('pixels'), the
 * one-pixel-per-thread shader entry, the texture upload and decode alone, interleaved round by round, and prints
 * each one's median.
 */
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrowserBenchOptions, BrowserBenchResult } from './data-page.ts';

/** Headless Chromium with WebGPU on (SwiftShader where there is no GPU); the app tests use these too. */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.tar': 'application/x-tar' };

export interface DataPage {
  page: import('playwright-core').Page;
  /** http://127.0.0.1:<port>; `/shard.tar` is the shard, `/files/<name>` the extra files. */
  base: string;
  version: string;
  close(): Promise<void>;
}

/**
 * Builds the page (Vite), serves it with `shard` and `files` on 127.0.0.1, and opens it in
 * headless Chromium. The page's window has runBrowserBench, browserLoaderSummary and
 * browserDecode from bench/data-page.ts.
 */
export async function openDataPage(
  shard: string,
  files: Record<string, string> = {},
  executablePath = '/usr/bin/chromium',
): Promise<DataPage> {
  const entry = fileURLToPath(new URL('./data-page.ts', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'webspark-data-page-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const f of cleanups.reverse()) await f();
  };
  try {
    writeFileSync(
      join(dir, 'index.html'),
      `<!doctype html><meta charset="utf-8"><title>bench data</title>
<script type="module">
import * as bench from '${entry}';
Object.assign(window, bench);
window.benchReady = true;
</script>`,
    );
    const { build } = await import('vite');
    await build({ root: dir, configFile: false, logLevel: 'error', build: { outDir: join(dir, 'dist'), target: 'es2022' } });
    const server = createServer((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      const file =
        path === '/shard.tar'
          ? shard
          : path.startsWith('/files/')
            ? files[path.slice('/files/'.length)]
            : join(dir, 'dist', path === '/' ? 'index.html' : path);
      let size: number;
      try {
        size = statSync(file ?? '').size;
      } catch {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file!)] ?? 'application/octet-stream', 'content-length': size });
      createReadStream(file!).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
    return { page, base, version: browser.version(), close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface BrowserBenchArgs extends Partial<Omit<BrowserBenchOptions, 'shardUrl'>> {
  shard?: string;
  executablePath?: string;
  print?: (line: string) => void;
}

export async function benchDataBrowser(args: BrowserBenchArgs = {}): Promise<BrowserBenchResult> {
  const print = args.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const shard = args.shard ?? fileURLToPath(new URL('../public/data/sample-000000.tar', import.meta.url));
  const { page, base, version, close } = await openDataPage(shard, {}, args.executablePath);
  try {
    page.on('pageerror', (e) => print(`page error: ${e.message}`));
    const opts: BrowserBenchOptions = {
      shardUrl: `${base}/shard.tar`,
      images: args.images ?? 480,
      batchSize: args.batchSize ?? 32,
      size: args.size ?? 224,
      concurrency: args.concurrency ?? 16,
      gpu: args.gpu ?? true,
      paths: args.paths ?? ['pixels'],
      rounds: args.rounds ?? 1,
    };
    const result = (await page.evaluate(
      (o) => (window as unknown as { runBrowserBench: (o: BrowserBenchOptions) => Promise<BrowserBenchResult> }).runBrowserBench(o),
      opts,
    )) as BrowserBenchResult;
    print(
      `bench data (Chromium ${version}): ${result.imagesPerSecond.toFixed(0)} images/s (${result.images} images of ` +
        `${opts.size}x${opts.size}, batch ${opts.batchSize}, ${opts.concurrency} decodes in flight, ${result.seconds.toFixed(2)} s, ` +
        `${result.waitSeconds.toFixed(2)} s waiting for data); decode: createImageBitmap; ` +
        `upload: ${opts.paths![0]}; GPU flip+normalise: ${result.device}`,
    );
    if (result.paths.length > 1 || opts.rounds! > 1) {
      for (const p of result.paths) {
        print(`  ${p.path.padEnd(8)} median ${p.median.toFixed(0)} images/s over ${p.rates.length} rounds (${p.rates.map((r) => r.toFixed(0)).join(', ')})`);
      }
    }
    return result;
  } finally {
    await close();
  }
}

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  await benchDataBrowser({
    gpu: !args.includes('--no-gpu'),
    ...(args.includes('--compare') ? { paths: ['pixels', 'pixels-old', 'texture', 'decode'] as const, rounds: flag(args, '--rounds') ?? 3 } : { rounds: flag(args, '--rounds') }),
    images: flag(args, '--images'),
    batchSize: flag(args, '--batch'),
    concurrency: flag(args, '--concurrency'),
  });
}
