#!/usr/bin/python3
"""Writes the PyTorch / safetensors import fixtures: real files made by torch, hand-made
hostile files, and what modelkeep must make of each.

Run with Debian's python3-torch:   /usr/bin/python3 tests/torch/make_torch_fixtures.py

It rewrites tests/torch/files/* (the model files) and tests/torch/<case>.txt (one
expectation per case), and removes stale ones. Everything is seeded; the outputs are
byte-identical from run to run on the same torch build (the legacy files' storage keys,
which torch takes from memory addresses, are rewritten to fixed fake addresses; the script
path torch embeds in legacy_full.pt is made relative).

Safety: the hostile files are assembled as raw pickle opcodes (never by pickling objects
with a custom __reduce__) and are never given to pickle.load or to torch.load with
weights_only=False. torch's own reaction to each (torch.load(weights_only=True), an allowlist
in 1.13) is probed in a child process and recorded as a comment. The script refuses to run if
/tmp/modelkeep_pwned_marker exists (the file the payloads would create) and checks that it
never appears.

Expectation format: the conventions of tests/golden/make_golden.py (UTF-8 text, one record
per line, fields separated by one space, values as C99 hex floats of float32 values, at most
8 per line, blank lines and '#' lines ignored), with these records:

    case <name>                 snake_case, also the .txt file's stem
    file <file name>            inside tests/torch/files/
    format <f>                  mkp | torch_zip | torch_legacy | safetensors | torchscript |
                                unknown (none of these: not_a_model.txt)
    load <mode>                 state_dict         weights only: load with the given `spec`
                                auto               a pickled module tree of nn.Sequential and
                                                   built-in layers: modelkeep derives `spec`
                                assume_sequential  a pickled user class whose forward() happens
                                                   to run its leaves in registration order:
                                                   modelkeep derives `spec` only when told to
                                                   assume that (forward() is not in the file)
                                needs_arch         a pickled user class whose forward() is NOT
                                                   the leaves in order: `output` is what torch
                                                   computes, `naive_output` what running the
                                                   leaves in order gives; an architecture must
                                                   come from the user
                                refuse             must be refused with `error`
    error <code>                only for load refuse: the modelkeep error code (core/status.hpp)
    spec <SPEC>                 the architecture (rest of the line): for state_dict/needs_arch
                                the SPEC a user passes (omitted when no SPEC reproduces torch,
                                or when the case has no model); for auto/assume_sequential the
                                SPEC modelkeep must derive, layer names = torch's dotted child
                                names, written canonically like core/spec.cpp's format_spec
                                (every layer named, only non-default arguments)
    global <module.qualname>    one per distinct global the pickle names (GLOBAL, or
                                STACK_GLOBAL of the two strings pushed before it), in order of
                                first appearance, over every pickle in the file (a legacy file
                                holds five); not for safetensors. For refuse cases they are
                                given as '# global ...' comments only.
    tensor <key> <dtype> <rank> <d0> ...
    <values>                    the state dict exactly as torch.load returns it (a checkpoint:
                                its model state dict; a pickled module: model.state_dict();
                                safetensors: header order), in order; dtype is torch's name
                                (float32, float64, float16, bfloat16, int64, int32, int16,
                                int8, uint8, bool); values are the tensor converted to float32
                                (torch's .to(torch.float32): round to nearest even; bool 0/1),
                                row-major; a rank-0 tensor has no dims and one value, a tensor
                                with a 0 dim has no value lines
    input <rank> <d0> ...       the tensor given to model(x), float32
    <values>
    output <rank> <d0> ...      what torch's model(input) returned (float32, eval mode)
    <values>
    naive_output <rank> <d0> ...  only for needs_arch: the leaves run in registration order
    <values>
    end

Comment lines ('# ...') carry the case's description and torch 1.13's own reaction to
torch.load(path, weights_only=True).
"""

import collections
import hashlib
import io
import json
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "files")
GENERATED = "# generated by tests/torch/make_torch_fixtures.py"
MARKER = "/tmp/modelkeep_pwned_marker"
SHELL = "touch " + MARKER

sys.dont_write_bytecode = True  # no __pycache__ in tests/torch
sys.path.insert(0, HERE)
import check_export  # noqa: E402  (its SPEC -> nn.Module builder and safetensors reader)
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
from make_golden import hex32, tensor_lines  # noqa: E402  (the shared text format's float writer)


# ---- text ------------------------------------------------------------------------------------

def dtype_name(dt):
    return str(dt).replace("torch.", "")


def f32_values(t):
    return t.detach().to(torch.float32).contiguous().reshape(-1).tolist()


class Case:
    def __init__(self, name, file, fmt, load, error=None, spec=None, comments=(), globals_=(),
                 tensors=(), x=None, y=None, naive=None):
        assert fmt in ("mkp", "torch_zip", "torch_legacy", "safetensors", "torchscript", "unknown")
        assert load in ("state_dict", "auto", "assume_sequential", "needs_arch", "refuse")
        assert (load == "refuse") == (error is not None)
        self.name, self.file, self.format, self.load, self.error = name, file, fmt, load, error
        self.spec, self.comments, self.globals = spec, list(comments), list(globals_)
        self.tensors, self.x, self.y, self.naive = list(tensors), x, y, naive

    def text(self):
        out = [GENERATED + " with torch " + torch.__version__]
        out += ["# " + c for c in self.comments]
        out += ["case " + self.name, "file " + self.file, "format " + self.format, "load " + self.load]
        if self.error:
            out.append("error " + self.error)
        if self.load == "refuse":
            out += ["# global " + g for g in self.globals]
        else:
            out += ["global " + g for g in self.globals]
        if self.spec:
            out.append("spec " + self.spec)
        for item in self.tensors:
            key, t = item[0], item[1]
            dt = item[2] if len(item) > 2 else dtype_name(t.dtype)  # a dtype torch 1.13 lacks (uint16, ...)
            assert " " not in key and key
            out += tensor_lines("tensor %s %s" % (key, dt), t)
        if self.x is not None:
            out += tensor_lines("input", self.x)
            out += tensor_lines("output", self.y)
        if self.naive is not None:
            out += tensor_lines("naive_output", self.naive)
        out.append("end")
        return "\n".join(out) + "\n"


def read_expectation(path):
    """Parses a .txt back (to prove the text says what was meant)."""
    rec = {"tensors": [], "globals": []}
    lines = [l for l in open(path, encoding="utf-8").read().split("\n") if l and not l.startswith("#")]
    i = 0

    def values(dims):
        nonlocal i
        n = 1
        for d in dims:
            n *= d
        vals = []
        while len(vals) < n:
            vals += [float.fromhex(v) for v in lines[i].split(" ")]
            i += 1
        assert len(vals) == n
        return vals

    while i < len(lines):
        f = lines[i].split(" ")
        i += 1
        if f[0] == "tensor":
            dims = [int(d) for d in f[4:]]
            assert int(f[3]) == len(dims)
            rec["tensors"].append((f[1], f[2], dims, values(dims)))
        elif f[0] in ("input", "output", "naive_output"):
            dims = [int(d) for d in f[2:]]
            assert int(f[1]) == len(dims)
            rec[f[0]] = (dims, values(dims))
        elif f[0] == "global":
            rec["globals"].append(f[1])
        elif f[0] == "spec":
            rec["spec"] = lines[i - 1][5:]
        elif f[0] == "end":
            assert i == len(lines)
        else:
            assert len(f) == 2, f
            rec[f[0]] = f[1]
    return rec


# ---- pickles -----------------------------------------------------------------------------------

STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
              "SHORT_BINSTRING"}


def pickle_spans(data, count=None):
    """[(start, end)] of the pickles concatenated at the start of `data` (a torch legacy file
    holds five, then raw storage bytes)."""
    spans, pos = [], 0
    while pos < len(data) and (count is None or len(spans) < count):
        end = None
        for op, _, p in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                end = pos + p + 1
                break
        spans.append((pos, end))
        pos = end
    return spans


def pickle_globals(pkl):
    """Distinct 'module.name' globals in order of first appearance (GLOBAL, INST, STACK_GLOBAL)."""
    out, stack, memo = [], [], {}
    for op, arg, _ in pickletools.genops(io.BytesIO(pkl)):
        name = None
        if op.name in ("GLOBAL", "INST"):
            name = arg.replace(" ", ".", 1)
        elif op.name == "STACK_GLOBAL":
            mod, qual = stack[-2:] if len(stack) >= 2 else (None, None)
            assert isinstance(mod, str) and isinstance(qual, str), "STACK_GLOBAL without two strings"
            name = mod + "." + qual
        if name and name not in out:
            out.append(name)
        if op.name in STRING_OPS:
            stack.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo.get(arg))
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = stack[-1] if stack else None
        elif op.name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif op.name not in ("FRAME", "PROTO"):
            stack.append(None)
    return out


def file_globals(data):
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            root = z.namelist()[0].split("/")[0]
            return pickle_globals(z.read(root + "/data.pkl"))
    out = []
    for a, b in pickle_spans(data, 5):
        for g in pickle_globals(data[a:b]):
            if g not in out:
                out.append(g)
    return out


def opcode_names(pkl):
    return [op.name for op, _, _ in pickletools.genops(io.BytesIO(pkl))]


# A tiny pickle assembler for the hand-made files (protocol 2 unless said otherwise).
MARK, STOP, TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b".", b"t", b"\x85", b"\x86", b"\x87"
EMPTY_TUPLE, EMPTY_DICT, EMPTY_LIST = b")", b"}", b"]"
SETITEM, SETITEMS, REDUCE, BINPERSID, NEWFALSE, BUILD = b"s", b"u", b"R", b"Q", b"\x89", b"b"
STACK_GLOBAL = b"\x93"


def proto(n):
    return b"\x80" + bytes([n])


def s_(text):
    """BINUNICODE."""
    b = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def short_s(text):
    """SHORT_BINUNICODE (protocol 4)."""
    b = text.encode("utf-8")
    assert len(b) < 256
    return b"\x8c" + bytes([len(b)]) + b


def i_(n):
    """BININT1 / BININT2 / BININT / LONG1, as pickle chooses."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -2 ** 31 <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    enc = pickle.encode_long(n)
    return b"\x8a" + bytes([len(enc)]) + enc


def g_(module, name):
    return b"c" + ("%s\n%s\n" % (module, name)).encode("ascii")


def g4(module, name):
    return short_s(module) + short_s(name) + STACK_GLOBAL


def tuple_(items):
    items = list(items)
    if not items:
        return EMPTY_TUPLE
    if len(items) <= 3:
        return b"".join(items) + [TUPLE1, TUPLE2, TUPLE3][len(items) - 1]
    return MARK + b"".join(items) + TUPLE


def storage_pid(storage_cls, key, numel, s=s_, g=g_):
    return MARK + s("storage") + g("torch", storage_cls) + s(key) + s("cpu") + i_(numel) + TUPLE


def tensor_(pid, offset, size, stride, g=g_):
    """_rebuild_tensor_v2(<persistent id>, offset, size, stride, False, OrderedDict())."""
    return (g("torch._utils", "_rebuild_tensor_v2") + MARK + pid + BINPERSID + i_(offset)
            + tuple_(i_(n) for n in size) + tuple_(i_(n) for n in stride) + NEWFALSE
            + g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE)


def ordered_dict(items, s=s_, g=g_):
    return g("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + MARK + b"".join(
        s(k) + v for k, v in items) + SETITEMS


def call(callable_, *args):
    return callable_ + tuple_(args) + REDUCE


def check_parses(pkl):
    """pickletools only parses (never executes); a malformed assembly fails here."""
    pickletools.dis(pkl, out=io.StringIO())


def torch_bytes(t):
    return check_export.tensor_bytes(t)


def write_torch_zip(path, pkl, records):
    """An archive written by torch's own zip writer (PyTorchFileWriter: folder = file stem,
    64-byte aligned records, data descriptors, ZIP64 end records, `version` last), holding
    our data.pkl and data/<key> records, like torch.serialization._save does."""
    w = torch._C.PyTorchFileWriter(path)
    w.write_record("data.pkl", pkl, len(pkl))
    for key in sorted(records):
        w.write_record("data/" + key, records[key], len(records[key]))
    w.write_end_of_file()
    del w


# ---- probing torch without trusting the file ---------------------------------------------------

PROBE = r"""
import sys, warnings, torch
warnings.simplefilter("ignore")
try:
    obj = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
except BaseException as e:
    msg = " ".join(str(e).split())
    cut = msg.find("WeightsUnpickler error: ")
    if cut >= 0:
        msg = "WeightsUnpickler error: " + msg[cut + 24:]
    print("refuses: %s: %s" % (type(e).__name__, msg[:150]))
else:
    if isinstance(obj, dict):
        print("loads: %s of %d entries" % (type(obj).__name__, len(obj)))
    else:
        print("loads: a %s.%s" % (type(obj).__module__, type(obj).__name__))
"""


def torch_reaction(path):
    """torch.load(path, weights_only=True) in a child process (a crash or a hang stays there)."""
    assert not os.path.exists(MARKER)
    try:
        r = subprocess.run([sys.executable, "-c", PROBE, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        out = r.stdout.strip() or ("exit %d: %s" % (r.returncode, r.stderr.strip()[-150:]))
    except subprocess.TimeoutExpired:
        out = "hangs (killed after 120 s)"
    assert not os.path.exists(MARKER), "a payload ran while probing " + path
    return "torch %s torch.load(weights_only=True) %s" % (torch.__version__, out)


# ---- models ------------------------------------------------------------------------------------

class Model(nn.Module):
    """The tutorial model (pickles as __main__.Model)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 5)

    def forward(self, x):
        return self.fc1(x)


class Net(nn.Module):
    """A user class with an nn.Sequential child and a LayerNorm; forward runs them in order."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
        self.norm = nn.LayerNorm(6, eps=1e-3)

    def forward(self, x):
        return self.norm(self.body(x))


class Functional(nn.Module):
    """forward is not 'the leaves in order': a functional ReLU and a residual slice."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x))) + x[:, :2]


def seeded_randn(seed, *shape, scale=1.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def fill_(param, seed, lo, hi):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        param.copy_(torch.rand(param.shape, generator=g) * (hi - lo) + lo)


def tutorial_model():
    torch.manual_seed(1)
    return Model().eval()


def mlp_model():
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


TUTORIAL_SPEC = "fc1=Linear(3,5)"
MLP_SPEC = "0=Linear(8,16),1=ReLU,2=Linear(16,4)"


def run(model, x):
    with torch.no_grad():
        return model.eval()(x)


# ---- verification ------------------------------------------------------------------------------

def same_tensor(a, b):
    return (a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
            and torch_bytes(a) == torch_bytes(b))


def assert_state(got, want, what):
    got, want = list(got.items()), list(want)
    assert [k for k, _ in got] == [k for k, _ in want], (what, [k for k, _ in got], [k for k, _ in want])
    for (k, a), (_, b) in zip(got, want):
        assert same_tensor(a, b), (what, k)


def verify_expectation(case, path, loaded_tensors, model=None):
    """The .txt says exactly what torch gives: tensors (dtype, shape, float32 values), the
    SPEC rebuilds a module that computes `output` (or `naive_output`), and `model` (torch's
    own, loaded from the file) computes `output`."""
    rec = read_expectation(path)
    assert rec["case"] == case.name and rec["file"] == case.file and rec["load"] == case.load
    got = list(loaded_tensors.items())
    assert [t[0] for t in rec["tensors"]] == [k for k, _ in got], case.name
    for (key, dt, dims, vals), (_, t) in zip(rec["tensors"], got):
        assert dt == dtype_name(t.dtype) and dims == list(t.shape), (case.name, key)
        assert vals == f32_values(t), (case.name, key)
    if "input" not in rec:
        return
    x = torch.tensor(rec["input"][1], dtype=torch.float32).reshape(rec["input"][0])
    want = torch.tensor(rec["output"][1], dtype=torch.float32).reshape(rec["output"][0])
    assert torch.equal(x, case.x) and torch.equal(want, case.y)
    if model is not None:
        y = run(model, x)
        assert torch.equal(y, want), case.name + ": torch's model from the file computes something else"
    f32 = collections.OrderedDict((k, t.to(torch.float32) if t.is_floating_point() else t)
                                  for k, t in loaded_tensors.items())
    spec = rec.get("spec")
    if case.load == "needs_arch":
        assert spec is None
        spec = ",".join(case.leaves)
        want = torch.tensor(rec["naive_output"][1]).reshape(rec["naive_output"][0])
    built = check_export.build_model(spec)
    built.load_state_dict(f32, strict=True)
    y = run(built, x)
    tol = 1e-6 * max(1.0, float(want.abs().max()))
    assert y.shape == want.shape and float((y - want).abs().max()) <= tol, \
        (case.name, "SPEC does not reproduce torch", float((y - want).abs().max()))


# ---- safetensors -------------------------------------------------------------------------------

def st_header_bytes(header_obj):
    return json.dumps(header_obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def st_layout(tensors, metadata=None):
    """(header dict, data bytes) laid out like the reference writer."""
    order = sorted(tensors.items(),
                   key=lambda kv: (-check_export.ST_RANK[check_export.TORCH_ST[kv[1].dtype]], kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, t in order:
        b = torch_bytes(t)
        header[name] = {"dtype": check_export.TORCH_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    return header, b"".join(blobs)


def st_file(header, data, pad=True, lead=b"", raw_header=None):
    h = raw_header if raw_header is not None else lead + st_header_bytes(header)
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


# ---- the cases ---------------------------------------------------------------------------------

CASES = []
WRITTEN = {}


def out_path(file):
    return os.path.join(FILES, file)


def save_torch(obj, file, **kw):
    path = out_path(file)
    torch.save(obj, path, **kw)
    return path


def emit(case):
    assert case.name not in [c.name for c in CASES], case.name
    path = os.path.join(HERE, case.name + ".txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(case.text())
    CASES.append(case)
    return path


def valid_torch_case(name, file, obj, model_for_output=None, *, fmt="torch_zip", load, spec, x=None,
                     comments=(), state_of=None, save_kw=None, path=None, leaves=None, naive=None):
    """Saves `obj` (unless `path` is given), then proves torch.load gives the tensors back."""
    if path is None:
        path = save_torch(obj, file, **(save_kw or {}))
    data = open(path, "rb").read()
    loaded = torch.load(path)  # our own benign file
    if state_of is None:
        state = loaded.state_dict() if isinstance(loaded, nn.Module) else loaded
    else:
        state = state_of(loaded)
    want_state = obj.state_dict() if isinstance(obj, nn.Module) else (state_of(obj) if state_of else obj)
    assert_state(state, list(want_state.items()), name)
    y = None
    if x is not None:
        y = run(model_for_output, x)
    comments = list(comments) + [torch_reaction(path)]
    case = Case(name, file, fmt, load, spec=spec, comments=comments, globals_=file_globals(data),
                tensors=state.items(), x=x, y=y, naive=naive)
    case.leaves = leaves
    verify_expectation(case, emit(case), state, loaded if isinstance(loaded, nn.Module) else None)
    return case


def make_valid_torch():
    # -- the tutorial -------------------------------------------------------------------------
    tut = tutorial_model()
    x_tut = seeded_randn(101, 4, 3)
    valid_torch_case("tutorial_state", "tutorial_state.pt", tut.state_dict(), tut, load="state_dict",
                     spec=TUTORIAL_SPEC, x=x_tut,
                     comments=["the tutorial: torch.save(model.state_dict()) of Model with fc1 = Linear(3, 5)"])
    valid_torch_case("tutorial_full", "tutorial_full.pt", tut, tut, load="assume_sequential",
                     spec=TUTORIAL_SPEC, x=x_tut,
                     comments=["torch.save(model) of the tutorial Model: a user class (__main__.Model) whose "
                               "forward is fc1"])
    valid_torch_case("tutorial_state_proto4", "tutorial_state_proto4.pt", tut.state_dict(), tut,
                     load="state_dict", spec=TUTORIAL_SPEC, x=x_tut, save_kw={"pickle_protocol": 4},
                     comments=["torch.save(..., pickle_protocol=4): FRAME, MEMOIZE, SHORT_BINUNICODE, "
                               "STACK_GLOBAL"])
    with zipfile.ZipFile(out_path("tutorial_state_proto4.pt")) as z:
        ops = set(opcode_names(z.read("tutorial_state_proto4/data.pkl")))
    assert {"FRAME", "MEMOIZE", "SHORT_BINUNICODE", "STACK_GLOBAL"} <= ops, ops

    # re-zipped with every record deflated (what a generic zip tool makes of a torch file)
    src = out_path("tutorial_state.pt")
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = 3
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, zin.read(info.filename))
    dpath = out_path("tutorial_state_deflated.pt")
    with open(dpath, "wb") as f:
        f.write(buf.getvalue())
    with zipfile.ZipFile(dpath) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    valid_torch_case("tutorial_state_deflated", "tutorial_state_deflated.pt", tut.state_dict(), tut,
                     load="state_dict", spec=TUTORIAL_SPEC, x=x_tut, path=dpath,
                     comments=["tutorial_state.pt re-zipped by Python's zipfile with every record "
                               "ZIP_DEFLATED (method 8); the folder inside is still 'tutorial_state/'"])

    # -- the MLP --------------------------------------------------------------------------------
    mlp = mlp_model()
    x_mlp = seeded_randn(102, 3, 8)
    valid_torch_case("mlp_state", "mlp_state.pt", mlp.state_dict(), mlp, load="state_dict", spec=MLP_SPEC,
                     x=x_mlp, comments=["state dict of nn.Sequential(Linear(8,16), ReLU, Linear(16,4))"])
    valid_torch_case("mlp_full", "mlp_full.pt", mlp, mlp, load="auto", spec=MLP_SPEC, x=x_mlp,
                     comments=["torch.save of the nn.Sequential itself: built-in modules only"])

    # -- nested ---------------------------------------------------------------------------------
    torch.manual_seed(3)
    net = Net()
    fill_(net.norm.weight, 301, 0.5, 1.5)
    fill_(net.norm.bias, 302, -0.5, 0.5)
    valid_torch_case("nested_full", "nested_full.pt", net, net, load="assume_sequential",
                     spec="body.0=Linear(4,8),body.1=ReLU,body.2=Linear(8,6),norm=LayerNorm(6,eps=0.001)",
                     x=seeded_randn(103, 5, 4, scale=2.0),
                     comments=["__main__.Net: body = Sequential(Linear, ReLU, Linear), norm = LayerNorm(6, "
                               "eps=1e-3); forward = norm(body(x))"])

    torch.manual_seed(4)
    seq = nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2)), nn.Linear(6, 3))
    valid_torch_case("seq_nested_full", "seq_nested_full.pt", seq, seq, load="auto",
                     spec="0.0=Linear(4,6),0.1=LeakyReLU(0.2),1=Linear(6,3)", x=seeded_randn(104, 3, 4),
                     comments=["nn.Sequential(nn.Sequential(Linear(4,6), LeakyReLU(0.2)), Linear(6,3))"])

    torch.manual_seed(5)
    bn_model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.GELU(approximate="tanh"),
                             nn.Dropout(0.2), nn.Softmax(dim=-1))
    bn = bn_model[1]
    bn.train()
    for i in range(3):
        with torch.no_grad():
            bn(seeded_randn(501 + i, 8, 6, scale=2.0) + 1.5)
    fill_(bn.weight, 504, 0.5, 1.5)
    fill_(bn.bias, 505, -0.5, 0.5)
    bn_model.eval()
    assert int(bn.num_batches_tracked) == 3
    valid_torch_case("bn_full", "bn_full.pt", bn_model, bn_model, load="auto",
                     spec="0=Linear(5,6),1=BatchNorm1d(6),2=GELU(tanh),3=Dropout(0.2),4=Softmax",
                     x=seeded_randn(106, 4, 5),
                     comments=["Sequential(Linear(5,6), BatchNorm1d(6) after 3 training batches, "
                               "GELU(approximate='tanh'), Dropout(0.2), Softmax(dim=-1)), eval mode"])

    # -- a training checkpoint ------------------------------------------------------------------
    torch.manual_seed(6)
    ck_model = Model()
    opt = torch.optim.Adam(ck_model.parameters(), lr=1e-2)
    loss = ck_model(seeded_randn(601, 8, 3)).pow(2).mean()
    loss.backward()
    opt.step()
    ck_model.eval()
    ckpt = {"epoch": 5, "model_state_dict": ck_model.state_dict(),
            "optimizer_state_dict": opt.state_dict(), "loss": 0.25}
    valid_torch_case("checkpoint", "checkpoint.pt", ckpt, ck_model, load="state_dict", spec=TUTORIAL_SPEC,
                     x=seeded_randn(602, 3, 3), state_of=lambda d: d["model_state_dict"],
                     comments=["{'epoch': 5, 'model_state_dict': <tutorial Model after one Adam step>, "
                               "'optimizer_state_dict': <Adam state>, 'loss': 0.25}; the tensors below are "
                               "model_state_dict"])

    # -- not sequential -------------------------------------------------------------------------
    torch.manual_seed(7)
    fn_model = Functional().eval()
    x_fn = seeded_randn(701, 4, 4)
    naive = run(nn.Sequential(fn_model.fc1, fn_model.fc2), x_fn)
    assert not torch.allclose(naive, run(fn_model, x_fn))
    valid_torch_case("functional_full", "functional_full.pt", fn_model, fn_model, load="needs_arch", spec=None,
                     x=x_fn, naive=naive, leaves=["fc1=Linear(4,6)", "fc2=Linear(6,2)"],
                     comments=["__main__.Functional: forward = fc2(relu(fc1(x))) + x[:, :2]; no SPEC "
                               "reproduces it (functional ReLU, residual slice)",
                               "leaves in registration order: fc1=Linear(4,6),fc2=Linear(6,2)"])

    # -- dtypes ---------------------------------------------------------------------------------
    dtypes = {
        "f32": seeded_randn(801, 2, 3),
        "f64": torch.tensor([0.1, -1.0 / 3.0, 1e-40, 123456.789, -2.5], dtype=torch.float64),
        "f16": torch.tensor([0.5, -2.0, 65504.0, 6e-8, 0.1, -0.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -3.140625, 1e30], [0.1, -1e-20, 7.0]], dtype=torch.bfloat16),
        "i64": torch.tensor([0, -1, 123456789, 2 ** 40, -2 ** 31 - 1], dtype=torch.int64),
        "i32": torch.tensor([7, -7, 2 ** 31 - 1, -2 ** 31], dtype=torch.int32),
        "i16": torch.tensor([300, -300, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
    }
    valid_torch_case("dtypes_state", "dtypes_state.pt", dtypes, load="state_dict", spec=None,
                     comments=["a plain dict of one tensor per dtype, a 0-dim scalar and an empty (0, 3) "
                               "tensor (0-byte record); values are rounded to float32 (f64 0.1, "
                               "int 123456789 -> 123456792, 2^31-1 -> 2^31)"])

    # -- views and shared storage ---------------------------------------------------------------
    base = seeded_randn(901, 4, 6)
    views = {
        "base": base,
        "reshaped": base.view(6, 4),
        "transposed": base.t(),
        "row2": base[2],
        "col_slice": base[:, 1:3],
        "base_again": base,
        "big_slice": seeded_randn(902, 1000)[10:13],
    }
    valid_torch_case("views_state", "views_state.pt", views, load="state_dict", spec=None,
                     comments=["shared storage: base 4x6, view(6,4), .t() (stride (1,6)), base[2] (offset 12), "
                               "base[:, 1:3] (offset 1, stride (6,1)), base again (BINGET), and a 3-element "
                               "slice (offset 10) of a 1000-element storage, all of which is in the file"])

    # -- many tensors: LONG_BINPUT / LONG_BINGET, two SETITEMS batches ----------------------------
    many = collections.OrderedDict()
    g = torch.Generator().manual_seed(1001)
    for i in range(260):
        many["w%03d" % i] = torch.randn(2, generator=g)
    shared = torch.randn(750, 2, generator=g)
    for i in range(750):
        many["s%03d" % i] = shared[i]
    many["alias"] = many["w259"]
    valid_torch_case("many_tensors_state", "many_tensors_state.pt", many, load="state_dict", spec=None,
                     comments=["1011 entries: 260 tensors with their own storage (data/0..259, stored in "
                               "string order), 750 rows of one shared (750, 2) storage, and 'alias' = the "
                               "same object as w259 (LONG_BINGET); SETITEMS in batches of 1000 + 11"])
    with zipfile.ZipFile(out_path("many_tensors_state.pt")) as z:
        ops = opcode_names(z.read("many_tensors_state/data.pkl"))
    assert "LONG_BINPUT" in ops and "LONG_BINGET" in ops and ops.count("SETITEMS") >= 2, \
        (ops.count("SETITEMS"), "LONG_BINGET" in ops)

    # -- a storage of more than 65536 elements: BININT ----------------------------------------------
    big = (torch.arange(70000, dtype=torch.int64) * 7 % 251).to(torch.uint8)
    bigd = {"tail": big[69990:], "strided": big.view(1, 70000)[:, 5:8]}
    valid_torch_case("big_storage_state", "big_storage_state.pt", bigd, load="state_dict", spec=None,
                     comments=["one uint8 storage of 70000 elements (the whole 70000-byte record is in the "
                               "file): 'tail' = last 10 (storage offset 69990), 'strided' = shape (1, 3), "
                               "stride (70000, 1), offset 5; numel, offset and stride are BININT. (A tensor "
                               "of > 65536 elements would need ~500 KB of expectation text.)"])
    with zipfile.ZipFile(out_path("big_storage_state.pt")) as z:
        assert "BININT" in opcode_names(z.read("big_storage_state/data.pkl"))

    # -- one Linear in each reduced / wide float dtype ---------------------------------------------
    for dt, tag in ((torch.float16, "f16"), (torch.bfloat16, "bf16"), (torch.float64, "f64")):
        torch.manual_seed(11)
        lin = nn.Sequential(nn.Linear(4, 3))
        if dt == torch.float64:
            with torch.no_grad():  # values with more precision than float32
                lin[0].weight.copy_(seeded_randn(1101, 3, 4, dtype=torch.float64))
                lin[0].bias.copy_(seeded_randn(1102, 3, dtype=torch.float64))
        low = lin.to(dt)
        ref = nn.Sequential(nn.Linear(4, 3))
        ref.load_state_dict({k: v.to(torch.float32) for k, v in low.state_dict().items()})
        valid_torch_case("linear_%s_state" % tag, "linear_%s_state.pt" % tag, low.state_dict(), ref,
                         load="state_dict", spec="0=Linear(4,3)", x=seeded_randn(1103, 2, 4),
                         comments=["state dict of Sequential(Linear(4,3)).to(%s); output = the float32 model "
                                   "with those weights converted to float32" % dtype_name(dt)])

    # -- legacy (pre-1.6) format ----------------------------------------------------------------
    lpath = out_path("legacy_state.pt")
    torch.save(mlp.state_dict(), lpath, _use_new_zipfile_serialization=False)
    fix_legacy(lpath)
    valid_torch_case("legacy_state", "legacy_state.pt", mlp.state_dict(), mlp, fmt="torch_legacy",
                     load="state_dict", spec=MLP_SPEC, x=x_mlp, path=lpath,
                     comments=["torch.save(mlp.state_dict(), _use_new_zipfile_serialization=False): five "
                               "pickles then raw storages; storage keys rewritten to fixed fake addresses"])


def fix_legacy(path, rename_strings=None):
    """Makes a legacy file reproducible. torch names storages by memory address and writes
    them in the string order of those names, so both the names and the data order change from
    run to run. Rename the storages to fixed fake addresses in order of first appearance in
    the object pickle, rewrite the key list in that order and move the data to match; also
    rename any other given strings (BINUNICODE; protocol 2 has no offsets, so lengths may
    change). Only float32 storages (4-byte elements) are expected here."""
    data = open(path, "rb").read()
    spans = pickle_spans(data, 5)
    storages = [g for g in file_globals(data) if g.endswith("Storage")]
    assert storages == ["torch.FloatStorage"], storages
    list_pkl = data[spans[4][0]:spans[4][1]]
    keys = [arg for op, arg, _ in pickletools.genops(io.BytesIO(list_pkl)) if op.name == "BINUNICODE"]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    chunks, pos = {}, spans[4][1]
    for k in keys:
        (n,) = struct.unpack_from("<Q", data, pos)
        chunks[k] = data[pos:pos + 8 + 4 * n]
        pos += 8 + 4 * n
    assert pos == len(data)
    a, b = spans[3]
    seen = []
    for op, arg, _ in pickletools.genops(io.BytesIO(data[a:b])):
        if op.name == "BINUNICODE" and arg in chunks and arg not in seen:
            seen.append(arg)
    assert sorted(seen) == keys
    mapping = {k: str(94000000000000 + 64 * i) for i, k in enumerate(seen)}
    mapping.update(rename_strings or {})
    out, replaced = bytearray(), collections.Counter()
    for index, (a, b) in enumerate(spans):
        pkl, last, nth = data[a:b], 0, 0
        for op, arg, p in pickletools.genops(io.BytesIO(pkl)):
            if op.name == "BINUNICODE" and (arg in mapping or index == 4):
                new = mapping[seen[nth]] if index == 4 else mapping[arg]
                nth += index == 4
                out += pkl[last:p] + s_(new)
                last = p + 5 + len(arg.encode("utf-8"))
                replaced[arg] += 1
        out += pkl[last:]
    for k in seen:  # the data in the new key order
        out += chunks[k]
    assert all(replaced[k] >= 2 for k in keys), replaced  # in a persistent id and in the key list
    for k in (rename_strings or {}):
        assert replaced[k] >= 1, k
    with open(path, "wb") as f:
        f.write(bytes(out))


def make_safetensors_valid():
    mlp = mlp_model()
    x_mlp = seeded_randn(102, 3, 8)
    sd = mlp.state_dict()

    def case(name, file, data, tensors_in_header_order, spec, model, x, comments):
        path = out_path(file)
        with open(path, "wb") as f:
            f.write(data)
        got, _ = check_export.read_safetensors(path, conventions=False)
        assert list(got) == [k for k, _ in tensors_in_header_order]
        assert_state(got, tensors_in_header_order, name)
        c = Case(name, file, "safetensors", "state_dict", spec=spec, comments=comments,
                 tensors=tensors_in_header_order, x=x, y=run(model, x))
        verify_expectation(c, emit(c), got)

    header, blob = st_layout(sd, {"format": "pt"})
    order = [(k, sd[k]) for k in header if k != "__metadata__"]
    data = st_file(header, blob)
    case("mlp_safetensors", "mlp.safetensors", data, order, MLP_SPEC, mlp, x_mlp,
         ["the MLP of mlp_state.pt, written like the reference writer (metadata {'format': 'pt'}, "
          "header padded with spaces to a multiple of 8, tensors by descending alignment then name)"])
    check_export.read_safetensors(out_path("mlp.safetensors"))  # also the writer conventions

    tut = tutorial_model()
    tsd = tut.state_dict()
    header, blob = st_layout(tsd)
    order = [(k, tsd[k]) for k in header]
    raw = st_header_bytes(header)
    while (8 + len(raw)) % 2 == 0:  # unpadded header of odd length: every F32 starts at an odd offset
        raw = raw[:-1] + b" }"
    data = st_file(None, blob, pad=False, raw_header=raw)
    assert (8 + len(raw)) % 4 != 0
    case("st_unaligned", "st_unaligned.safetensors", data, order, TUTORIAL_SPEC, tut, seeded_randn(101, 4, 3),
         ["header not padded: the F32 data starts at file offset %d (odd); read it without a "
          "Float32Array view on the file" % (8 + len(raw))])

    data = st_file(header, blob, lead=b"\n \t ")
    case("st_leading_whitespace", "st_leading_whitespace.safetensors", data, order, TUTORIAL_SPEC, tut,
         seeded_randn(101, 4, 3),
         ["the JSON header starts with '\\n \\t ' before '{' (the reference parser accepts it)"])


def refuse(name, file, data, fmt, error, comments=(), probe=True, show_globals=True):
    path = out_path(file)
    with open(path, "wb") as f:
        f.write(data)
    comments = list(comments)
    if probe:
        comments.append(torch_reaction(path))
    globals_ = []
    if show_globals and fmt in ("torch_zip", "torch_legacy", "torchscript"):
        try:
            globals_ = file_globals(data)
        except Exception:  # noqa: BLE001 - a broken container has no pickle to list
            globals_ = []
    c = Case(name, file, fmt, "refuse", error=error, comments=comments, globals_=globals_)
    rec = read_expectation(emit(c))
    assert rec["error"] == error and rec["format"] == fmt
    return c


# ---- hand-made: what torch 2.x and numpy write (neither is available here) ---------------------
# Each file follows the layout the newer writer produces (docs: FORMATS notes on torch 2.x: the
# records .format_version, .storage_alignment, byteorder, .data/serialization_id; plain dicts and
# the extra hook dictionaries in module pickles; _rebuild_tensor_v3 over an UntypedStorage for the
# new dtypes; _rebuild_from_type_v2 and _rebuild_parameter_with_state for tensors with Python
# attributes) and numpy's pickles (ndarray.__reduce__ at protocol 2: _reconstruct + BUILD with
# (version, shape, dtype, fortran, raw bytes); dtype(code, False, True) + BUILD; scalar(dtype,
# bytes)). Bytes at protocol 2 are _codecs.encode(str, 'latin1'), as Python 3 pickles them.

NONE, NEWTRUE, NEWOBJ = b"N", b"\x88", b"\x81"


def f64_(x):
    return b"G" + struct.pack(">d", x)


def bytes_(data):
    return call(g_("_codecs", "encode"), s_(data.decode("latin1")), s_("latin1"))


def dict_(items):
    """A plain dict (EMPTY_DICT + SETITEMS), as torch 2.x pickles a module's _parameters."""
    items = list(items)
    return EMPTY_DICT + (MARK + b"".join(s_(k) + v for k, v in items) + SETITEMS if items else b"")


def np_dtype(code, order):
    return (call(g_("numpy", "dtype"), s_(code), NEWFALSE, NEWTRUE)
            + tuple_([i_(3), s_(order), NONE, NONE, NONE, i_(-1), i_(-1), i_(0)]) + BUILD)


def np_array(raw, code, shape, order="<", core="numpy.core"):
    """numpy's pickle of a C-ordered array holding `raw` (bytes in `order`)."""
    return (call(g_(core + ".multiarray", "_reconstruct"), g_("numpy", "ndarray"), tuple_([i_(0)]), bytes_(b"b"))
            + tuple_([i_(1), tuple_(i_(n) for n in shape), np_dtype(code, order), NEWFALSE, bytes_(raw)])
            + BUILD)


def np_of(t, order="<", core="numpy.core"):
    code = {torch.float32: "f4", torch.float64: "f8"}[t.dtype]
    raw = torch_bytes(t.contiguous())
    if order == ">":
        n = t.element_size()
        raw = b"".join(raw[i:i + n][::-1] for i in range(0, len(raw), n))
    return np_array(raw, code, list(t.shape), order, core)


def write_torch2_zip(path, pkl, records, byteorder="little", format_version="1"):
    """The records in the order torch 2.7's writer puts them: data.pkl, .format_version,
    .storage_alignment, byteorder, data/<key> in numeric order, version (our writer adds it),
    .data/serialization_id."""
    w = torch._C.PyTorchFileWriter(path)
    w.write_record("data.pkl", pkl, len(pkl))
    for name, text in ((".format_version", format_version), (".storage_alignment", "64"), ("byteorder", byteorder)):
        w.write_record(name, text.encode(), len(text))
    for key in sorted(records, key=int):
        w.write_record("data/" + key, records[key], len(records[key]))
    sid = ("%020d%020d" % (int(hashlib.sha256(pkl).hexdigest()[:15], 16), len(pkl))).encode()
    w.write_record(".data/serialization_id", sid, len(sid))
    w.write_end_of_file()
    del w


def v3_tensor(key, nbytes, shape, dtype):
    pid = MARK + s_("storage") + g_("torch", "UntypedStorage") + s_(key) + s_("cpu") + i_(nbytes) + TUPLE
    stride = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        stride[k] = stride[k + 1] * shape[k + 1]
    return call(g_("torch._utils", "_rebuild_tensor_v3"), pid + BINPERSID, i_(0), tuple_(i_(n) for n in shape),
                tuple_(i_(n) for n in stride), NEWFALSE, ordered_dict([]), g_("torch", dtype))


def module2(module, name, params=(), children=(), attrs=()):
    """torch 2.x's pickle of an nn.Module: NEWOBJ, then BUILD with its __dict__ (plain dicts for
    _parameters/_buffers/_modules, every hook dictionary 2.x has)."""
    hooks = ["_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
             "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
             "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
             "_load_state_dict_post_hooks"]
    state = [("training", NEWFALSE), ("_parameters", dict_(params)), ("_buffers", dict_([])),
             ("_non_persistent_buffers_set", call(g_("__builtin__", "set"), EMPTY_LIST))]
    state += [(h, ordered_dict([])) for h in hooks]
    state += [("_is_full_backward_hook", NONE), ("_modules", dict_(children))] + list(attrs)
    return g_(module, name) + EMPTY_TUPLE + NEWOBJ + dict_(state) + BUILD


def handmade_case(name, file, pkl, records, *, load, spec=None, tensors, x=None, model=None, comments=(),
                  writer=write_torch2_zip):
    check_parses(pkl)
    path = out_path(file)
    if os.path.exists(path):
        os.remove(path)
    writer(path, pkl, records)
    data = open(path, "rb").read()
    y = run(model, x) if model is not None else None
    comments = list(comments) + [torch_reaction(path)]
    case = Case(name, file, "torch_zip", load, spec=spec, comments=comments, globals_=file_globals(data),
                tensors=tensors, x=x, y=y)
    rec = read_expectation(emit(case))
    assert [t[0] for t in rec["tensors"]] == [t[0] for t in tensors], name
    for (key, dt, dims, vals), item in zip(rec["tensors"], tensors):
        assert dt == (item[2] if len(item) > 2 else dtype_name(item[1].dtype)), (name, key)
        assert dims == list(item[1].shape) and vals == f32_values(item[1]), (name, key)
    if spec is not None and x is not None:
        built = check_export.build_model(spec)
        built.load_state_dict(collections.OrderedDict((t[0], t[1].to(torch.float32)) for t in tensors))
        assert torch.equal(run(built, x), y), name
    return case


def make_handmade_newer():
    tut = tutorial_model()
    x_tut = seeded_randn(101, 4, 3)
    w, b = tut.fc1.weight.detach(), tut.fc1.bias.detach()
    records = {"0": torch_bytes(w), "1": torch_bytes(b)}
    v2 = lambda key, t: tensor_(storage_pid("FloatStorage", key, t.numel()), 0, list(t.shape),  # noqa: E731
                                list(t.stride()))

    # torch 2.7's archive of the tutorial state dict; the weight carries a Python attribute.
    v2_args = (MARK + storage_pid("FloatStorage", "0", w.numel()) + BINPERSID + i_(0) + tuple_(i_(n) for n in w.shape)
               + tuple_(i_(n) for n in w.stride()) + NEWFALSE + ordered_dict([]) + TUPLE)
    weight = (g_("torch._tensor", "_rebuild_from_type_v2") + MARK + g_("torch._utils", "_rebuild_tensor_v2")
              + g_("torch._tensor", "Tensor") + v2_args + dict_([("note", s_("ema"))]) + TUPLE + REDUCE)
    pkl = proto(2) + ordered_dict([("fc1.weight", weight), ("fc1.bias", v2("1", b))]) + STOP
    handmade_case("torch2_state", "torch2_state.pt", pkl, records, load="state_dict", spec=TUTORIAL_SPEC,
                  tensors=[("fc1.weight", w), ("fc1.bias", b)], x=x_tut, model=tut,
                  comments=["hand-made: the tutorial state dict as torch 2.7 writes it (.format_version, "
                            ".storage_alignment, byteorder, .data/serialization_id), its weight a tensor with a "
                            "Python attribute (_rebuild_from_type_v2)"])

    # torch.save(nn.Sequential(nn.Linear(3, 5))) by torch 2.x: plain dicts, every hook dict; the
    # weight a Parameter with Python state (_rebuild_parameter_with_state).
    seq = nn.Sequential(nn.Linear(3, 5))
    seq[0].weight.data.copy_(w)
    seq[0].bias.data.copy_(b)
    param_w = call(g_("torch._utils", "_rebuild_parameter_with_state"), v2("0", w), NEWTRUE, ordered_dict([]),
                   dict_([("_is_sharded", NEWFALSE)]))
    param_b = call(g_("torch._utils", "_rebuild_parameter"), v2("1", b), NEWTRUE, ordered_dict([]))
    linear = module2("torch.nn.modules.linear", "Linear", [("weight", param_w), ("bias", param_b)],
                     attrs=[("in_features", i_(3)), ("out_features", i_(5))])
    pkl = proto(2) + module2("torch.nn.modules.container", "Sequential", children=[("0", linear)]) + STOP
    handmade_case("torch2_module_full", "torch2_module_full.pt", pkl, records, load="auto",
                  spec="0=Linear(3,5)", tensors=[("0.weight", w), ("0.bias", b)], x=x_tut, model=seq,
                  comments=["hand-made: torch.save(nn.Sequential(nn.Linear(3, 5))) as torch 2.x pickles a module"])

    # uint16/32/64 tensors (torch 2.3+): _rebuild_tensor_v3 over untyped storages.
    u16 = [0, 1, 65535, 300]
    u32 = [0, 2 ** 24 + 1, 2 ** 32 - 1]
    u64 = [2 ** 40 + 1, 5]
    recs = {"0": struct.pack("<4H", *u16), "1": struct.pack("<3I", *u32), "2": struct.pack("<2Q", *u64),
            "3": torch_bytes(b)}
    pkl = proto(2) + ordered_dict([("u16", v3_tensor("0", 8, [4], "uint16")), ("u32", v3_tensor("1", 12, [3], "uint32")),
                                   ("u64", v3_tensor("2", 16, [2], "uint64")), ("f", v2("3", b))]) + STOP
    as_i64 = lambda v: torch.tensor(v, dtype=torch.int64)  # noqa: E731 - the values (torch 1.13 has no uint32)
    handmade_case("torch2_uint_state", "torch2_uint_state.pt", pkl, recs, load="state_dict",
                  tensors=[("u16", as_i64(u16), "uint16"), ("u32", as_i64(u32), "uint32"),
                           ("u64", as_i64(u64), "uint64"), ("f", b)],
                  comments=["hand-made: uint16/uint32/uint64 tensors as torch 2.3+ writes them "
                            "(_rebuild_tensor_v3, torch.UntypedStorage); values are float32 as .to(torch.float32) "
                            "rounds them"])

    # A checkpoint holding numpy values beside the model: a numpy scalar loss, np.random.get_state(),
    # argparse.Namespace hyper-parameters, a Counter of scheduler milestones.
    rng = struct.pack("<624I", *[(i * 2654435761) & 0xFFFFFFFF for i in range(624)])
    namespace = (g_("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ
                 + dict_([("lr", f64_(0.1)), ("epochs", i_(3))]) + BUILD)
    pkl = proto(2) + dict_([
        ("epoch", i_(3)),
        ("model_state_dict", ordered_dict([("fc1.weight", v2("0", w)), ("fc1.bias", v2("1", b))])),
        ("loss", call(g_("numpy.core.multiarray", "scalar"), np_dtype("f8", "<"), bytes_(struct.pack("<d", 0.125)))),
        ("np_rng", tuple_([s_("MT19937"), np_array(rng, "u4", [624]), i_(624), i_(0), f64_(0.0)])),
        ("hparams", namespace),
        ("milestones", call(g_("collections", "Counter"), dict_([]))),
    ]) + STOP
    handmade_case("numpy_checkpoint", "numpy_checkpoint.pt", pkl, records, load="state_dict", spec=TUTORIAL_SPEC,
                  tensors=[("fc1.weight", w), ("fc1.bias", b)], x=x_tut, model=tut, writer=write_torch_zip,
                  comments=["hand-made: a checkpoint with numpy values beside the state dict (a numpy.float64 "
                            "loss, np.random.get_state(), argparse.Namespace, collections.Counter), numpy 1's "
                            "spelling"])

    # A state dict of numpy arrays (numpy 2's spelling; the bias big-endian float64): no torch storage at all.
    pkl = proto(2) + ordered_dict([("fc1.weight", np_of(w, core="numpy._core")),
                                   ("fc1.bias", np_of(b.double(), order=">", core="numpy._core"))]) + STOP
    handmade_case("numpy_state", "numpy_state.pt", pkl, {}, load="state_dict", spec=TUTORIAL_SPEC,
                  tensors=[("fc1.weight", w), ("fc1.bias", b.double())], x=x_tut, model=tut, writer=write_torch_zip,
                  comments=["hand-made: {name: tensor.numpy()} saved with torch.save, numpy 2's spelling "
                            "(numpy._core), the bias a big-endian float64 array"])

    # Refused: a big-endian archive and a .format_version from the future.
    for name, kw, error in (("torch2_big_endian", {"byteorder": "big"}, "unsupported_byteorder"),
                            ("torch2_format_version_9", {"format_version": "9"}, "unsupported_version")):
        path = out_path(name + ".pt")
        pkl = proto(2) + ordered_dict([("fc1.weight", v2("0", w)), ("fc1.bias", v2("1", b))]) + STOP
        write_torch2_zip(path, pkl, records, **kw)
        refuse(name, name + ".pt", open(path, "rb").read(), "torch_zip", error,
               comments=["hand-made: the tutorial state dict in torch 2.7's layout with %s" % kw])


def make_refuse_torch():
    # The tutorial state dict, assembled by hand; each hostile file changes one thing in it.
    tut = tutorial_model()
    w, b = tut.fc1.weight.detach(), tut.fc1.bias.detach()
    records = {"0": torch_bytes(w), "1": torch_bytes(b)}
    t_w = tensor_(storage_pid("FloatStorage", "0", 15), 0, (5, 3), (3, 1))
    t_b = tensor_(storage_pid("FloatStorage", "1", 5), 0, (5,), (1,))

    def sd_pickle(first=None, weight=t_w, bias=t_b):
        items = ([first] if first else []) + [("fc1.weight", weight), ("fc1.bias", bias)]
        pkl = proto(2) + ordered_dict(items) + STOP
        check_parses(pkl)
        return pkl

    # The assembler is right: without a payload, torch loads it to the same tensors.
    hand = os.path.join(FILES, "hand_check.pt")
    write_torch_zip(hand, sd_pickle(), records)
    got = torch.load(hand, weights_only=True)
    assert_state(got, list(tut.state_dict().items()), "hand-assembled")
    os.remove(hand)

    def zip_case(name, pkl, error, comments, recs=records):
        path = out_path(name + ".pt")
        write_torch_zip(path, pkl, recs)
        return refuse(name, name + ".pt", open(path, "rb").read(), "torch_zip", error, comments)

    payload_sys = call(g_("posix", "system"), s_(SHELL))
    zip_case("mal_posix_system", sd_pickle(("pwned", payload_sys)), "disallowed_global",
             ["the tutorial state dict with a first entry 'pwned': GLOBAL 'posix system' + REDUCE(%r) "
              "(os.system pickles as posix.system on Linux)" % SHELL])
    zip_case("mal_builtins_eval",
             sd_pickle(("pwned", call(g_("__builtin__", "eval"),
                                      s_("__import__('os').system('%s')" % SHELL)))),
             "disallowed_global",
             ["GLOBAL '__builtin__ eval' + REDUCE(\"__import__('os').system(...)\") (protocol 2 "
              "spells builtins as __builtin__)"])
    zip_case("mal_builtins3_eval",
             sd_pickle(("pwned", call(g_("builtins", "exec"), s_("import os; os.system('%s')" % SHELL)))),
             "disallowed_global", ["GLOBAL 'builtins exec' + REDUCE(\"import os; os.system(...)\")"])

    inner = open(out_path("mal_posix_system.pt"), "rb").read()
    as_bytes = call(g_("_codecs", "encode"), s_(inner.decode("latin-1")), s_("latin1"))
    zip_case("mal_load_from_bytes",
             sd_pickle(("pwned", call(g_("torch.storage", "_load_from_bytes"), as_bytes))),
             "disallowed_global",
             ["GLOBAL 'torch.storage _load_from_bytes' on _codecs.encode(<mal_posix_system.pt>, 'latin1'): "
              "a nested unrestricted torch.load in 1.13; 'torch.' is not a safe prefix"])

    # protocol 4: every global by STACK_GLOBAL, the payload's named by two SHORT_BINUNICODEs
    def t4(key, numel, size, stride):
        return tensor_(storage_pid("FloatStorage", key, numel, s=short_s, g=g4), 0, size, stride, g=g4)
    body = ordered_dict([("pwned", call(g4("posix", "system"), short_s(SHELL))),
                         ("fc1.weight", t4("0", 15, (5, 3), (3, 1))),
                         ("fc1.bias", t4("1", 5, (5,), (1,)))], s=short_s, g=g4) + STOP
    pkl4 = proto(4) + b"\x95" + struct.pack("<Q", len(body)) + body
    check_parses(pkl4)
    assert "posix.system" in pickle_globals(pkl4) and "GLOBAL" not in opcode_names(pkl4)
    zip_case("mal_stack_global", pkl4, "disallowed_global",
             ["protocol 4 (FRAME): no GLOBAL opcode at all; 'posix' and 'system' are SHORT_BINUNICODE "
              "strings joined by STACK_GLOBAL"])

    zip_case("mal_short_record", sd_pickle(), "storage_size_mismatch",
             ["the persistent id of fc1.weight says 15 floats (60 bytes) but data/0 holds 40 bytes",
              "(checked by hand: torch 1.13 returns fc1.weight with its last 5 values read from memory "
              "past the record, different on every run)"],
             recs={"0": records["0"][:40], "1": records["1"]})
    zip_case("mal_huge_shape",
             sd_pickle(weight=tensor_(storage_pid("FloatStorage", "0", 15), 0, (2 ** 40, 2 ** 40),
                                      (2 ** 40, 1))),
             "size_overflow", ["fc1.weight has shape (2^40, 2^40), stride (2^40, 1) (LONG1 ints) on a "
                               "15-float storage: 2^80 elements"])
    zip_case("mal_view_out_of_bounds",
             sd_pickle(weight=tensor_(storage_pid("FloatStorage", "0", 15), 10, (5, 3), (3, 1))),
             "view_out_of_bounds", ["fc1.weight = storage offset 10, shape (5, 3), stride (3, 1) of a "
                                    "15-float storage: reaches element 24"])
    module_pid = MARK + s_("module") + s_("Model") + s_("/tmp/model.py") + \
        s_("class Model(nn.Module):\n    pass\n") + TUPLE
    zip_case("mal_persid_module", sd_pickle(weight=tensor_(module_pid, 0, (5, 3), (3, 1))),
             "disallowed_persistent_id",
             ["fc1.weight's persistent id is ('module', 'Model', '/tmp/model.py', '<source>') (strings "
              "only, no global): the legacy module-source form, never valid in a zip"])
    inst = proto(2) + MARK + b"icollections\nOrderedDict\n" + MARK + s_("fc1.weight") + t_w + \
        s_("fc1.bias") + t_b + SETITEMS + STOP
    check_parses(inst)
    assert "INST" in opcode_names(inst)
    zip_case("mal_inst_opcode", inst, "disallowed_opcode",
             ["the top-level OrderedDict is made with MARK INST 'collections OrderedDict' (an allowed "
              "name, a forbidden opcode) instead of GLOBAL + EMPTY_TUPLE + REDUCE"])
    on_list = proto(2) + EMPTY_LIST + MARK + s_("fc1.weight") + t_w + s_("fc1.bias") + t_b + SETITEMS + STOP
    check_parses(on_list)
    zip_case("mal_setitem_on_list", on_list, "bad_pickle",
             ["EMPTY_LIST, then SETITEMS of the two tensors applied to the list (the SETITEM(S)-on-"
              "non-dict half of CVE-2026-24747)"])

    # TorchScript, saved under a .pt name. The generated code lists class constants in set
    # order, so it is written by a child with a fixed hash seed (our own benign module).
    ts_path = out_path("mal_torchscript.pt")
    subprocess.run([sys.executable, "-c", TORCHSCRIPT, ts_path], check=True,
                   env=dict(os.environ, PYTHONHASHSEED="0"))
    with zipfile.ZipFile(ts_path) as z:
        names = [n.split("/", 1)[1] for n in z.namelist()]
    code = [n for n in names if n.startswith("code/")]
    assert code and "constants.pkl" in names
    refuse("mal_torchscript", "mal_torchscript.pt", open(ts_path, "rb").read(), "torchscript",
           "torchscript_archive",
           ["torch.jit.save of a scripted Sequential(Linear(2,2), ReLU), named .pt; records: "
            + ", ".join(n for n in names if not n.startswith("code/"))
            + " and %d under code/ (e.g. %s)" % (len(code), code[0]),
            "torch <= 2.5 torch.load(weights_only=True) hands TorchScript to torch.jit.load "
            "(CVE-2025-32434); 2.6 refuses it"],
           show_globals=False)

    # Damaged archives
    good = open(out_path("tutorial_state.pt"), "rb").read()
    cut = good[:len(good) * 7 // 10]
    refuse("mal_truncated", "mal_truncated.pt", cut, "torch_zip", "corrupt_zip",
           ["tutorial_state.pt cut at 70%% (%d of %d bytes): no central directory" % (len(cut), len(good))])
    refuse("mal_lying_size", "mal_lying_size.pt", lie_about_size(good, "tutorial_state/data/0"), "torch_zip",
           "corrupt_zip", ["tutorial_state.pt with the central directory's compressed and uncompressed "
                           "sizes of data/0 patched to 0x00100000 (1 MiB) in a %d-byte archive" % len(good)])

    # Legacy whole module: embeds the class source and the author's path
    torch.manual_seed(1)
    lpath = out_path("legacy_full.pt")
    torch.save(tutorial_model(), lpath, _use_new_zipfile_serialization=False)
    script = os.path.abspath(__file__)
    fix_legacy(lpath, {script: "tests/torch/make_torch_fixtures.py"})
    loaded = torch.load(lpath)  # our own benign file
    assert isinstance(loaded, Model) and same_tensor(loaded.fc1.weight.detach(), tut.fc1.weight.detach())
    refuse("legacy_full", "legacy_full.pt", open(lpath, "rb").read(), "torch_legacy", "legacy_module",
           ["torch.save(tutorial model, _use_new_zipfile_serialization=False): persistent ids "
            "('module', <class>, <source path>, <class source>) for Model and Linear"])

    refuse("not_a_model", "not_a_model.txt",
           b"This is not a model file.\nIt is plain text: no zip, no pickle, no safetensors header.\n",
           "unknown", "unknown_format", ["plain text"])


TORCHSCRIPT = r"""
import sys, torch, torch.nn as nn
torch.manual_seed(12)
torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU())), sys.argv[1])
"""


def lie_about_size(data, name):
    """Patches the central directory entry of `name`: compressed and uncompressed size 1 MiB."""
    data = bytearray(data)
    pos, hits = 0, 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + n].decode() == name:
            struct.pack_into("<II", data, pos + 20, 0x00100000, 0x00100000)
            hits += 1
        pos += 46 + n + m + k
    assert hits == 1
    return bytes(data)


def make_refuse_safetensors():
    tut = tutorial_model()
    tsd = tut.state_dict()
    header, blob = st_layout(tsd)
    good = st_file(header, blob)
    five = torch_bytes(seeded_randn(1201, 5))

    def st(name, data, error, comment):
        refuse(name, name + ".safetensors", data, "safetensors", error, [comment], probe=False)

    def one(entries, data, **kw):
        return st_file(entries, data, **kw)

    n = struct.unpack_from("<Q", good)[0]
    st("st_header_length_past_eof", struct.pack("<Q", len(good)) + good[8:], "truncated",
       "the header length N = %d (the file size) runs past the end of the file" % len(good))
    st("st_header_length_huge", struct.pack("<Q", 2 ** 63 + 5) + good[8:], "header_too_large",
       "N = 2^63 + 5: over the 100,000,000-byte cap (and 8 + N overflows int64)")
    st("st_overlap", one({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]},
                          "b": {"dtype": "F32", "shape": [5], "data_offsets": [16, 36]}},
                         five + five[:16]), "bad_offsets",
       "a = [0, 20), b = [16, 36): sizes right, data exactly 36 bytes, but the spans overlap")
    st("st_hole", one({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]},
                       "b": {"dtype": "F32", "shape": [5], "data_offsets": [24, 44]}},
                      five + b"\0\0\0\0" + five), "bad_offsets",
       "a = [0, 20), b = [24, 44): a 4-byte hole between them")
    raw = b'{"w\xff":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}'
    st("st_non_utf8", st_file(None, five, raw_header=raw), "bad_header_json",
       "the tensor name contains the byte 0xFF: the header is not UTF-8")
    st("st_size_mismatch", one({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, five[:16]),
       "storage_size_mismatch", "F32 shape [5] needs 20 bytes; data_offsets [0, 16] give 16 (and the data is 16)")
    st("st_trailing_bytes", good + b"\0\0\0\0", "trailing_bytes",
       "a valid file (the tutorial weights) plus 4 bytes after the last tensor")
    st("st_truncated_data", good[:-4], "truncated", "a valid file with its last 4 bytes cut off")
    st("st_bad_dtype", one({"w": {"dtype": "float32", "shape": [5], "data_offsets": [0, 20]}}, five),
       "unknown_dtype", "dtype 'float32' (torch's spelling) is not a safetensors dtype code")
    st("st_metadata_not_string",
       one({"__metadata__": {"format": "pt", "epoch": 5},
            "w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]}}, five),
       "bad_header_json", "__metadata__ = {'format': 'pt', 'epoch': 5}: a number where only strings are allowed")
    raw = b'{"w":{"dtype":"F32","shape":[5],"data_offsets":[0,20]},' \
          b'"w":{"dtype":"F32","shape":[5],"data_offsets":[20,40]}}'
    st("st_duplicate_key", st_file(None, five + five, raw_header=raw), "duplicate_name",
       "the key 'w' twice, spans [0, 20) and [20, 40) tiling the 40 data bytes")
    st("st_shape_overflow",
       one({"w": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32], "data_offsets": [0, 4]}}, five[:4]),
       "size_overflow", "shape [2^32, 2^32]: 2^64 elements overflow uint64")
    st("st_not_object", st_file(None, five, raw_header=b'[{"dtype":"F32","shape":[5],"data_offsets":[0,20]}]'),
       "bad_header_json", "the header is a JSON array, not an object")
    # 5 bytes cannot be told apart from any other short file: no format claims them.
    refuse("st_too_short", "st_too_short.safetensors", b"\x08\x00\x00\x00\x00", "unknown", "unknown_format",
           ["5 bytes: not even the 8-byte header length, so no format is recognised"], probe=False)
    assert n % 8 == 0


def main():
    if os.path.exists(MARKER):
        print("refusing to run: %s exists (remove it first; it is what the hostile payloads would "
              "create)" % MARKER, file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(FILES, exist_ok=True)
    make_valid_torch()
    make_handmade_newer()
    make_safetensors_valid()
    make_refuse_torch()
    make_refuse_safetensors()
    assert not os.path.exists(MARKER), "a payload ran"

    files = {c.file for c in CASES}
    assert len(files) == len(CASES)
    for f in sorted(os.listdir(FILES)):
        if f not in files:
            os.remove(os.path.join(FILES, f))
            print("removed stale files/" + f)
    names = {c.name + ".txt" for c in CASES}
    for f in sorted(os.listdir(HERE)):
        path = os.path.join(HERE, f)
        if f.endswith(".txt") and f not in names:
            with open(path, encoding="utf-8") as stale:
                ours = stale.readline().startswith(GENERATED)
            if ours:
                os.remove(path)
                print("removed stale " + f)
    total = 0
    for c in CASES:
        size = os.path.getsize(out_path(c.file))
        txt = os.path.getsize(os.path.join(HERE, c.name + ".txt"))
        total += size + txt
        digest = hashlib.sha256(open(out_path(c.file), "rb").read()).hexdigest()[:12]
        print("%-26s %-12s %-17s %-24s %7d + %6d bytes  %s" % (
            c.name, c.format, c.load, c.error or "", size, txt, digest))
    print("%d cases, %d bytes of files and expectations" % (len(CASES), total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
