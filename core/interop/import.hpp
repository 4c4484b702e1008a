// import.hpp — one entry point for every file modelkeep reads. The format is
// decided from the bytes, never from a file name:
//
//   89 4D 4B 50 ...                      modelkeep .mkp (format.hpp)
//   50 4B 03 04 ... <root>/data.pkl      torch.save zip (torch_file.hpp)
//   80 02 8A 0A 6C FC 9C 46 F9 20 6A ... torch.save legacy (before 1.6)
//   u64 N, then '{' (after JSON blanks) safetensors (safetensors.hpp)
//
// A file says what runs only when it is a .mkp model, or a pickled
// nn.Sequential of known layers. For anything else — a state dict, a
// checkpoint, a pickled custom class whose forward() is not in the file — a
// model needs an explicit architecture (a SPEC string) or the explicit
// assume_sequential opt-in (run the leaf modules in registration order);
// without either, asking for a model is needs_architecture, and the message
// shows the module tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "format.hpp"
#include "model.hpp"
#include "source.hpp"
#include "status.hpp"
#include "torch_file.hpp"

namespace modelkeep {

enum class FileFormat { unknown, mkp, torch_zip, torch_legacy, safetensors };

/// "modelkeep", "torch-zip", "torch-legacy", "safetensors", "unknown".
const char* file_format_name(FileFormat format);
/// From the first bytes only (a zip counts as torch_zip; read_source says
/// whether it really is one).
FileFormat detect_format(const std::uint8_t* data, std::size_t size);
/// The same from the first `size` bytes of a file of `file_size` bytes.
FileFormat detect_format_sized(const std::uint8_t* data, std::size_t size, std::uint64_t file_size);

struct SourceTensor {
    std::string name;
    std::string dtype;  // as stored: "float32", "bfloat16", "int8" (.mkp), "F16" (safetensors) ...
    Shape shape;
};

/// What a file holds, without building a model.
struct SourceInfo {
    FileFormat format = FileFormat::unknown;
    std::string source;  // "model", "state dict", "checkpoint['model_state_dict']", "module __main__.Model"
    std::vector<std::string> globals;   // torch: every global the pickle names
    std::vector<SourceTensor> tensors;  // in file (state_dict) order
    Metadata metadata;                  // .mkp / safetensors metadata, a checkpoint's scalars
    std::vector<std::string> entries;   // torch checkpoint: the entries that hold a state dict or module
    bool has_module = false;            // torch: a pickled module tree
    ModuleNode module;
    /// The architecture the file itself defines (.mkp model, nn.Sequential of
    /// known layers); empty otherwise, with the reason in arch_note.
    std::vector<LayerSpec> layers;
    bool has_layers = false;
    std::string arch_note;
    /// PyTorch and safetensors: the most the reader buffers at once beyond the
    /// tensors, reading values from a source outside memory (torch_file.hpp,
    /// safetensors.hpp), and the bytes of structure it parses (the pickles, a
    /// JSON header: what it builds from them grows with them).
    std::uint64_t buffer_bytes = 0, structure_bytes = 0;
    /// .mkp: the file's own info (format.hpp).
    FileInfo mkp;
};

struct ImportOptions {
    std::string architecture;        // a SPEC: build this model, load the file's tensors (strict)
    bool assume_sequential = false;  // a pickled module: run its leaves in registration order
    /// Loading into an architecture: only the file's keys that start with this
    /// prefix ("module.", "model.") are the model's, with the prefix taken off.
    std::string prefix;
    /// A checkpoint: the entry that holds the model ("state_dict", "ema", ...);
    /// "" chooses as documented.
    std::string entry;
};

struct Imported {
    SourceInfo info;
    StateDict tensors;  // every tensor, float32 (moved into `model` when one was built)
    bool has_model = false;
    Sequential model;
    std::string arch_from;  // "file", "module tree", "architecture option", "assume_sequential"
};

/// Reads and validates a file's structure (all four formats) without
/// converting tensor values (torch: storages located and sized; .mkp and
/// safetensors: the whole layout).
/// `entry`: a torch checkpoint's entry to describe (ImportOptions::entry).
Status read_source(const ByteSource& source, SourceInfo& info, const std::string& entry = "");
/// The integrity check of inspect and fileInfo(bytes, true): a torch file's
/// storages read once each and CRC-checked (verify_torch: no view is ever
/// materialised, whatever its strides), a safetensors file's values converted
/// (its tensors cover the file at most once), a .mkp file's data streamed
/// through read_info. Memory: a torch file's largest storage; a safetensors
/// file's tensors (import_bytes).
Status check_source(const ByteSource& source, const std::string& entry = "");
Status read_source(const std::uint8_t* data, std::size_t size, SourceInfo& info, const std::string& entry = "");

/// Reads every tensor and builds a model when the file or the options say
/// what runs (need_model: needs_architecture otherwise). A .mkp file, a torch
/// zip and a safetensors file are read from the source by ranges, each tensor's
/// bytes once (format.hpp, read_torch, read_safetensors); a legacy torch file
/// is read from memory (a source outside memory is copied in first).
Status import_file(const ByteSource& source, const ImportOptions& options, bool need_model, Imported& out);
Status import_file(const std::uint8_t* data, std::size_t size, const ImportOptions& options, bool need_model,
                   Imported& out);

/// The most memory import_file(source, options, need_model, ...) holds at
/// once for a file that read_source described as `info`, read from a source
/// outside memory (as in wasm): its tensors — float32, but a .mkp model read
/// as a model with its own architecture holds its Linear weights as stored
/// (compact.hpp) — the reader's largest buffer, and its bookkeeping. For a
/// caller that reserves memory first.
std::uint64_t import_bytes(const SourceInfo& info, const ImportOptions& options, bool need_model);

/// The formats a state dict is exported to.
enum class ExportFormat { safetensors, torch };

/// The most memory write_safetensors / write_torch hold at once for a state
/// dict of these tensors stored in `dtype` (the file, and for torch every
/// storage before it goes into the archive), beyond the state dict itself.
std::uint64_t export_bytes(ExportFormat format, const std::vector<std::pair<std::string, Shape>>& tensors, DType dtype);

/// The leaves of a module tree as layers: nn.Sequential nesting gives dotted
/// names ("0.1"); `sequential_only` refuses any other container class.
Status module_layers(const ModuleNode& root, bool sequential_only, std::vector<LayerSpec>& out);

/// "__main__.Model(fc1: Linear(in_features=3, out_features=5))", for messages and inspect.
std::string describe_module(const ModuleNode& node);

}  // namespace modelkeep
