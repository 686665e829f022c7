/**
 * Minimal argument parsing: positionals, `--flag`, `--key value` and `--key=value`.
 * Typed getters validate and name the option in their errors.
 */
export class Args {
  constructor(
    readonly positionals: string[],
    private options: Map<string, string | true>,
  ) {}

  has(name: string): boolean {
    return this.options.has(name);
  }

  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    const v = this.options.get(name);
    if (v === undefined) return fallback;
    if (v === true) throw new Error(`--${name} needs a value`);
    return v;
  }

  number(name: string, fallback: number, range: { min?: number; max?: number; integer?: boolean } = {}): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const v = Number(raw);
    const { min = -Infinity, max = Infinity, integer = false } = range;
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      const kind = integer ? 'an integer' : 'a number';
      throw new Error(`--${name} must be ${kind} in [${min}, ${max}], got '${raw}'`);
    }
    return v;
  }

  /** Names given that are not in `known` (to report typos). */
  unknown(known: readonly string[]): string[] {
    return [...this.options.keys()].filter((k) => !known.includes(k));
  }
}

export function parseArgs(argv: readonly string[]): Args {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      options.set(a.slice(2, eq), a.slice(eq + 1));
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      options.set(a.slice(2), argv[++i]!);
    } else {
      options.set(a.slice(2), true);
    }
  }
  return new Args(positionals, options);
}
