/**
 * Brace patterns for shard lists, as in WebDataset and bash:
 * `imagenet1k-train-{0000..1023}.tar` (zero-padded ranges), `{train,val}/x.tar` (lists),
 * several groups and nested groups. Text without braces is returned as is.
 */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  // The matching close brace of the first group.
  let depth = 0;
  let close = -1;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      close = i;
      break;
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) throw new Error(`unbalanced '{' in shard pattern: ${pattern}`);
  const head = pattern.slice(0, open);
  const body = pattern.slice(open + 1, close);
  const tail = pattern.slice(close + 1);
  let options: string[];
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  if (range) {
    const [a, b] = [range[1]!, range[2]!];
    const from = parseInt(a, 10);
    const to = parseInt(b, 10);
    // Zero padding when either end is written with a leading zero (bash's rule).
    const padded = /^-?0\d/.test(a) || /^-?0\d/.test(b);
    const width = padded ? Math.max(a.replace('-', '').length, b.replace('-', '').length) : 0;
    const step = from <= to ? 1 : -1;
    options = [];
    for (let v = from; step > 0 ? v <= to : v >= to; v += step) {
      options.push((v < 0 ? '-' : '') + String(Math.abs(v)).padStart(width, '0'));
    }
  } else if (commas.length > 0) {
    const cuts = [open, ...commas, close];
    options = cuts.slice(0, -1).map((c, k) => pattern.slice(c + 1, cuts[k + 1]));
  } else {
    // "{x}" is literal text in bash; keep it and expand what follows.
    return expandBraces(tail).map((t) => `${head}{${body}}${t}`);
  }
  const tails = expandBraces(tail);
  const out: string[] = [];
  for (const o of options) for (const middle of expandBraces(o)) for (const t of tails) out.push(head + middle + t);
  return out;
}
