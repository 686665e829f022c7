// Reads Debian machine-readable copyright files (DEP-5) and answers "which licence and which
// copyright holders does Debian state for this file?". Used by tools/make-photo-corpus.ts so
// the corpus credits come from the packages themselves, not from a hand-copied table.

export interface CopyrightStanza {
  patterns: string[];
  /** One holder per entry, as the file writes them ("2008, Charles Barbin <...>"). */
  copyright: string[];
  /** The licence's short name ("GPL-2+", "CC-BY-SA-4.0"). */
  license: string;
}

/** Parses DEP-5 text into its `Files` stanzas. */
export function parseCopyright(text: string): CopyrightStanza[] {
  const stanzas: CopyrightStanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | null = null;
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      else {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (!m) continue;
        last = m[1].toLowerCase();
        fields.set(last, m[2].trim());
      }
    }
    if (!fields.has('files')) continue;
    stanzas.push({
      patterns: fields.get('files')!.split(/\s+/).filter(Boolean),
      copyright: (fields.get('copyright') ?? '').split('\n').map((s) => s.trim()).filter(Boolean),
      // The first line of a License field is its short name; later lines are its text.
      license: (fields.get('license') ?? '').split('\n')[0].trim(),
    });
  }
  return stanzas;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`(^|/)${body}$`);
}

/**
 * The stanza that covers `installedPath`. DEP-5 patterns are relative to the upstream source
 * tree, which differs from where the file is installed (`16.04/x.jpg` is installed as
 * `usr/share/backgrounds/x.jpg`), so a pattern matches when it matches a tail of the installed
 * path, or (for patterns with a directory) when its last component matches the file name and
 * no other pattern does better. As DEP-5 says, the last matching stanza wins.
 */
export function stanzaFor(stanzas: CopyrightStanza[], installedPath: string): CopyrightStanza | null {
  const name = installedPath.slice(installedPath.lastIndexOf('/') + 1);
  let best: CopyrightStanza | null = null;
  for (const s of stanzas) {
    for (const p of s.patterns) {
      const tail = p.slice(p.lastIndexOf('/') + 1);
      const exact = globToRegExp(p).test(installedPath);
      const byName = !exact && tail !== '*' && globToRegExp(tail).test(name);
      if (exact || byName) best = s;
    }
  }
  return best;
}
