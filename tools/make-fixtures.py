#!/usr/bin/python3
"""Writes the PyTorch reference fixtures under test/fixtures/model/ (see test/fixtures/README.md)
by running the OFFICIAL SparK code: a checkout of https://github.com/keyu-tian/SparK at the
commit pinned in tools/fixtures/official.py.

    git clone https://github.com/keyu-tian/SparK /tmp/SparK
    git -C /tmp/SparK checkout a63e386f8e5186bc07ad7fce86e06b08f48a61ea
    /usr/bin/python3 tools/make-fixtures.py --spark /tmp/SparK      # Debian python3-torch 1.13

Models, masks, the loss and its taps, LAMB and the schedules are the official modules
(pretrain/spark.py, encoder.py, decoder.py, models/, utils/lamb.py, utils/lr_control.py); the
timm pieces they import come from tools/fixtures/standins. Deterministic: fixed seeds, one CPU
thread, deterministic algorithms; a re-run writes the same bytes.

Weights and inputs are made in float32 and stored as such; every reference value is then
computed by the official code in float64 from exactly those values and stored as float32. The
same official code is also run in float32, and its error against the float64 run is written
into the manifest per tensor (`torch_fp32_error`): the measured scale the tests' tolerances
are multiples of.
"""
import argparse
import copy
import json
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ left in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import keys, official, optim, png, runs, safetensors, selfcheck, trajectory  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'model')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MASK_RATIO = 0.6
PATCH = 32  # the encoders' total stride, SparK's patch size

# Narrow models with the official structure. Channel counts are deliberately small (and some
# not multiples of 4) so the files stay small and the GPU kernels meet awkward shapes.
MODELS = {
    'resnet18s': {'arch': 'resnet', 'block': 'basic', 'stem_width': 8, 'planes': [8, 12, 16, 24],
                  'layers': [1, 1, 1, 1], 'decoder_width': 32, 'densify_norm': 'bn'},
    'resnet50s': {'arch': 'resnet', 'block': 'bottleneck', 'stem_width': 8, 'planes': [4, 8, 12, 16],
                  'layers': [1, 1, 1, 1], 'decoder_width': 40, 'densify_norm': 'bn'},
    'convnexts': {'arch': 'convnext', 'dims': [8, 16, 24, 32], 'depths': [1, 1, 2, 1],
                  'decoder_width': 32, 'densify_norm': 'ln'},
}
# (fixture name, model, input size, batch); a model's weights are shared by its fixtures
FIXTURES = [('resnet18s_64', 'resnet18s', 64, 2), ('resnet50s_64', 'resnet50s', 64, 2),
            ('convnexts_64', 'convnexts', 64, 2), ('resnet50s_96', 'resnet50s', 96, 1)]


def model_config(name, cfg, model):
    """What a test needs to build the model without Python (also each weight file's `spark_config`)."""
    width = cfg['decoder_width']
    c = dict(cfg, name=name, feature_channels=runs.feature_channels(cfg),
             decoder_channels=[width // 2 ** i for i in range(6)], mask_ratio=MASK_RATIO,
             downsample_ratio=model.downsample_raito, drop_path_rate=0.0, bn_eps=1e-5, bn_momentum=0.1,
             ln_eps=1e-6, densify_projs=[])
    if cfg['arch'] == 'resnet':
        c['expansion'] = 1 if cfg['block'] == 'basic' else 4
    for i, p in enumerate(model.densify_projs):
        c['densify_projs'].append({'index': i, 'kind': 'identity'} if isinstance(p, nn.Identity) else
                                  {'index': i, 'kind': 'conv', 'kernel': p.kernel_size[0],
                                   'in': p.in_channels, 'out': p.out_channels})
    return c


def smooth_images(B, S, g):
    """Photo-like data: low-frequency colour fields, soft blobs and a little grain in [0, 1]."""
    img = F.interpolate(torch.rand(B, 3, 5, 5, generator=g), size=(S, S), mode='bicubic', align_corners=True)
    ys = torch.linspace(0, 1, S).view(1, S, 1)
    xs = torch.linspace(0, 1, S).view(1, 1, S)
    for _ in range(5):
        c = torch.rand(B, 3, 1, 1, generator=g) - 0.5
        cy, cx = torch.rand(B, 1, 1, generator=g), torch.rand(B, 1, 1, generator=g)
        r = 0.08 + 0.2 * torch.rand(B, 1, 1, generator=g)
        img = img + c * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * r * r)).unsqueeze(1)
    return (img + 0.03 * torch.randn(B, 3, S, S, generator=g)).clamp(0, 1)


def imagenet_normalised(img01):
    """As SparK's loader: ToTensor's [0, 1] values, then Normalize(ImageNet mean, std)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (img01 - mean) / std


def write(name, tensors, metadata=None):
    safetensors.write(os.path.join(OUT, name), tensors, metadata)
    back, _ = safetensors.read(os.path.join(OUT, name))  # self-check of the writer
    for k, v in tensors.items():
        want = v.float() if v.dtype == torch.float64 else v
        assert torch.equal(back[k], want.contiguous()), f'{name}: {k} did not round-trip'


# Not stored, to keep the files small: the masked input is exactly input * mask (pixel level);
# the training-mode composite is the same function of train/rec as the eval one of eval/rec;
# the debugging taps inside densify and the decoder are kept for training mode only.
SKIPPED = ('train/vis/', 'eval/vis/masked', 'eval/target/', 'eval/normed/', 'eval/decoder/')


def stored_name(k):
    """The key a result is stored under, or None when it is not stored. The target statistics
    do not depend on the mode and are stored once, without the mode prefix."""
    if k.startswith(SKIPPED):
        return None
    return k[len('train/'):] if k.startswith('train/target/') else k


def make_models(up, manifest):
    models = {}
    for name, cfg in MODELS.items():
        torch.manual_seed(1000 + len(models))
        model = runs.build(up, cfg, 64)
        runs.randomise_for_fixture(model, torch.Generator().manual_seed(2000 + len(models)))
        models[name] = model
        config = model_config(name, cfg, model)
        manifest['models'][name] = {'weights': f'{name}.weights.safetensors', 'config': config,
                                    'parameters': sum(p.numel() for p in model.parameters())}
        write(f'{name}.weights.safetensors', runs.weights(model),
              {'format': 'pt', 'spark_config': json.dumps(config, separators=(',', ':'))})
    return models


def make_fixture(up, manifest, fx, cfg_name, model64, size, batch):
    model = model64 if size == 64 else runs.at_size(up, MODELS[cfg_name], model64, size)
    inp = imagenet_normalised(smooth_images(batch, size, torch.Generator().manual_seed(size * 10 + batch)))
    h = size // PATCH
    if size == 64 and batch == 2:  # hand-picked: diagonal, top row
        mask = torch.tensor([[[1, 0], [0, 1]], [[1, 1], [0, 0]]], dtype=torch.bool).view(2, 1, 2, 2)
    else:  # the official procedure
        mask = model.mask(batch, 'cpu', generator=torch.Generator().manual_seed(size + batch))
    assert (mask.view(batch, -1).sum(1) == model.len_keep).all()
    ref = runs.run_model(model, inp, mask, torch.float64)
    runs.check_sparsity(up, ref, mask)
    f32s = runs.float32_samples(lambda cl: runs.run_model(model, inp, mask, torch.float32, cl))
    tensors = {'input': inp, 'mask': mask.float()}
    stored = {stored_name(k): v for k, v in ref.items() if stored_name(k)}
    tensors.update(stored)
    write(f'{fx}.outputs.safetensors', tensors, {'format': 'pt', 'fixture': fx, 'model': cfg_name})
    manifest['fixtures'][fx] = {
        'model': cfg_name, 'weights': f'{cfg_name}.weights.safetensors', 'outputs': f'{fx}.outputs.safetensors',
        'input_size': size, 'batch': batch, 'grid': [h, h], 'len_keep': model.len_keep,
        'mask': mask.view(batch, -1).int().tolist(),
        'loss': {'train': ref['train/loss'].item(), 'eval': ref['eval/loss'].item()},
        'loss_torch_fp32': {m: runs.farthest(ref[f'{m}/loss'].item(), [f[f'{m}/loss'].item() for f in f32s])
                            for m in ('train', 'eval')},
        'torch_fp32_error': runs.fp32_error(stored, [{stored_name(k): v for k, v in f.items() if stored_name(k)} for f in f32s]),
    }
    print(f"{fx}: loss train {ref['train/loss'].item():.6f} eval {ref['eval/loss'].item():.6f}")


def make_trajectory(up, manifest, models, pixels):
    tensors, entry = trajectory.make(up, models['resnet18s'], pixels, models['resnet18s'])
    write('trajectory-resnet18s_64.safetensors', tensors, {'format': 'pt', 'fixture': 'trajectory-resnet18s_64'})
    manifest['trajectory'] = dict(file='trajectory-resnet18s_64.safetensors', model='resnet18s',
                                  weights='resnet18s.weights.safetensors', **entry)
    steps = entry['steps']
    print(f"trajectory: loss {steps[0]['loss']:.6f} -> {steps[-1]['loss']:.6f}, "
          f"max rel fp32 loss error {max(abs(s['loss_torch_fp32'] - s['loss']) / s['loss'] for s in steps):.2e}")


def make_reconstruct(up, manifest, model, pixels):
    """Two of the trajectory's images as PNG files, and the official eval-mode loss of resnet18s
    on them with fixed masks: the reference for `webspark reconstruct`."""
    files = [f'reconstruct-{k}.png' for k in range(len(pixels))]
    for name, image in zip(files, pixels):
        png.write_rgb(os.path.join(OUT, name), image)
    mask = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.bool).view(2, 1, 2, 2)

    def loss(dtype, channels_last=False):
        m = copy.deepcopy(model).to(dtype).eval()
        x = trajectory.normalise(pixels, dtype)
        if channels_last:
            m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        with runs.default_dtype(dtype), torch.no_grad():
            return m(x, active_b1ff=mask).item()
    ref = loss(torch.float64)
    manifest['reconstruct'] = {'model': 'resnet18s', 'weights': 'resnet18s.weights.safetensors', 'images': files,
                               'input_size': 64, 'mask': mask.view(2, -1).int().tolist(), 'loss': ref,
                               'loss_torch_fp32': runs.farthest(ref, runs.float32_samples(lambda cl: loss(torch.float32, cl)))}


def make_lamb_tiny(up, manifest):
    tensors = {}
    manifest['lamb_tiny'] = dict(file='lamb-tiny.safetensors', **optim.lamb_tiny(up, tensors))
    write('lamb-tiny.safetensors', tensors, {'format': 'pt', 'fixture': 'lamb-tiny'})
    print('lamb tiny: grad norms', manifest['lamb_tiny']['runs']['beta2_0.95']['grad_norm'])


def make_schedule(up):
    def len_keep(h, ratio):  # SparK.__init__ computes it for the model's input size and mask ratio
        return runs.build(up, MODELS['resnet18s'], h * PATCH, mask_ratio=ratio).len_keep
    with open(os.path.join(OUT, 'schedule.json'), 'w') as f:
        f.write(dump_json({'generator': 'tools/make-fixtures.py', **optim.schedule(up, len_keep)}))


def dump_json(obj):
    """Indented JSON with the innermost lists (numbers, strings) kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r'\[\s+([^\[\]{}]*?)\s+\]', lambda m: '[' + re.sub(r'\s+', ' ', m.group(1)) + ']', text) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--spark', required=True, help='a checkout of keyu-tian/SparK at ' + official.PINNED_COMMIT)
    args = parser.parse_args()
    up = official.load(args.spark)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    manifest = {'generator': 'tools/make-fixtures.py', 'upstream': {'repository': 'https://github.com/keyu-tian/SparK',
                'commit': official.PINNED_COMMIT}, 'torch': torch.__version__,
                'normalization': {'mean': IMAGENET_MEAN, 'std': IMAGENET_STD}, 'patch': PATCH,
                'models': {}, 'fixtures': {}}
    models = make_models(up, manifest)
    for fx, cfg_name, size, batch in FIXTURES:
        make_fixture(up, manifest, fx, cfg_name, models[cfg_name], size, batch)
    pixels = trajectory.to_pixels(smooth_images(trajectory.SETUP['images'], 64, torch.Generator().manual_seed(4242)))
    make_trajectory(up, manifest, models, pixels)
    make_reconstruct(up, manifest, models['resnet18s'], pixels[:2])
    make_lamb_tiny(up, manifest)
    make_schedule(up)
    torch.manual_seed(0)
    for name, fn in [('resnet50', keys.resnet50_keys), ('convnext_small', keys.convnext_small_keys)]:
        with open(os.path.join(OUT, f'keys-{name}.json'), 'w') as f:
            json.dump(fn(up), f, separators=(',', ':'))
            f.write('\n')
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        f.write(dump_json(manifest))
    selfcheck.run(OUT)
    total = 0
    for fn in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, fn))
        total += size
        print(f'{size:>9}  {fn}')
    print(f'{total:>9}  total')


if __name__ == '__main__':
    main()
