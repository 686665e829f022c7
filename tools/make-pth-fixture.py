#!/usr/bin/python3
"""Writes test/fixtures/pth/resnet18s_withdecoder_spark_style.pth: a small checkpoint made the
way the official main.py makes `*_withdecoder_1kpretrained_spark_style.pth`
(utils/misc.py save_checkpoint_with_meta_info_and_opt_state, called here: {'args': str(args),
'input_size', 'arch', 'epoch', 'performance_desc', 'module', 'optimizer', 'is_pretrain'}), from
the official code at the commit pinned in tools/fixtures/official.py:

    /usr/bin/python3 tools/make-pth-fixture.py --spark /tmp/SparK     # after tools/make-fixtures.py

`module` is the official `SparK.state_dict(with_config=True)` of a SparK ResNet built by the
official code with the weights of test/fixtures/model/resnet18s.weights.safetensors: those
weights, the deprecated buffers the official module still saves (imn_m, imn_s, norm_black) and
its `config` dict. `optimizer` is the state dict of the official TheSameAsTimmLAMB after one
step on the resnet18s_64 fixture's input and mask (the saved weights are those before it;
moments kept for three parameters, to keep the file small).
Deterministic values (torch.save's zip is not byte-stable across torch versions, so the test
compares values, not bytes).
"""
import argparse
import json
import os
import sys
from pprint import pformat

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import official, optim, runs, safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'test/fixtures/model')
OUT = os.path.join(ROOT, 'test/fixtures/pth/resnet18s_withdecoder_spark_style.pth')
INPUT = 64
# The configuration tools/make-fixtures.py gives resnet18s (read back from its weight file).
CONFIG_KEYS = ('arch', 'block', 'stem_width', 'planes', 'layers', 'decoder_width', 'densify_norm')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--spark', required=True, help='a checkout of keyu-tian/SparK at ' + official.PINNED_COMMIT)
    up = official.load(parser.parse_args().spark)
    weights, meta = safetensors.read(os.path.join(FIXTURES, 'resnet18s.weights.safetensors'))
    cfg = {k: v for k, v in json.loads(meta['spark_config']).items() if k in CONFIG_KEYS}
    model = runs.build(up, cfg, INPUT)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert sorted(missing) == sorted(runs.DEPRECATED_BUFFERS) and not unexpected, (missing, unexpected)
    # SparK.__init__ leaves imn_m / imn_s uninitialised (torch.empty); fixed values keep the file
    # deterministic. ImageNet's mean / std is what they held in the old checkpoints.
    model.imn_m.copy_(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    model.imn_s.copy_(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    module = {k: v.clone() if torch.is_tensor(v) else v for k, v in model.state_dict(with_config=True).items()}

    outputs, _ = safetensors.read(os.path.join(FIXTURES, 'resnet18s_64.outputs.safetensors'))
    groups, _ = optim.param_groups(up, list(model.named_parameters()))
    opt = optim.lamb(up, groups, (0.9, 0.95))
    up.lr_control.lr_wd_annealing(opt, optim.peak_lr(optim.BASE_LR, 8), optim.WD, optim.WD_END, 0, 40, 1600)
    model.train()
    loss = model(outputs['input'], active_b1ff=outputs['mask'].bool())
    opt.zero_grad()
    loss.backward()
    opt.step()

    args = Args(exp_dir=os.path.dirname(OUT), model='resnet18', input_size=INPUT, sbn=False, dp=0.0, mask=0.6,
                densify_norm='bn', opt='lamb', ada=0.95, base_lr=optim.BASE_LR, lr=optim.peak_lr(optim.BASE_LR, 8),
                wd=optim.WD, wde=optim.WD_END, ep=1600, wp_ep=40, clip=5.0, bs=8)
    # The optimizer's state dict as torch.optim writes it (state keyed by parameter index,
    # the official param_groups), its moments kept for the first three parameters only: all of
    # them would add 0.5 MB to the repository and no test reads them.
    opt_state = opt.state_dict()
    opt_state['state'] = {i: opt_state['state'][i] for i in sorted(opt_state['state'])[:3]}
    os.makedirs(args.exp_dir, exist_ok=True)
    up.misc.save_checkpoint_with_meta_info_and_opt_state(os.path.basename(OUT), args, 1, 'min last', module, opt_state)
    print(f'{OUT}: {os.path.getsize(OUT)} bytes, {len(module) - 1} tensors in module, loss {loss.item():.6f}')


class Args(argparse.Namespace):
    """The few fields of the official arg_util.Args (a typed-argument-parser `Tap`) that the
    official save function reads; it stores `str(args)`, which for a Tap is the pformat of its
    argument dict."""

    def __str__(self):
        return pformat(vars(self))


if __name__ == '__main__':
    main()
