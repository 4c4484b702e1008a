// pickle.cpp — see pickle.hpp. One pass over the opcodes with a value stack,
// a mark stack and a memo; every global resolves to a fixed id at GLOBAL time
// and every call is a switch on that id.
#include "pickle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <unordered_map>

#include "decimal.hpp"
#include "dtype.hpp"
#include "tensor.hpp"
#include "utf8.hpp"

namespace modelkeep {

const char* storage_dtype_name(StorageType type) {
    switch (type) {
        case StorageType::f32: return "float32";
        case StorageType::f64: return "float64";
        case StorageType::f16: return "float16";
        case StorageType::bf16: return "bfloat16";
        case StorageType::i64: return "int64";
        case StorageType::i32: return "int32";
        case StorageType::i16: return "int16";
        case StorageType::i8: return "int8";
        case StorageType::u8: return "uint8";
        case StorageType::boolean: return "bool";
        case StorageType::u16: return "uint16";
        case StorageType::u32: return "uint32";
        case StorageType::u64: return "uint64";
    }
    return "?";
}

std::size_t storage_item_size(StorageType type) {
    switch (type) {
        case StorageType::f64:
        case StorageType::i64:
        case StorageType::u64: return 8;
        case StorageType::f32:
        case StorageType::i32:
        case StorageType::u32: return 4;
        case StorageType::f16:
        case StorageType::bf16:
        case StorageType::i16:
        case StorageType::u16: return 2;
        case StorageType::i8:
        case StorageType::u8:
        case StorageType::boolean: return 1;
    }
    return 1;
}

const Value* Value::get(const std::string& key) const {
    for (const auto& e : entries)
        if (e.first->kind == Kind::string && e.first->text == key) return e.second.get();
    return nullptr;
}

namespace {

using Kind = Value::Kind;

// What an allowlisted global means (Value::global_id).
enum GlobalId : int {
    g_ordered_dict = 1,
    g_rebuild_tensor,  // torch 0.3/0.4: (storage, offset, size, stride)
    g_rebuild_tensor_v2,
    g_rebuild_parameter,
    g_rebuild_parameter_with_state,
    g_storage_class,  // Value::storage_type says which
    g_set,
    g_counter,
    g_inert,  // an inert value's class (inert_constructors): REDUCE gives a description, never a call
    g_codecs_encode,
    g_class,                 // a class that may only be instantiated inert (NEWOBJ) as a module record
    g_rebuild_tensor_v3,     // torch 2.x: (untyped storage, offset, size, stride, requires_grad, hooks, dtype[, meta])
    g_rebuild_from_type_v2,  // torch 2.x: (function, tensor class, arguments, state)
    g_tensor_class,          // torch._tensor.Tensor, torch.nn.parameter.Parameter: only as that class argument
    g_torch_dtype,           // torch.float32, torch.uint16, ...: only as values
    g_np_reconstruct,        // numpy.core.multiarray._reconstruct (numpy 2: numpy._core)
    g_np_frombuffer,         // numpy.core.numeric._frombuffer (protocol 5)
    g_np_ndarray,            // numpy.ndarray: only as _reconstruct's class argument
    g_np_dtype,              // numpy.dtype
    g_np_scalar,             // numpy.core.multiarray.scalar
};

// Names with one fixed meaning each (every other name is resolved below).
struct NamedGlobal {
    const char* name;
    GlobalId id;
};
constexpr NamedGlobal named_globals[] = {
    {"collections.OrderedDict", g_ordered_dict},
    {"torch._utils._rebuild_tensor", g_rebuild_tensor},
    {"torch._utils._rebuild_tensor_v2", g_rebuild_tensor_v2},
    {"torch._utils._rebuild_tensor_v3", g_rebuild_tensor_v3},
    {"torch._utils._rebuild_parameter", g_rebuild_parameter},
    {"torch._utils._rebuild_parameter_with_state", g_rebuild_parameter_with_state},
    {"torch._tensor._rebuild_from_type_v2", g_rebuild_from_type_v2},
    {"torch._tensor.Tensor", g_tensor_class},
    {"torch.Tensor", g_tensor_class},
    {"torch.nn.parameter.Parameter", g_tensor_class},
    {"torch.nn.parameter.Buffer", g_tensor_class},
    {"builtins.set", g_set},
    {"__builtin__.set", g_set},
    {"collections.Counter", g_counter},
    {"_codecs.encode", g_codecs_encode},
    {"numpy.core.multiarray._reconstruct", g_np_reconstruct},
    {"numpy._core.multiarray._reconstruct", g_np_reconstruct},
    {"numpy.core.numeric._frombuffer", g_np_frombuffer},
    {"numpy._core.numeric._frombuffer", g_np_frombuffer},
    {"numpy.ndarray", g_np_ndarray},
    {"numpy.dtype", g_np_dtype},
    {"numpy.core.multiarray.scalar", g_np_scalar},
    {"numpy._core.multiarray.scalar", g_np_scalar},
};

struct StorageName {
    const char* name;
    StorageType type;
};
constexpr StorageName storage_names[] = {
    {"FloatStorage", StorageType::f32},     {"DoubleStorage", StorageType::f64}, {"HalfStorage", StorageType::f16},
    {"BFloat16Storage", StorageType::bf16}, {"LongStorage", StorageType::i64},   {"IntStorage", StorageType::i32},
    {"ShortStorage", StorageType::i16},     {"CharStorage", StorageType::i8},    {"ByteStorage", StorageType::u8},
    {"BoolStorage", StorageType::boolean},  {"UntypedStorage", StorageType::u8},  // untyped: bytes
};

// torch dtypes by name (torch.float32 and its aliases), as _rebuild_tensor_v3 names them.
constexpr StorageName torch_dtypes[] = {
    {"float32", StorageType::f32},   {"float", StorageType::f32},   {"float64", StorageType::f64},
    {"double", StorageType::f64},    {"float16", StorageType::f16}, {"half", StorageType::f16},
    {"bfloat16", StorageType::bf16}, {"int64", StorageType::i64},   {"long", StorageType::i64},
    {"int32", StorageType::i32},     {"int", StorageType::i32},     {"int16", StorageType::i16},
    {"short", StorageType::i16},     {"int8", StorageType::i8},     {"uint8", StorageType::u8},
    {"bool", StorageType::boolean},  {"uint16", StorageType::u16},  {"uint32", StorageType::u32},
    {"uint64", StorageType::u64},
};
// torch dtypes whose tensors modelkeep does not convert (read as values; a tensor of one is unsupported_tensor).
constexpr const char* unsupported_torch_dtypes[] = {
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
    "complex32",     "complex64",   "complex128",      "cfloat",          "cdouble",        "chalf",
    "bits1x8",       "bits2x4",     "bits4x2",         "bits8",           "bits16",         "qint8",
    "quint8",        "qint32",      "quint4x2",        "quint2x4",
};

// torch functions and classes that build tensors modelkeep does not convert:
// refused with unsupported_tensor rather than as an unknown global.
constexpr const char* unsupported_tensor_globals[] = {
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_sparse_csr",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._tensor._rebuild_from_type",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QInt8Storage",
    "torch.QUInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
};

// Top-level modules whose names are refused outright, even as inert classes:
// they hold the functions attacks call (os.system pickles as posix.system).
// Classes whose instances are plain values real checkpoints hold beside the
// tensors (sizes, devices, dtypes, dates, paths, sets): REDUCE on one gives an
// inert value describing it, read without calling anything; torch.Size gives
// its tuple, frozenset a set. Every other class of these modules stays refused.
constexpr const char* inert_constructors[] = {
    "torch.Size",
    "torch.device",
    "builtins.frozenset",
    "__builtin__.frozenset",
    "builtins.complex",
    "__builtin__.complex",
    "builtins.slice",
    "__builtin__.slice",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.Path",
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    // numpy's random state objects (np.random.RandomState, Generator, their bit generators).
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
};

constexpr const char* refused_modules[] = {
    "os",         "posix",     "nt",          "sys",       "subprocess", "builtins",   "__builtin__", "shutil",
    "socket",     "importlib", "pickle",      "_pickle",   "marshal",    "types",      "code",        "codecs",
    "_codecs",    "runpy",     "ctypes",      "io",        "_io",        "pty",        "platform",    "multiprocessing",
    "webbrowser", "functools", "operator",    "inspect",   "pdb",        "bdb",        "timeit",      "threading",
    "_thread",    "signal",    "tempfile",    "glob",      "pathlib",    "urllib",     "http",        "ftplib",
    "smtplib",    "asyncio",   "zipimport",   "pkgutil",   "site",       "gc",         "weakref",     "copyreg",
    "copy_reg",   "copy",      "numpy",       "dill",      "joblib",     "yaml",       "requests",    "setuptools",
    "distutils",  "torch",     "collections", "_operator", "_io",        "nturl2path",
};

bool is_identifier(const std::string& s, std::size_t from, std::size_t to) {
    if (from >= to) return false;
    for (std::size_t i = from; i < to; ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > from && c >= '0' && c <= '9')) return false;
    }
    return true;
}

// identifier(.identifier)*
bool is_dotted(const std::string& s) {
    if (s.empty() || s.size() > 512) return false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            if (!is_identifier(s, start, i)) return false;
            start = i + 1;
        }
    }
    return true;
}

const char* opcode_name(std::uint8_t op) {
    switch (op) {
        case '(': return "MARK";
        case '.': return "STOP";
        case '0': return "POP";
        case '1': return "POP_MARK";
        case '2': return "DUP";
        case 'F': return "FLOAT";
        case 'I': return "INT";
        case 'J': return "BININT";
        case 'K': return "BININT1";
        case 'L': return "LONG";
        case 'M': return "BININT2";
        case 'N': return "NONE";
        case 'P': return "PERSID";
        case 'Q': return "BINPERSID";
        case 'R': return "REDUCE";
        case 'S': return "STRING";
        case 'T': return "BINSTRING";
        case 'U': return "SHORT_BINSTRING";
        case 'V': return "UNICODE";
        case 'X': return "BINUNICODE";
        case 'a': return "APPEND";
        case 'b': return "BUILD";
        case 'c': return "GLOBAL";
        case 'd': return "DICT";
        case '}': return "EMPTY_DICT";
        case 'e': return "APPENDS";
        case 'g': return "GET";
        case 'h': return "BINGET";
        case 'i': return "INST";
        case 'j': return "LONG_BINGET";
        case 'l': return "LIST";
        case ']': return "EMPTY_LIST";
        case 'o': return "OBJ";
        case 'p': return "PUT";
        case 'q': return "BINPUT";
        case 'r': return "LONG_BINPUT";
        case 's': return "SETITEM";
        case 't': return "TUPLE";
        case ')': return "EMPTY_TUPLE";
        case 'u': return "SETITEMS";
        case 'G': return "BINFLOAT";
        case 0x80: return "PROTO";
        case 0x81: return "NEWOBJ";
        case 0x82: return "EXT1";
        case 0x83: return "EXT2";
        case 0x84: return "EXT4";
        case 0x85: return "TUPLE1";
        case 0x86: return "TUPLE2";
        case 0x87: return "TUPLE3";
        case 0x88: return "NEWTRUE";
        case 0x89: return "NEWFALSE";
        case 0x8a: return "LONG1";
        case 0x8b: return "LONG4";
        case 'B': return "BINBYTES";
        case 'C': return "SHORT_BINBYTES";
        case 0x8c: return "SHORT_BINUNICODE";
        case 0x8d: return "BINUNICODE8";
        case 0x8e: return "BINBYTES8";
        case 0x8f: return "EMPTY_SET";
        case 0x90: return "ADDITEMS";
        case 0x91: return "FROZENSET";
        case 0x92: return "NEWOBJ_EX";
        case 0x93: return "STACK_GLOBAL";
        case 0x94: return "MEMOIZE";
        case 0x95: return "FRAME";
        case 0x96: return "BYTEARRAY8";
        case 0x97: return "NEXT_BUFFER";
        case 0x98: return "READONLY_BUFFER";
    }
    return nullptr;
}

bool is_container(Kind k) {
    return k == Kind::tuple || k == Kind::list || k == Kind::dict || k == Kind::set || k == Kind::module ||
           k == Kind::tensor;
}

class Machine {
public:
    Machine(const std::uint8_t* data, std::size_t size, bool legacy) : p_(data), size_(size), legacy_(legacy) {}

    Status run(Unpickled& out) {
        if (size_ > max_pickle_bytes)
            return error(Code::limit_exceeded, "pickle of " + std::to_string(size_) + " bytes is over the " +
                                                   std::to_string(max_pickle_bytes >> 20) + " MiB cap");
        std::uint8_t op = 0;
        if (!byte(op) || op != 0x80) return fail(Code::bad_pickle, "does not start with PROTO (protocol 2 or later)");
        std::uint8_t proto = 0;
        if (!byte(proto)) return truncated("PROTO");
        if (proto < 2 || proto > 5)
            return fail(Code::bad_pickle, "protocol " + std::to_string(proto) + " (2 to 5 are read)");
        for (;;) {
            op_at_ = pos_;
            if (!byte(op)) return truncated("the next opcode (no STOP)");
            if (op == '.') break;
            if (++ops_ > max_pickle_ops)
                return fail(Code::limit_exceeded, "more than " + std::to_string(max_pickle_ops) + " opcodes");
            MK_TRY(step(op));
            if (stack_.size() > max_pickle_stack)
                return fail(Code::limit_exceeded,
                            "more than " + std::to_string(max_pickle_stack) + " values on the stack");
        }
        if (!marks_.empty()) return fail(Code::bad_pickle, "STOP with an open MARK");
        if (stack_.size() != 1)
            return fail(Code::bad_pickle,
                        "STOP with " + std::to_string(stack_.size()) + " values on the stack (1 expected)");
        out.root = stack_.back();
        out.globals = std::move(globals_);
        for (const auto& kv : storages_) out.storages.push_back(kv.second);
        out.consumed = pos_;
        return Status();
    }

private:
    // ---- input ----
    bool byte(std::uint8_t& b) {
        if (pos_ >= size_) return false;
        b = p_[pos_++];
        return true;
    }
    bool bytes(std::size_t n, const std::uint8_t*& at) {
        if (n > size_ - pos_) return false;
        at = p_ + pos_;
        pos_ += n;
        return true;
    }
    bool le(std::size_t n, std::uint64_t& v) {
        const std::uint8_t* at;
        if (!bytes(n, at)) return false;
        v = 0;
        for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(at[i]) << (8 * i);
        return true;
    }

    // The text up to the next newline (the text opcodes' argument), at most 64 bytes.
    Status line(const char* what, std::string& out) {
        out.clear();
        for (;;) {
            std::uint8_t ch;
            if (!byte(ch)) return truncated(what);
            if (ch == '\n') return Status();
            if (out.size() >= 64) return fail(Code::bad_pickle, std::string(what) + " longer than 64 bytes");
            out += char(ch);
        }
    }

    // ---- errors ----
    Status fail(Code code, const std::string& what) const {
        std::string where = "pickle byte " + std::to_string(op_at_);
        if (op_at_ < size_) {
            const char* name = opcode_name(p_[op_at_]);
            where += name ? std::string(" (") + name + ")" : "";
        }
        return error(code, where + ": " + what);
    }
    Status truncated(const std::string& what) const { return fail(Code::bad_pickle, "ends inside " + what); }

    // ---- values ----
    // What the values hold, counted before it is allocated: a pickle that
    // would hold more than max_pickle_memory is refused early, whatever it does.
    Status charge(std::size_t bytes) {
        held_ += bytes;
        if (held_ > max_pickle_memory)
            return fail(Code::limit_exceeded,
                        "the pickle's values would take more than " + std::to_string(max_pickle_memory >> 20) + " MiB");
        return Status();
    }
    Status make(Kind kind, ValuePtr& v) {
        if (++values_ > max_pickle_values)
            return fail(Code::limit_exceeded, "more than " + std::to_string(max_pickle_values) + " values");
        MK_TRY(charge(value_bytes));
        v = std::make_shared<Value>();
        v->kind = kind;
        return Status();
    }
    Status push_new(Kind kind, ValuePtr& v) {
        MK_TRY(make(kind, v));
        stack_.push_back(v);
        return Status();
    }
    Status pop(ValuePtr& v, const char* what) {
        const std::size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) return fail(Code::bad_pickle, std::string("stack underflow (") + what + ")");
        v = std::move(stack_.back());
        stack_.pop_back();
        return Status();
    }
    Status top(ValuePtr& v, const char* what) {
        const std::size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) return fail(Code::bad_pickle, std::string("stack underflow (") + what + ")");
        v = stack_.back();
        return Status();
    }
    // The values pushed since the last MARK, which is removed.
    Status pop_mark(std::vector<ValuePtr>& items) {
        if (marks_.empty()) return fail(Code::bad_pickle, "no MARK to pop to");
        const std::size_t m = marks_.back();
        marks_.pop_back();
        items.assign(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(m)),
                     std::make_move_iterator(stack_.end()));
        stack_.resize(m);
        return Status();
    }
    // `child` goes into (or becomes an argument of) `parent`: it is frozen from now on.
    Status adopt(Value& parent, Value& child) {
        if (&parent == &child) return fail(Code::bad_pickle, "a container put into itself");
        MK_TRY(charge(item_bytes));
        child.frozen = true;
        if (is_container(child.kind) || child.depth > 0) {
            const std::size_t d = std::size_t(child.depth) + 1;
            if (d > max_pickle_depth)
                return fail(Code::limit_exceeded, "containers nested deeper than " + std::to_string(max_pickle_depth));
            if (d > parent.depth) parent.depth = std::uint16_t(d);
        }
        return Status();
    }
    Status mutable_target(const ValuePtr& v, Kind want, const char* op) {
        if (v->kind != want) return fail(Code::bad_pickle, std::string(op) + " on a " + kind_name(v->kind));
        if (v->frozen) return fail(Code::bad_pickle, std::string(op) + " on a container already in use");
        return Status();
    }
    static const char* kind_name(Kind k) {
        switch (k) {
            case Kind::none: return "None";
            case Kind::boolean: return "bool";
            case Kind::integer: return "int";
            case Kind::floating: return "float";
            case Kind::string: return "str";
            case Kind::bytes: return "bytes";
            case Kind::tuple: return "tuple";
            case Kind::list: return "list";
            case Kind::dict: return "dict";
            case Kind::set: return "set";
            case Kind::global: return "global";
            case Kind::storage: return "storage";
            case Kind::tensor: return "tensor";
            case Kind::module: return "module";
        }
        return "?";
    }
    Status push_int(std::int64_t i) {
        ValuePtr v;
        MK_TRY(push_new(Kind::integer, v));
        v->integer = i;
        return Status();
    }
    Status push_text(Kind kind, const std::uint8_t* at, std::size_t n) {
        ValuePtr v;
        MK_TRY(charge(n));
        MK_TRY(push_new(kind, v));
        v->text.assign(reinterpret_cast<const char*>(at), n);
        if (kind == Kind::string && !valid_utf8(v->text)) return fail(Code::bad_pickle, "a string that is not UTF-8");
        return Status();
    }
    Status push_latin1(const std::uint8_t* at, std::size_t n) {  // Python 2 str
        ValuePtr v;
        MK_TRY(push_new(Kind::string, v));
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t c = at[i];
            if (c < 0x80) {
                v->text += char(c);
            } else {
                v->text += char(0xC0 | (c >> 6));
                v->text += char(0x80 | (c & 0x3F));
            }
        }
        return Status();
    }
    Status push_tuple(std::vector<ValuePtr> items) {
        ValuePtr t;
        MK_TRY(push_new(Kind::tuple, t));
        for (auto& it : items) MK_TRY(adopt(*t, *it));
        t->items = std::move(items);
        return Status();
    }
    // The memo is a table indexed by the memo key: Python numbers its entries
    // 0, 1, 2, ... (MEMOIZE: the count so far), so keys past max_pickle_memo
    // are no pickle Python writes. Slots are charged as the table grows.
    Status memo_put(std::uint64_t index) {
        ValuePtr v;
        MK_TRY(top(v, "memo put"));
        if (index >= max_pickle_memo)
            return fail(Code::limit_exceeded, "memo key " + std::to_string(index) + " (a memo holds at most " +
                                                  std::to_string(max_pickle_memo) + " entries)");
        if (index >= memo_.size()) {
            MK_TRY(charge((index + 1 - memo_.size()) * memo_slot_bytes));
            memo_.resize(std::size_t(index) + 1);
        }
        if (!memo_[index]) ++memo_count_;
        memo_[index] = std::move(v);
        return Status();
    }
    Status memo_get(std::uint64_t index) {
        if (index >= memo_.size() || !memo_[index])
            return fail(Code::bad_pickle, "memo entry " + std::to_string(index) + " was never stored");
        stack_.push_back(memo_[index]);
        return Status();
    }

    // ---- globals ----
    Status resolve_global(const std::string& module, const std::string& name) {
        const std::string full = module + "." + name;
        bool seen = false;
        for (const auto& g : globals_) seen = seen || g == full;
        if (!seen) globals_.push_back(full);
        ValuePtr v;
        MK_TRY(make(Kind::global, v));
        v->text = full;
        const auto is = [&](const char* c) { return full == c; };
        const auto named = std::find_if(std::begin(named_globals), std::end(named_globals),
                                        [&](const NamedGlobal& g) { return full == g.name; });
        const auto dtype_name = [&](const StorageName& d) { return name == d.name; };
        if (named != std::end(named_globals)) {
            v->global_id = named->id;
        } else if (std::any_of(std::begin(inert_constructors), std::end(inert_constructors), is)) {
            v->global_id = g_inert;
        } else if (module == "torch" &&
                   (std::any_of(std::begin(torch_dtypes), std::end(torch_dtypes), dtype_name) ||
                    std::any_of(std::begin(unsupported_torch_dtypes), std::end(unsupported_torch_dtypes),
                                [&](const char* d) { return name == d; }))) {
            v->global_id = g_torch_dtype;  // torch.float32 as a value
        } else {
            if (module == "torch")
                for (const auto& s : storage_names)
                    if (name == s.name) {
                        v->global_id = g_storage_class;
                        v->storage_type = s.type;
                        v->untyped = name == "UntypedStorage";
                    }
            if (v->global_id == 0) {
                for (const char* u : unsupported_tensor_globals)
                    if (full == u)
                        return fail(Code::unsupported_tensor,
                                    full +
                                        " builds a tensor modelkeep does not read (quantized, sparse, complex, "
                                        "subclass or a newer dtype)");
                if (!is_dotted(module) || !is_dotted(name))
                    return fail(Code::disallowed_global, "'" + full + "' is not a module path and name");
                const std::string top = module.substr(0, module.find('.'));
                const bool nn_module = module.rfind("torch.nn.modules.", 0) == 0;
                bool refused = false;
                for (const char* r : refused_modules) refused = refused || top == r;
                if (refused && !nn_module)
                    return fail(Code::disallowed_global, full +
                                                             " is not allowed (only tensors, containers and "
                                                             "nn.Module records are read; nothing is called)");
                v->global_id = g_class;
            }
        }
        stack_.push_back(v);
        return Status();
    }

    // ---- calls ----
    static bool is_int(const ValuePtr& v) { return v->kind == Kind::integer; }
    static bool is_str(const ValuePtr& v) { return v->kind == Kind::string; }
    static bool is_dict(const ValuePtr& v) { return v->kind == Kind::dict; }
    Status int_tuple(const ValuePtr& v, const char* what, std::vector<std::uint64_t>& out) {
        if (v->kind != Kind::tuple) return fail(Code::bad_pickle, std::string(what) + " is not a tuple");
        out.clear();
        for (const auto& it : v->items) {
            if (!is_int(it)) return fail(Code::bad_pickle, std::string(what) + " holds a non-integer");
            if (it->integer < 0) return fail(Code::bad_pickle, std::string(what) + " holds a negative value");
            out.push_back(std::uint64_t(it->integer));
        }
        return Status();
    }

    // _rebuild_tensor_v2 (6 or 7 arguments) or, with v1, torch 0.3/0.4's
    // _rebuild_tensor (storage, offset, size, stride).
    Status rebuild_tensor(const std::vector<ValuePtr>& a, ValuePtr& out, bool v1 = false) {
        if (v1 ? a.size() != 4 : a.size() != 6 && a.size() != 7)
            return fail(Code::bad_pickle,
                        std::string(v1 ? "_rebuild_tensor takes 4" : "_rebuild_tensor_v2 takes 6 or 7") +
                            " arguments, not " + std::to_string(a.size()));
        if (a[0]->kind != Kind::storage)
            return fail(Code::bad_pickle, "_rebuild_tensor_v2: argument 1 is not a storage");
        if (a[0]->untyped)
            return fail(Code::bad_pickle, "an untyped storage outside _rebuild_tensor_v3 (it has no dtype)");
        if (!is_int(a[1]) || a[1]->integer < 0)
            return fail(Code::bad_pickle, "_rebuild_tensor_v2: storage offset is not a non-negative integer");
        MK_TRY(make(Kind::tensor, out));
        MK_TRY(int_tuple(a[2], "_rebuild_tensor_v2: size", out->shape));
        MK_TRY(int_tuple(a[3], "_rebuild_tensor_v2: stride", out->stride));
        if (out->shape.size() != out->stride.size())
            return fail(Code::bad_pickle, "_rebuild_tensor_v2: size and stride differ in length");
        if (!v1 && a[4]->kind != Kind::boolean)
            return fail(Code::bad_pickle, "_rebuild_tensor_v2: requires_grad is not a bool");
        if (!v1 && !is_dict(a[5]) && a[5]->kind != Kind::none)
            return fail(Code::bad_pickle, "_rebuild_tensor_v2: backward_hooks is not a dict");
        if (a.size() == 7 && !(a[6]->kind == Kind::none || (is_dict(a[6]) && a[6]->entries.empty())))
            return fail(Code::unsupported_tensor, "_rebuild_tensor_v2: tensor metadata (conj/neg bits) is not read");
        out->storage = a[0];
        out->offset = std::uint64_t(a[1]->integer) + a[0]->offset;  // a legacy storage view starts inside its root
        return Status();
    }

    // torch 2.x's new dtypes: an untyped storage (numel = bytes) viewed as `dtype`.
    Status rebuild_tensor_v3(const std::vector<ValuePtr>& a, ValuePtr& out) {
        if (a.size() != 7 && a.size() != 8)
            return fail(Code::bad_pickle, "_rebuild_tensor_v3 takes 7 or 8 arguments, not " + std::to_string(a.size()));
        if (a[0]->kind != Kind::storage || a[6]->kind != Kind::global || a[6]->global_id != g_torch_dtype)
            return fail(Code::bad_pickle, "_rebuild_tensor_v3: not (storage, ..., dtype)");
        const std::string dtype = a[6]->text.substr(6);  // after "torch."
        const auto known = std::find_if(std::begin(torch_dtypes), std::end(torch_dtypes),
                                        [&](const StorageName& d) { return dtype == d.name; });
        if (known == std::end(torch_dtypes))
            return fail(Code::unsupported_tensor, "a " + a[6]->text +
                                                      " tensor (modelkeep reads bool, integer and "
                                                      "float16/bfloat16/float32/float64 tensors)");
        const Value& root = *a[0];
        const std::size_t item = storage_item_size(known->type);
        if (!root.untyped && root.storage_type != known->type)
            return fail(Code::bad_pickle, "_rebuild_tensor_v3: a " +
                                              std::string(storage_dtype_name(root.storage_type)) +
                                              " storage viewed as " + a[6]->text);
        if (root.untyped && root.numel % item != 0)
            return fail(Code::storage_size_mismatch, "untyped storage '" + root.text + "' of " +
                                                         std::to_string(root.numel) +
                                                         " bytes is not a whole number of " + a[6]->text + " values");
        ValuePtr typed;  // the same storage record, counted in `dtype` values
        MK_TRY(make(Kind::storage, typed));
        typed->text = root.text;
        typed->storage_type = known->type;
        typed->numel = root.untyped ? root.numel / item : root.numel;
        std::vector<ValuePtr> v2(a.begin(), a.begin() + 6);
        v2[0] = typed;
        if (a.size() == 8) v2.push_back(a[7]);
        return rebuild_tensor(v2, out);
    }

    // ---- numpy ----
    // "<f4" → float32, ...; false for what has no tensor dtype here (complex, objects, strings, dates).
    static bool numpy_storage_type(const std::string& descr, StorageType& type) {
        static const std::pair<const char*, StorageType> codes[] = {
            {"f2", StorageType::f16}, {"f4", StorageType::f32}, {"f8", StorageType::f64}, {"i1", StorageType::i8},
            {"i2", StorageType::i16}, {"i4", StorageType::i32}, {"i8", StorageType::i64}, {"u1", StorageType::u8},
            {"u2", StorageType::u16}, {"u4", StorageType::u32}, {"u8", StorageType::u64}, {"b1", StorageType::boolean},
        };
        for (const auto& c : codes)
            if (descr.compare(1, std::string::npos, c.first) == 0) {
                type = c.second;
                return true;
            }
        return false;
    }
    // The bytes of a numpy value in little-endian order: a copy, swapped, if the dtype is big-endian.
    Status numpy_bytes(const Value& dtype, const ValuePtr& raw, std::size_t item, ValuePtr& out) {
        if (dtype.descr[0] != '>' || item == 1) {
            out = raw;
            return Status();
        }
        MK_TRY(make(Kind::bytes, out));
        MK_TRY(charge(raw->text.size()));
        out->text = raw->text;
        for (std::size_t i = 0; i + item <= out->text.size(); i += item)
            std::reverse(out->text.begin() + std::ptrdiff_t(i), out->text.begin() + std::ptrdiff_t(i + item));
        return Status();
    }
    // An array's data → `target` becomes a tensor viewing an inline storage; an
    // array of a type with no tensor dtype stays an inert description.
    Status numpy_array(Value& target, const ValuePtr& shape_v, const ValuePtr& dtype, bool fortran,
                       const ValuePtr& raw) {
        if (dtype->numpy != Value::Numpy::dtype) return fail(Code::bad_pickle, "a numpy array whose dtype is not one");
        std::vector<std::uint64_t> shape;
        MK_TRY(int_tuple(shape_v, "a numpy array's shape", shape));
        StorageType type;
        std::string dims;
        for (std::uint64_t d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
        if (!numpy_storage_type(dtype->descr, type) || (raw->kind != Kind::bytes && raw->kind != Kind::string)) {
            target.text = "numpy.ndarray(" + dtype->descr + ", (" + dims + "))";
            target.numpy = Value::Numpy::none;
            return charge(target.text.size());
        }
        const std::size_t item = storage_item_size(type);
        std::uint64_t numel = 1;
        for (std::uint64_t d : shape)
            if (!checked_mul(numel, d, numel))
                return fail(Code::size_overflow, "a numpy array of shape (" + dims + ")");
        std::uint64_t want = 0;
        if (!checked_mul(numel, item, want) || want != raw->text.size())
            return fail(Code::storage_size_mismatch, "a numpy array of shape (" + dims + ") and dtype " + dtype->descr +
                                                         " with " + std::to_string(raw->text.size()) + " bytes");
        ValuePtr storage, bytes;
        MK_TRY(make(Kind::storage, storage));
        MK_TRY(numpy_bytes(*dtype, raw, item, bytes));
        storage->text = "numpy array " + std::to_string(++numpy_arrays_);
        storage->storage_type = type;
        storage->numel = numel;
        storage->storage = bytes;  // inline: the data is in the pickle, not in a record
        target.kind = Kind::tensor;
        target.inert = false;
        target.numpy = Value::Numpy::none;
        target.text.clear();
        target.storage = storage;
        target.shape = shape;
        target.stride.assign(shape.size(), 1);
        if (fortran)
            for (std::size_t k = 1; k < shape.size(); ++k) target.stride[k] = target.stride[k - 1] * shape[k - 1];
        else
            for (std::size_t k = shape.size(); k-- > 1;) target.stride[k - 1] = target.stride[k] * shape[k];
        return Status();
    }
    Status numpy_scalar(const ValuePtr& fn, const std::vector<ValuePtr>& a, ValuePtr& out) {
        if (a.size() != 2 || a[0]->numpy != Value::Numpy::dtype)
            return fail(Code::bad_pickle, fn->text + ": unexpected arguments");
        StorageType type;
        if (!numpy_storage_type(a[0]->descr, type) || a[1]->kind != Kind::bytes) {
            MK_TRY(make(Kind::string, out));
            out->inert = true;
            out->text = "numpy scalar " + a[0]->descr;
            return charge(out->text.size());
        }
        const std::size_t item = storage_item_size(type);
        if (a[1]->text.size() != item)
            return fail(Code::bad_pickle,
                        fn->text + ": " + std::to_string(a[1]->text.size()) + " bytes for a " + a[0]->descr + " value");
        ValuePtr raw;
        MK_TRY(numpy_bytes(*a[0], a[1], item, raw));
        std::uint64_t u = 0;
        for (std::size_t i = item; i-- > 0;) u = (u << 8) | std::uint8_t(raw->text[i]);
        switch (type) {
            case StorageType::f64: {
                MK_TRY(make(Kind::floating, out));
                std::memcpy(&out->floating, &u, 8);
                return Status();
            }
            case StorageType::f32: {
                float f;
                const std::uint32_t w = std::uint32_t(u);
                std::memcpy(&f, &w, 4);
                MK_TRY(make(Kind::floating, out));
                out->floating = f;
                return Status();
            }
            case StorageType::f16:
                MK_TRY(make(Kind::floating, out));
                out->floating = f16_to_f32(std::uint16_t(u));
                return Status();
            case StorageType::boolean:
                MK_TRY(make(Kind::boolean, out));
                out->boolean = u != 0;
                return Status();
            case StorageType::i8:
            case StorageType::i16:
            case StorageType::i32:
            case StorageType::i64: {
                const unsigned bits = unsigned(item * 8);
                std::int64_t v = std::int64_t(u);
                if (bits < 64 && (u >> (bits - 1)) & 1) v = std::int64_t(u | (~std::uint64_t(0) << bits));
                MK_TRY(make(Kind::integer, out));
                out->integer = v;
                return Status();
            }
            case StorageType::u8:
            case StorageType::u16:
            case StorageType::u32:
            case StorageType::u64:
                if (u > std::uint64_t(INT64_MAX)) {
                    MK_TRY(make(Kind::floating, out));
                    out->floating = double(u);
                } else {
                    MK_TRY(make(Kind::integer, out));
                    out->integer = std::int64_t(u);
                }
                return Status();
            case StorageType::bf16: break;  // numpy has no bfloat16
        }
        return fail(Code::bad_pickle, fn->text + ": a " + a[0]->descr + " value");
    }

    Status call(const ValuePtr& fn, const ValuePtr& args_v, ValuePtr& out) {
        if (fn->kind != Kind::global)
            return fail(Code::bad_pickle, std::string("REDUCE calls a ") + kind_name(fn->kind));
        if (args_v->kind != Kind::tuple) return fail(Code::bad_pickle, "REDUCE arguments are not a tuple");
        const auto& a = args_v->items;
        switch (fn->global_id) {
            case g_ordered_dict:
            case g_counter: {
                // OrderedDict() (Python 3); OrderedDict([[k, v], ...]) (Python 2's pickles);
                // Counter() or Counter({k: n, ...}): an inert dict either way.
                MK_TRY(make(Kind::dict, out));
                if (a.empty()) return Status();
                if (a.size() != 1)
                    return fail(Code::bad_pickle, fn->text + " called with " + std::to_string(a.size()) + " arguments");
                if (fn->global_id == g_counter && is_dict(a[0])) {
                    for (const auto& e : a[0]->entries) MK_TRY(adopt(*out, *e.second));
                    out->entries = a[0]->entries;
                    return Status();
                }
                if (a[0]->kind != Kind::list)
                    return fail(Code::bad_pickle, fn->text + " of something not a list of pairs");
                for (const auto& pair : a[0]->items) {
                    if ((pair->kind != Kind::list && pair->kind != Kind::tuple) || pair->items.size() != 2)
                        return fail(Code::bad_pickle, fn->text + " of a list whose items are not pairs");
                    MK_TRY(adopt(*out, *pair->items[0]));
                    MK_TRY(adopt(*out, *pair->items[1]));
                    out->entries.emplace_back(pair->items[0], pair->items[1]);
                }
                return Status();
            }
            case g_rebuild_tensor_v2: return rebuild_tensor(a, out);
            case g_rebuild_tensor: return rebuild_tensor(a, out, true);
            case g_rebuild_parameter:
            case g_rebuild_parameter_with_state: {
                const std::size_t n = fn->global_id == g_rebuild_parameter ? 3 : 4;
                if (a.size() != n || a[0]->kind != Kind::tensor || a[1]->kind != Kind::boolean)
                    return fail(Code::bad_pickle, fn->text + ": unexpected arguments");
                // The state (a Parameter's Python attributes) is read inertly and dropped.
                out = a[0];
                out->parameter = true;
                return Status();
            }
            case g_rebuild_tensor_v3: return rebuild_tensor_v3(a, out);
            case g_rebuild_from_type_v2: {
                // A tensor (or Parameter) that carries Python attributes: the
                // rebuild call inside is read as usual, the attributes dropped.
                if (a.size() != 4 || a[0]->kind != Kind::global || a[1]->kind != Kind::global ||
                    a[1]->global_id != g_tensor_class || a[2]->kind != Kind::tuple)
                    return fail(Code::unsupported_tensor,
                                fn->text + " of something other than a torch.Tensor or Parameter rebuild");
                const int inner = a[0]->global_id;
                if (inner != g_rebuild_tensor_v2 && inner != g_rebuild_tensor_v3 && inner != g_rebuild_parameter &&
                    inner != g_rebuild_parameter_with_state)
                    return fail(Code::unsupported_tensor, fn->text + " calls " + a[0]->text);
                MK_TRY(call(a[0], a[2], out));
                if (a[1]->text.find("Parameter") != std::string::npos) out->parameter = true;
                return Status();
            }
            case g_np_reconstruct: {
                if (a.size() != 3 || a[0]->kind != Kind::global || a[0]->global_id != g_np_ndarray)
                    return fail(Code::disallowed_global,
                                fn->text + " is read only as _reconstruct(numpy.ndarray, (0,), b'b')");
                MK_TRY(make(Kind::string, out));  // an array once its BUILD comes
                out->inert = true;
                out->numpy = Value::Numpy::array;
                out->text = "numpy.ndarray";
                return Status();
            }
            case g_np_frombuffer: {
                if (a.size() != 4 || a[0]->kind != Kind::bytes || a[3]->kind != Kind::string)
                    return fail(Code::bad_pickle, fn->text + ": unexpected arguments");
                MK_TRY(make(Kind::string, out));
                out->inert = true;
                return numpy_array(*out, a[2], a[1], a[3]->text == "F", a[0]);
            }
            case g_np_dtype: {
                if (a.empty() || !is_str(a[0]) || a[0]->text.size() > 16)
                    return fail(Code::bad_pickle, fn->text + " of something not a type code");
                MK_TRY(make(Kind::string, out));
                out->inert = true;
                out->numpy = Value::Numpy::dtype;
                out->descr = "=" + a[0]->text;  // the byte order comes with its BUILD
                out->text = "numpy.dtype('" + a[0]->text + "')";
                return charge(out->text.size() + out->descr.size());
            }
            case g_np_scalar: return numpy_scalar(fn, a, out);
            case g_inert: {
                if (fn->text == "torch.Size" && a.size() == 1 && a[0]->kind == Kind::tuple) {
                    out = a[0];  // the sizes themselves
                    return Status();
                }
                if (fn->text.find("frozenset") != std::string::npos && (a.empty() || a[0]->kind == Kind::list)) {
                    MK_TRY(make(Kind::set, out));
                    if (a.empty()) return Status();
                    for (const auto& it : a[0]->items) MK_TRY(adopt(*out, *it));
                    out->items = a[0]->items;
                    return Status();
                }
                // A description, the arguments as scalars where they are ("torch.device('cuda', 0)").
                MK_TRY(make(Kind::string, out));
                std::string args;
                for (const auto& it : a)
                    args += (args.empty() ? "" : ", ") + (it->kind == Kind::string    ? "'" + it->text + "'"
                                                          : it->kind == Kind::integer ? std::to_string(it->integer)
                                                                                      : std::string("..."));
                out->text = fn->text + "(" + args + ")";
                MK_TRY(charge(out->text.size()));
                out->inert = true;
                return Status();
            }
            case g_set: {
                if (a.size() != 1 || a[0]->kind != Kind::list)
                    return fail(Code::bad_pickle, "set() of something not a list");
                MK_TRY(make(Kind::set, out));
                for (const auto& it : a[0]->items) MK_TRY(adopt(*out, *it));
                out->items = a[0]->items;
                return Status();
            }
            case g_codecs_encode: {
                if (a.size() != 2 || !is_str(a[0]) || !is_str(a[1]) ||
                    (a[1]->text != "latin1" && a[1]->text != "latin-1"))
                    return fail(Code::disallowed_global, "_codecs.encode is only read as encode(str, 'latin1')");
                MK_TRY(make(Kind::bytes, out));
                const std::string& s = a[0]->text;  // UTF-8 of code points < 256
                for (std::size_t i = 0; i < s.size(); ++i) {
                    const std::uint8_t c = std::uint8_t(s[i]);
                    if (c < 0x80) {
                        out->text += char(c);
                    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size()) {
                        out->text += char(((c & 0x03) << 6) | (std::uint8_t(s[i + 1]) & 0x3F));
                        ++i;
                    } else {
                        return fail(Code::bad_pickle, "_codecs.encode: a character outside latin-1");
                    }
                }
                return Status();
            }
            default: return fail(Code::disallowed_global, "calls " + fn->text + " (nothing in a file is ever called)");
        }
    }

    Status persistent_id(const ValuePtr& pid, ValuePtr& out) {
        if (pid->kind != Kind::tuple || pid->items.empty())
            return fail(Code::disallowed_persistent_id, "a persistent id that is not a tuple");
        const auto& f = pid->items;
        const bool tag_ok = (f[0]->kind == Kind::string || f[0]->kind == Kind::bytes);
        if (legacy_ && tag_ok && f[0]->text == "module")
            return fail(Code::legacy_module,
                        "a pre-1.6 file holding a whole nn.Module, which embeds its source code; "
                        "save its state_dict() instead");
        if (!tag_ok || f[0]->text != "storage")
            return fail(Code::disallowed_persistent_id, "only ('storage', ...) persistent ids are read");
        const std::size_t want = legacy_ ? 6 : 5;
        if (f.size() != want)
            return fail(Code::disallowed_persistent_id,
                        "a storage id of " + std::to_string(f.size()) + " fields, not " + std::to_string(want));
        if (f[1]->kind != Kind::global || f[1]->global_id != g_storage_class)
            return fail(Code::disallowed_persistent_id, "a storage id whose type is not a torch storage class");
        if (!is_str(f[2]) || !is_str(f[3]) || !is_int(f[4]) || f[4]->integer < 0)
            return fail(Code::disallowed_persistent_id, "a storage id with a malformed key, location or size");
        // torch 0.3/0.4 legacy files: view_metadata (view_key, offset, size) makes
        // this id a slice of the root storage f[2]: tensors on it index the root
        // from `offset` on (rebuild_tensor adds it), within the slice's size.
        std::uint64_t view_offset = 0;
        std::string view_key;
        if (legacy_ && f[5]->kind != Kind::none) {
            const Value& vm = *f[5];
            if (vm.kind != Kind::tuple || vm.items.size() != 3 || !is_str(vm.items[0]) || !is_int(vm.items[1]) ||
                vm.items[1]->integer < 0 || !is_int(vm.items[2]) || vm.items[2]->integer < 0)
                return fail(Code::disallowed_persistent_id,
                            "a legacy storage view whose metadata is not (key, offset, size)");
            view_key = vm.items[0]->text;
            view_offset = std::uint64_t(vm.items[1]->integer);
            const std::uint64_t view_size = std::uint64_t(vm.items[2]->integer);
            if (view_offset > std::uint64_t(f[4]->integer) || view_size > std::uint64_t(f[4]->integer) - view_offset)
                return fail(Code::view_out_of_bounds,
                            "legacy storage view '" + view_key + "' runs past storage '" + f[2]->text + "'");
        }
        ValuePtr root;
        const auto it = storages_.find(f[2]->text);
        if (it != storages_.end()) {
            if (it->second->storage_type != f[1]->storage_type || it->second->numel != std::uint64_t(f[4]->integer))
                return fail(Code::bad_pickle,
                            "storage '" + f[2]->text + "' declared twice with different types or sizes");
            root = it->second;
        } else {
            MK_TRY(make(Kind::storage, root));
            root->text = f[2]->text;
            root->storage_type = f[1]->storage_type;
            root->numel = std::uint64_t(f[4]->integer);
            root->untyped = f[1]->untyped;
            storages_[root->text] = root;
        }
        if (view_key.empty()) {
            out = root;
            return Status();
        }
        // The slice: the root's key, type and size (so that readers find and
        // bound its data), and where it starts in the root.
        MK_TRY(make(Kind::storage, out));
        out->text = root->text;
        out->storage_type = root->storage_type;
        out->numel = root->numel;
        out->offset = view_offset;
        return Status();
    }

    Status build(const ValuePtr& target, const ValuePtr& state) {
        if (target->frozen) return fail(Code::bad_pickle, "BUILD on an object already in use");
        if (target->kind == Kind::dict) {
            // OrderedDict's attributes ({'_metadata': ...}): version numbers for
            // load_state_dict hooks. Checked for shape, then dropped.
            if (!is_dict(state)) return fail(Code::bad_pickle, "BUILD on a dict with a state that is not a dict");
            return adopt(*target, *state);
        }
        if (target->kind == Kind::module) {
            if (!target->entries.empty()) return fail(Code::bad_pickle, "BUILD twice on " + target->text);
            if (!is_dict(state))
                return fail(Code::bad_pickle, "BUILD on " + target->text + " with a state that is not a dict");
            MK_TRY(adopt(*target, *state));
            target->entries = state->entries;
            target->depth = std::max(target->depth, state->depth);
            return Status();
        }
        if (target->numpy == Value::Numpy::dtype) {
            // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
            MK_TRY(adopt(*target, *state));
            if (state->kind != Kind::tuple || state->items.size() < 2 || !is_str(state->items[1]) ||
                state->items[1]->text.size() != 1)
                return fail(Code::bad_pickle, "a numpy dtype state that is not (version, byte order, ...)");
            const char order = state->items[1]->text[0];
            if (order != '<' && order != '>' && order != '|' && order != '=')
                return fail(Code::bad_pickle, "a numpy dtype of byte order '" + state->items[1]->text + "'");
            // A structured dtype (names, fields) has no tensor dtype: its code becomes "V".
            const bool structured = state->items.size() > 4 && (state->items[3]->kind != Kind::none);
            target->descr = std::string(1, order == '=' ? '<' : order) + (structured ? "V" : target->descr.substr(1));
            return Status();
        }
        if (target->numpy == Value::Numpy::array) {
            // (version, shape, dtype, is_fortran, raw bytes or a list of objects); numpy < 1.? had no version.
            MK_TRY(adopt(*target, *state));
            if (state->kind != Kind::tuple || (state->items.size() != 5 && state->items.size() != 4))
                return fail(Code::bad_pickle, "a numpy array state that is not (version, shape, dtype, fortran, data)");
            const std::size_t k = state->items.size() - 4;
            if (state->items[k + 2]->kind != Kind::boolean)
                return fail(Code::bad_pickle, "a numpy array state whose fortran flag is not a bool");
            return numpy_array(*target, state->items[k], state->items[k + 1], state->items[k + 2]->boolean,
                               state->items[k + 3]);
        }
        if (target->inert) return adopt(*target, *state);  // a date's or path's state: read, then dropped
        return fail(Code::bad_pickle, std::string("BUILD on a ") + kind_name(target->kind));
    }

    Status setitems(std::vector<ValuePtr>&& kv, const char* op) {
        if (kv.size() % 2) return fail(Code::bad_pickle, std::string(op) + " with an odd number of values");
        ValuePtr d;
        MK_TRY(top(d, op));
        MK_TRY(mutable_target(d, Kind::dict, op));
        for (std::size_t i = 0; i < kv.size(); i += 2) {
            MK_TRY(adopt(*d, *kv[i]));
            MK_TRY(adopt(*d, *kv[i + 1]));
            d->entries.emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
        }
        return Status();
    }
    Status appends(std::vector<ValuePtr>&& items, Kind kind, const char* op) {
        ValuePtr l;
        MK_TRY(top(l, op));
        MK_TRY(mutable_target(l, kind, op));
        for (auto& it : items) {
            MK_TRY(adopt(*l, *it));
            l->items.push_back(std::move(it));
        }
        return Status();
    }

    Status step(std::uint8_t op) {
        std::uint64_t n = 0;
        const std::uint8_t* at = nullptr;
        ValuePtr a, b, c;
        switch (op) {
            case 0x95:  // FRAME: a length hint, nothing to do
                if (!le(8, n)) return truncated("FRAME");
                return Status();
            case '(':
                marks_.push_back(stack_.size());
                if (marks_.size() > max_pickle_values) return fail(Code::limit_exceeded, "too many MARKs");
                return Status();
            case 'N': return push_new(Kind::none, a);
            case 0x88:
            case 0x89:
                MK_TRY(push_new(Kind::boolean, a));
                a->boolean = op == 0x88;
                return Status();
            case 'K':
                if (!le(1, n)) return truncated("BININT1");
                return push_int(std::int64_t(n));
            case 'M':
                if (!le(2, n)) return truncated("BININT2");
                return push_int(std::int64_t(n));
            case 'J':
                if (!le(4, n)) return truncated("BININT");
                return push_int(std::int64_t(std::int32_t(std::uint32_t(n))));
            case 0x8a:
            case 0x8b: {  // LONG1 / LONG4: two's complement little-endian
                if (!le(op == 0x8a ? 1 : 4, n)) return truncated("LONG");
                if (n > 8) return fail(Code::bad_pickle, "an integer wider than 64 bits");
                std::uint64_t v = 0;
                if (!le(std::size_t(n), v)) return truncated("LONG");
                if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t(0) << (8 * n);  // sign-extend
                return push_int(std::int64_t(v));
            }
            case 'G': {
                if (!bytes(8, at)) return truncated("BINFLOAT");
                std::uint64_t bits = 0;
                for (int i = 0; i < 8; ++i) bits = (bits << 8) | at[i];  // big-endian
                MK_TRY(push_new(Kind::floating, a));
                std::memcpy(&a->floating, &bits, 8);
                return Status();
            }
            case 'F': {  // FLOAT: repr(x) and a newline
                std::string text;
                MK_TRY(line("FLOAT", text));
                double d = 0;
                if (text == "inf" || text == "-inf" || text == "nan" || text == "-nan")
                    d = text == "inf" ? HUGE_VAL : text == "-inf" ? -HUGE_VAL : NAN;
                else if (!parse_double(text, d))
                    return fail(Code::bad_pickle, "FLOAT of '" + escape_text(text) + "', not a number");
                MK_TRY(push_new(Kind::floating, a));
                a->floating = d;
                return Status();
            }
            case 'I':    // INT: decimal digits (01 and 00 are True and False), a newline
            case 'L': {  // LONG: the same with an optional L
                std::string text;
                MK_TRY(line(op == 'I' ? "INT" : "LONG", text));
                if (op == 'I' && (text == "01" || text == "00")) {
                    MK_TRY(push_new(Kind::boolean, a));
                    a->boolean = text == "01";
                    return Status();
                }
                if (op == 'L' && !text.empty() && text.back() == 'L') text.pop_back();
                const bool negative = !text.empty() && text[0] == '-';
                std::uint64_t v = 0;
                const std::size_t from = (negative || (!text.empty() && text[0] == '+')) ? 1 : 0;
                if (from == text.size()) return fail(Code::bad_pickle, "an empty integer");
                for (std::size_t i = from; i < text.size(); ++i) {
                    if (text[i] < '0' || text[i] > '9' || v > (std::uint64_t(1) << 63) / 10)
                        return fail(Code::bad_pickle, "an integer '" + escape_text(text) + "' (64 bits are read)");
                    v = v * 10 + std::uint64_t(text[i] - '0');
                }
                if (v > (std::uint64_t(1) << 63) - (negative ? 0 : 1))
                    return fail(Code::bad_pickle, "an integer '" + text + "' (64 bits are read)");
                return push_int(negative ? std::int64_t(0 - v) : std::int64_t(v));
            }
            case 0x96: {  // BYTEARRAY8 (protocol 5's in-band buffers): read as bytes
                if (!le(8, n)) return truncated("a bytearray length");
                if (n > size_ - pos_) return truncated("a bytearray");
                bytes(std::size_t(n), at);
                return push_text(Kind::bytes, at, std::size_t(n));
            }
            case 'X':
            case 0x8c:
            case 0x8d:  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
            case 'B':
            case 'C':
            case 0x8e:  // BINBYTES, SHORT_BINBYTES, BINBYTES8
            case 'T':
            case 'U': {  // BINSTRING, SHORT_BINSTRING (Python 2 str)
                const std::size_t width = (op == 0x8c || op == 'C' || op == 'U') ? 1
                                          : (op == 0x8d || op == 0x8e)           ? 8
                                                                                 : 4;
                if (!le(width, n)) return truncated("a string length");
                if (n > size_ - pos_) return truncated("a string");
                bytes(std::size_t(n), at);
                if (op == 'T' || op == 'U') return push_latin1(at, std::size_t(n));
                const bool text = op == 'X' || op == 0x8c || op == 0x8d;
                return push_text(text ? Kind::string : Kind::bytes, at, std::size_t(n));
            }
            case ')': return push_tuple({});
            case 0x85:
            case 0x86:
            case 0x87: {
                const std::size_t k = std::size_t(op - 0x84);
                std::vector<ValuePtr> items(k);
                for (std::size_t i = k; i-- > 0;) MK_TRY(pop(items[i], "TUPLEn"));
                return push_tuple(std::move(items));
            }
            case 't': {
                std::vector<ValuePtr> items;
                MK_TRY(pop_mark(items));
                return push_tuple(std::move(items));
            }
            case ']': return push_new(Kind::list, a);
            case '}': return push_new(Kind::dict, a);
            case 0x8f: return push_new(Kind::set, a);
            case 'a': MK_TRY(pop(a, "APPEND")); return appends({a}, Kind::list, "APPEND");
            case 'e':
            case 0x90: {
                std::vector<ValuePtr> items;
                MK_TRY(pop_mark(items));
                return op == 'e' ? appends(std::move(items), Kind::list, "APPENDS")
                                 : appends(std::move(items), Kind::set, "ADDITEMS");
            }
            case 's':
                MK_TRY(pop(b, "SETITEM value"));
                MK_TRY(pop(a, "SETITEM key"));
                return setitems({a, b}, "SETITEM");
            case 'u': {
                std::vector<ValuePtr> kv;
                MK_TRY(pop_mark(kv));
                return setitems(std::move(kv), "SETITEMS");
            }
            case 'q':
                if (!le(1, n)) return truncated("BINPUT");
                return memo_put(n);
            case 'r':
                if (!le(4, n)) return truncated("LONG_BINPUT");
                return memo_put(n);
            case 0x94: return memo_put(memo_count_);
            case 'h':
                if (!le(1, n)) return truncated("BINGET");
                return memo_get(n);
            case 'j':
                if (!le(4, n)) return truncated("LONG_BINGET");
                return memo_get(n);
            case 'c': {  // GLOBAL "module\nname\n"
                std::string parts[2];
                for (auto& part : parts) {
                    for (;;) {
                        std::uint8_t ch;
                        if (!byte(ch)) return truncated("GLOBAL");
                        if (ch == '\n') break;
                        if (part.size() >= 512) return fail(Code::disallowed_global, "a global name over 512 bytes");
                        part += char(ch);
                    }
                }
                return resolve_global(parts[0], parts[1]);
            }
            case 0x93:  // STACK_GLOBAL: the same allowlist as GLOBAL
                MK_TRY(pop(b, "STACK_GLOBAL name"));
                MK_TRY(pop(a, "STACK_GLOBAL module"));
                if (!is_str(a) || !is_str(b))
                    return fail(Code::bad_pickle, "STACK_GLOBAL of values that are not strings");
                return resolve_global(a->text, b->text);
            case 'Q':
                MK_TRY(pop(a, "BINPERSID"));
                MK_TRY(persistent_id(a, b));
                stack_.push_back(b);
                return Status();
            case 'R':
                MK_TRY(pop(b, "REDUCE arguments"));
                MK_TRY(pop(a, "REDUCE callable"));
                b->frozen = true;
                MK_TRY(call(a, b, c));
                stack_.push_back(c);
                return Status();
            case 0x81:  // NEWOBJ: cls.__new__(cls) — only as an inert module record
                MK_TRY(pop(b, "NEWOBJ arguments"));
                MK_TRY(pop(a, "NEWOBJ class"));
                if (a->kind != Kind::global || a->global_id != g_class)
                    return fail(Code::disallowed_global,
                                "NEWOBJ of " + (a->kind == Kind::global ? a->text : std::string(kind_name(a->kind))));
                if (b->kind != Kind::tuple || !b->items.empty())
                    return fail(Code::disallowed_global, "NEWOBJ of " + a->text + " with arguments");
                MK_TRY(push_new(Kind::module, c));
                c->text = a->text;
                return Status();
            case 'b':
                MK_TRY(pop(b, "BUILD state"));
                MK_TRY(top(a, "BUILD target"));
                return build(a, b);
            case 0x80: return fail(Code::bad_pickle, "PROTO in the middle of a pickle");
            default: {
                const char* name = opcode_name(op);
                if (name) return fail(Code::disallowed_opcode, std::string(name) + " is never written by torch.save");
                char hex[8];
                const char* digits = "0123456789abcdef";
                hex[0] = '0';
                hex[1] = 'x';
                hex[2] = digits[op >> 4];
                hex[3] = digits[op & 15];
                hex[4] = 0;
                return fail(Code::bad_pickle, std::string("unknown opcode ") + hex);
            }
        }
    }

    const std::uint8_t* p_;
    std::size_t size_;
    bool legacy_;
    // Bytes charged per value (the Value and its shared_ptr block), per item
    // put into a container (a slot, grown by doubling), per memo slot.
    static constexpr std::size_t value_bytes = sizeof(Value) + 32, item_bytes = 32,
                                 memo_slot_bytes = 2 * sizeof(ValuePtr);  // (the table grows by doubling)
    std::size_t pos_ = 0, op_at_ = 0, values_ = 0, ops_ = 0, held_ = 0;
    std::vector<ValuePtr> stack_;
    std::vector<std::size_t> marks_;
    std::vector<ValuePtr> memo_;
    std::size_t memo_count_ = 0;
    std::unordered_map<std::string, ValuePtr> storages_;
    std::vector<std::string> globals_;
    std::size_t numpy_arrays_ = 0;
};

}  // namespace

Status unpickle(const std::uint8_t* data, std::size_t size, bool legacy, Unpickled& out) {
    Machine m(data, size, legacy);
    return m.run(out);
}

}  // namespace modelkeep
