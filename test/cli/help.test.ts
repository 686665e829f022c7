/**
 * The command line's declared options: parsing and checking (`parseOptions`), `--help` for every
 * command, and the README's option tables, which must equal what the declarations generate.
 * No GPU: every case here fails or prints help before a command would open a device.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defineOptions, parseOptions } from '../../src/cli/args.ts';
import { commandHelp, optionTable } from '../../src/cli/command.ts';
import { COMMANDS, loadCommands } from '../../src/cli/main.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));
const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

function webspark(...argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The first markdown table under the README heading `### \`name\``, or null. */
function readmeTable(name: string): string | null {
  const lines = readme.split('\n');
  const start = lines.indexOf(`### \`${name}\``);
  if (start < 0) return null;
  const end = lines.findIndex((l, i) => i > start && l.startsWith('#'));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const first = section.findIndex((l) => l.startsWith('| option |'));
  if (first < 0) return null;
  const rest = section.slice(first);
  const last = rest.findIndex((l) => !l.startsWith('|'));
  return rest.slice(0, last < 0 ? undefined : last).join('\n');
}

const SPECS = defineOptions({
  out: { type: 'string', value: 'DIR', default: 'runs/x', help: 'where' },
  name: { type: 'string', help: 'a name' },
  size: { type: 'integer', min: 32, max: 1024, default: 64, help: 'side' },
  lr: { type: 'number', min: 0, help: 'rate' },
  quiet: { type: 'flag', help: 'less output' },
});
const parse = (argv: string[], positionals?: string) =>
  parseOptions(SPECS, argv, { helpHint: 'webspark x --help', ...(positionals ? { positionals } : {}) });

describe('parseOptions', () => {
  it('reads declared values, defaults and fallbacks with their types', () => {
    const a = parse(['--size', '96', '--lr=0.5', '--quiet', '--name', 'b']);
    expect([a.get('size'), a.get('lr'), a.get('quiet'), a.get('name'), a.get('out')]).toEqual([96, 0.5, true, 'b', 'runs/x']);
    const b = parse([]);
    expect([b.get('size'), b.get('lr'), b.get('quiet'), b.get('name'), b.has('size')]).toEqual([64, undefined, false, undefined, false]);
    expect(b.get('lr', 2e-4)).toBe(2e-4);
    expect(a.get('lr', 2e-4)).toBe(0.5);
    // A negative value is the option's value, as the user means it (then checked against the range).
    expect(() => parse(['--lr', '-0.1'])).toThrow(/^--lr must be a number in \[0, Infinity\], got '-0.1'$/);
  });

  it('refuses bad input with the option named', () => {
    expect(() => parse(['--bogus'])).toThrow(/^unknown option --bogus \(see webspark x --help\)$/);
    expect(() => parse(['-x'])).toThrow(/^unknown option -x \(see webspark x --help\)$/);
    expect(() => parse(['--size', '100.5'])).toThrow(/^--size must be an integer in \[32, 1024\], got '100.5'$/);
    expect(() => parse(['--size', '16'])).toThrow(/^--size must be an integer in \[32, 1024\], got '16'$/);
    expect(() => parse(['--size='])).toThrow(/^--size must be an integer/);
    expect(() => parse(['--lr', 'fast'])).toThrow(/^--lr must be a number/);
    expect(() => parse(['--out'])).toThrow(/^--out needs a value$/);
    expect(() => parse(['--out', '--quiet'])).toThrow(/^--out needs a value$/);
    expect(() => parse(['--quiet=yes'])).toThrow(/^--quiet takes no value, got 'yes'$/);
    expect(() => parse(['stray'])).toThrow(/^unexpected argument 'stray' \(this command takes options only; see webspark x --help\)$/);
  });

  it('takes positionals where declared, and --help / -h anywhere', () => {
    const a = parse(['a.png', '--quiet', 'b.png'], 'IMAGE...');
    expect([a.positionals, a.get('quiet')]).toEqual([['a.png', 'b.png'], true]);
    expect(parse(['--size', '64', '--help']).help).toBe(true);
    expect(parse(['--bogus', 'stray', '--help']).help).toBe(true);
    expect(parse(['-h']).help).toBe(true);
    expect(parse(['--size', '64']).help).toBe(false);
  });
});

describe('declared options', () => {
  it('every command declares one-line help, defaults in range, and leaves --help to the parser', async () => {
    const commands = await loadCommands();
    expect(commands.map((c) => c.name)).toEqual(Object.keys(COMMANDS));
    for (const c of commands) {
      expect(c.summary, c.name).toMatch(/^[^\n]+$/);
      expect(Object.keys(c.options), c.name).not.toContain('help');
      for (const [name, spec] of Object.entries(c.options)) {
        const where = `${c.name} --${name}`;
        expect(spec.help, where).toMatch(/^[^\n]+$/);
        expect(spec.default !== undefined && spec.defaultText !== undefined, `${where}: default and defaultText`).toBe(false);
        if (typeof spec.default === 'number') {
          // The default goes through the same check as a given value.
          const parsed = parseOptions(c.options, [`--${name}`, String(spec.default)], { helpHint: '' }).get(name);
          expect(parsed, where).toBe(spec.default);
        }
      }
    }
  });

  it("the README's option table of each command is the one its declaration generates", async () => {
    for (const c of await loadCommands()) {
      const expected = optionTable(c);
      // On failure the message holds the table to paste (`npx webspark help NAME --markdown`).
      expect(readmeTable(c.name), `README.md, section ### \`${c.name}\`, should hold:\n${expected}\n`).toBe(expected);
    }
  });
});

describe('webspark --help', () => {
  it('lists every command', async () => {
    const r = webspark('--help');
    expect(r.status).toBe(0);
    for (const c of await loadCommands()) expect(r.stdout).toContain(`  ${c.name.padEnd(16)} ${c.summary}\n`);
  });

  it('prints each command\'s options for `NAME --help` and `help NAME`', async () => {
    for (const c of await loadCommands()) {
      const a = webspark(c.name, '--help');
      expect(a.status, c.name).toBe(0);
      expect(a.stdout).toBe(commandHelp(c));
      for (const name of Object.keys(c.options)) expect(a.stdout).toContain(`--${name}`);
    }
    const b = webspark('help', 'pretrain');
    expect(b.status).toBe(0);
    expect(b.stdout).toBe(webspark('pretrain', '-h').stdout);
  });

  it('names an unknown option or command and points at --help', () => {
    const a = webspark('pretrain', '--bogus', '1');
    expect(a.status).toBe(1);
    expect(a.stderr).toBe('webspark pretrain: unknown option --bogus (see webspark pretrain --help)\n');
    const b = webspark('pretrian');
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/^webspark: unknown command 'pretrian'\n/);
  });
});
