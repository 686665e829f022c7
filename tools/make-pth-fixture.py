#!/usr/bin/python3
"""Writes test/fixtures/pth/resnet18s_withdecoder_spark_style.pth: a small checkpoint with
exactly the structure of the official `*_withdecoder_1kpretrained_spark_style.pth`
(SparK main.py: misc.save_checkpoint_with_meta_info_and_opt_state), holding the weights of
test/fixtures/model/resnet18s.weights.safetensors under the same keys, plus the deprecated
buffers the official SparK module still saves (imn_m, imn_s: (1,3,1,1); norm_black: zeros of
(1,3,input,input)) and the `config` dict of `SparK.state_dict(with_config=True)`.

Run from the repository root with Debian's python3-torch:  /usr/bin/python3 tools/make-pth-fixture.py
Deterministic: a re-run writes the same tensors (torch.save's zip is not byte-stable across
torch versions, so the test compares values, not bytes).
"""
import argparse
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, 'test/fixtures/model/resnet18s.weights.safetensors')
OUT = os.path.join(ROOT, 'test/fixtures/pth/resnet18s_withdecoder_spark_style.pth')
INPUT = 64


def main():
    weights, _meta = safetensors.read(SRC)
    module = {}
    for k, v in weights.items():
        module[k] = torch.as_tensor(v).clone()
    # The official SparK.__init__ registers these for compatibility with old checkpoints; they
    # are saved but unused (imn_m/imn_s are torch.empty there: we store ImageNet's mean/std).
    module['imn_m'] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    module['imn_s'] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    module['norm_black'] = torch.zeros(1, 3, INPUT, INPUT)
    module['config'] = {
        'mask_ratio': 0.6, 'densify_norm_str': 'bn', 'sbn': False, 'hierarchy': 4,
        'sparse_encoder.input_size': INPUT, 'dense_decoder.width': 32,
    }
    # An optimizer state_dict as torch.optim writes it: integer parameter indices. Only the
    # first three parameters carry moments, to keep the file small.
    names = [k for k in weights if not (k.endswith('running_mean') or k.endswith('running_var') or k.endswith('num_batches_tracked'))]
    state = {}
    for i, k in enumerate(names[:3]):
        p = module[k]
        state[i] = {'step': torch.tensor(1.0), 'exp_avg': torch.full_like(p, 1e-3), 'exp_avg_sq': torch.full_like(p, 1e-6)}
    optimizer = {
        'state': state,
        'param_groups': [
            {'lr': 1.5e-5, 'betas': (0.9, 0.95), 'eps': 1e-6, 'weight_decay': 0.04, 'grad_averaging': True,
             'max_grad_norm': 5.0, 'trust_clip': False, 'always_adapt': False, 'bias_correction': True,
             'lr_sc': 1.0, 'wd_sc': 1.0, 'params': list(range(len(names)))},
        ],
    }
    args = argparse.Namespace(exp_name='spark-fixture', data_path='/data/imagenet', model='resnet18',
                              input_size=INPUT, sbn=False, dp=0.0, mask=0.6, hierarchy=4,
                              densify_norm='bn', opt='lamb', ada=0.95, lr=None, base_lr=2e-4,
                              wd=0.04, wde=0.2, ep=1600, wp_ep=40, clip=5.0, bs=8, batch_size_per_gpu=8,
                              dataloader_workers=8, init_weight='', resume_from='', local_rank=0,
                              device='cpu', is_master=True, is_local_master=True, first_logging=True)
    ckpt = {
        'args': args,
        'input_size': INPUT,
        'arch': 'resnet18',
        'epoch': 1,
        'performance_desc': 'min last',
        'module': module,
        'optimizer': optimizer,
        'is_pretrain': True,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    torch.save(ckpt, OUT)
    print(f'{OUT}: {os.path.getsize(OUT)} bytes, {len(module) - 1} tensors in module')


if __name__ == '__main__':
    main()
