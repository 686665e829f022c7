/**
 * `webspark info --features` (src/platform/node/adapter-features.ts): the adapter's features
 * asked for normally and with Dawn's allow_unsafe_apis toggle, on the test driver. The toggle
 * only adds features, `onlyWithToggle` is exactly what it adds, and the text marks those with
 * '+' and no others; --json carries the same lists.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compareAdapterFeatures, formatFeatures, UNSAFE_APIS_TOGGLE } from '../../src/platform/node/adapter-features.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));

describe('info --features', () => {
  it('compares the adapter with and without the allow_unsafe_apis toggle', async () => {
    const c = await compareAdapterFeatures();
    expect(c.normal.adapter).not.toBeNull();
    expect(c.unsafe.flags).toContain(UNSAFE_APIS_TOGGLE);
    expect(c.normal.flags).not.toContain(UNSAFE_APIS_TOGGLE);
    expect(c.normal.features).toContain('timestamp-query');
    expect(Object.keys(c.normal.limits)).toContain('maxComputeWorkgroupStorageSize');
    for (const f of c.normal.features) expect(c.unsafe.features).toContain(f);
    expect(c.onlyWithToggle).toEqual(c.unsafe.features.filter((f) => !c.normal.features.includes(f)));
    const marked = formatFeatures(c).filter((l) => /^ {2}\+/.test(l)).map((l) => l.trim().split(/\s+/).pop());
    expect(marked).toEqual(c.onlyWithToggle);
  });

  it('prints the comparison as JSON with --json', () => {
    const r = spawnSync(process.execPath, [cli, 'info', '--features', '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { normal: { features: string[] }; unsafe: { features: string[] }; onlyWithToggle: string[]; driver: { kind: string } };
    expect(out.normal.features.length).toBeGreaterThan(0);
    expect(out.onlyWithToggle).toEqual(out.unsafe.features.filter((f) => !out.normal.features.includes(f)));
    expect(out.driver.kind).toBeTruthy();
  });
});
