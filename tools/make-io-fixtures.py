#!/usr/bin/python3
"""Writes the weight-file IO fixtures under test/fixtures/io/ (read by test/io/*.test.ts).

Run from the repository root with Debian's python3-torch:  /usr/bin/python3 tools/make-io-fixtures.py
Deterministic (fixed seeds, fixed zip dates): a re-run writes byte-identical files.

Files:
- checkpoint.pth: torch.save (zip format, pickle protocol 2) of a dict shaped like the official
  SparK checkpoint {'args', 'input_size', 'arch', 'epoch', 'performance_desc', 'module',
  'optimizer', 'is_pretrain'} plus 'dtypes', 'param' and 'extras' reaching the other cases:
  every dtype, 0-d and empty tensors, views (transposed, sliced with offset and stride, a row
  sharing its base's storage, an expanded stride-0 view), an nn.Parameter, argparse.Namespace,
  nested dicts / lists / tuples, int and tuple dict keys, bytes, a set, big ints, torch.device.
- checkpoint-proto4.pth: the same object saved with pickle_protocol=4 (FRAME, MEMOIZE,
  SHORT_BINUNICODE, STACK_GLOBAL, ...).
- checkpoint-zip64-deflate.pth: checkpoint.pth's entries rewritten by Python's zipfile,
  deflated, with zip64 records forced (and the classic end record's fields set to the 0xffff..
  placeholders that say "see zip64").
- malicious.pth: a state dict plus an object whose __reduce__ is (os.system, ('touch MARKER',)).
- malicious-proto4.pth: builtins.eval through STACK_GLOBAL (protocol 4), as the whole object.
- tensors.safetensors: every dtype, 0-d and empty tensors and metadata, written by the writer
  below (the reference layout: 8-byte dtypes first, header padded with spaces to 8 bytes).
- expected.json: what a reader must find: every tensor (dtype, shape, strides, offset, values),
  the non-tensor data as JSON, the marker path, and float32 -> f16 / bf16 conversions by torch.
"""
import argparse
import collections
import io
import json
import os
import struct
import sys
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'io')
MARKER = '/tmp/webspark-io-pwned'
NAMES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
         torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
         torch.uint8: 'U8', torch.bool: 'BOOL'}


class Evil:
    """What a hostile checkpoint holds: unpickling it with pickle/torch.load runs the command."""

    def __reduce__(self):
        return (os.system, (f'touch {MARKER}',))


class EvilEval:
    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {MARKER}-eval')",))


def spark_like_module():
    """A tiny encoder + decoder state dict (a real nn.Module's, so it carries `_metadata`)."""
    net = torch.nn.Module()
    net.conv1 = torch.nn.Conv2d(3, 4, 3, bias=False)
    net.bn1 = torch.nn.BatchNorm2d(4)
    net.proj = torch.nn.Conv2d(4, 3, 1)
    with torch.no_grad():
        net.bn1.running_mean.normal_()
        net.bn1.running_var.uniform_(0.5, 2)
        net.bn1.weight.uniform_(0.5, 1.5)
        net.bn1.bias.normal_()
        net.bn1.num_batches_tracked.fill_(7)
    sd = net.state_dict()
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[f'sparse_encoder.sp_cnn.{k}'] = v
    out._metadata = sd._metadata
    out['mask_tokens.0'] = torch.randn(1, 4, 1, 1) * 0.02
    out['dense_decoder.proj.weight'] = torch.randn(3, 4, 1, 1).half()
    base = torch.randn(5, 3)
    out['views.base'] = base
    out['views.transposed'] = base.t()  # strides (1, 3), same storage
    out['views.row'] = base[2]  # offset 6
    out['views.slice'] = base[1:, ::2]  # offset 3, strides (3, 2)
    out['views.expanded'] = torch.randn(3, 1).expand(3, 4)  # stride 0
    out['views.empty'] = torch.zeros(0, 3)
    out['imn_m'] = torch.zeros(1, 3, 1, 1)
    out['norm_black'] = torch.zeros(1, 3, 2, 2)
    # SparK's state_dict(with_config=True) puts its config dict among the tensors.
    out['config'] = {'mask_ratio': 0.6, 'densify_norm_str': 'bn', 'sbn': False, 'hierarchy': 4,
                     'sparse_encoder.input_size': 64, 'dense_decoder.width': 32}
    return out, net


def checkpoint():
    torch.manual_seed(0)
    module, net = spark_like_module()
    params = [p for p in net.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.95), weight_decay=0.04)
    for _ in range(2):
        opt.zero_grad()
        net.proj(net.bn1(net.conv1(torch.randn(2, 3, 5, 5)))).square().mean().backward()
        opt.step()
    args = argparse.Namespace(exp_name='spark-tiny', model='resnet18s', input_size=64, mask=0.6,
                              base_lr=2e-4, ada=0.95, sbn=False, dp=0.0, bs=8, init_weight='',
                              data_path='/data/imagenet', device='cuda', betas=(0.9, 0.95),
                              nothing=None, lists=[1, 'a', [2.5, -3]], unicode='ünï ✓')
    dtypes = {
        'f64': torch.randn(2, 3, dtype=torch.float64),
        'bf16': torch.randn(5).bfloat16(),
        'f16_scalar': torch.tensor(1.5, dtype=torch.float16),
        'i32': torch.tensor([[-(2 ** 31), 2 ** 31 - 1], [0, 5]], dtype=torch.int32),
        'i16': torch.tensor([-32768, 32767, 3], dtype=torch.int16),
        'i8': torch.tensor([-128, 127, 0], dtype=torch.int8),
        'u8': torch.tensor([0, 255, 9], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'i64_big': torch.tensor([2 ** 60 + 1, -(2 ** 62), 3], dtype=torch.int64),
        'f32_transposed_3d': torch.randn(2, 3, 4).permute(2, 0, 1),
    }
    extras = {
        'nested': {'a': [1, [2, [3, {'b': (4, 5)}]]], 'empty_list': [], 'empty_tuple': ()},
        'int_keys': {1: 'one', -2: 'minus two'},
        'tuple_key': {(1, 2): 'x'},
        'bytes': b'\x00\xffab',
        'empty_bytes': b'',
        'set': {3},
        'big_int': 2 ** 70,
        'neg_int': -(2 ** 40),
        'float': -1.5e-300,
        'device': torch.device('cuda', 1),
        'shared_list': None,
    }
    shared = [1, 2]
    extras['shared_list'] = [shared, shared]
    return {
        'args': args,
        'input_size': 64,
        'arch': 'resnet18s',
        'epoch': 3,
        'performance_desc': 'min last',
        'module': module,
        'optimizer': opt.state_dict(),
        'is_pretrain': True,
        'dtypes': dtypes,
        'param': torch.nn.Parameter(torch.randn(2, 2)),
    } | {'extras': extras}


def key_string(k):
    """Mirrors how the TypeScript reader turns a non-string dict key into a string."""
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return 'True' if k else 'False'
    if isinstance(k, int):
        return str(k)
    if isinstance(k, tuple):
        inner = ', '.join(json.dumps(x) if isinstance(x, str) else key_string(x) for x in k)
        return f'({inner},)' if len(k) == 1 else f'({inner})'
    raise TypeError(k)


def tensor_json(t):
    c = t.contiguous()
    if t.dtype == torch.int64:
        values = [str(int(v)) for v in c.flatten().tolist()]
    elif t.dtype == torch.bool:
        values = [1 if v else 0 for v in c.flatten().tolist()]
    else:
        values = [float(v) if t.is_floating_point() else int(v) for v in c.flatten().tolist()]
    return {'dtype': NAMES[t.dtype], 'shape': list(t.shape), 'strides': list(t.stride()),
            'storage_offset': t.storage_offset(), 'values': values}


def to_json(obj, path, tensors):
    """The structure the reader must produce, as JSON: tensors become {"$tensor": path}."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = tensor_json(obj)
        return {'$tensor': path}
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        return {key_string(k): to_json(v, f'{path}/{key_string(k)}', tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_json(v, f'{path}/{i}', tensors) for i, v in enumerate(obj)]
    if isinstance(obj, bytes):
        return {'$bytes': list(obj)}
    if isinstance(obj, torch.device):
        return f'{obj.type}:{obj.index}' if obj.index is not None else obj.type
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > 2 ** 53 - 1:
        return {'$bigint': str(obj)}
    return obj


def write_safetensors(path, tensors, metadata):
    """The reference layout: 8-byte dtypes first, then 4, 2, 1 (stable), so every tensor is
    aligned to its element size; header padded with spaces to a multiple of 8."""
    items = []
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        items.append((name, NAMES[t.dtype], list(t.shape), raw.numpy().tobytes(), t.element_size()))
    items.sort(key=lambda it: -it[4])
    header = {'__metadata__': metadata}
    offset = 0
    for name, code, shape, data, _ in items:
        header[name] = {'dtype': code, 'shape': shape, 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
    js = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    js += b' ' * ((8 - len(js) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(js)) + js + b''.join(it[3] for it in items))


def rezip_zip64_deflate(src, dst):
    """Same entries, deflated, with zip64 records forced by lowering zipfile's limits; then the
    classic end record's counts/offsets are set to the 0xffff.. placeholders."""
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 0, 0
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                out = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
                out.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(out, 'w', force_zip64=True) as f:
                    f.write(zin.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    data = bytearray(open(dst, 'rb').read())
    end = data.rindex(b'PK\x05\x06')
    assert data[end - 20:end - 16] == b'PK\x06\x07', 'zip64 locator missing'
    struct.pack_into('<HHIIH', data, end + 8, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    open(dst, 'wb').write(bytes(data))
    with zipfile.ZipFile(dst) as z:
        assert z.testzip() is None


def conversions():
    """float32 values and their float16 / bfloat16 bits as torch rounds them (nearest even):
    random values, halfway cases, overflow, subnormals, signed zero."""
    g = torch.Generator().manual_seed(1)
    vals = torch.cat([torch.randn(60, generator=g) * 10, torch.randn(20, generator=g) * 1e-5,
                      torch.tensor([0.0, -0.0, 65504.0, 65520.0, 65519.996, 1e6, -1e6, 6e-8, 3e-8,
                                    2.9802322e-08, 5.960464477539063e-08, 1.0009765625, 1.00048828125,
                                    1.00146484375, 2049.0, 2051.0, 3.4e38, 1e-40, 1.00390625, 1.01171875])])
    vals = vals.float()
    f16 = vals.half().view(torch.int16).int() & 0xffff
    bf16 = vals.bfloat16().view(torch.int16).int() & 0xffff
    return {'f32': [float(v) for v in vals.tolist()], 'f16_bits': f16.tolist(), 'bf16_bits': bf16.tolist()}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    ckpt = checkpoint()
    torch.save(ckpt, os.path.join(OUT, 'checkpoint.pth'))
    torch.save(ckpt, os.path.join(OUT, 'checkpoint-proto4.pth'), pickle_protocol=4)
    rezip_zip64_deflate(os.path.join(OUT, 'checkpoint.pth'), os.path.join(OUT, 'checkpoint-zip64-deflate.pth'))
    torch.save({'module': {'w': torch.ones(2)}, 'evil': Evil()}, os.path.join(OUT, 'malicious.pth'))
    torch.save(EvilEval(), os.path.join(OUT, 'malicious-proto4.pth'), pickle_protocol=4)

    g = torch.Generator().manual_seed(2)
    st = {
        'f32': torch.randn(2, 3, generator=g),
        'f16': (torch.randn(4, generator=g) * 100).half(),
        'bf16': torch.randn(3, 2, generator=g).bfloat16(),
        'f64': torch.randn(3, generator=g, dtype=torch.float64),
        'i64': torch.tensor([2 ** 60 + 1, -5, 7]),
        'i32': torch.tensor([-(2 ** 31), 2 ** 31 - 1], dtype=torch.int32),
        'i16': torch.tensor([-32768, 32767, 1], dtype=torch.int16),
        'i8': torch.tensor([[-128, 127], [1, -1]], dtype=torch.int8),
        'u8': torch.tensor([0, 255, 128], dtype=torch.uint8),
        'bool': torch.tensor([True, False, False, True]),
        'scalar': torch.tensor(3.25),
        'empty': torch.zeros(0, 4),
        'num_batches_tracked': torch.tensor(7),
    }
    metadata = {'format': 'pt', 'note': 'ünicode ✓', 'spark_config': json.dumps({'arch': 'resnet18s'})}
    write_safetensors(os.path.join(OUT, 'tensors.safetensors'), st, metadata)

    tensors = {}
    plain = to_json(ckpt, '', tensors)
    expected = {
        'marker': MARKER,
        'checkpoint': {'plain': plain, 'tensors': tensors},
        'safetensors': {'metadata': metadata, 'tensors': {k: tensor_json(v) for k, v in st.items()}},
        'conversions': conversions(),
    }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write('\n')

    # Self-check: torch reads back what it wrote, and the views really share storage.
    back = torch.load(os.path.join(OUT, 'checkpoint.pth'))
    m = back['module']
    assert m['views.row'].storage().data_ptr() == m['views.base'].storage().data_ptr()
    assert m['views.transposed'].stride() == (1, 3) and m['views.slice'].storage_offset() == 3
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}')


if __name__ == '__main__':
    sys.dont_write_bytecode = True
    main()
