"""PyTorch references for fine-tuning (test/fixtures/finetune/), with Debian's python3-torch and
python3-torchvision (no network):  /usr/bin/python3 tools/make-finetune-fixture.py

1. torchvision-resnet18-keys.json: the key, shape and dtype of every entry of
   torchvision.models.resnet18(num_classes=10).state_dict(), in order (what
   `load_state_dict(strict=True)` demands of an exported classifier).
2. step-resnet.safetensors: one fine-tuning step of a NARROW torchvision ResNet (torchvision's
   own ResNet / BasicBlock classes, rebuilt with stem 8 and stage widths 8, 12, 16, 24, one
   block per stage, so the file stays small) with a 5-class fc: the weights before, a batch of
   uint8 images at 64 px, labels, then in float32 as PyTorch computes it in training mode
   (batch statistics): the label-smoothed cross-entropy, every parameter's gradient
   (`grad.<key>`), and after one torch.optim.AdamW step with layer-wise lr decay and no weight
   decay on 1-D parameters and biases, every updated entry (`after.<key>`, running statistics
   and num_batches_tracked included). Hyper-parameters are in the metadata.

3. predictions.json: `exported-classifier.safetensors` (written by webspark's own export,
   tools/make-finetune-export.ts, run that first) loaded into the narrow torchvision ResNet
   with load_state_dict(strict=True), and PyTorch's softmax probabilities in eval mode on
   image-0..2.png (64 px, the input size: used as is, ImageNet normalisation).

Deterministic (fixed seeds, one thread): a re-run writes the same files.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from fixtures.safetensors import write  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'finetune')
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def narrow_resnet(classes):
    """torchvision's ResNet with BasicBlocks, stem 8 and stage widths 8, 12, 16, 24."""
    from torchvision.models.resnet import BasicBlock, ResNet
    m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=classes)
    m.inplanes = 8
    m.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(8)
    m.layer1 = m._make_layer(BasicBlock, 8, 1)
    m.layer2 = m._make_layer(BasicBlock, 12, 1, stride=2)
    m.layer3 = m._make_layer(BasicBlock, 16, 1, stride=2)
    m.layer4 = m._make_layer(BasicBlock, 24, 1, stride=2)
    m.fc = nn.Linear(24, classes)
    # Non-trivial BatchNorm affine parameters and running statistics, so every path is exercised.
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.num_features, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.num_features, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(mod.num_features, generator=g))
                mod.running_var.copy_(1 + 0.1 * torch.rand(mod.num_features, generator=g))
    return m


def layer_depth(name):
    """webspark's ResNet layer-decay depths (src/finetune/layer-decay.ts): stem 0, layerN N, fc 5."""
    head = name.split('.')[0]
    if head.startswith('layer'):
        return int(head[5:])
    return 5 if head == 'fc' else 0


def keys_fixture():
    sd = torchvision.models.resnet18(num_classes=10).state_dict()
    rows = [[k, list(v.shape), 'I64' if v.dtype == torch.int64 else 'F32'] for k, v in sd.items()]
    with open(os.path.join(OUT, 'torchvision-resnet18-keys.json'), 'w') as f:
        json.dump({'torchvision': torchvision.__version__, 'num_classes': 10, 'keys': rows}, f)
        f.write('\n')


def step_fixture():
    torch.manual_seed(0)
    classes, batch, size = 5, 4, 64  # 64 px: the last stage is 2x2, so the pooling averages
    lr, wd, decay, smoothing = 2e-3, 0.05, 0.7, 0.1
    model = narrow_resnet(classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (batch, size, size, 3), generator=g, dtype=torch.uint8)
    labels = torch.tensor([0, 3, 1, 3])
    x = pixels.permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)

    groups = {}
    for name, p in model.named_parameters():
        scale = decay ** (5 - layer_depth(name))
        no_decay = p.ndim == 1 or name.endswith('.bias')
        groups.setdefault((scale, no_decay), []).append(p)
    opt = torch.optim.AdamW(
        [{'params': ps, 'lr': lr * s, 'weight_decay': 0.0 if nd else wd} for (s, nd), ps in groups.items()],
        betas=(0.9, 0.999), eps=1e-8)

    model.train()
    loss = F.cross_entropy(model(x), labels, label_smoothing=smoothing)
    opt.zero_grad()
    loss.backward()
    grads = {f'grad.{n}': p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    after = {f'after.{k}': v.clone() for k, v in model.state_dict().items()}

    tensors = {**before, 'pixels': pixels.float(), 'labels': labels.float(), 'loss': loss.detach().reshape(()), **grads, **after}
    meta = {'lr': lr, 'weight_decay': wd, 'layer_decay': decay, 'label_smoothing': smoothing, 'classes': classes,
            'input_size': size, 'torch': torch.__version__, 'torchvision': torchvision.__version__}
    write(os.path.join(OUT, 'step-resnet.safetensors'), tensors, {'webspark.fixture': json.dumps(meta)})
    print(f'loss {loss.item():.6f}; {len(grads)} gradients')


def predictions_fixture():
    from PIL import Image
    from fixtures.safetensors import read
    sd, meta = read(os.path.join(OUT, 'exported-classifier.safetensors'))
    names = json.loads(meta['webspark.classes'])
    model = narrow_resnet(len(names))
    model.load_state_dict(sd, strict=True)
    model.eval()
    out = []
    for i in range(3):
        name = f'image-{i}.png'
        rgb = torch.tensor(list(Image.open(os.path.join(OUT, name)).convert('RGB').getdata()), dtype=torch.float32)
        x = rgb.view(1, 64, 64, 3).permute(0, 3, 1, 2) / 255
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        with torch.no_grad():
            p = torch.softmax(model(x), dim=1)[0]
        out.append({'image': name, 'probs': [float(v) for v in p]})
    with open(os.path.join(OUT, 'predictions.json'), 'w') as f:
        json.dump({'classes': names, 'predictions': out}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    keys_fixture()
    step_fixture()
    predictions_fixture()
