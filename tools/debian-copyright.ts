// Reads Debian machine-readable copyright files (DEP-5) and answers "which licence and which
// copyright holders does Debian state for this file?". Used by tools/make-photo-corpus.ts so
// the corpus credits come from the packages themselves, not from a hand-copied table.

export interface CopyrightStanza {
  patterns: string[];
  /** One holder per entry, as the file writes them ("2008, Charles Barbin <...>"). */
  copyright: string[];
  /** The licence's short name ("GPL-2+", "CC-BY-SA-4.0"). */
  license: string;
  /** The lines after the short name, joined (for `public-domain` often where the files came from). */
  licenseText: string;
}

export interface CopyrightMatch {
  stanza: CopyrightStanza;
  /** The `Files` pattern that matched. */
  pattern: string;
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
      license: (fields.get('license') ?? '').split('\n')[0]!.trim(),
      licenseText: (fields.get('license') ?? '').split('\n').slice(1).filter((l) => l !== '.').join(' ').trim(),
    });
  }
  return stanzas;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`(^|/)${body}$`);
}

/**
 * Every stanza that covers `installedPath`, in the file's order, with the pattern that matched.
 * DEP-5 patterns are relative to the upstream source tree, which differs from where the file
 * is installed (`16.04/x.jpg` is installed as `usr/share/backgrounds/x.jpg`), so a pattern
 * matches when it matches a tail of the installed path, or, unless its last component is a
 * bare `*`, when that last component matches the file name.
 */
export function matchingStanzas(stanzas: CopyrightStanza[], installedPath: string): CopyrightMatch[] {
  const name = installedPath.slice(installedPath.lastIndexOf('/') + 1);
  const out: CopyrightMatch[] = [];
  for (const stanza of stanzas) {
    const pattern = stanza.patterns.find((p) => {
      const tail = p.slice(p.lastIndexOf('/') + 1);
      return globToRegExp(p).test(installedPath) || (tail !== '*' && globToRegExp(tail).test(name));
    });
    if (pattern !== undefined) out.push({ stanza, pattern });
  }
  return out;
}

/** The stanza DEP-5 applies to `installedPath`: the last one that matches. */
export function stanzaFor(stanzas: CopyrightStanza[], installedPath: string): CopyrightStanza | null {
  return matchingStanzas(stanzas, installedPath).at(-1)?.stanza ?? null;
}

/**
 * The stanzas whose pattern names the file itself rather than a whole folder (`dir/*`, `*`).
 * DEP-5 applies the last match, but two such patterns can overlap by accident: endless-sky's
 * `images/land/fields1*` (unsplash photos) also matches `fields10-sfiera.jpg`, which its
 * earlier `images/land/*-sfiera*` stanza (a contributor, CC-BY-SA-4.0) is meant for. When
 * more than one is returned, the credits name them all.
 */
export function fileStanzas(stanzas: CopyrightStanza[], installedPath: string): CopyrightStanza[] {
  const named = matchingStanzas(stanzas, installedPath).filter((m) => m.pattern.slice(m.pattern.lastIndexOf('/') + 1) !== '*');
  return [...new Set(named.map((m) => m.stanza))];
}
