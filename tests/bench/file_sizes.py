#!/usr/bin/python3
"""File sizes: what torch.save writes for the tutorial model and the MNIST MLP,
next to what `modelkeep init` writes for the same architectures in each dtype.

Run:  /usr/bin/python3 tests/bench/file_sizes.py [path/to/modelkeep]
(Debian's python3-torch; the CLI defaults to build/native/modelkeep.)
Prints a Markdown table; sizes do not depend on the weights' values.
"""
import os
import subprocess
import sys
import tempfile

import torch
from torch import nn


class Model(nn.Module):  # the tutorial's model
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 5)

    def forward(self, x):
        return self.fc1(x)


def torch_sizes(model, stem, tmp):
    # torch repeats the file's stem in every zip record name, so the size depends on it;
    # these are the names of the tutorial fixtures (tutorial_full.pt, tutorial_state.pt).
    full = os.path.join(tmp, stem + "_full.pt")
    state = os.path.join(tmp, stem + "_state.pt")
    torch.save(model, full)
    torch.save(model.state_dict(), state)
    return os.path.getsize(full), os.path.getsize(state)


def mkp_size(cli, spec, dtype, tmp, state_dict=False):
    out = os.path.join(tmp, "m.mkp")
    args = [cli, "init", spec, out, "--dtype", dtype] + (["--state-dict"] if state_dict else [])
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return os.path.getsize(out)


def main():
    cli = sys.argv[1] if len(sys.argv) > 1 else "build/native/modelkeep"
    cases = [
        ("tutorial Linear(3,5)", "tutorial", Model(), "fc1=Linear(3,5)"),
        ("MNIST MLP 784-512-512-10", "mnist",
         nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)),
         "Linear(784,512),ReLU,Linear(512,512),ReLU,Linear(512,10)"),
    ]
    print("| model | torch.save(model) | torch.save(state_dict) | .mkp f32 | .mkp f16 | .mkp bf16 | .mkp int8 "
          "| .mkp f32 state dict |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, stem, model, spec in cases:
            full, state = torch_sizes(model, stem, tmp)
            ours = [mkp_size(cli, spec, d, tmp) for d in ("f32", "f16", "bf16", "int8")]
            sd = mkp_size(cli, spec, "f32", tmp, state_dict=True)
            cells = [f"{full:,}", f"{state:,}"] + [f"{s:,} ({s / full:.3f}×)" for s in ours] + [f"{sd:,}"]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
