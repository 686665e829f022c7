#!/usr/bin/python3
"""Writes the PyTorch reference fixtures under test/fixtures/model/ (see test/fixtures/README.md).

Run from the repository root with Debian's python3-torch:  /usr/bin/python3 tools/make-fixtures.py
Deterministic: fixed seeds, one CPU thread, deterministic algorithms; a re-run writes the same bytes.

Small SparK models follow the official design (tools/fixtures/*.py). Weights and inputs are
made in float32 and stored as such; every reference value is then computed in float64 from
exactly those float32 values and stored as float32, so the stored numbers are the float32
rounding of the exact answer. The same computation done by PyTorch in float32 is also run,
and its error against the float64 reference is written into the manifest per tensor
(`torch_fp32_error`), a measured scale for the tolerances of the TypeScript tests.
"""
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
from fixtures import safetensors, selfcheck  # noqa: E402
from fixtures.encoders import ConvNeXt, ResNet, active_at, set_active  # noqa: E402
from fixtures.keys import convnext_small_keys, resnet50_keys  # noqa: E402
from fixtures.lamb import Lamb, lr_wd_at, param_groups, peak_lr  # noqa: E402
from fixtures.spark import PATCH, SparK, len_keep, random_mask  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'model')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MASK_RATIO = 0.6

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


def build(cfg):
    if cfg['arch'] == 'resnet':
        enc = ResNet(cfg['block'], cfg['layers'], cfg['planes'], cfg['stem_width'], drop_path_rate=0.0)
    else:
        enc = ConvNeXt(cfg['depths'], cfg['dims'], drop_path_rate=0.0)
    return SparK(enc, cfg['decoder_width'], cfg['densify_norm'])


@torch.no_grad()
def randomise_for_fixture(model, g):
    """The official init leaves many values at constants (BN/LN weight 1, bias 0, zero-init last
    BN of each ResNet block, running stats 0/1, layer-scale gamma 1e-6, conv/linear biases 0).
    A wrong gradient or a missing mask would hide behind those, so they are randomised: every
    norm affine, every running stat (positive variances, so eval mode differs from train mode),
    every gamma, and every bias that the official init set to zero."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.2, generator=g)
            m.running_mean.normal_(0.0, 0.2, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
        elif isinstance(m, nn.LayerNorm):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.2, generator=g)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            if not m.bias.any():
                m.bias.normal_(0.0, 0.1, generator=g)
        if getattr(m, 'gamma', None) is not None:
            m.gamma.uniform_(0.25, 1.0, generator=g)
    # With the official std .02 the prediction is ~0 and the loss sits near 1 whatever the
    # network computes; std .5 makes rec O(1), so the loss depends on every layer.
    model.dense_decoder.proj.weight.normal_(0.0, 0.5, generator=g)


def smooth_images(B, S, g):
    """Photo-like data: low-frequency colour fields, soft blobs and a little grain in [0, 1],
    then ImageNet-normalised as SparK's loader does."""
    img = F.interpolate(torch.rand(B, 3, 5, 5, generator=g), size=(S, S), mode='bicubic', align_corners=True)
    ys = torch.linspace(0, 1, S).view(1, S, 1)
    xs = torch.linspace(0, 1, S).view(1, 1, S)
    for _ in range(5):
        c = torch.rand(B, 3, 1, 1, generator=g) - 0.5
        cy, cx = torch.rand(B, 1, 1, generator=g), torch.rand(B, 1, 1, generator=g)
        r = 0.08 + 0.2 * torch.rand(B, 1, 1, generator=g)
        img = img + c * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * r * r)).unsqueeze(1)
    img = (img + 0.03 * torch.randn(B, 3, S, S, generator=g)).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (img - mean) / std


def bn_buffers(model):
    return {k: v for k, v in model.state_dict().items()
            if k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))}


def run_model(model32, inp, mask, dtype):
    """Eval-mode forward, then a training-mode forward + backward, on a copy in `dtype`."""
    model = copy.deepcopy(model32).to(dtype)
    x = inp.to(dtype)
    res = {}
    model.eval()
    with torch.no_grad():
        for k, v in model(x, mask).items():
            res[f'eval/{k}'] = v
    model.train()
    out = model(x, mask)
    out['loss'].backward()
    for k, v in out.items():
        res[f'train/{k}'] = v.detach()
    for k, p in model.named_parameters():
        res[f'train/grad/{k}'] = p.grad
    for k, v in bn_buffers(model).items():
        res[f'train/running/{k}'] = v
    return res


def check_sparsity(res, mask):
    """The invariant the whole sparse design rests on: 0 at every masked site, at every stage."""
    set_active(mask)
    for k, v in res.items():
        if '/feature/' in k or '/normed/' in k:
            masked = ~active_at(v.shape[2], v.shape[3]).expand_as(v)
            assert (v[masked] == 0).all(), f'{k} is not zero at masked sites'
            assert (v[~masked] != 0).any(), f'{k} is all zero at active sites'


def fp32_error(ref, f32):
    """{name: [max |fp32 - fp64|, max |fp64|]} over the float outputs, 3 significant digits."""
    out = {}
    for k, v in ref.items():
        if v.dtype == torch.int64:
            continue
        err = (f32[k].double() - v).abs().max().item()
        out[k] = [float(f'{err:.3g}'), float(f'{v.abs().max().item():.3g}')]
    return out


def model_config(name, cfg, model):
    enc = model.sparse_encoder.sp_cnn
    c = dict(cfg, name=name, feature_channels=enc.feature_channels,
             decoder_channels=model.dense_decoder.channels, mask_ratio=MASK_RATIO,
             downsample_ratio=PATCH, drop_path_rate=0.0, bn_eps=1e-5, bn_momentum=0.1,
             ln_eps=1e-6, densify_projs=[])
    if cfg['arch'] == 'resnet':
        c['expansion'] = 1 if cfg['block'] == 'basic' else 4
    for i, p in enumerate(model.densify_projs):
        c['densify_projs'].append({'index': i, 'kind': 'identity'} if isinstance(p, nn.Identity) else
                                  {'index': i, 'kind': 'conv', 'kernel': p.kernel_size[0],
                                   'in': p.in_channels, 'out': p.out_channels})
    return c


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


def make_models(manifest):
    models, inputs = {}, {}
    for name, cfg in MODELS.items():
        torch.manual_seed(1000 + len(models))
        model = build(cfg)
        randomise_for_fixture(model, torch.Generator().manual_seed(2000 + len(models)))
        models[name] = model
        config = model_config(name, cfg, model)
        manifest['models'][name] = {'weights': f'{name}.weights.safetensors', 'config': config,
                                    'parameters': sum(p.numel() for p in model.parameters())}
        write(f'{name}.weights.safetensors', model.state_dict(),
              {'format': 'pt', 'spark_config': json.dumps(config, separators=(',', ':'))})
    for size, batch in sorted({(s, b) for _, _, s, b in FIXTURES}):
        inputs[(size, batch)] = smooth_images(batch, size, torch.Generator().manual_seed(size * 10 + batch))
    fixed_64 = torch.tensor([[[1, 0], [0, 1]], [[1, 1], [0, 0]]], dtype=torch.bool).view(2, 1, 2, 2)
    for fx, mname, size, batch in FIXTURES:
        h = size // PATCH
        if size == 64 and batch == 2:
            mask = fixed_64
        else:
            mask = random_mask(batch, h, h, MASK_RATIO, torch.Generator().manual_seed(size + batch))
        assert (mask.view(batch, -1).sum(1) == len_keep(h, h, MASK_RATIO)).all()
        inp = inputs[(size, batch)]
        ref = run_model(models[mname], inp, mask, torch.float64)
        check_sparsity(ref, mask)
        f32 = run_model(models[mname], inp, mask, torch.float32)
        tensors = {'input': inp, 'mask': mask.float()}
        stored = {stored_name(k): v for k, v in ref.items() if stored_name(k)}
        tensors.update(stored)
        write(f'{fx}.outputs.safetensors', tensors, {'format': 'pt', 'fixture': fx, 'model': mname})
        manifest['fixtures'][fx] = {
            'model': mname, 'weights': f'{mname}.weights.safetensors', 'outputs': f'{fx}.outputs.safetensors',
            'input_size': size, 'batch': batch, 'grid': [h, h], 'len_keep': len_keep(h, h, MASK_RATIO),
            'mask': mask.view(batch, -1).int().tolist(),
            'loss': {'train': ref['train/loss'].item(), 'eval': ref['eval/loss'].item()},
            'loss_torch_fp32': {'train': f32['train/loss'].item(), 'eval': f32['eval/loss'].item()},
            'torch_fp32_error': fp32_error(stored, {stored_name(k): v for k, v in f32.items() if stored_name(k)}),
        }
        print(f"{fx}: loss train {ref['train/loss'].item():.6f} eval {ref['eval/loss'].item():.6f}")
    return models, inputs


LAMB_SCHEDULE = {'base_lr': 2e-4, 'batch_size': 4096, 'wd': 0.04, 'wd_end': 0.2, 'warmup_iters': 10,
                 'total_iters': 50, 'iterations': [4, 10, 30]}


def lamb_model_run(model32, inp, masks, dtype, round_f32):
    s = LAMB_SCHEDULE
    model = copy.deepcopy(model32).to(dtype).train()
    groups = param_groups(model.named_parameters())
    opt = Lamb(groups, betas=(0.9, 0.95), eps=1e-6, max_grad_norm=5.0)
    out, steps = {}, []
    for k, it in enumerate(s['iterations']):
        lr, wd = lr_wd_at(it, peak_lr(s['base_lr'], s['batch_size']), s['wd'], s['wd_end'],
                          s['warmup_iters'], s['total_iters'])
        model.zero_grad(set_to_none=True)
        loss = model(inp.to(dtype), masks[k])['loss']
        loss.backward()
        norm, clip = opt.step(lr, wd)
        if round_f32:
            opt.round_to_f32()
            with torch.no_grad():
                for v in bn_buffers(model).values():
                    if v.is_floating_point():
                        v.copy_(v.float().double())
        steps.append({'iteration': it, 'lr': lr, 'wd': wd, 'loss': loss.item(),
                      'grad_norm': norm.item(), 'clip_divisor': clip.item()})
        out[f'step{k}/loss'] = loss.detach()
        out[f'step{k}/grad_norm'] = norm.detach()
        for name, p in model.named_parameters():
            out[f'step{k}/param/{name}'] = p.detach().clone()
        for name, v in bn_buffers(model).items():
            out[f'step{k}/buffer/{name}'] = v.clone()
    return out, steps, groups


def make_lamb_model(manifest, models, inputs):
    inp = inputs[(64, 2)]
    gen = torch.Generator().manual_seed(77)
    masks = [random_mask(2, 2, 2, MASK_RATIO, gen) for _ in LAMB_SCHEDULE['iterations']]
    ref, steps, groups = lamb_model_run(models['resnet18s'], inp, masks, torch.float64, True)
    f32, _, _ = lamb_model_run(models['resnet18s'], inp, masks, torch.float32, False)
    tensors = {**{f'mask/{k}': m.float() for k, m in enumerate(masks)}, **ref}  # input: resnet18s_64's
    write('lamb-resnet18s_64.safetensors', tensors, {'format': 'pt', 'fixture': 'lamb-resnet18s_64'})
    manifest['lamb_model'] = {
        'file': 'lamb-resnet18s_64.safetensors', 'model': 'resnet18s', 'weights': 'resnet18s.weights.safetensors',
        'input': 'resnet18s_64.outputs.safetensors:input', 'input_size': 64, 'batch': 2, 'masks': [m.view(2, -1).int().tolist() for m in masks],
        'optimizer': {'betas': [0.9, 0.95], 'eps': 1e-6, 'max_grad_norm': 5.0, 'bias_correction': True,
                      'grad_averaging': True, 'trust_clip': False, 'always_adapt': False},
        'schedule': dict(LAMB_SCHEDULE, peak_lr=peak_lr(LAMB_SCHEDULE['base_lr'], LAMB_SCHEDULE['batch_size'])),
        'steps': steps,
        'groups': [{'name': g['name'], 'wd_scale': g['wd_scale'], 'params': g['names']} for g in groups],
        'torch_fp32_error': fp32_error(ref, f32),
    }
    print('lamb resnet18s:', ', '.join(f"loss {s['loss']:.6f} |g| {s['grad_norm']:.4f}" for s in steps))


def make_lamb_tiny(manifest):
    """Hand-made tensors that reach every branch: decay / no-decay by shape and by name, a zero
    weight (||p|| = 0 -> trust ratio 1), zero weight and zero grad (||update|| = 0), and one huge
    gradient in steps 1 and 2 so the global-norm clip divides the gradients (step 0 is unclipped)."""
    g = torch.Generator().manual_seed(5)
    shapes = {'layer.weight': [3, 4], 'big.weight': [2, 3], 'zero.weight': [2, 2], 'zero_both.weight': [1, 3],
              'norm.weight': [4], 'conv.bias': [4], 'mask_tokens.0': [1, 3, 1, 1], 'stages.0.0.gamma': [4]}
    init = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    init['zero.weight'].zero_()
    init['zero_both.weight'].zero_()
    grads = []
    for step, big in enumerate([0.1, 1e3, 50.0]):
        gs = {k: 0.3 * torch.randn(s, generator=g) for k, s in shapes.items()}
        gs['big.weight'] = big * torch.randn(shapes['big.weight'], generator=g)
        gs['zero_both.weight'].zero_()
        grads.append(gs)
    lrs, wds = [0.01, 0.02, 0.005], [0.04, 0.1, 0.2]
    tensors = {f'init/{k}': v for k, v in init.items()}
    for s, gs in enumerate(grads):
        tensors.update({f'grad/{s}/{k}': v for k, v in gs.items()})
    runs = {}
    for run, betas in [('beta2_0.95', (0.9, 0.95)), ('beta2_0.999', (0.9, 0.999))]:
        params = {k: nn.Parameter(v.double().clone()) for k, v in init.items()}
        groups = param_groups(params.items())
        opt = Lamb(groups, betas=betas, eps=1e-6, max_grad_norm=5.0)
        norms, clips = [], []
        for s, gs in enumerate(grads):
            for k, p in params.items():
                p.grad = gs[k].double().clone()
            norm, clip = opt.step(lrs[s], wds[s])
            opt.round_to_f32()
            norms.append(norm.item())
            clips.append(clip.item())
            for k, p in params.items():
                tensors[f'{run}/param/{s}/{k}'] = p.detach().clone()
                tensors[f'{run}/exp_avg/{s}/{k}'] = opt.state[p]['exp_avg'].clone()
                tensors[f'{run}/exp_avg_sq/{s}/{k}'] = opt.state[p]['exp_avg_sq'].clone()
        tensors[f'{run}/grad_norm'] = torch.tensor(norms, dtype=torch.float64)
        runs[run] = {'betas': list(betas), 'grad_norm': norms, 'clip_divisor': clips,
                     'groups': [{'name': gr['name'], 'wd_scale': gr['wd_scale'], 'params': gr['names']}
                                for gr in groups]}
    write('lamb-tiny.safetensors', tensors, {'format': 'pt', 'fixture': 'lamb-tiny'})
    manifest['lamb_tiny'] = {'file': 'lamb-tiny.safetensors', 'eps': 1e-6, 'max_grad_norm': 5.0,
                             'lr': lrs, 'wd': wds, 'shapes': shapes, 'runs': runs}
    print('lamb tiny: grad norms', runs['beta2_0.95']['grad_norm'])


def schedule_case(name, base_lr, batch, warmup_iters, total_iters, its=None):
    peak = peak_lr(base_lr, batch)
    its = list(range(total_iters)) if its is None else its
    lw = [lr_wd_at(it, peak, 0.04, 0.2, warmup_iters, total_iters) for it in its]
    return {'name': name, 'base_lr': base_lr, 'batch_size': batch, 'peak_lr': peak, 'wd': 0.04, 'wd_end': 0.2,
            'warmup_iters': warmup_iters, 'total_iters': total_iters, 'iterations': its,
            'lr': [a for a, _ in lw], 'weight_decay': [b for _, b in lw]}


def make_schedule():
    ipe = 313  # ImageNet-1k at batch 4096
    cases = [
        schedule_case('small', 2e-4, 8, 10, 50),
        # warm-up 2.5 epochs x 5 iterations = 12.5 -> Python round() gives 12 (not 13)
        schedule_case('fractional-warmup', 2e-4, 64, 2.5 * 5, 40),
        schedule_case('official-resnet50-1600ep', 2e-4, 4096, 40 * ipe, 1600 * ipe,
                      [0, 1, 40 * ipe - 1, 40 * ipe, 40 * ipe + 1, 800 * ipe, 1600 * ipe - 1]),
    ]
    keep = [{'h': h, 'w': h, 'mask_ratio': r, 'len_keep': len_keep(h, h, r)}
            for h in (2, 3, 4, 5, 7, 12, 14) for r in (0.5, 0.6, 0.75)]
    with open(os.path.join(OUT, 'schedule.json'), 'w') as f:
        f.write(dump_json({'generator': 'tools/make-fixtures.py', 'cases': cases, 'len_keep': keep}))


def dump_json(obj):
    """Indented JSON with the innermost lists (numbers, strings) kept on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r'\[\s+([^\[\]{}]*?)\s+\]', lambda m: '[' + re.sub(r'\s+', ' ', m.group(1)) + ']', text) + '\n'


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    manifest = {'generator': 'tools/make-fixtures.py', 'torch': torch.__version__,
                'normalization': {'mean': IMAGENET_MEAN, 'std': IMAGENET_STD}, 'patch': PATCH,
                'models': {}, 'fixtures': {}}
    models, inputs = make_models(manifest)
    make_lamb_model(manifest, models, inputs)
    make_lamb_tiny(manifest)
    make_schedule()
    torch.manual_seed(0)
    for name, fn in [('resnet50', resnet50_keys), ('convnext_small', convnext_small_keys)]:
        with open(os.path.join(OUT, f'keys-{name}.json'), 'w') as f:
            json.dump(fn(), f, separators=(',', ':'))
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
