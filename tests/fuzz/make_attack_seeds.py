#!/usr/bin/env python3
"""Writes the attack shapes as fuzz seeds: PyTorch files that ask for gigabytes or exponential
work if a reader trusted them (the shapes of TorchBombs.*, Pickle.Floods* and
tests/js/hostile_files.mjs), small enough to fuzz quickly (each under 100 KB).

Usage: make_attack_seeds.py IMPORT_DIR PICKLE_DIR

IMPORT_DIR gets whole files (torch zips, legacy streams); make_corpus.sh then copies each zip's
data.pkl into PICKLE_DIR, and this script adds a legacy object pickle there.
Bytes are assembled by hand (struct, zlib): nothing here unpickles anything.
"""
import os
import struct
import sys
import zlib

# ---- pickle opcodes ---------------------------------------------------------------------------


def proto(n=2):
    return b"\x80" + bytes([n])


def ustr(s):  # BINUNICODE
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def glob(module, name):  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def long1(v):  # LONG1, 8 bytes, two's complement
    return b"\x8a\x08" + struct.pack("<q", v)


def tup(values):
    return b"(" + b"".join(long1(v) for v in values) + b"t"


def put(i):  # LONG_BINPUT
    return b"r" + struct.pack("<I", i)


def get(i):  # LONG_BINGET
    return b"j" + struct.pack("<I", i)


ORDERED_DICT = glob("collections", "OrderedDict") + b")R"


def tensor(key, numel, offset, shape, stride, legacy=False):
    """_rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel[, None]), offset, shape, stride, False, OrderedDict())"""
    pid = b"(" + ustr("storage") + glob("torch", "FloatStorage") + ustr(key) + ustr("cpu") + long1(numel)
    pid += (b"N" if legacy else b"") + b"tQ"
    return (
        glob("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + pid
        + long1(offset)
        + tup(shape)
        + tup(stride)
        + b"\x89"
        + ORDERED_DICT
        + b"tR"
    )


def state_dict(entries, legacy=False):
    body = b"".join(ustr(name) + tensor(*args, legacy=legacy) for name, args in entries)
    return proto() + ORDERED_DICT + b"(" + body + b"u."


# ---- containers -------------------------------------------------------------------------------


def zip_file(members):
    """members: (name, data, method, declared_size or None); method 0 stored, 8 deflated."""
    out, central = b"", b""
    for name, data, method, declared in members:
        raw_name = name.encode()
        crc = zlib.crc32(data[:declared] if declared is not None else data)
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
        else:
            payload = data
        size = len(data) if declared is None else declared
        head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size, len(raw_name), 0)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(payload),
            size,
            len(raw_name),
            0,
            0,
            0,
            0,
            0,
            len(out),
        )
        central += raw_name
        out += head + raw_name + payload
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return out + central + end


def torch_zip(pickle, storages=(), method=0, declared=None):
    members = [("archive/data.pkl", pickle, 0, None)]
    members += [("archive/data/" + key, data, method, declared) for key, data in storages]
    members.append(("archive/version", b"3\n", 0, None))
    return zip_file(members)


def legacy_file(object_pickle, storages):
    """magic, protocol 1001, sys_info, the object, its storage keys, then each storage (count, bytes)."""
    magic = proto() + b"\x8a\x0a" + bytes.fromhex("6cfc9c46f9206aa85019") + b"."
    version = proto() + b"M" + struct.pack("<H", 1001) + b"."
    sys_info = proto() + b"}" + ustr("little_endian") + b"\x88s."
    keys = proto() + b"](" + b"".join(ustr(k) for k, _, _ in storages) + b"e."
    out = magic + version + sys_info + object_pickle + keys
    for _, count, data in storages:
        out += struct.pack("<Q", count) + data
    return out


# ---- the shapes -------------------------------------------------------------------------------


def module_dag(levels):
    """Each Sequential holds the one below twice in its _modules: memo put, memo get."""

    def level(k):
        b = glob("torch.nn.modules.container", "Sequential") + b")\x81}("
        b += ustr("_parameters") + ORDERED_DICT + ustr("_buffers") + ORDERED_DICT + ustr("_modules") + ORDERED_DICT
        if k > 0:
            b += b"(" + ustr("a") + level(k - 1) + put(k - 1) + ustr("b") + get(k - 1) + b"u"
        return b + ustr("training") + b"\x88ub"

    return torch_zip(proto() + level(levels) + b".")


def shared_storage(count, numel):
    """count tensors, each the whole storage; the persistent id, shape and stride read from the memo."""
    p = proto() + ORDERED_DICT + b"("
    p += ustr("t0") + glob("torch._utils", "_rebuild_tensor_v2") + put(0) + b"("
    p += b"(" + ustr("storage") + glob("torch", "FloatStorage") + ustr("0") + ustr("cpu") + long1(numel) + b"tQ" + put(1)
    p += long1(0) + tup([numel]) + put(2) + tup([1]) + put(3) + b"\x89" + ORDERED_DICT + b"tR"
    for i in range(1, count):
        p += ustr("t%d" % i) + get(0) + b"(" + get(1) + long1(0) + get(2) + get(3) + b"\x89" + ORDERED_DICT + b"tR"
    return torch_zip(p + b"u.", [("0", bytes(4 * numel))])


def floods():
    yield "none_flood", proto() + b"](" + b"N" * 60000 + b"e."
    yield "memo_get_flood", proto() + b"](" + b"N" * 1000 + b"eq\x00" + b"h\x00" * 30000 + b"."
    yield "memoize_flood", proto(4) + b"N" + b"\x94" * 60000 + b"."
    yield "binput_flood", proto() + b"N" + b"q\x00" * 30000 + b"."
    yield "nested_lists", proto() + b"]" * 20000 + b"a" * 19999 + b"."
    yield "nested_tuple1", proto() + b"N" + b"\x85" * 60000 + b"."


def files():
    one = struct.pack("<f", 1.0)
    yield "module_dag_64.pt", module_dag(64)
    yield "stride0_2p17.pt", torch_zip(state_dict([("w", ("0", 1, 0, [1 << 17, 1 << 17], [0, 0]))]), [("0", one)])
    yield "stride0_2p14.pt", torch_zip(state_dict([("w", ("0", 1, 0, [1 << 14, 1 << 14], [0, 0]))]), [("0", one)])
    yield "shared_storage.pt", shared_storage(512, 1 << 14)
    zeros = bytes(32 << 20)  # deflates to about 32 KB
    honest = state_dict([("w", ("0", len(zeros) // 4, 0, [4], [1]))])
    yield "zip_bomb.pt", torch_zip(honest, [("0", zeros)], method=8)
    lying = state_dict([("w", ("0", 4, 0, [4], [1]))])
    yield "zip_bomb_lying.pt", torch_zip(lying, [("0", zeros)], method=8, declared=16)
    yield "shape_0_2p62.pt", torch_zip(state_dict([("w", ("0", 0, 0, [0, 1 << 62], [1 << 62, 1]))]), [("0", b"")])
    yield "dim_2p29.pt", torch_zip(state_dict([("w", ("0", 0, 0, [0, 1 << 29], [1 << 29, 1]))]), [("0", b"")])
    legacy = state_dict([("w", ("0", 1 << 40, 0, [4], [1]))], legacy=True)
    yield "legacy_huge_storage.pt", legacy_file(legacy, [("0", 1 << 40, bytes(16))])
    legacy = state_dict([("w", ("0", 1 << 62, 0, [4], [1]))], legacy=True)
    yield "legacy_overflowing_storage.pt", legacy_file(legacy, [("0", 1 << 62, bytes(16))])
    names = ["fc\x1b[31m1.weight", "a\rb.weight", "x\u202ey.weight", "c1\u009b2J.weight", "nul\x00.weight"]
    yield "control_names.pt", torch_zip(
        state_dict([(n, (str(i), 4, 0, [2, 2], [2, 1])) for i, n in enumerate(names)]),
        [(str(i), one * 4) for i in range(len(names))],
    )
    for name, pickle in floods():
        yield name + ".pt", torch_zip(pickle)


def main():
    import_dir, pickle_dir = sys.argv[1], sys.argv[2]
    count = 0
    for name, data in files():
        with open(os.path.join(import_dir, "attack_" + name), "wb") as f:
            f.write(data)
        count += 1
    # make_corpus.sh copies each zip's data.pkl into PICKLE_DIR; a legacy file's object pickle
    # is written here, a last byte 0x01 after its STOP choosing fuzz_pickle's legacy mode.
    legacy = state_dict([("w", ("0", 1 << 40, 0, [4], [1]))], legacy=True)
    with open(os.path.join(pickle_dir, "attack_legacy_object.pkl"), "wb") as f:
        f.write(legacy + b"\x01")
    print("attack seeds: %d files in %s, 1 in %s" % (count, import_dir, pickle_dir))


if __name__ == "__main__":
    main()
