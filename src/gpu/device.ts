/**
 * Opening a device: an adapter (a hardware one first), a device with the adapter's own limits
 * where WebGPU's defaults are lower, the optional features the kernels use, and a report of
 * what was found (shown in the UI, written into benchmark records).
 */

/** Reads the text of `shaders/<name>.wgsl`. Node reads the file; the browser bundles it. */
export type ShaderLoader = (name: string) => string;

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (SwiftShader, WARP): correct but slow. */
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface GpuOptions {
  powerPreference?: GPUPowerPreference;
}

/** Limits we ask for at the adapter's own values rather than WebGPU's defaults. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const satisfies readonly (keyof GPUSupportedLimits)[];

const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

/** Asks `gpu` for an adapter (a hardware one first) and a device with the adapter's limits. */
export async function openDevice(gpu: GPU, options: GpuOptions = {}): Promise<{ device: GPUDevice; report: AdapterReport }> {
  const adapter =
    (await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' })) ??
    (await gpu.requestAdapter());
  if (!adapter) {
    throw new Error(
      'No WebGPU adapter is available. In a browser, use a recent Chrome or Edge (or enable WebGPU); ' +
        'in Node on a machine without a GPU, install Debian\'s chromium package for its SwiftShader driver.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const value = adapter.limits[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return { device, report: describeAdapter(adapter, device) };
}

export function describeAdapter(adapter: GPUAdapter, device: GPUDevice): AdapterReport {
  // Some implementations lack `info` or leave fields out: every field is read as optional.
  const info: Partial<GPUAdapterInfo> = adapter.info ?? {};
  const limits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) limits[name] = device.limits[name] ?? 0;
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  // Older implementations put the flag on the adapter itself.
  const flagged = info.isFallbackAdapter ?? ('isFallbackAdapter' in adapter ? adapter.isFallbackAdapter : undefined);
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    // Dawn in Node does not always set the flag; SwiftShader and llvmpipe are software all the same.
    isFallbackAdapter: flagged === true || /swiftshader|llvmpipe|lavapipe|warp|software/i.test(text),
    features: [...device.features].sort(),
    limits,
  };
}
