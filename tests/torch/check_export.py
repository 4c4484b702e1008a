#!/usr/bin/python3
"""Proves that model files modelkeep EXPORTS load in real PyTorch and compute what modelkeep says.

Run with Debian's python3-torch (1.13):

    /usr/bin/python3 tests/torch/check_export.py CASE.json
    /usr/bin/python3 tests/torch/check_export.py --self-test [--keep DIR]

CASE.json (written by modelkeep's test suite):

    {"spec":   "<modelkeep SPEC>",                       e.g. "0=Linear(8,16),1=ReLU,2=Linear(16,4)"
     "files":  ["m.pt", "/abs/m.safetensors"],           absolute, or relative to CASE.json's folder
     "input":  {"shape": [2, 8], "values": [...]},       row-major
     "output": {"shape": [2, 4], "values": [...]},       what modelkeep computed for that input
     "dtype":  "f32" | "f16" | "bf16",                    the dtype the export stored (default f32)
     "tolerance": 1e-6}                                  optional override of the dtype's tolerance

What is checked, one printed line per check ("ok  ..." or "FAIL ..."):

  1. every .pt/.pth file loads with torch.load(path, weights_only=True) and is a dict (or
     OrderedDict) of str -> Tensor; pickled modules, checkpoints with extra objects etc. fail;
  2. every .safetensors file is parsed by hand (struct + json + torch.frombuffer; the
     reference library is not installed) and its layout validated: header length, UTF-8
     JSON object, no duplicate keys, string-only __metadata__, known dtypes, shapes of
     non-negative ints, end - begin == numel x itemsize, spans that tile the data exactly
     (no hole, no overlap, no trailing or missing byte); plus the reference writer's
     conventions modelkeep promises (header padded with spaces to a multiple of 8, tensors
     in descending dtype alignment then name order);
  3. all files hold the same keys, shapes, dtypes and bit-identical values;
  4. floating tensors of rank >= 2 are stored in "dtype"; other floating tensors in float32
     or "dtype"; num_batches_tracked may be int64 or floating;
  5. a torch nn.Module built from "spec" (parser below, same grammar as core/spec.hpp)
     accepts each file's tensors with load_state_dict(strict=True) (the module is float32;
     f16/bf16 weights are upcast by the copy);
  6. model(input) in eval mode matches "output": same shape, and
     max |torch - output| <= tol * max(1, max |output|), tol = 1e-6 (f32), 1e-3 (f16),
     1e-2 (bf16).

Exit status 0 when everything holds, 1 on any mismatch (with a "FAIL ..." line saying
what and where), 2 on a malformed CASE.json or usage error.

--self-test writes its own files (torch.save of a state dict, the safetensors writer below)
into a temporary folder and proves the checker passes on good cases and fails on a perturbed
output value, a perturbed weight, a broken safetensors layout, a wrong SPEC, a missing key and
a pickled module; it exits 0 only if every expectation holds.
"""

import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

TOLERANCE = {"f32": 1e-6, "f16": 1e-3, "bf16": 1e-2}
STORED_DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# ---- the SPEC language (mirrors core/spec.cpp) ---------------------------------------------

KINDS = ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "Softmax",
         "LogSoftmax", "Identity", "Dropout", "Flatten", "LayerNorm", "BatchNorm1d")

ARG_ORDER = {
    "Linear": ["in_features", "out_features", "bias"],
    "LeakyReLU": ["negative_slope"],
    "GELU": ["approximate"],
    "Softmax": ["dim"],
    "LogSoftmax": ["dim"],
    "Dropout": ["p"],
    "Flatten": ["start_dim", "end_dim"],
    "LayerNorm": ["normalized_shape", "eps", "elementwise_affine", "bias"],
    "BatchNorm1d": ["num_features", "eps", "affine", "track_running_stats"],
}

NAME_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_RANK = 8
MAX_TENSOR_ELEMENTS = 1 << 28


class SpecError(ValueError):
    pass


def _split_top(s):
    parts, cur, depth = [], "", 0
    for ch in s:
        if ch == "(":
            depth += 1
        if ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError("unbalanced parentheses in %r" % s)
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise SpecError("unbalanced parentheses in %r" % s)
    parts.append(cur.strip())
    return parts


def _f32(x):
    """The float32 value modelkeep holds for a SPEC float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _parse_value(layer, key, v):
    def bad():
        raise SpecError("in %r: bad value %r for %s" % (layer, v, key))

    if key in ("in_features", "out_features", "normalized_shape", "num_features"):
        if not re.fullmatch(r"[0-9]{1,19}", v):
            bad()
        return int(v)
    if key in ("bias", "elementwise_affine", "affine", "track_running_stats"):
        if v in ("true", "True", "1"):
            return True
        if v in ("false", "False", "0"):
            return False
        bad()
    if key in ("negative_slope", "p", "eps"):
        if not v or not re.fullmatch(r"[0-9.+\-eE]+", v):
            bad()
        try:
            d = float(v)
        except ValueError:
            bad()
        if not math.isfinite(d):
            bad()
        try:
            f = _f32(d)
        except OverflowError:
            bad()
        if not math.isfinite(f):
            bad()
        return f
    if key in ("start_dim", "end_dim", "dim"):
        m = re.fullmatch(r"-?([0-9]{1,19})", v)
        if not m or int(m.group(1)) > 1000:
            bad()
        n = int(v)
        if key == "dim" and n != -1:
            raise SpecError("in %r: only dim=-1 (the last dim) is supported" % layer)
        return n
    if key == "approximate":
        if v not in ("none", "tanh"):
            bad()
        return v
    bad()


def parse_spec(text):
    """SPEC -> [(name, kind, {arg: value})], validated like core/spec.cpp + model.cpp."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty SPEC")
    layers = []
    for index, part in enumerate(_split_top(text)):
        if not part:
            raise SpecError("empty layer at position %d" % index)
        name, body = str(index), part
        paren, eq = body.find("("), body.find("=")
        if eq >= 0 and (paren < 0 or eq < paren):
            name, body = body[:eq].strip(), body[eq + 1:].strip()
            if not NAME_RE.match(name) or len(name) > 255:
                raise SpecError("in %r: layer name %r is not segments of [A-Za-z0-9_] joined by '.'"
                                % (part, name))
        kind, args = body, []
        open_ = body.find("(")
        if open_ >= 0:
            if not body.endswith(")"):
                raise SpecError("in %r: expected ')' at the end" % part)
            kind = body[:open_].strip()
            inner = body[open_ + 1:-1].strip()
            if inner:
                for p in _split_top(inner):
                    if not p:
                        raise SpecError("in %r: empty argument" % part)
                    e = p.find("=")
                    args.append(("", p) if e < 0 else (p[:e].strip(), p[e + 1:].strip()))
        if kind not in KINDS:
            raise SpecError("in %r: unknown layer kind %r" % (part, kind))
        order = ARG_ORDER.get(kind, [])
        bound, pos, seen_kw = {}, 0, False
        for key, value in args:
            if not key:
                if seen_kw:
                    raise SpecError("in %r: positional argument after a keyword argument" % part)
                if pos >= len(order):
                    raise SpecError("in %r: too many arguments" % part)
                key = order[pos]
                pos += 1
            else:
                seen_kw = True
                if key not in order:
                    raise SpecError("in %r: unknown argument %r" % (part, key))
            if key in bound:
                raise SpecError("in %r: argument %r given twice" % (part, key))
            if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
                value = value[1:-1]
            bound[key] = _parse_value(part, key, value)
        a = {"bias": True, "elementwise_affine": True, "affine": True, "track_running_stats": True,
             "negative_slope": _f32(0.01), "p": 0.5, "eps": _f32(1e-5), "start_dim": 1, "end_dim": -1,
             "approximate": "none"}
        a.update(bound)
        if kind == "Linear":
            if "in_features" not in a or "out_features" not in a:
                raise SpecError("in %r: Linear needs in_features and out_features" % part)
            if a["in_features"] < 1 or a["out_features"] < 1:
                raise SpecError("in %r: in_features and out_features must be >= 1" % part)
            if a["in_features"] * a["out_features"] > MAX_TENSOR_ELEMENTS:
                raise SpecError("in %r: weight over the element cap" % part)
        if kind in ("LayerNorm", "BatchNorm1d"):
            n = a.get("normalized_shape", a.get("num_features"))
            if n is None:
                raise SpecError("in %r: %s needs its feature count" % (part, kind))
            if not 1 <= n <= MAX_TENSOR_ELEMENTS:
                raise SpecError("in %r: feature count must be in [1, 2^28]" % part)
            a["n"] = n
            if not a["eps"] > 0:
                raise SpecError("in %r: eps must be > 0" % part)
        if kind == "Dropout" and not 0.0 <= a["p"] <= 1.0:
            raise SpecError("in %r: p must be in [0, 1]" % part)
        if kind == "Flatten":
            for k in ("start_dim", "end_dim"):
                if not -MAX_RANK <= a[k] < MAX_RANK:
                    raise SpecError("in %r: %s must be in [-8, 7]" % (part, k))
        layers.append((name, kind, a))
    names = set()
    for name, _, _ in layers:
        if name in names:
            raise SpecError("two layers are named %r" % name)
        names.add(name)
    for name, _, _ in layers:
        segs = name.split(".")
        for i in range(1, len(segs)):
            if ".".join(segs[:i]) in names:
                raise SpecError("layer %r cannot also be the parent of %r" % (".".join(segs[:i]), name))
    return layers


def make_layer(kind, a):
    if kind == "Linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=a["bias"])
    if kind == "ReLU":
        return nn.ReLU()
    if kind == "LeakyReLU":
        return nn.LeakyReLU(a["negative_slope"])
    if kind == "Sigmoid":
        return nn.Sigmoid()
    if kind == "Tanh":
        return nn.Tanh()
    if kind == "GELU":
        return nn.GELU(approximate=a["approximate"])
    if kind == "SiLU":
        return nn.SiLU()
    if kind == "Softmax":
        return nn.Softmax(dim=-1)
    if kind == "LogSoftmax":
        return nn.LogSoftmax(dim=-1)
    if kind == "Identity":
        return nn.Identity()
    if kind == "Dropout":
        return nn.Dropout(a["p"])
    if kind == "Flatten":
        return nn.Flatten(a["start_dim"], a["end_dim"])
    if kind == "LayerNorm":
        ln = nn.LayerNorm(a["n"], eps=a["eps"], elementwise_affine=a["elementwise_affine"])
        if a["elementwise_affine"] and not a["bias"]:
            ln.register_parameter("bias", None)  # torch < 2.1 has no bias= argument
        return ln
    if kind == "BatchNorm1d":
        return nn.BatchNorm1d(a["n"], eps=a["eps"], affine=a["affine"],
                              track_running_stats=a["track_running_stats"])
    raise SpecError("unknown layer kind %r" % kind)


class SpecModel(nn.Module):
    """Runs the SPEC's leaves in order. Each leaf is registered under nested containers
    ("block.0" -> self.block._modules['0']) so that state_dict keys equal modelkeep's."""

    def __init__(self, layers):
        super().__init__()
        self.leaves = []  # a plain list: order only, registration happens in the tree
        for name, kind, args in layers:
            parent = self
            segs = name.split(".")
            for seg in segs[:-1]:
                child = parent._modules.get(seg)
                if child is None:
                    child = nn.Module()
                    parent.add_module(seg, child)
                parent = child
            leaf = make_layer(kind, args)
            parent.add_module(segs[-1], leaf)
            self.leaves.append((name, leaf))

    def forward(self, x):
        for _, leaf in self.leaves:
            x = leaf(x)
        return x


def build_model(spec):
    """A float32 eval-mode nn.Module for a modelkeep SPEC."""
    model = SpecModel(parse_spec(spec))
    model.eval()
    return model


# ---- safetensors ---------------------------------------------------------------------------

# Reference dtype enum order (sort key: descending), bits, torch dtype (None: not in torch 1.13).
ST_DTYPES = [
    ("BOOL", 8, torch.bool), ("F4", 4, None), ("F6_E2M3", 6, None), ("F6_E3M2", 6, None),
    ("U8", 8, torch.uint8), ("I8", 8, torch.int8), ("F8_E5M2", 8, None), ("F8_E4M3", 8, None),
    ("F8_E8M0", 8, None), ("F8_E4M3FNUZ", 8, None), ("F8_E5M2FNUZ", 8, None),
    ("I16", 16, torch.int16), ("U16", 16, None), ("F16", 16, torch.float16),
    ("BF16", 16, torch.bfloat16), ("I32", 32, torch.int32), ("U32", 32, None),
    ("F32", 32, torch.float32), ("C64", 64, None), ("F64", 64, torch.float64),
    ("I64", 64, torch.int64), ("U64", 64, None),
]
ST_RANK = {code: i for i, (code, _, _) in enumerate(ST_DTYPES)}
ST_BITS = {code: bits for code, bits, _ in ST_DTYPES}
ST_TORCH = {code: t for code, _, t in ST_DTYPES if t is not None}
TORCH_ST = {t: code for code, t in ST_TORCH.items()}
MAX_HEADER = 100_000_000


class LayoutError(ValueError):
    pass


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.numel() == 0:
        return b""
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """The reference writer's layout: descending dtype alignment then name, compact JSON with
    __metadata__ first, header padded with spaces to a multiple of 8."""
    items = sorted(tensors.items(), key=lambda kv: (-ST_RANK[TORCH_ST[kv[1].dtype]], kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": TORCH_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise LayoutError("duplicate key %r in the header" % k)
        d[k] = v
    return d


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def read_safetensors(path, conventions=True):
    """(OrderedDict name -> tensor in header order, metadata); LayoutError on any violation."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise LayoutError("%d bytes: shorter than the 8-byte header length" % len(data))
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > MAX_HEADER:
        raise LayoutError("header length %d is over %d" % (n, MAX_HEADER))
    if 8 + n > len(data):
        raise LayoutError("header length %d runs past the end of the %d-byte file" % (n, len(data)))
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise LayoutError("header is not UTF-8: %s" % e)
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise LayoutError("header is not JSON: %s" % e)
    if not isinstance(header, dict):
        raise LayoutError("header is a JSON %s, not an object" % type(header).__name__)
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise LayoutError("__metadata__ must map strings to strings: %r" % (metadata,))
    buf_len = len(data) - 8 - n
    entries = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise LayoutError("%r: entry must have exactly dtype, shape, data_offsets: %r" % (name, e))
        code, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if code not in ST_BITS:
            raise LayoutError("%r: unknown dtype %r" % (name, code))
        if code not in ST_TORCH:
            raise LayoutError("%r: dtype %s has no torch 1.13 equivalent" % (name, code))
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise LayoutError("%r: shape must be a list of non-negative ints: %r" % (name, shape))
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)
                and 0 <= offs[0] <= offs[1]):
            raise LayoutError("%r: bad data_offsets %r" % (name, offs))
        numel = 1
        for d in shape:
            numel *= d
        if numel >= 1 << 64:
            raise LayoutError("%r: shape %r overflows" % (name, shape))
        bits = numel * ST_BITS[code]
        if bits % 8 or bits // 8 != offs[1] - offs[0]:
            raise LayoutError("%r: %s %r is %g bytes but data_offsets %r span %d"
                              % (name, code, shape, bits / 8, offs, offs[1] - offs[0]))
        entries.append((name, code, shape, offs))
    pos = 0
    for name, _, _, (b, e) in sorted(entries, key=lambda x: (x[3][0], x[3][1])):
        if b != pos:
            raise LayoutError("%r starts at %d, expected %d (%s)"
                              % (name, b, pos, "overlap" if b < pos else "hole"))
        pos = e
    if pos != buf_len:
        raise LayoutError("tensors cover %d data bytes but the file has %d after the header"
                          % (pos, buf_len))
    if conventions:
        if n % 8:
            raise LayoutError("writer convention: header length %d is not a multiple of 8" % n)
        if text[:1] != "{" or text.rstrip(" ") != text.rstrip():
            raise LayoutError("writer convention: header must start with '{' and be padded with spaces")
        by_offset = [x[0] for x in sorted(entries, key=lambda x: x[3][0])]
        ref = [x[0] for x in sorted(entries, key=lambda x: (-ST_RANK[x[1]], x[0]))]
        nonempty = {x[0] for x in entries if x[3][1] > x[3][0]}
        if [k for k in by_offset if k in nonempty] != [k for k in ref if k in nonempty]:
            raise LayoutError("writer convention: tensors are not in descending dtype alignment "
                              "then name order: %r" % by_offset)
    out = {}
    base = 8 + n
    for name, code, shape, (b, e) in entries:
        dt = ST_TORCH[code]
        if e == b:
            t = torch.empty(shape, dtype=dt)
        else:
            raw = bytearray(data[base + b:base + e])
            if dt == torch.bool:
                if any(x > 1 for x in raw):
                    raise LayoutError("%r: BOOL bytes other than 0 and 1" % name)
                t = torch.frombuffer(raw, dtype=torch.uint8).to(torch.bool).reshape(shape)
            else:
                t = torch.frombuffer(raw, dtype=dt).reshape(shape)
        out[name] = t
    return out, metadata


# ---- the check -----------------------------------------------------------------------------

class Failure(Exception):
    pass


def ok(msg):
    print("ok   " + msg)


def fail(msg):
    raise Failure(msg)


def bits_equal(a, b):
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and \
        tensor_bytes(a) == tensor_bytes(b)


def load_file(path):
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        fail("%s: no such file" % path)
    if ext in (".pt", ".pth", ".bin"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - report torch's own words
            fail("%s: torch.load(weights_only=True) refuses it: %s: %s"
                 % (path, type(e).__name__, " ".join(str(e).split())[:400]))
        if not isinstance(obj, dict):
            fail("%s: torch.load gives a %s, not a dict of tensors" % (path, type(obj).__name__))
        for k, v in obj.items():
            if not isinstance(k, str) or not isinstance(v, torch.Tensor):
                fail("%s: entry %r is a %s, not a tensor under a str key" % (path, k, type(v).__name__))
        ok("%s: torch.load(weights_only=True) -> %s of %d tensors"
           % (os.path.basename(path), type(obj).__name__, len(obj)))
        return dict(obj)
    if ext == ".safetensors":
        try:
            tensors, meta = read_safetensors(path)
        except LayoutError as e:
            fail("%s: bad safetensors layout: %s" % (path, e))
        ok("%s: safetensors layout valid, %d tensors, metadata %s"
           % (os.path.basename(path), len(tensors), json.dumps(meta)))
        return tensors
    fail("%s: unknown extension %r (expected .pt, .pth, .bin or .safetensors)" % (path, ext))


def compare_files(loaded):
    (p0, t0), rest = loaded[0], loaded[1:]
    for p, t in rest:
        if set(t) != set(t0):
            fail("%s and %s hold different keys: only in the first %s, only in the second %s"
                 % (p0, p, sorted(set(t0) - set(t)), sorted(set(t) - set(t0))))
        for k in t0:
            a, b = t0[k], t[k]
            if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
                fail("%r: %s %s in %s but %s %s in %s" % (k, a.dtype, list(a.shape), p0, b.dtype,
                                                         list(b.shape), p))
            if not bits_equal(a, b):
                fail("%r: values differ between %s and %s" % (k, p0, p))
    if rest:
        ok("all %d files hold the same %d tensors (keys, shapes, dtypes, bits)" % (len(loaded), len(t0)))


def check_dtypes(path, tensors, dtype):
    want = STORED_DTYPE[dtype]
    for k, t in tensors.items():
        if k.endswith("num_batches_tracked") and t.dim() == 0:
            if not (t.dtype == torch.int64 or t.is_floating_point()):
                fail("%s: %r is %s (expected int64 or floating)" % (path, k, t.dtype))
            continue
        if not t.is_floating_point():
            fail("%s: %r is %s, not floating" % (path, k, t.dtype))
        if t.dim() >= 2 and t.dtype != want:
            fail("%s: %r (rank %d) is stored as %s, expected %s" % (path, k, t.dim(), t.dtype, want))
        if t.dim() < 2 and t.dtype not in (torch.float32, want):
            fail("%s: %r (rank %d) is stored as %s, expected float32 or %s"
                 % (path, k, t.dim(), t.dtype, want))
    ok("%s: tensor dtypes fit \"%s\"" % (os.path.basename(path), dtype))


def read_array(case, field):
    a = case.get(field)
    if not isinstance(a, dict) or not isinstance(a.get("shape"), list) or not isinstance(a.get("values"), list):
        raise ValueError("%s must be {\"shape\": [...], \"values\": [...]}" % field)
    shape = a["shape"]
    if not all(_is_int(d) and d >= 0 for d in shape):
        raise ValueError("%s.shape must be non-negative ints" % field)
    n = 1
    for d in shape:
        n *= d
    if len(a["values"]) != n:
        raise ValueError("%s has %d values for shape %r (%d)" % (field, len(a["values"]), shape, n))
    return torch.tensor([float(v) for v in a["values"]], dtype=torch.float32).reshape(shape)


def check_case(case_path):
    """Returns 0 if everything holds, 1 on a mismatch, 2 on a malformed case."""
    try:
        with open(case_path, encoding="utf-8") as f:
            case = json.load(f)
        base = os.path.dirname(os.path.abspath(case_path))
        spec = case["spec"]
        files = case["files"]
        if not isinstance(files, list) or not files or not all(isinstance(p, str) for p in files):
            raise ValueError("files must be a non-empty list of paths")
        files = [p if os.path.isabs(p) else os.path.join(base, p) for p in files]
        x = read_array(case, "input")
        want = read_array(case, "output")
        dtype = case.get("dtype", "f32")
        if dtype not in TOLERANCE:
            raise ValueError("dtype must be f32, f16 or bf16, not %r" % (dtype,))
        tol = float(case.get("tolerance", TOLERANCE[dtype]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("ERROR malformed case %s: %s: %s" % (case_path, type(e).__name__, e))
        return 2
    try:
        try:
            layers = parse_spec(spec)
        except SpecError as e:
            fail("SPEC %r does not parse: %s" % (spec, e))
        ok("SPEC parses: %d layers" % len(layers))
        loaded = [(p, load_file(p)) for p in files]
        compare_files(loaded)
        for p, tensors in loaded:
            check_dtypes(p, tensors, dtype)
        scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
        for p, tensors in loaded:
            model = SpecModel(layers)
            try:
                model.load_state_dict(tensors, strict=True)
            except RuntimeError as e:
                fail("%s: load_state_dict(strict=True) into the SPEC's module fails: %s"
                     % (p, " ".join(str(e).split())))
            model.eval()
            ok("%s: load_state_dict(strict=True) into %s" % (os.path.basename(p), spec[:80]))
            with torch.no_grad():
                try:
                    y = model(x)
                except RuntimeError as e:
                    fail("%s: model(input %s) fails: %s" % (p, list(x.shape), " ".join(str(e).split())))
            if tuple(y.shape) != tuple(want.shape):
                fail("%s: torch gives shape %s, the case says %s" % (p, list(y.shape), list(want.shape)))
            diff = (y - want).abs()
            worst = float(diff.max()) if diff.numel() else 0.0
            if not (worst <= tol * scale) or bool(torch.isnan(y).ne(torch.isnan(want)).any()):
                i = int(torch.nan_to_num(diff, nan=float("inf")).reshape(-1).argmax())
                fail("%s: output differs: element %d: torch %r, case %r (|diff| %.3g > %.3g = %g x %g)"
                     % (p, i, float(y.reshape(-1)[i]), float(want.reshape(-1)[i]), worst, tol * scale,
                        tol, scale))
            ok("%s: output %s matches (max |diff| %.3g <= %.3g)"
               % (os.path.basename(p), list(y.shape), worst, tol * scale))
    except Failure as e:
        print("FAIL " + str(e))
        return 1
    print("PASS %s" % case_path)
    return 0


# ---- self test -----------------------------------------------------------------------------

SELF_SPEC = ("fc1=Linear(6,8),act.0=GELU(tanh),act.1=Dropout(0.25),block.0=Linear(8,8,bias=false),"
             "block.1=LayerNorm(8,eps=0.001),block.2=LeakyReLU(0.2),bn=BatchNorm1d(8),s=SiLU,"
             "t=Tanh,sig=Sigmoid,id=Identity,relu=ReLU,flat=Flatten,ln2=LayerNorm(8,bias=false),"
             "out=Linear(8,3),sm=LogSoftmax")


def _run(case_path):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), case_path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return r.returncode, r.stdout


def self_test(keep=None):
    torch.manual_seed(1234)
    folder = keep or tempfile.mkdtemp(prefix="check_export_")
    os.makedirs(folder, exist_ok=True)
    model = build_model(SELF_SPEC)
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if name.endswith("weight") and p.dim() == 1 else 0.0))
        model.bn.running_mean.copy_(torch.randn(8, generator=g))
        model.bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
        model.bn.num_batches_tracked.fill_(7)
    x = torch.randn(4, 6, generator=g)
    results = []

    def case(name, files, output, spec=SELF_SPEC, dtype="f32"):
        path = os.path.join(folder, name + ".json")
        with open(path, "w") as f:
            json.dump({"spec": spec, "files": files, "dtype": dtype,
                       "input": {"shape": list(x.shape), "values": x.reshape(-1).tolist()},
                       "output": {"shape": list(output.shape), "values": output.reshape(-1).tolist()}}, f)
        return path

    def expect(name, path, want_rc):
        rc, out = _run(path)
        good = (rc == 0) == (want_rc == 0) and (want_rc == 0 or rc == want_rc)
        last = [l for l in out.splitlines() if l.startswith(("FAIL", "PASS", "ERROR"))]
        print("%s self-test %-24s exit %d (want %d)  %s" % ("ok  " if good else "FAIL", name, rc, want_rc,
                                                           last[-1] if last else out.strip()[-200:]))
        results.append(good)

    sd = model.state_dict()
    with torch.no_grad():
        y = model(x)
    torch.save(sd, os.path.join(folder, "m.pt"))
    write_safetensors(os.path.join(folder, "m.safetensors"), sd, {"format": "pt"})
    expect("good", case("good", ["m.pt", os.path.join(folder, "m.safetensors")], y), 0)

    y_bad = y.clone()
    y_bad[2, 1] += 1e-4
    expect("perturbed_output", case("perturbed_output", ["m.pt", "m.safetensors"], y_bad), 1)

    sd2 = {k: v.clone() for k, v in sd.items()}
    sd2["block.0.weight"][3, 4] += 2.0 ** -20
    write_safetensors(os.path.join(folder, "perturbed.safetensors"), sd2)
    expect("perturbed_weight", case("perturbed_weight", ["m.pt", "perturbed.safetensors"], y), 1)

    good_st = open(os.path.join(folder, "m.safetensors"), "rb").read()
    with open(os.path.join(folder, "trailing.safetensors"), "wb") as f:
        f.write(good_st + b"\0\0\0\0")
    expect("trailing_bytes", case("trailing_bytes", ["trailing.safetensors"], y), 1)
    (n,) = struct.unpack_from("<Q", good_st)
    hdr = json.loads(good_st[8:8 + n])
    last = max((k for k in hdr if k != "__metadata__"), key=lambda k: hdr[k]["data_offsets"][0])
    hdr[last]["data_offsets"] = [o + 4 for o in hdr[last]["data_offsets"]]  # a 4-byte hole
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(folder, "hole.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + good_st[8 + n:] + b"\0\0\0\0")
    expect("bad_offsets", case("bad_offsets", ["hole.safetensors"], y), 1)

    expect("wrong_spec", case("wrong_spec", ["m.pt"], y, spec=SELF_SPEC.replace("Linear(8,3)", "Linear(8,4)")), 1)
    expect("bad_spec", case("bad_spec", ["m.pt"], y, spec="fc1=Linear(6)"), 1)

    missing = {k: v for k, v in sd.items() if k != "bn.running_var"}
    torch.save(missing, os.path.join(folder, "missing.pt"))
    write_safetensors(os.path.join(folder, "missing.safetensors"), missing)
    expect("missing_key", case("missing_key", ["missing.pt", "missing.safetensors"], y), 1)

    torch.save(model, os.path.join(folder, "module.pt"))
    expect("pickled_module", case("pickled_module", ["module.pt"], y), 1)

    # f16: matrices stored in float16, vectors in float32, the module runs in float32.
    half = {k: (v.half() if v.dim() >= 2 else v) for k, v in sd.items()}
    torch.save(half, os.path.join(folder, "h.pt"))
    write_safetensors(os.path.join(folder, "h.safetensors"), half)
    m16 = build_model(SELF_SPEC)
    m16.load_state_dict(half)
    with torch.no_grad():
        y16 = m16(x)
    expect("f16_good", case("f16_good", ["h.pt", "h.safetensors"], y16, dtype="f16"), 0)
    expect("f16_as_f32", case("f16_as_f32", ["h.pt"], y16, dtype="f32"), 1)
    y16_bad = y16.clone()
    y16_bad[0, 0] += 5e-3
    expect("f16_perturbed_output", case("f16_perturbed_output", ["h.pt"], y16_bad, dtype="f16"), 1)

    with open(os.path.join(folder, "malformed.json"), "w") as f:
        f.write('{"spec": "ReLU"}')
    expect("malformed_case", os.path.join(folder, "malformed.json"), 2)

    bad = results.count(False)
    print("%s: %d of %d self-test expectations hold%s" % ("PASS" if not bad else "FAIL", len(results) - bad,
                                                         len(results), " (files in %s)" % folder
                                                         if keep or bad else ""))
    if not keep and not bad:
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        os.rmdir(folder)
    return 0 if not bad else 1


def main(argv):
    torch.set_num_threads(1)
    if len(argv) >= 2 and argv[1] == "--self-test":
        keep = argv[3] if len(argv) == 4 and argv[2] == "--keep" else None
        if len(argv) not in (2, 4) or (len(argv) == 4 and keep is None):
            print("usage: check_export.py --self-test [--keep DIR]")
            return 2
        return self_test(keep)
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: check_export.py CASE.json | --self-test [--keep DIR]")
        return 2
    return check_case(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
