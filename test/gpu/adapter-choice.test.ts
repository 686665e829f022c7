import { describe, expect, it } from 'vitest';
import { applyChoice, chooseAdapter, type AdapterProbe } from '../../src/platform/node/adapter-choice.ts';

const LVP = '/repo/.cache/lavapipe/lvp_icd.json';
const SWS = '/usr/lib/chromium/vk_swiftshader_icd.json';

function probe(opts: { env?: Record<string, string>; files?: string[]; gpu?: string | null }): AdapterProbe {
  const files = new Set(opts.files ?? []);
  return {
    env: opts.env ?? {},
    exists: (p) => files.has(p),
    gpuDeviceNode: () => opts.gpu ?? null,
    lavapipeIcd: LVP,
    swiftshaderIcd: SWS,
  };
}

describe('Vulkan driver choice in Node', () => {
  it('an explicit driver list in the environment wins over everything found', () => {
    const c = chooseAdapter(probe({ env: { VK_ICD_FILENAMES: '/x.json' }, files: [LVP, SWS], gpu: '/dev/nvidia0' }));
    expect(c.kind).toBe('explicit');
    expect(c.env).toEqual({});
    expect(c.why).toContain('/x.json');
    expect(chooseAdapter(probe({ env: { VK_DRIVER_FILES: '/y.json' }, files: [LVP] })).kind).toBe('explicit');
  });

  it('a GPU device node means the system drivers, with the best software driver behind them', () => {
    const c = chooseAdapter(probe({ files: [LVP, SWS], gpu: '/dev/dri/renderD128' }));
    expect(c.kind).toBe('hardware');
    expect(c.env).toEqual({ VK_ADD_DRIVER_FILES: LVP });
    expect(c.why).toContain('/dev/dri/renderD128');
    expect(chooseAdapter(probe({ files: [SWS], gpu: '/dev/nvidia0' })).env).toEqual({ VK_ADD_DRIVER_FILES: SWS });
    // A user's own VK_ADD_DRIVER_FILES is left alone.
    expect(chooseAdapter(probe({ env: { VK_ADD_DRIVER_FILES: '/mine.json' }, files: [LVP], gpu: '/dev/nvidia0' })).env).toEqual({});
  });

  it('without a GPU: lavapipe where unpacked, else SwiftShader, else a hint', () => {
    const lvp = chooseAdapter(probe({ files: [LVP, SWS] }));
    expect(lvp.kind).toBe('lavapipe');
    expect(lvp.env).toEqual({ VK_DRIVER_FILES: LVP });
    const sws = chooseAdapter(probe({ files: [SWS] }));
    expect(sws.kind).toBe('swiftshader');
    expect(sws.env).toEqual({ VK_DRIVER_FILES: SWS });
    expect(sws.why).toContain('setup-test-env.sh');
    const none = chooseAdapter(probe({}));
    expect(none.env).toEqual({});
    expect(none.why).toContain('setup-test-env.sh');
  });

  it('WEBSPARK_ADAPTER forces one and removes the other driver lists', () => {
    const env = { WEBSPARK_ADAPTER: 'swiftshader', VK_ICD_FILENAMES: '/x.json', VK_ADD_DRIVER_FILES: '/y.json' };
    const c = chooseAdapter(probe({ env, files: [LVP, SWS], gpu: '/dev/nvidia0' }));
    expect(c.kind).toBe('swiftshader');
    const applied: Record<string, string | undefined> = { ...env };
    applyChoice(c, applied);
    expect(applied).toEqual({ WEBSPARK_ADAPTER: 'swiftshader', VK_DRIVER_FILES: SWS });

    expect(chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'LavaPipe' }, files: [LVP] })).env.VK_DRIVER_FILES).toBe(LVP);
    const hw = chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'hardware', VK_DRIVER_FILES: SWS }, files: [SWS], gpu: '/dev/dxg' }));
    const hwEnv: Record<string, string | undefined> = { VK_DRIVER_FILES: SWS };
    applyChoice(hw, hwEnv);
    expect(hw.kind).toBe('hardware');
    expect(hwEnv).toEqual({});
  });

  it('a forced driver that is missing, or an unknown name, is an error that says what to do', () => {
    expect(() => chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'lavapipe' }, files: [SWS] }))).toThrow(/setup-test-env\.sh/);
    expect(() => chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'swiftshader' }, files: [LVP] }))).toThrow(/not installed/);
    expect(() => chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'hardware' }, files: [LVP, SWS] }))).toThrow(/no GPU device node/);
    expect(() => chooseAdapter(probe({ env: { WEBSPARK_ADAPTER: 'vulkan' } }))).toThrow(/hardware, lavapipe, swiftshader/);
  });
});
