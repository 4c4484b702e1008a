#!/usr/bin/env python3
"""make_onnx.py -- the ONNX file of an MLP whose weights forward_bench.mjs generated.

Usage: /usr/bin/python3 tests/bench/make_onnx.py --sizes 784,512,512,10 --weights W.f32 --out M.onnx

W.f32 holds, for each Linear layer in order, its weight in PyTorch's layout (out, in) then its
bias (out), little-endian float32, nothing else. The model is nn.Sequential(Linear, ReLU, ...,
Linear) (no ReLU after the last layer), exported with torch.onnx.export (Debian's PyTorch 1.13;
the `onnx` Python package is not needed): input "x" [batch, in], output "y" [batch, out], the
batch dimension dynamic; each Linear becomes a Gemm (transB=1) whose initializers are the
weight and bias as given. The script checks that every tensor's bytes appear verbatim in the
file, so the ONNX peer runs exactly the bytes the other peers were given.
"""
import argparse
import os
import sys

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', required=True, help='layer widths, e.g. 784,512,512,10')
    ap.add_argument('--weights', required=True, help='raw float32 weights (see above)')
    ap.add_argument('--out', required=True, help='the .onnx file to write')
    ap.add_argument('--opset', type=int, default=13)
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(',')]
    if len(sizes) < 2 or min(sizes) < 1:
        sys.exit('make_onnx.py: --sizes needs at least two positive widths')
    with open(args.weights, 'rb') as f:
        raw = f.read()
    want = 4 * sum(o * i + o for i, o in zip(sizes, sizes[1:]))
    if len(raw) != want:
        sys.exit(f'make_onnx.py: {args.weights} has {len(raw)} bytes, the sizes need {want}')

    layers = []
    chunks = []  # the raw bytes of every tensor, to find them in the file afterwards
    at = 0
    with torch.no_grad():
        for n, (i, o) in enumerate(zip(sizes, sizes[1:])):
            lin = nn.Linear(i, o)
            for param, count in ((lin.weight, o * i), (lin.bias, o)):
                piece = raw[at:at + 4 * count]
                at += 4 * count
                chunks.append(piece)
                values = torch.frombuffer(bytearray(piece), dtype=torch.float32)
                param.copy_(values.reshape(param.shape))
            layers.append(lin)
            if n < len(sizes) - 2:
                layers.append(nn.ReLU())
    model = nn.Sequential(*layers).eval()

    tmp = args.out + '.tmp'
    torch.onnx.export(
        model, torch.zeros(1, sizes[0]), tmp,
        input_names=['x'], output_names=['y'],
        dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}},
        opset_version=args.opset, do_constant_folding=False)
    with open(tmp, 'rb') as f:
        blob = f.read()
    for k, piece in enumerate(chunks):
        if blob.find(piece) < 0:
            os.unlink(tmp)
            sys.exit(f'make_onnx.py: tensor #{k} was not stored verbatim in the exported file')
    if b'Gemm' not in blob:
        os.unlink(tmp)
        sys.exit('make_onnx.py: the export has no Gemm node (unexpected for 2-D Linear layers)')
    os.replace(tmp, args.out)
    print(f'make_onnx.py: wrote {args.out} ({len(blob)} bytes, {len(sizes) - 1} Gemm)', file=sys.stderr)


if __name__ == '__main__':
    main()
