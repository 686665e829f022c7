/**
 * Importing an official SparK checkpoint: test/fixtures/pth/resnet18s_withdecoder_spark_style.pth
 * was written by the official code's own save function (tools/make-pth-fixture.py calls
 * utils/misc.py save_checkpoint_with_meta_info_and_opt_state: {'args': str, 'input_size',
 * 'arch', 'epoch', 'performance_desc', 'module': the official SparK.state_dict(with_config=True)
 * with the deprecated buffers, 'optimizer': TheSameAsTimmLAMB's state dict, 'is_pretrain'}),
 * holding the weights of the resnet18s model fixture.
 *
 * Tolerance: the weights are the same float32 values, so the arrays must be equal exactly; the
 * loss is held to what the parity test asks (10 x the official code's own float32 error).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { DEPRECATED_BUFFERS, encoderTensors, officialModelArrays } from '../../src/io/export.ts';
import { loadStateDict } from '../../src/io/state-dict.ts';
import { useContext } from '../helpers/gpu.ts';
import { buildModel, loadCase, readArrays } from '../model/fixture.ts';
import { expectScalarMeasured } from '../model/measured.ts';

const PTH = new URL('../fixtures/pth/resnet18s_withdecoder_spark_style.pth', import.meta.url);
const readPthFixture = () => readWeightFile(new Uint8Array(readFileSync(PTH)), 'resnet18s_withdecoder_spark_style.pth');

describe('official checkpoint import', () => {
  const getCtx = useContext();

  it('reads the same arrays as the safetensors fixture, plus the deprecated buffers, and the config', () => {
    const file = readPthFixture();
    const expected = readArrays('resnet18s.weights.safetensors');
    expect(new Set(file.arrays.keys())).toEqual(new Set([...expected.keys(), ...DEPRECATED_BUFFERS]));
    for (const [k, v] of expected) {
      const got = file.arrays.get(k)!;
      expect(got.shape, k).toEqual(v.shape);
      expect(got.data, k).toEqual(v.data);
    }
    expect(file.arrays.get('norm_black')!.shape).toEqual([1, 3, 64, 64]);
    expect(file.arrays.get('imn_m')!.shape).toEqual([1, 3, 1, 1]);
    expect(file.config).toEqual({ model: 'resnet18', inputSize: 64, decoderWidth: 32 });
  });

  it('loads strictly once the deprecated buffers are dropped, and gives the fixture eval loss', async () => {
    const ctx = getCtx();
    const file = readPthFixture();
    const model = buildModel(ctx, 'resnet18s', 64);
    // All three deprecated buffers, and only they, stand in the way of a strict load.
    expect(() => loadStateDict(model, file.arrays)).toThrow(/3 unexpected \((imn_m|imn_s|norm_black)/);
    const report = loadStateDict(model, officialModelArrays(file.arrays));
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    const { fx, mask, image } = loadCase(ctx, 'resnet18s_64'); // input and mask of the fixture
    model.eval();
    const out = ctx.noGrad(() => model.forward(image, mask));
    expectScalarMeasured((await out.loss.read())[0]!, fx.loss.eval, fx.loss_torch_fp32.eval, 'loss eval (imported checkpoint)');
    ctx.dispose();
  });

  it('exports the encoder of an official checkpoint (the timm-style file)', () => {
    const tensors = encoderTensors(readPthFixture().arrays);
    const expected = [...readArrays('resnet18s.weights.safetensors').keys()].filter((k) => k.startsWith('sparse_encoder.sp_cnn.'));
    expect(tensors.map((t) => t.name).sort()).toEqual(expected.map((k) => k.slice('sparse_encoder.sp_cnn.'.length)).sort());
    expect(tensors.every((t) => (t.name.endsWith('num_batches_tracked') ? t.dtype === 'I64' : t.dtype === 'F32'))).toBe(true);
  });
});
