#!/usr/bin/python3
"""The SparK pre-training step in PyTorch, timed: the baseline `npx webspark bench train` is
compared with on the same GPU (docs/performance.md's target: the WebGPU step within 3x of
PyTorch fp32).

The step is the official code's (a checkout of keyu-tian/SparK at the commit pinned in
tools/fixtures/official.py, given with --spark; its timm imports served by
tools/fixtures/standins): its SparK with SparseEncoder and LightDecoder at full width, its
TheSameAsTimmLAMB (betas (0.9, 0.95), clip 5) over get_param_groups, and main.py's loop body:
a new official random mask, forward, zero_grad, backward, LAMB step, loss.item() (the official
loop logs it every step, which waits for the GPU). fp32 with TF32 off by default (the comparison
is fp32 against fp32); --tf32 runs PyTorch's default on Ampere and later instead (TF32 tensor
cores for convolutions and matmuls). cuDNN autotuning on (PyTorch at its best).

Models: the ResNets (timm's, as the official code registers them) and convnext_tiny (the
official ConvNeXt with sparse=True, depths 3-3-9-3, dims 96-768, drop path 0.1 as webspark's
zoo has it).

    python3 tools/torch-step-bench.py --spark .spark --model resnet50 --input-size 224 --batch 32 --json out.json
    python3 tools/torch-step-bench.py --spark .spark --model convnext_tiny --batch 32 --tf32
    python3 tools/torch-step-bench.py --spark .spark --device cpu --model resnet18 --input-size 64 --batch 2 --steps 3

Prints ms/step (median after warm-up), images/s and the peak CUDA memory allocated
(torch.cuda.max_memory_allocated); --json writes the same as a record in
`npx webspark bench --json`'s format plus the device name.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import official, optim, runs  # noqa: E402

# timm's drop-path rates for SparK pre-training (pretrain/models/__init__.py; 0 where it has none);
# convnext_tiny, which the official list lacks, at webspark's zoo rate (src/models/zoo.ts).
DROP_PATH = {'resnet18': 0.0, 'resnet34': 0.0, 'resnet50': 0.05, 'resnet101': 0.08, 'convnext_tiny': 0.1}


def build(up, name, input_size, decoder_width, mask_ratio):
    if name == 'convnext_tiny':
        cnn = up.models.convnext.ConvNeXt(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768], drop_path_rate=DROP_PATH[name],
                                          num_classes=0, global_pool='', sparse=True)
    else:
        from timm import create_model
        cnn = create_model(name, drop_path_rate=DROP_PATH[name], num_classes=0, global_pool='')
    enc = up.encoder.SparseEncoder(cnn, input_size=input_size, sbn=False)
    dec = up.decoder.LightDecoder(enc.downsample_raito, width=decoder_width, sbn=False)
    return runs.quiet(up.spark.SparK, enc, dec, mask_ratio=mask_ratio, densify_norm='bn', sbn=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--spark', required=True, help='a checkout of keyu-tian/SparK at ' + official.PINNED_COMMIT)
    ap.add_argument('--model', default='resnet50', choices=sorted(DROP_PATH))
    ap.add_argument('--input-size', type=int, default=224)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--decoder-width', type=int, default=768)
    ap.add_argument('--mask-ratio', type=float, default=0.6)
    ap.add_argument('--steps', type=int, default=20, help='measured steps (after 3 warm-up steps)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--tf32', action='store_true',
                    help="PyTorch's default on Ampere and later: TF32 for convolutions and matmuls (default: off, plain fp32)")
    ap.add_argument('--json', help='write the figures here')
    a = ap.parse_args()
    up = official.load(a.spark)
    if a.input_size % 32:
        sys.exit('--input-size must be a multiple of 32')

    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = build(up, a.model, a.input_size, a.decoder_width, a.mask_ratio).to(dev).train()
    groups, _ = optim.param_groups(up, list(model.named_parameters()))
    opt = optim.lamb(up, groups, (0.9, 0.95))
    optim.set_lr_wd(opt, 1e-4, 0.04)
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(a.batch, 3, a.input_size, a.input_size, generator=gen).to(dev)

    def sync():
        if dev.type == 'cuda':
            torch.cuda.synchronize()

    def step():  # main.py pre_train_one_ep, at a fixed lr / wd
        loss = model(images, active_b1ff=model.mask(a.batch, dev, generator=gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    sync()
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    # Peak bytes allocated by tensors during the measured steps (CUDA only; the caching
    # allocator reserves more).
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == 'cuda' else None
    shape = f'{a.model} B{a.batch} {a.input_size}px dec{a.decoder_width}'
    impl = 'pytorch tf32' if a.tf32 else 'pytorch fp32'
    mode = 'TF32 on (PyTorch default)' if a.tf32 else 'fp32 (TF32 off)'
    mem = f', peak {peak / 2**20:.0f} MiB allocated' if peak is not None else ''
    print(f'pytorch {torch.__version__} {mode} on {name}: SparK step {shape}: '
          f'{ms:.1f} ms/step, {1000 * a.batch / ms:.1f} images/s (median of {a.steps}){mem}')
    if a.json:
        rec = {'suite': 'train', 'name': 'SparK step (fwd+bwd+LAMB)', 'impl': impl, 'shape': shape,
               'ms': ms, 'gflops': None, 'bytes': peak}
        summary = {'msPerStep': ms, 'imagesPerSecond': 1000 * a.batch / ms, 'peakBytes': peak, 'tf32': a.tf32,
                   'model': a.model, 'inputSize': a.input_size, 'batch': a.batch, 'steps': a.steps}
        with open(a.json, 'w') as f:
            json.dump({'device': name, 'torch': torch.__version__, 'records': [rec], 'summary': summary}, f, indent=2)


if __name__ == '__main__':
    main()
