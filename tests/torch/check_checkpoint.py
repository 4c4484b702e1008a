#!/usr/bin/python3
"""Proves that general checkpoints modelkeep WRITES (core/interop/torch_checkpoint.hpp) resume
training in real PyTorch exactly where modelkeep would.

Run with Debian's python3-torch (1.13), by tests/test_torch_checkpoint.cpp:

    /usr/bin/python3 tests/torch/check_checkpoint.py CASES.json

CASES.json: {"cases": [{
    "file":      "/abs/ckpt.pt",                 a checkpoint modelkeep wrote
    "spec":      "Linear(4,6),Tanh,Linear(6,3)",  the model (check_export.py's SPEC parser)
    "optimizer": "adam" | "adamw" | "sgd" | "rmsprop",
    "epoch":     4,
    "loss":      "0x1.8p-2" | null,              hex double, or no 'loss' entry
    "grads":     [["0x1.8p-1", ...], ...],       per parameter (model.parameters() order), row-major
    "next":      [["0x...", ...], ...]}]}        what modelkeep's next optimizer step gives

Per case, one printed line per check ("ok  ..." or "FAIL ..."):
  1. the pickle (archive/data.pkl) is read with pickletools only, never unpickled: every global
     it names is in torch's weights_only allow-list (_weights_only_unpickler._get_allowed_globals),
     and every opcode is one that 1.13's weights_only unpickler implements, or BINFLOAT (which
     only torch >= 2.x's implements: 1.13's cannot read a Python float);
  2. torch.load (the full loader: 1.13's weights_only one cannot read the floats; the file was
     just written by modelkeep's tests and its globals were checked above) gives exactly the keys
     epoch, model_state_dict, optimizer_state_dict (+ loss), with the given epoch and loss;
  3. param_groups[0] has exactly the keys, in the order, that this torch's optimizer class puts
     in its own state_dict(); the state has PyTorch's types (Adam/AdamW 'step' a 0-d float32
     tensor, RMSprop 'step' an int, SGD 'momentum_buffer' a tensor or None);
  4. a fresh nn model and optimizer take both state dicts (load_state_dict, strict), and one
     optimizer.step() with the given gradients gives "next" bit for bit.

Exit status 0 when everything holds, 1 on any mismatch, 2 on a usage error.
"""

import io
import json
import os
import pickletools
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import build_model  # noqa: E402  (SPEC -> nn.Module, the same grammar as core/spec.hpp)

CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
           "rmsprop": torch.optim.RMSprop}
# The opcodes torch 1.13's weights_only Unpickler.load implements (torch/_weights_only_unpickler.py).
WEIGHTS_ONLY_OPCODES = {"GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
                        "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE",
                        "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1",
                        "BININT2", "BINUNICODE", "SHORT_BINSTRING", "BINPERSID", "BINGET", "LONG_BINGET",
                        "BINPUT", "LONG_BINPUT", "LONG1", "PROTO", "STOP"}
# torch >= 2.x's also reads BINFLOAT.
ALLOWED_OPCODES = WEIGHTS_ONLY_OPCODES | {"BINFLOAT"}

failures = 0


def ok(msg):
    print("ok   " + msg)


def fail(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def bits(t):
    return struct.pack("<%df" % t.numel(), *t.detach().reshape(-1).tolist())


def check_pickle(path):
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/data.pkl")]
        if len(names) != 1:
            fail("%s: %d data.pkl records" % (path, len(names)))
            return
        data = z.read(names[0])
    allowed = torch._weights_only_unpickler._get_allowed_globals()
    globals_, opcodes = [], set()
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        opcodes.add(op.name)
        if op.name == "GLOBAL":
            name = arg.replace(" ", ".")
            if name not in globals_:
                globals_.append(name)
    bad = [g for g in globals_ if g not in allowed]
    if bad:
        fail("%s: globals outside the weights_only allow-list: %s" % (path, bad))
    else:
        ok("%s: globals %s all in the weights_only allow-list" % (os.path.basename(path), globals_))
    extra = sorted(opcodes - ALLOWED_OPCODES)
    if extra:
        fail("%s: opcodes no weights_only unpickler reads: %s" % (path, extra))
    else:
        ok("%s: opcodes %s all read by weights_only unpicklers" % (os.path.basename(path), sorted(opcodes)))


def check_case(case):
    path, kind = case["file"], case["optimizer"]
    name = os.path.basename(path)
    check_pickle(path)
    ckpt = torch.load(path)
    want_keys = ["epoch", "model_state_dict", "optimizer_state_dict"] + (["loss"] if case["loss"] else [])
    if list(ckpt.keys()) != want_keys:
        fail("%s: keys %s, not %s" % (name, list(ckpt.keys()), want_keys))
        return
    if ckpt["epoch"] != case["epoch"] or not isinstance(ckpt["epoch"], int):
        fail("%s: epoch %r, not %r" % (name, ckpt["epoch"], case["epoch"]))
    if case["loss"] and (not isinstance(ckpt["loss"], float) or ckpt["loss"] != float.fromhex(case["loss"])):
        fail("%s: loss %r, not %r" % (name, ckpt["loss"], float.fromhex(case["loss"])))

    model = build_model(case["spec"])
    model.load_state_dict(ckpt["model_state_dict"], strict=True)
    model.train()
    params = list(model.parameters())
    opt = CLASSES[kind](params, lr=0.125)
    fresh = [k for k in opt.state_dict()["param_groups"][0].keys()]
    osd = ckpt["optimizer_state_dict"]
    groups = osd["param_groups"]
    saved = [k for k in groups[0].keys() if k != "initial_lr"]
    if len(groups) != 1 or saved != fresh:
        fail("%s: param_groups keys %s, but torch %s's %s writes %s" %
             (name, saved, torch.__version__, CLASSES[kind].__name__, fresh))
    else:
        ok("%s: param_groups[0] has %s's keys in its order" % (name, CLASSES[kind].__name__))
    for i, st in osd["state"].items():
        for key, v in st.items():
            if key == "step":
                good = (isinstance(v, int) and not isinstance(v, bool)) if kind == "rmsprop" else \
                    (torch.is_tensor(v) and v.dtype == torch.float32 and v.dim() == 0)
            elif key == "momentum_buffer" and kind == "sgd":
                good = v is None or (torch.is_tensor(v) and v.shape == params[i].shape)
            else:
                good = torch.is_tensor(v) and v.dtype == torch.float32 and v.shape == params[i].shape
            if not good:
                fail("%s: state[%d][%r] is %r" % (name, i, key, type(v)))
    opt.load_state_dict(osd)

    for p, g in zip(params, case["grads"]):
        p.grad = torch.tensor([float.fromhex(x) for x in g], dtype=torch.float32).reshape(p.shape)
    opt.step()
    same = True
    for i, (p, n) in enumerate(zip(params, case["next"])):
        want = torch.tensor([float.fromhex(x) for x in n], dtype=torch.float32).reshape(p.shape)
        if bits(p) != bits(want):
            diff = (p.detach() - want).abs().max().item()
            fail("%s: parameter %d after the step differs from modelkeep's (max |diff| %g)" % (name, i, diff))
            same = False
    if same:
        ok("%s: one %s step from the checkpoint equals modelkeep's, bit for bit" % (name, CLASSES[kind].__name__))


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        check_case(case)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
