#!/usr/bin/python3
"""Exports from the native CLI load in real PyTorch and compute what modelkeep computes.

    /usr/bin/python3 tests/torch/roundtrip_cli.py path/to/modelkeep

For a few architectures (dotted names, every parameter kind) and each export dtype:
`modelkeep init` a model, `convert` it to .pt and .safetensors, `predict` with each export
(--arch) and with the .mkp, then hand the files, the input and modelkeep's output to
check_export.py (torch.load(weights_only=True), a hand parse of the safetensors, load_state_dict
into an nn.Module built from the SPEC, the same outputs). Run by ctest; exits non-zero on any
mismatch.
"""

import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

SPECS = [
    ("tutorial", "fc1=Linear(3,5)", [2, 3]),
    ("mlp", "0=Linear(8,16),1=ReLU,2=Linear(16,4)", [4, 8]),
    ("mixed", "a=Linear(6,8),b=BatchNorm1d(8),c=GELU(tanh),d.e=LayerNorm(8),f=Linear(8,3,bias=false),g=LogSoftmax",
     [5, 6]),
]


def run(cli, *args):
    p = subprocess.run([cli, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL modelkeep {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def main(cli):
    rng = random.Random(5)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="modelkeep-roundtrip-") as tmp:
        for name, spec, shape in SPECS:
            mkp = os.path.join(tmp, f"{name}.mkp")
            run(cli, "init", spec, mkp, "--seed", "11")
            values = [round(rng.uniform(-2, 2), 4) for _ in range(shape[0] * shape[1])]
            rows = [values[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]
            x = json.dumps(rows)
            reference = json.loads(run(cli, "predict", mkp, "--input", x))
            for dtype in ("f32", "f16", "bf16"):
                files = []
                for ext in ("pt", "safetensors"):
                    out = os.path.join(tmp, f"{name}_{dtype}.{ext}")
                    run(cli, "convert", mkp, out, "--dtype", dtype)
                    files.append(out)
                outputs = [json.loads(run(cli, "predict", f, "--arch", spec, "--input", x)) for f in files]
                if outputs[0] != outputs[1]:
                    print(f"FAIL {name} {dtype}: the .pt and .safetensors exports predict differently")
                    failures += 1
                if dtype == "f32" and outputs[0] != reference:
                    print(f"FAIL {name}: the f32 exports predict differently from the .mkp")
                    failures += 1
                case = {"spec": spec, "files": files, "dtype": dtype,
                        "input": {"shape": shape, "values": values},
                        "output": {"shape": outputs[0]["shape"], "values": outputs[0]["data"]}}
                case_path = os.path.join(tmp, f"{name}_{dtype}.json")
                with open(case_path, "w") as f:
                    json.dump(case, f)
                p = subprocess.run([sys.executable, os.path.join(HERE, "check_export.py"), case_path],
                                   capture_output=True, text=True)
                sys.stdout.write(p.stdout)
                if p.returncode != 0:
                    print(f"FAIL {name} {dtype}: check_export.py exited {p.returncode}\n{p.stderr}")
                    failures += 1
    print(f"roundtrip_cli: {len(SPECS) * 3} cases, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
