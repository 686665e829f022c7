#!/usr/bin/python3
"""The SparK pre-training step in PyTorch, timed: the baseline `npx webspark bench train` is
compared with on the same GPU (docs/performance.md's target: the WebGPU step within 3x of
PyTorch fp32).

The model is the fixture script's (tools/fixtures: the official SparK structure, sparse
convolution simulated by masking as the official code does), at full width. fp32 with TF32
off (the comparison is fp32 against fp32), cuDNN autotuning on (PyTorch at its best). LAMB as
timm 0.5.4 computes it, written with torch.where so, like timm, it never waits on the GPU
inside the step. Each step draws a new mask, runs forward, backward and LAMB, and reads the
loss (the official loop logs loss.item() every step, which waits for the GPU).

    python3 tools/torch-step-bench.py --model resnet50 --input-size 224 --batch 32 --json out.json
    python3 tools/torch-step-bench.py --device cpu --model resnet18 --input-size 64 --batch 2 --steps 3

Prints ms/step (median after warm-up) and images/s; --json writes the same as a record in
`npx webspark bench --json`'s format plus the device name.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures.encoders import ResNet  # noqa: E402
from fixtures.lamb import param_groups  # noqa: E402
from fixtures.spark import SparK, random_mask, PATCH  # noqa: E402

RESNETS = {'resnet18': ('basic', [2, 2, 2, 2], 0.0), 'resnet34': ('basic', [3, 4, 6, 3], 0.0),
           'resnet50': ('bottleneck', [3, 4, 6, 3], 0.05), 'resnet101': ('bottleneck', [3, 4, 23, 3], 0.08)}


class TimmLamb:
    """timm 0.5.4's Lamb as SparK uses it (betas (0.9, 0.95) for ResNets, eps 1e-6, global
    norm clip 5 inside the optimizer, trust ratio only where weight decay applies), with no
    host synchronisation: every decision is a torch.where on the GPU."""

    def __init__(self, groups, betas=(0.9, 0.95), eps=1e-6, max_grad_norm=5.0):
        self.groups, self.betas, self.eps = groups, betas, eps
        self.max_grad_norm = max_grad_norm
        self.state = {}
        self.step_count = 0

    @torch.no_grad()
    def step(self, lr, wd):
        params = [p for g in self.groups for p in g['params'] if p.grad is not None]
        device = params[0].device
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
        limit = torch.tensor(self.max_grad_norm, device=device)
        one = torch.ones((), device=device)
        clip = torch.where(norm > limit, norm / limit, one)
        self.step_count += 1
        beta1, beta2 = self.betas
        bc1 = 1 - beta1 ** self.step_count
        bc2 = 1 - beta2 ** self.step_count
        for g in self.groups:
            g_wd = wd * g['wd_scale']
            for p in g['params']:
                if p.grad is None:
                    continue
                grad = p.grad.div(clip)
                st = self.state.setdefault(p, (torch.zeros_like(p), torch.zeros_like(p)))
                m, v = st
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = (m / bc1).div_(v.sqrt().div_(math.sqrt(bc2)).add_(self.eps))
                if g_wd != 0:
                    update.add_(p, alpha=g_wd)
                    w_norm, u_norm = p.norm(2), update.norm(2)
                    ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, one)
                    update.mul_(ratio)
                p.add_(update, alpha=-lr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default='resnet50', choices=sorted(RESNETS))
    ap.add_argument('--input-size', type=int, default=224)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--decoder-width', type=int, default=768)
    ap.add_argument('--mask-ratio', type=float, default=0.6)
    ap.add_argument('--steps', type=int, default=20, help='measured steps (after 3 warm-up steps)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--json', help='write the figures here')
    a = ap.parse_args()
    if a.input_size % PATCH:
        sys.exit(f'--input-size must be a multiple of {PATCH}')

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    block, layers, dpr = RESNETS[a.model]
    model = SparK(ResNet(block, layers, drop_path_rate=dpr), a.decoder_width, 'bn').to(dev).train()
    opt = TimmLamb(param_groups(model.named_parameters()))
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(a.batch, 3, a.input_size, a.input_size, generator=gen).to(dev)
    fmap = a.input_size // PATCH

    def sync():
        if dev.type == 'cuda':
            torch.cuda.synchronize()

    def step():
        mask = random_mask(a.batch, fmap, fmap, a.mask_ratio, gen).to(dev, non_blocking=True)
        model.zero_grad(set_to_none=False)
        loss = model(images, mask)['loss']
        loss.backward()
        opt.step(1e-4, 0.04)
        return loss.item()

    for _ in range(3):
        step()
    sync()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    shape = f'{a.model} B{a.batch} {a.input_size}px dec{a.decoder_width}'
    print(f'pytorch {torch.__version__} fp32 (TF32 off) on {name}: SparK step {shape}: '
          f'{ms:.1f} ms/step, {1000 * a.batch / ms:.1f} images/s (median of {a.steps})')
    if a.json:
        rec = {'suite': 'train', 'name': 'SparK step (fwd+bwd+LAMB)', 'impl': 'pytorch fp32', 'shape': shape,
               'ms': ms, 'gflops': None, 'bytes': None}
        with open(a.json, 'w') as f:
            json.dump({'device': name, 'torch': torch.__version__, 'records': [rec]}, f, indent=2)


if __name__ == '__main__':
    main()
