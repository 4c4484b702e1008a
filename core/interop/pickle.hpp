// pickle.hpp — an allowlisting unpickler for what torch.save writes.
//
// A pickle is a program: GLOBAL imports any attribute of any module, REDUCE
// calls it. This reader is not an interpreter. It knows the opcodes of
// protocols 2–5 that torch.save and Python's pickler emit for state dicts,
// checkpoints and nn.Module trees, and a fixed set of globals, each with one
// meaning chosen by a switch — never by looking a name up and calling it:
//
//   collections.OrderedDict                  REDUCE () → ordered dict; BUILD sets _metadata (dropped)
//   torch._utils._rebuild_tensor_v2          REDUCE (storage, offset, size, stride, requires_grad, hooks[, metadata])
//                                            → tensor
//   torch._utils._rebuild_tensor             torch 0.3/0.4: REDUCE (storage, offset, size, stride) → tensor
//   torch._utils._rebuild_tensor_v3          torch 2.x, new dtypes: REDUCE (untyped storage, offset, size, stride,
//                                            requires_grad, hooks, dtype[, metadata]) → tensor (uint16/32/64;
//                                            float8, complex32, bits* are unsupported_tensor)
//   torch._utils._rebuild_parameter          REDUCE (tensor, requires_grad, hooks) → the tensor
//   torch._utils._rebuild_parameter_with_state  the same plus a state (the Parameter's Python attributes, dropped)
//   torch._tensor._rebuild_from_type_v2      REDUCE (rebuild function, torch._tensor.Tensor or
//                                            torch.nn.parameter.Parameter/Buffer, its arguments, state) → the tensor
//   torch.FloatStorage, DoubleStorage, HalfStorage, BFloat16Storage, LongStorage,
//   IntStorage, ShortStorage, CharStorage, ByteStorage, BoolStorage, UntypedStorage
//                                            only inside a persistent id
//   builtins.set / __builtin__.set           REDUCE (list,) → set
//   collections.Counter                      REDUCE () or (dict,) → dict
//   torch.Size, torch.device, builtins.frozenset/complex/slice, datetime.*, pathlib.*,
//   numpy.random._pickle.__randomstate_ctor/__generator_ctor/__bit_generator_ctor, numpy's bit generators
//                                            REDUCE → an inert value (Size: its tuple; frozenset: a set;
//                                            the rest: a description string), nothing called
//   torch.float32, torch.int64, ... (dtypes)  only as values (and the dtype of _rebuild_tensor_v3)
//   numpy.dtype                              REDUCE (code, align, copy), BUILD (version, byte order, ...) → a dtype
//   numpy.core.multiarray._reconstruct       REDUCE (numpy.ndarray, (0,), b'b'), BUILD (version, shape, dtype,
//     (numpy 2: numpy._core.multiarray)      fortran, raw bytes) → a tensor for bool, int8/16/32/64, uint8/16/32/64,
//                                            float16/32/64 (big-endian bytes swapped); a description otherwise
//   numpy.core.numeric._frombuffer           REDUCE (bytes, dtype, shape, order) → the same (protocol 5)
//   numpy.core.multiarray.scalar             REDUCE (dtype, bytes) → an int, float or bool
//   _codecs.encode                           REDUCE (str, "latin1") → bytes
//   any other dotted name outside the         NEWOBJ () → an inert module record
//   refused modules (os, posix, sys, builtins, torch outside torch.nn.modules, numpy, ...)
//                                            (class path + the dict BUILD gives it); calling it is refused
//
// Numbers in every form Python writes them: BININT*, LONG1/4, BINFLOAT, and the
// text forms INT, LONG and FLOAT (protocol 0 style, read with decimal.hpp).
//
// Everything else is refused with the offending name or opcode: disallowed_global
// (posix.system, __builtin__.eval, torch.storage._load_from_bytes, a class
// called with REDUCE), disallowed_opcode (INST, OBJ, EXT*, PERSID, STRING, NEXT_BUFFER, ...),
// disallowed_persistent_id (anything but ('storage', type, key, location, numel)),
// unsupported_tensor (quantized, sparse, complex, float8), bad_pickle
// (truncation, stack underflow, wrong argument types, SETITEM on a list, ...).
//
// Structure limits make hostile pickles cheap to refuse: size, opcodes executed,
// values and the memory they hold (counted before it is allocated), memo
// entries, stack size and container nesting are capped, and a container
// becomes immutable once it is put into another one or used as an argument,
// so no pickle can build a cycle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "status.hpp"

namespace modelkeep {

constexpr std::size_t max_pickle_bytes = std::size_t(256) << 20;
constexpr std::size_t max_pickle_values = std::size_t(1) << 24;
constexpr std::size_t max_pickle_depth = 200;  // container nesting
/// What the values of one pickle may hold (each value, string and container
/// slot is counted before it is allocated): about 30,000 tensors' worth.
constexpr std::size_t max_pickle_memory = std::size_t(48) << 20;
/// Opcodes one pickle may execute (memo reads and writes among them): about
/// 60 per tensor for the most tensors a pickle's memory allows, and a flood of
/// the cheapest opcode is refused in well under a second in wasm too. And the
/// values its stack and memo may hold.
constexpr std::size_t max_pickle_ops = std::size_t(1) << 22;
constexpr std::size_t max_pickle_stack = std::size_t(1) << 20;
constexpr std::size_t max_pickle_memo = std::size_t(1) << 20;

/// torch's storage classes modelkeep converts to float32.
/// (u16, u32 and u64 arrive through torch 2.x's _rebuild_tensor_v3, or as numpy arrays.)
enum class StorageType : std::uint8_t { f32, f64, f16, bf16, i64, i32, i16, i8, u8, boolean, u16, u32, u64 };

/// "float32", "int64", ...: torch's dtype name.
const char* storage_dtype_name(StorageType type);
std::size_t storage_item_size(StorageType type);

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
    enum class Kind : std::uint8_t {
        none,
        boolean,
        integer,
        floating,
        string,
        bytes,
        tuple,
        list,
        dict,
        set,
        global,   // an allowlisted callable or class, not yet used
        storage,  // a persistent id: one storage record
        tensor,   // a strided view of a storage
        module,   // an inert nn.Module record
    };
    Kind kind = Kind::none;
    bool frozen = false;      // inside another container or used: no more changes
    std::uint16_t depth = 0;  // container nesting below this value
    bool boolean = false;
    std::int64_t integer = 0;
    double floating = 0;
    std::string text;                                    // string, bytes, global/module class path, storage key
    std::vector<ValuePtr> items;                         // tuple, list, set
    std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order; module state
    int global_id = 0;                                   // global: which allowlisted meaning
    // storage: text = key, storage_type, numel (elements of storage_type)
    StorageType storage_type = StorageType::f32;
    std::uint64_t numel = 0;
    // tensor: a view of `storage`
    ValuePtr storage;
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> shape, stride;
    bool parameter = false;
    bool inert = false;  // string: the description of an inert value (pickle.cpp: inert_constructors)
    /// storage (or its class): a torch.UntypedStorage, numel counted in bytes; only
    /// _rebuild_tensor_v3 gives it a dtype.
    bool untyped = false;
    /// An inert numpy value still being built: a dtype (descr = byte order + type code,
    /// "<f4", "|u1") or an array that its BUILD turns into a tensor or a description.
    enum class Numpy : std::uint8_t { none, dtype, array } numpy = Numpy::none;
    std::string descr;

    /// The value under a string key of a dict (or a module's state), or null.
    const Value* get(const std::string& key) const;
};

struct Unpickled {
    ValuePtr root;
    /// Every GLOBAL / STACK_GLOBAL the pickle named, as "module.name", in
    /// order of first appearance (refused ones end the read, so they are last).
    std::vector<std::string> globals;
    /// Every storage a persistent id named, used by a tensor or not (a legacy
    /// file stores them all in a row: each one's type says how long it is).
    std::vector<ValuePtr> storages;
    std::size_t consumed = 0;  // bytes up to and including STOP
};

/// Reads one pickle from `data` (stopping at its STOP). With `legacy`,
/// persistent ids have torch's pre-1.6 six fields ('storage', type, key,
/// location, numel, view_metadata=None), and a ('module', ...) id is
/// legacy_module (a whole module with its source code embedded).
Status unpickle(const std::uint8_t* data, std::size_t size, bool legacy, Unpickled& out);

}  // namespace modelkeep
