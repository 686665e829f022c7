/**
 * `webspark info --features`: the adapter's features and limits as Dawn reports them when asked
 * normally, and when the instance is made with the toggle 'enable-dawn-features=allow_unsafe_apis'
 * (Dawn hides experimental features, such as Chromium's subgroup matrices, behind it). What
 * only the toggle shows is what a kernel could use with it, not what webspark asks for today
 * (src/gpu/device.ts requests 'timestamp-query', 'shader-f16' and 'subgroups' where present).
 */
import { DAWN_FLAGS, nodeGpuWith } from './gpu.ts';

export const UNSAFE_APIS_TOGGLE = 'enable-dawn-features=allow_unsafe_apis';

/** Features a training kernel would use: half storage, subgroup operations, cooperative matrices. */
export const KERNEL_FEATURES = /^(shader-f16|subgroups|subgroup-size-control|timestamp-query|chromium-experimental-subgroup-matrix|.*cooperative.*matrix.*|.*subgroup-matrix.*)$/;

export interface AdapterFeatureSet {
  /** The Dawn instance flags it was asked with (Node's own, DAWN_FLAGS, and the toggle or not). */
  flags: string[];
  /** vendor / architecture / device / description, or null when no adapter was found. */
  adapter: string | null;
  features: string[];
  limits: Record<string, number>;
}

export interface FeatureComparison {
  normal: AdapterFeatureSet;
  unsafe: AdapterFeatureSet;
  /** Features the toggle adds. */
  onlyWithToggle: string[];
  /** Limits that differ between the two. */
  limitsChanged: { name: string; normal: number; unsafe: number }[];
}

async function featureSet(flags: string[]): Promise<AdapterFeatureSet> {
  const gpu = await nodeGpuWith(flags);
  const adapter = (await gpu.requestAdapter({ powerPreference: 'high-performance' })) ?? (await gpu.requestAdapter());
  if (!adapter) return { flags, adapter: null, features: [], limits: {} };
  const info: Partial<GPUAdapterInfo> = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || '(unnamed)';
  const limits: Record<string, number> = {};
  // The limits are getters on the object's prototype: `for...in` walks them.
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  return { flags, adapter: name, features: [...adapter.features].sort(), limits };
}

/** The adapter asked for normally and with the allow_unsafe_apis toggle, and what differs. */
export async function compareAdapterFeatures(): Promise<FeatureComparison> {
  const normal = await featureSet([...DAWN_FLAGS]);
  const unsafe = await featureSet([...DAWN_FLAGS, UNSAFE_APIS_TOGGLE]);
  const has = new Set(normal.features);
  const limitsChanged = Object.keys({ ...normal.limits, ...unsafe.limits })
    .sort()
    .filter((name) => normal.limits[name] !== unsafe.limits[name])
    .map((name) => ({ name, normal: normal.limits[name] ?? 0, unsafe: unsafe.limits[name] ?? 0 }));
  return { normal, unsafe, onlyWithToggle: unsafe.features.filter((f) => !has.has(f)), limitsChanged };
}

/** The comparison as text: every feature once, marked where only the toggle shows it. */
export function formatFeatures(c: FeatureComparison): string[] {
  const only = new Set(c.onlyWithToggle);
  const all = [...new Set([...c.normal.features, ...c.unsafe.features])].sort();
  const mark = (f: string) => `${only.has(f) ? '+' : ' '}${KERNEL_FEATURES.test(f) ? '*' : ' '} ${f}`;
  const kernelOnly = c.onlyWithToggle.filter((f) => KERNEL_FEATURES.test(f));
  return [
    `adapter (normal):           ${c.normal.adapter ?? 'none found'}`,
    `adapter (${UNSAFE_APIS_TOGGLE}): ${c.unsafe.adapter ?? 'none found'}`,
    `features (${all.length}; + only with the toggle, * used or usable by training kernels):`,
    ...all.map((f) => `  ${mark(f)}`),
    `only with the toggle: ${c.onlyWithToggle.length ? c.onlyWithToggle.join(', ') : 'none'}`,
    `kernel features only with the toggle: ${kernelOnly.length ? kernelOnly.join(', ') : 'none'}`,
    `limits (normal${c.limitsChanged.length ? '; differing ones show both' : '; the toggle changes none'}):`,
    ...Object.entries(c.normal.limits).map(([k, v]) => {
      const d = c.limitsChanged.find((x) => x.name === k);
      return `  ${k.padEnd(44)} ${v}${d ? ` (with the toggle: ${d.unsafe})` : ''}`;
    }),
  ];
}
