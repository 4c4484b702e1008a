// torch_file.hpp — what torch.save writes, read without running any of it,
// and state dicts written back in a form torch.load(weights_only=True) takes.
//
// Zip format (torch ≥ 1.6): one top-level folder (named by the file, read from
// the first entry, never assumed), records <root>/data.pkl (the pickled
// object, pickle.hpp), <root>/data/<key> (raw little-endian storages),
// <root>/version ("3"), optionally <root>/byteorder ("little"). A
// <root>/constants.pkl or <root>/code/ means a TorchScript archive: refused.
//
// Legacy format (before 1.6): five pickles back to back — the magic number
// 0x1950a86a20f9469cfc6c, the protocol version 1001, a sys_info dict, the
// object, the list of storage keys — then for each key a u64 element count and
// the storage bytes. Plain state dicts are read; a whole module is refused
// (its persistent ids embed the class's source code).
//
// The pickled object may be: a state dict (a dict of tensors); a checkpoint
// dict holding one ({'epoch': 5, 'model_state_dict': {...}, ...}); or a whole
// nn.Module, read as an inert tree (ModuleNode) whose tensors form the same
// state dict torch's model.state_dict() gives (parameters, then persistent
// buffers, then children, in registration order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dtype.hpp"
#include "format.hpp"
#include "model.hpp"
#include "pickle.hpp"
#include "source.hpp"
#include "status.hpp"

namespace modelkeep {

/// One nn.Module of a pickled module tree.
struct ModuleNode {
    std::string name;        // child name ("fc1", "0"); "" for the root
    std::string class_path;  // "torch.nn.modules.linear.Linear", "__main__.Model"
    /// Plain attributes as text, e.g. in_features=3, approximate=tanh,
    /// normalized_shape=(8,), eps=1e-05 (Python's repr of numbers).
    std::vector<std::pair<std::string, std::string>> attrs;
    std::vector<std::string> tensors;  // local names: parameters, then persistent buffers
    std::vector<ModuleNode> children;

    const std::string* attr(const std::string& key) const;
    /// "Linear" from "torch.nn.modules.linear.Linear".
    std::string class_name() const;
};

struct TorchTensorInfo {
    std::string name;
    StorageType dtype = StorageType::f32;
    Shape shape;
};

/// Modules a module tree may have, a module shared under several names
/// counted once per name (torch's state_dict() visits each).
constexpr std::size_t max_module_nodes = 65536;

/// The most values the tensors of a file of file_bytes may hold in all: four
/// per byte of the file (dense tensors hold at most one per byte; views may
/// share storage a few times over) plus 2^22. Views that repeat their storage
/// (stride 0, many views of one storage) or a deflated archive beyond that are
/// limit_exceeded, before anything is materialised.
constexpr std::uint64_t max_view_elements(std::uint64_t file_bytes) {
    return 4 * file_bytes + (std::uint64_t(1) << 22);
}

/// The most bytes one deflated storage of a file of file_bytes may inflate to:
/// 16 per byte of the file (tensor data compresses far less) plus 16 MiB.
constexpr std::uint64_t max_inflated_bytes(std::uint64_t file_bytes) {
    return 16 * file_bytes + (std::uint64_t(16) << 20);
}

struct TorchFile {
    bool legacy = false;
    std::vector<std::string> globals;  // every global the pickle names, first use order
    /// Where the tensors came from: "state dict", "checkpoint['model_state_dict']",
    /// "module __main__.Model".
    std::string source;
    std::vector<TorchTensorInfo> infos;  // the state dict's names, dtypes and shapes
    StateDict tensors;                   // converted to float32 (only with values)
    /// How many of infos (and tensors) are the model's; an ExtraTensors
    /// callback's follow them.
    std::size_t model_tensors = 0;
    bool has_module = false;
    ModuleNode module;
    Metadata extras;  // a checkpoint's scalar entries (epoch=5, loss=0.25)
    /// A checkpoint's entries that hold a state dict or a module, in file order.
    std::vector<std::string> entries;
    /// The most a read with values buffers at once beyond the tensors, from a
    /// source outside memory: one storage (and, deflated, its compressed bytes)
    /// that cannot go straight into its tensor; a legacy file, the whole file.
    std::uint64_t buffer_bytes = 0;
    /// Bytes of pickle the reader parses (the values it builds grow with them).
    std::uint64_t pickle_bytes = 0;
};

/// The length of a legacy torch file's first pickle (its magic number, in any
/// pickle protocol torch wrote: 2 to 5), or 0 if `data` does not start with it.
std::size_t legacy_magic_bytes(const std::uint8_t* data, std::size_t size);

/// Reads a torch zip or legacy file. Without `with_values`, only the pickle
/// is read and the storages' presence and sizes checked (for inspect). From a
/// source outside memory, a zip is read by ranges: its directory and pickle,
/// then each storage once (a float32 storage that one tensor covers goes
/// straight into that tensor), so the import holds the tensors plus at most
/// one storage, never the whole file.
/// `entry` names the checkpoint entry that holds the model (its state dict or
/// module); "" chooses as documented (docs/PYTORCH.md), and a name the file
/// lacks is missing_key, listing the entries that hold one.
///
/// `extra` (torch_checkpoint.hpp's reader of the optimizer state) is called
/// with the unpickled object once the model's tensors are chosen: the tensors
/// it appends to `refs` (a name, and a tensor value inside that object) are
/// read after the model's, with the same checks, within the same budget, and
/// land after them in out.infos and out.tensors (out.model_tensors counts the
/// model's). What it returns besides ok ends the read.
using TensorRefs = std::vector<std::pair<std::string, const Value*>>;
using ExtraTensors = std::function<Status(const Value& root, TensorRefs& refs)>;
Status read_torch(const ByteSource& source, bool with_values, TorchFile& out, const std::string& entry = "",
                  const ExtraTensors& extra = nullptr);
Status read_torch(const std::uint8_t* data, std::size_t size, bool with_values, TorchFile& out,
                  const std::string& entry = "");
/// inspect's integrity check: read_torch without values, then every storage the
/// chosen tensors use read once (CRC-checked; deflated ones inflated within the
/// file's budget), one at a time, and dropped: no view is ever materialised.
Status verify_torch(const ByteSource& source, TorchFile& out, const std::string& entry = "");

/// A state dict as a torch zip file (folder "archive", stored records aligned
/// to 64 bytes, pickle protocol 2 with only the opcodes and globals above),
/// which torch.load(path, weights_only=True) loads. Tensors of rank ≥ 2 are
/// written in `dtype` (f32, f16 or bf16; int8 → invalid_argument), others as
/// float32, and num_batches_tracked as int64, as torch holds it.
Status write_torch(const StateDict& tensors, DType dtype, std::vector<std::uint8_t>& out);

// ---- the writer's pieces, shared with torch_checkpoint.cpp ----

/// Pickle protocol 2 with only opcodes torch.save writes and torch's
/// weights_only loader reads (2.x; 1.13's cannot read BINFLOAT, a Python float).
class PickleWriter {
public:
    std::vector<std::uint8_t> out;
    void op(std::uint8_t c) { out.push_back(c); }
    void global(const char* module, const char* name);  // GLOBAL
    void str(const std::string& s);                     // BINUNICODE
    void integer(std::uint64_t v);                      // BININT1/2, BININT, LONG1 (v < 2^63)
    void int64(std::int64_t v);                         // the same, negatives as BININT or LONG1
    void floating(double v);                            // BINFLOAT
    void boolean(bool v) { op(v ? 0x88 : 0x89); }       // NEWTRUE / NEWFALSE
    void none() { op('N'); }
    void int_tuple(const std::vector<std::uint64_t>& v);  // MARK ints TUPLE
    /// _rebuild_tensor_v2(('storage', torch.<storage>, key, 'cpu', numel), 0,
    /// shape, contiguous strides, False, OrderedDict()): a dense tensor.
    void tensor(const char* storage, const std::string& key, std::uint64_t numel, const Shape& shape);
};

/// Appends to `p` the OrderedDict of `tensors` as write_torch writes it (its
/// storages appended to `storages`, each keyed by its index there).
Status pickle_state_dict(const StateDict& tensors, DType dtype, PickleWriter& p,
                         std::vector<std::vector<std::uint8_t>>& storages);

/// The torch zip of a finished pickle and its storages: archive/data.pkl,
/// archive/byteorder, archive/data/<i>, archive/version.
void write_torch_archive(const std::vector<std::uint8_t>& pickle,
                         const std::vector<std::vector<std::uint8_t>>& storages, std::vector<std::uint8_t>& out);

}  // namespace modelkeep
