/**
 * Command-line options, declared once per command and parsed with `node:util` `parseArgs`.
 *
 * A command declares each option with `defineOptions` (type, default, one-line help, range);
 * `parseOptions` tokenises argv with `parseArgs` and checks every given value against its
 * declaration before the command runs, so a bad value fails before any GPU or file work with a
 * message naming the option. `--help` / `-h` is reserved for every command. How a command is
 * put together and registered: src/cli/command.ts.
 */
import { parseArgs } from 'node:util';

export type OptionType = 'string' | 'number' | 'integer' | 'flag';

export interface OptionSpec {
  readonly type: OptionType;
  /** One line: what the option does (shown by --help and in the README's option table). */
  readonly help: string;
  /** The value when the option is not given. */
  readonly default?: string | number;
  /**
   * The default in words, when it depends on other options or on a file (the command passes
   * the value as `get(name, fallback)`).
   */
  readonly defaultText?: string;
  /** The value's placeholder in help, e.g. `FILE` in `--out FILE` (default: N or VALUE). */
  readonly value?: string;
  /** Bounds of a number or integer option, inclusive. */
  readonly min?: number;
  readonly max?: number;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The declarations, with their literal types kept (so `get` knows each option's type). */
export function defineOptions<const O extends OptionSpecs>(options: O): O {
  return options;
}

type ValueOf<S extends OptionSpec> = S['type'] extends 'flag' ? boolean : S['type'] extends 'string' ? string : number;
type Read<S extends OptionSpec> = S['type'] extends 'flag' ? boolean : S extends { default: string | number } ? ValueOf<S> : ValueOf<S> | undefined;

export class Args<O extends OptionSpecs = OptionSpecs> {
  constructor(
    readonly positionals: readonly string[],
    private readonly values: ReadonlyMap<string, string | number | true>,
    private readonly specs: O,
    /** `--help` or `-h` was given. */
    readonly help = false,
  ) {}

  /** Whether the option was given on the command line. */
  has(name: keyof O & string): boolean {
    return this.values.has(name);
  }

  /** The given value, else `fallback`, else the declared default (flags: whether given). */
  get<K extends keyof O & string>(name: K): Read<O[K]>;
  get<K extends keyof O & string>(name: K, fallback: ValueOf<O[K]>): ValueOf<O[K]>;
  get(name: string, fallback?: string | number | boolean): string | number | boolean | undefined {
    const spec = this.specs[name];
    if (!spec) throw new Error(`option --${name} is read but not declared`);
    if (spec.type === 'flag') return this.values.has(name);
    return this.values.get(name) ?? fallback ?? spec.default;
  }
}

/** Where to point a user who gave a bad option, e.g. `webspark pretrain --help`. */
export interface ParseContext {
  helpHint: string;
  /** Positional arguments in usage, e.g. `IMAGE...`; absent: none accepted. */
  positionals?: string;
}

/** argv parsed and checked against the declarations; throws with the option's name on bad input. */
export function parseOptions<O extends OptionSpecs>(specs: O, argv: readonly string[], where: ParseContext): Args<O> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(specs)) config[name] = { type: spec.type === 'flag' ? 'boolean' : 'string' };
  // strict: false, so that this module words the errors (naming the option and --help) and a
  // value such as `--base-lr -0.1` is taken as the value, as a user means it.
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string | number | true>();
  const positionals: string[] = [];
  // --help anywhere wins: `webspark pretrain --bogus --help` prints the help, not an error.
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return new Args(positionals, values, specs, true);
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const spec = specs[t.name];
    if (!spec) throw new Error(`unknown option ${t.rawName} (see ${where.helpHint})`);
    if (spec.type === 'flag') {
      if (t.value !== undefined) throw new Error(`${t.rawName} takes no value, got '${t.value}'`);
      values.set(t.name, true);
    } else {
      // `--out --quiet`: the next word is another option, not this one's value.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) throw new Error(`--${t.name} needs a value`);
      values.set(t.name, spec.type === 'string' ? t.value : checkNumber(t.name, spec, t.value));
    }
  }
  if (positionals.length && !where.positionals) {
    throw new Error(`unexpected argument '${positionals[0]}' (this command takes options only; see ${where.helpHint})`);
  }
  return new Args(positionals, values, specs);
}

function checkNumber(name: string, spec: OptionSpec, raw: string): number {
  const v = Number(raw);
  const { min = -Infinity, max = Infinity } = spec;
  const integer = spec.type === 'integer';
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const kind = integer ? 'an integer' : 'a number';
    throw new Error(`--${name} must be ${kind} in [${min}, ${max}], got '${raw}'`);
  }
  return v;
}
