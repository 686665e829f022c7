/**
 * A `webspark` command and the text generated from its declaration: `--help`, the command list
 * and the README's option table.
 *
 * Adding a command:
 * 1. In `src/cli/NAME.ts`, declare its options once with `defineOptions` (src/cli/args.ts) and
 *    export `command: Command<typeof OPTIONS>` with its name, one-line summary, positional
 *    arguments (if any) and `run`. `run` reads options with `args.get('name')`, typed by the
 *    declaration; reading an undeclared name does not compile.
 * 2. Add one line to `COMMANDS` in src/cli/main.ts (loaded lazily, so one command's imports
 *    never slow another).
 * 3. Give it a `` ### `NAME` `` section in README.md holding the table that
 *    `webspark help NAME --markdown` prints; test/cli/help.test.ts fails until the two agree.
 */
import type { Args, OptionSpec, OptionSpecs } from './args.ts';

export interface Command<O extends OptionSpecs = OptionSpecs> {
  readonly name: string;
  /** One line, shown by `webspark --help`. */
  readonly summary: string;
  /** Positional arguments in usage, e.g. `IMAGE...`; absent: the command takes none. */
  readonly positionals?: string;
  readonly options: O;
  run(args: Args<O>): Promise<number>;
}

/** `--out DIR`, `--json`: the option as written in help. */
function usageOf(name: string, spec: OptionSpec): string {
  if (spec.type === 'flag') return `--${name}`;
  return `--${name} ${spec.value ?? (spec.type === 'string' ? 'VALUE' : 'N')}`;
}

function defaultOf(spec: OptionSpec, code: (s: string) => string): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return '';
  return typeof spec.default === 'string' ? code(spec.default) : String(spec.default);
}

export function usageLine(c: Command): string {
  return `usage: webspark ${c.name} [options]${c.positionals ? ` ${c.positionals}` : ''}`;
}

/** What `webspark NAME --help` prints. */
export function commandHelp(c: Command): string {
  const rows = Object.entries(c.options).map(([name, spec]) => {
    const d = defaultOf(spec, (s) => s);
    return [usageOf(name, spec), d ? `${spec.help} [default: ${d}]` : spec.help] as const;
  });
  rows.push(['-h, --help', 'print this help']);
  const width = Math.max(...rows.map(([u]) => u.length)) + 2;
  const lines = rows.map(([u, h]) => `  ${u.padEnd(width)}${h}`);
  return `${usageLine(c)}\n\n${c.summary}\n\noptions:\n${lines.join('\n')}\n`;
}

/** What `webspark --help` prints. */
export function commandList(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`);
  return `usage: webspark <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n` +
    `\`webspark <command> --help\` or \`webspark help <command>\` lists a command's options.\n`;
}

/** The README's option table for a command (a markdown table, header included). */
export function optionTable(c: Command): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = Object.entries(c.options).map(
    ([name, spec]) => `| \`${usageOf(name, spec)}\` | ${cell(defaultOf(spec, (s) => `\`${s}\``))} | ${cell(spec.help)} |`,
  );
  return ['| option | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
