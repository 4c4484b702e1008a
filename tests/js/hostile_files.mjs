// hostile_files.mjs — hand-made PyTorch files for the hostile tests (tests/js/hostile.test.mjs in
// Node, tests/browser/hostile.test.mjs in Chromium): a pickle assembler, a zip writer (stored or
// deflated members, correct CRCs), torch.save's zip and legacy layouts, and the attack shapes built
// with them — each a few bytes to a few MB that ask for gigabytes, or for exponential work, if a
// reader trusted them. The native versions: TorchBombs.* (tests/test_torch_files.cpp) and
// Pickle.Floods* (tests/test_pickle.cpp).
import { crc32, deflateRawSync } from 'node:zlib';

// ---- pickle opcodes ----------------------------------------------------------------------------

/** A growable byte buffer with pickle opcode helpers (protocol 2 unless told). */
export class Pickle {
  constructor(proto = 2) {
    this.bytes = new Uint8Array(1024);
    this.length = 0;
    if (proto >= 0) this.op(0x80, proto);
  }
  #room(n) {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
  /** Raw bytes: numbers or one-character opcode strings ('(', 't', ...). */
  op(...codes) {
    this.#room(codes.length);
    for (const c of codes) this.bytes[this.length++] = typeof c === 'string' ? c.charCodeAt(0) : c;
    return this;
  }
  /** The same byte n times (floods). */
  fill(code, n) {
    this.#room(n);
    this.bytes.fill(typeof code === 'string' ? code.charCodeAt(0) : code, this.length, this.length + n);
    this.length += n;
    return this;
  }
  /** A byte sequence n times. */
  repeat(seq, n) {
    this.#room(seq.length * n);
    for (let i = 0; i < n; i++) this.op(...seq);
    return this;
  }
  raw(u8) {
    this.#room(u8.length);
    this.bytes.set(u8, this.length);
    this.length += u8.length;
    return this;
  }
  /** n bytes little-endian of v (a number or BigInt, two's complement). */
  le(v, n) {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < n; i++, x >>= 8n) this.op(Number(x & 0xffn));
    return this;
  }
  /** BINUNICODE */
  str(s) {
    const u8 = new TextEncoder().encode(s);
    return this.op('X').le(u8.length, 4).raw(u8);
  }
  /** GLOBAL 'module\nname\n' */
  global(module, name) {
    return this.op('c').raw(new TextEncoder().encode(`${module}\n${name}\n`));
  }
  int1(v) {
    return this.op('K', v);
  }
  /** LONG1 of 8 bytes: any int64. */
  long(v) {
    return this.op(0x8a, 8).le(v, 8);
  }
  /** (v0, v1, ...) of LONG1s */
  tuple(values) {
    this.op('(');
    for (const v of values) this.long(v);
    return this.op('t');
  }
  /** collections.OrderedDict() */
  orderedDict() {
    return this.global('collections', 'OrderedDict').op(')', 'R');
  }
  /**
   * _rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, shape, stride,
   * False, OrderedDict()); `legacy` adds the sixth persistent-id field (view_metadata None).
   */
  tensor(key, numel, offset, shape, stride, { legacy = false } = {}) {
    this.global('torch._utils', '_rebuild_tensor_v2').op('(');
    this.op('(').str('storage').global('torch', 'FloatStorage').str(key).str('cpu').long(numel);
    if (legacy) this.op('N');
    this.op('t', 'Q').long(offset).tuple(shape).tuple(stride).op(0x89);
    return this.orderedDict().op('t', 'R');
  }
  stop() {
    return this.op('.');
  }
  done() {
    return this.bytes.slice(0, this.length);
  }
}

/** An OrderedDict state dict {name: tensor(...args)} as a whole pickle. */
export function stateDictPickle(entries) {
  const p = new Pickle().orderedDict().op('(');
  for (const [name, args] of entries) p.str(name).tensor(...args);
  return p.op('u').stop().done();
}

// ---- zip ---------------------------------------------------------------------------------------

/**
 * A zip archive. Members: { name, data } stored, or { name, deflated, size, crc } (a raw deflate
 * stream of `size` bytes whose CRC-32 is `crc`). No data descriptors, no ZIP64: what they change
 * is the native tests' business (tests/zip_builder.hpp).
 */
export function zip(members) {
  const parts = [];
  const central = [];
  let offset = 0;
  const header = (n) => {
    const b = new Uint8Array(n);
    return [b, new DataView(b.buffer)];
  };
  for (const m of members) {
    const name = new TextEncoder().encode(m.name);
    const payload = m.deflated ?? m.data;
    const method = m.deflated ? 8 : 0;
    const size = m.deflated ? m.size : m.data.length;
    const crc = m.deflated ? m.crc : crc32(m.data);
    const [local, l] = header(30);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, method, true);
    l.setUint16(12, 0x21, true); // 1980-01-01
    l.setUint32(14, crc, true);
    l.setUint32(18, payload.length, true);
    l.setUint32(22, size, true);
    l.setUint16(26, name.length, true);
    const [cd, c] = header(46);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(10, method, true);
    c.setUint16(14, 0x21, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, payload.length, true);
    c.setUint32(24, size, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    parts.push(local, name, payload);
    central.push(cd, name);
    offset += 30 + name.length + payload.length;
  }
  const cdSize = central.reduce((n, b) => n + b.length, 0);
  const [end, e] = header(22);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, members.length, true);
  e.setUint16(10, members.length, true);
  e.setUint32(12, cdSize, true);
  e.setUint32(16, offset, true);
  return concat([...parts, ...central, end]);
}

export function concat(list) {
  const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of list) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** torch.save's zip: archive/data.pkl, archive/data/<key> per storage, archive/version. */
export function torchZip(pickle, storages = {}) {
  const members = [{ name: 'archive/data.pkl', data: pickle }];
  for (const [key, data] of Object.entries(storages)) {
    members.push(
      data instanceof Uint8Array ? { name: `archive/data/${key}`, data } : { name: `archive/data/${key}`, ...data },
    );
  }
  members.push({ name: 'archive/version', data: new TextEncoder().encode('3\n') });
  return zip(members);
}

/** A safetensors file: 8-byte header length, the header text as given (JSON), the data. */
export function safetensors(header, data = new Uint8Array(0)) {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** A pre-1.6 torch.save stream: magic, protocol 1001, sys_info, the object, its storage keys, then each storage. */
export function legacyFile(objectPickle, storages) {
  const magic = new Pickle().op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop();
  const version = new Pickle().op('M').le(1001, 2).stop();
  const sysInfo = new Pickle().op('}').str('little_endian').op(0x88, 's').stop();
  const keys = new Pickle().op(']', '(');
  for (const { key } of storages) keys.str(key);
  keys.op('e').stop();
  const parts = [magic.done(), version.done(), sysInfo.done(), objectPickle, keys.done()];
  for (const { count, data } of storages) parts.push(new Pickle(-1).le(count, 8).done(), data);
  return concat(parts);
}

// ---- the attack shapes -------------------------------------------------------------------------

/**
 * A module tree as a DAG: each of `levels` Sequentials holds the level below twice in its
 * `_modules` (an OrderedDict), built once and read again from the memo — a few KB, 2^levels paths.
 */
export function moduleDag(levels = 64) {
  const p = new Pickle();
  const level = (k) => {
    p.global('torch.nn.modules.container', 'Sequential').op(')', 0x81, '}', '(');
    p.str('_parameters').orderedDict().str('_buffers').orderedDict().str('_modules').orderedDict();
    if (k > 0) {
      p.op('(').str('a');
      level(k - 1);
      p.op('r').le(k - 1, 4); // LONG_BINPUT k-1: the child, memoised
      p.str('b')
        .op('j')
        .le(k - 1, 4); // LONG_BINGET k-1: the same child again
      p.op('u');
    }
    p.str('training').op(0x88, 'u', 'b');
  };
  level(levels);
  return torchZip(p.stop().done());
}

/** One float of storage viewed as `shape` with all strides 0. */
export function strideZero(shape) {
  const pickle = stateDictPickle([['w', ['0', 1, 0, shape, shape.map(() => 0)]]]);
  return torchZip(pickle, { 0: new Uint8Array([0, 0, 128, 63]) });
}

/** `count` tensors, each the whole of one storage of `numel` floats. */
export function sharedStorage(count = 4096, numel = 1 << 16) {
  const entries = [];
  for (let i = 0; i < count; i++) entries.push([`t${i}`, ['0', numel, 0, [numel], [1]]]);
  return torchZip(stateDictPickle(entries), { 0: new Uint8Array(numel * 4) });
}

/** None pushed n times, then APPENDS into one list. */
export function noneFlood(n = 4 << 20) {
  return torchZip(new Pickle().op(']', '(').fill('N', n).op('e').stop().done());
}

/** One list of 1000 Nones, memoised, then BINGET of it n times. */
export function memoGetFlood(n = 2 << 20) {
  const p = new Pickle().op(']', '(').fill('N', 1000).op('e', 'q', 0);
  return torchZip(p.repeat([0x68, 0], n).stop().done());
}

/** MEMOIZE n times (protocol 4). */
export function memoizeFlood(n = 4 << 20) {
  return torchZip(new Pickle(4).op('N').fill(0x94, n).stop().done());
}

/** A zip member's deflated form: { deflated, size, crc } of `data`. */
export function deflated(data) {
  return { deflated: deflateRawSync(data, { level: 9 }), size: data.length, crc: crc32(data) };
}

let zeros;
/** `mib` MiB of zeros, deflated (cached: 128 MiB takes a third of a second). */
export function deflatedZeros(mib) {
  if (zeros?.mib !== mib) {
    zeros = { mib, member: deflated(new Uint8Array(mib << 20)) };
  }
  return zeros.member;
}

/**
 * An honest zip bomb: one storage of `mib` MiB of zeros, deflated (about 1 KB per MB), its real
 * sizes and CRC in the headers; a tensor of 4 values views it.
 */
export function zipBomb(mib = 128) {
  const pickle = stateDictPickle([['w', ['0', (mib << 20) / 4, 0, [4], [1]]]]);
  return torchZip(pickle, { 0: deflatedZeros(mib) });
}

/**
 * Many honest bombs: `count` storages, each `mib` MiB of zeros deflated (each within the budget of
 * one storage), each viewed by a tensor of 4 values — the views are small, the inflation is not.
 */
export function zipBombs(count = 32, mib = 16) {
  const entries = [];
  const storages = {};
  for (let i = 0; i < count; i++) {
    entries.push([`t${i}`, [String(i), (mib << 20) / 4, 0, [4], [1]]]);
    storages[i] = deflatedZeros(mib);
  }
  return torchZip(stateDictPickle(entries), storages);
}

/** The same stream, but the zip headers declare 16 bytes (a storage of 4 floats): the inflater must stop there. */
export function lyingZipBomb(mib = 128) {
  const pickle = stateDictPickle([['w', ['0', 4, 0, [4], [1]]]]);
  return torchZip(pickle, { 0: { ...deflatedZeros(mib), size: 16, crc: crc32(new Uint8Array(16)) } });
}

/** A tensor of `shape` (strides row-major, saturating) over an empty storage. */
export function hugeShape(shape, stride) {
  return torchZip(stateDictPickle([['w', ['0', 0, 0, shape, stride]]]), { 0: new Uint8Array(0) });
}

/**
 * A legacy file whose one storage declares `count` floats (its 8-byte header; the persistent id
 * says `numel`) and holds `held` bytes.
 */
export function legacyHugeStorage(count = 1n << 40n, held = 16, numel = count) {
  const object = stateDictPickle([['w', ['0', numel, 0, [4], [1], { legacy: true }]]]);
  return legacyFile(object, [{ key: '0', count, data: new Uint8Array(held) }]);
}

/** A state dict {name: float32 tensor of shape}, every value 0.5, for names of any kind. */
export function namedStateDict(shapes) {
  const storages = {};
  const entries = Object.entries(shapes).map(([name, shape], i) => {
    const numel = shape.reduce((a, b) => a * b, 1);
    const stride = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
    storages[i] = new Uint8Array(new Float32Array(numel).fill(0.5).buffer);
    return [name, [String(i), numel, 0, shape, stride]];
  });
  return torchZip(stateDictPickle(entries), storages);
}
