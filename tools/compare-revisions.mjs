#!/usr/bin/env node
/**
 * `bench` suites of two revisions side by side on one adapter: the working tree against a
 * git revision (checked out into a temporary worktree that shares node_modules and .cache),
 * the runs alternating between the two trees so both see the same machine load. Prints the
 * median of each record over the rounds, base and head, and head / base; --json FILE writes
 * the figures.
 *
 *   node tools/compare-revisions.mjs --base main~3 [--suites kernels,train] [--rounds 3] [--quick] [--json out.json]
 *
 * One process per run (a driver is one per process); WEBSPARK_ADAPTER applies to both trees.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './median.mjs';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    suites: { type: 'string', default: 'kernels,train' },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!values.base) throw new Error('--base REV is required (the revision to compare the working tree with)');
const rounds = Number(values.rounds);
if (!(rounds >= 1)) throw new Error('--rounds must be at least 1');
const suites = values.suites.split(',');

const root = new URL('..', import.meta.url).pathname;
const git = (...args) => {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
const baseHash = git('rev-parse', '--short', values.base);
const headHash = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '+changes' : ''}`;
const work = mkdtempSync(join(tmpdir(), 'webspark-revisions-'));
const baseTree = join(work, 'base');
git('worktree', 'add', '--detach', baseTree, baseHash);
for (const shared of ['node_modules', '.cache']) {
  if (existsSync(join(root, shared))) symlinkSync(join(root, shared), join(baseTree, shared));
}

/** key -> { base: ms[], head: ms[] } */
const figures = new Map();
const trees = [['base', baseTree], ['head', root]];
try {
  for (let r = 0; r < rounds; r++) {
    // Alternate which tree goes first, so neither always runs on a warmer machine.
    for (const [side, tree] of r % 2 ? [...trees].reverse() : trees) {
      for (const suite of suites) {
        const out = join(work, `${side}-${suite}-${r}.json`);
        const args = ['src/cli/webspark.mjs', 'bench', suite, '--json', out, ...(values.quick ? ['--quick'] : [])];
        const run = spawnSync(process.execPath, args, { cwd: tree, env: process.env, encoding: 'utf8' });
        if (run.status !== 0) throw new Error(`${side} (${tree}), bench ${suite}, round ${r + 1}: exited ${run.status}\n${run.stderr.slice(-2000)}`);
        for (const rec of JSON.parse(readFileSync(out, 'utf8')).records) {
          const key = `${rec.suite} | ${rec.name} | ${rec.impl} | ${rec.shape}`;
          if (!figures.has(key)) figures.set(key, { base: [], head: [] });
          figures.get(key)[side].push(rec.ms);
        }
        process.stderr.write(`round ${r + 1}: ${side} ${suite} done\n`);
      }
    }
  }
} finally {
  spawnSync('git', ['worktree', 'remove', '--force', baseTree], { cwd: root });
  rmSync(work, { recursive: true, force: true });
}

const rows = [...figures].map(([key, f]) => {
  const base = f.base.length ? median(f.base) : null;
  const head = f.head.length ? median(f.head) : null;
  return { key, base, head, ratio: base && head ? head / base : null, samples: { base: f.base, head: f.head } };
});
console.log(`base ${baseHash}, head ${headHash}, ${rounds} round(s), median ms`);
for (const r of rows) {
  const fmt = (x) => (x === null ? '-' : x.toFixed(2)).padStart(10);
  console.log(`${r.key.padEnd(78)} ${fmt(r.base)} ${fmt(r.head)} ${r.ratio === null ? '   -' : `${r.ratio.toFixed(2)}x`}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ base: baseHash, head: headHash, rounds, rows }, null, 2));
