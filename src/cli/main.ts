/**
 * The `webspark` command line: dispatches to one module per command, each of which exports its
 * `command` (options declared once; see src/cli/command.ts for adding one).
 */
import { parseOptions } from './args.ts';
import { commandHelp, commandList, optionTable, type Command } from './command.ts';

/** Every command, in the order `webspark --help` lists them; loaded only when used. */
export const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  info: () => import('./info.ts'),
  pretrain: () => import('./pretrain.ts'),
  reconstruct: () => import('./reconstruct.ts'),
  'export-encoder': () => import('./export-encoder.ts'),
  eval: () => import('./eval.ts'),
  finetune: () => import('./finetune.ts'),
  predict: () => import('./predict.ts'),
  bench: () => import('./bench.ts'),
};

export async function loadCommands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).command));
}

async function loadCommand(name: string): Promise<Command | null> {
  return Object.hasOwn(COMMANDS, name) ? (await COMMANDS[name]!()).command : null;
}

async function unknownCommand(name: string): Promise<number> {
  process.stderr.write(`webspark: unknown command '${name}'\n\n${commandList(await loadCommands())}`);
  return 2;
}

/** `webspark help [NAME] [--markdown]`: the list, a command's options, or its README table. */
async function help(argv: readonly string[]): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('-'));
  if (names.length === 0) {
    process.stdout.write(commandList(await loadCommands()));
    return 0;
  }
  const command = await loadCommand(names[0]!);
  if (!command) return unknownCommand(names[0]!);
  process.stdout.write(argv.includes('--markdown') ? `${optionTable(command)}\n` : commandHelp(command));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(commandList(await loadCommands()));
    return name ? 0 : 2;
  }
  if (name === 'help') return help(rest);
  const command = await loadCommand(name);
  if (!command) return unknownCommand(name);
  try {
    const args = parseOptions(command.options, rest, { helpHint: `webspark ${name} --help`, positionals: command.positionals });
    if (args.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    return await command.run(args);
  } catch (err) {
    process.stderr.write(`webspark ${name}: ${(err as Error).message}\n`);
    if (process.env.WEBSPARK_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
