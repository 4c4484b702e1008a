// main.cpp — the `modelkeep` command-line tool: init, inspect, predict,
// convert and train .mkp, PyTorch (.pt) and safetensors files. Argument parsing, file I/O and printing live here; all
// the real work is the core's. Exit status: 0 ok, 1 data/format/I-O error, 2 usage.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "cli/dataset.hpp"
#include "cli/help.hpp"
#include "cli/json.hpp"
#include "decimal.hpp"
#include "dtype.hpp"
#include "format.hpp"
#include "import.hpp"
#include "model.hpp"
#include "safetensors.hpp"
#include "spec.hpp"
#include "status.hpp"
#include "tensor.hpp"
#include "torch_checkpoint.hpp"
#include "torch_file.hpp"
#include "trainer.hpp"
#include "utf8.hpp"

namespace modelkeep {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;

// ---------------------------------------------------------------- errors

int report(const Status& st) {
    std::cerr << "modelkeep: " << code_name(st.code()) << ": " << escape_text(st.message()) << "\n";
    return exit_error;
}

int usage_error(const std::string& command, const std::string& message) {
    const std::string see = command.empty() ? "modelkeep --help" : "modelkeep help " + command;
    std::cerr << "modelkeep: usage: " << escape_text(message) << " (see '" << see << "')\n";
    return exit_usage;
}

// ---------------------------------------------------------------- files

Status read_stream(std::FILE* f, const std::string& what, std::vector<std::uint8_t>& out) {
    std::vector<std::uint8_t> bytes;
    std::uint8_t buf[1 << 16];
    for (;;) {
        const std::size_t n = std::fread(buf, 1, sizeof buf, f);
        bytes.insert(bytes.end(), buf, buf + n);
        if (n < sizeof buf) break;
    }
    if (std::ferror(f)) return error(Code::io_error, "cannot read " + what + ": " + std::strerror(errno));
    out = std::move(bytes);
    return Status::success();
}

Status read_whole_file(const std::string& path, std::vector<std::uint8_t>& out) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return error(Code::io_error, "cannot open '" + path + "': " + std::strerror(errno));
    const Status st = read_stream(f, "'" + path + "'", out);
    std::fclose(f);
    return st;
}

// Writes OUT.tmp-<pid>, then renames it over `path`: a failure never leaves
// a partial file at `path` (nor, as far as possible, the temporary one).
Status write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        return error(Code::io_error,
                     "cannot write '" + path + "': cannot create '" + tmp + "': " + std::strerror(errno));
    bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    int err = errno;
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        return error(Code::io_error, "cannot write '" + path + "': " + std::strerror(err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        err = errno;
        std::remove(tmp.c_str());
        return error(Code::io_error,
                     "cannot write '" + path + "': cannot rename '" + tmp + "' to it: " + std::strerror(err));
    }
    return Status::success();
}

// ---------------------------------------------------------------- verified writes

enum class OutFormat { mkp, safetensors, torch };

// What a file just built reads back as, with modelkeep's own reader for its format.
struct ReadBack {
    StateDict tensors;
    std::vector<bool> exact;  // per tensor: stored as float32, so its values must come back bit for bit
    bool has_metadata = false;
    Metadata metadata;
};

Status read_back(OutFormat format, const std::vector<std::uint8_t>& bytes, ReadBack& out) {
    switch (format) {
        case OutFormat::mkp: {
            LoadedFile file;  // read_file checks a model's tensors against its layers too
            MK_TRY(read_file(bytes.data(), bytes.size(), file));
            for (const TensorInfo& t : file.info.tensors) out.exact.push_back(t.dtype == DType::f32);
            out.tensors = std::move(file.tensors);
            out.has_metadata = true;
            out.metadata = std::move(file.info.metadata);
            return Status::success();
        }
        case OutFormat::safetensors: {
            SafetensorsInfo info;
            MK_TRY(read_safetensors_info(bytes.data(), bytes.size(), info));
            MK_TRY(read_safetensors(bytes.data(), bytes.size(), out.tensors, &out.metadata));
            for (const SafetensorsTensor& t : info.tensors) out.exact.push_back(t.dtype == "F32");
            out.has_metadata = true;
            return Status::success();
        }
        case OutFormat::torch: {
            TorchFile file;
            MK_TRY(read_torch(bytes.data(), bytes.size(), true, file));
            for (const TorchTensorInfo& t : file.infos) out.exact.push_back(t.dtype == StorageType::f32);
            out.tensors = std::move(file.tensors);
            return Status::success();
        }
    }
    return Status::success();
}

// The read-back holds what was written: the same names and shapes, the same
// float32 bytes wherever a tensor was stored as float32, the same metadata.
Status compare_read_back(const StateDict& want, const Metadata* metadata, const ReadBack& got) {
    const auto differs = [](const std::string& what) {
        return error(Code::io_error, "the new file does not read back as written: " + what);
    };
    if (got.tensors.size() != want.size() || got.exact.size() != want.size())
        return differs("it holds " + std::to_string(got.tensors.size()) + " tensors, not " +
                       std::to_string(want.size()));
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < got.tensors.size(); ++i) index.emplace(got.tensors[i].first, i);
    for (const auto& [name, t] : want) {
        const auto it = index.find(name);
        if (it == index.end()) return differs("tensor '" + escape_text(name) + "' is missing");
        const Tensor& g = got.tensors[it->second].second;
        if (shape_of(g) != shape_of(t))
            return differs("tensor '" + escape_text(name) + "' has shape " + shape_to_string(shape_of(g)) + ", not " +
                           shape_to_string(shape_of(t)));
        if (got.exact[it->second] && t.size() && std::memcmp(g.data(), t.data(), t.size() * sizeof(float)) != 0)
            return differs("tensor '" + escape_text(name) + "' has other values");
    }
    if (metadata && got.has_metadata && got.metadata != *metadata) return differs("the metadata differs");
    return Status::success();
}

// A writer's or read-back's error, saying that `path` was not touched.
Status not_written(const std::string& path, const Status& st) {
    return error(st.code(),
                 st.message() + "; '" + escape_text(path) + "' was not written (an existing file is left as it was)");
}

// Must be the only way a command writes a file: reads `bytes` back with the
// reader of `format` and compares them with `want` (and `metadata`, if given)
// before write_file_atomic replaces `path`. On any failure `path` is left as
// it was, and the error says so.
Status write_verified(const std::string& path, OutFormat format, std::vector<std::uint8_t>& bytes,
                      const StateDict& want, const Metadata* metadata) {
#ifdef MODELKEEP_CLI_TEST_HOOKS
    // tests/test_cli.cpp's hooked build only: spoil the bytes the way a writer
    // bug would, for writers no input makes fail.
    if (std::getenv("MODELKEEP_TEST_SPOIL_OUTPUT") && !bytes.empty()) bytes.back() ^= 0x5a;
#endif
    ReadBack got;
    Status st = read_back(format, bytes, got);
    if (st.ok()) st = compare_read_back(want, metadata, got);
    if (!st.ok()) return not_written(path, st);
    return write_file_atomic(path, bytes);
}

// ---------------------------------------------------------------- arguments

struct OptionDef {
    const char* name;  // "--seed"
    bool takes_value;
    bool repeatable;
};

struct Args {
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> options;  // (name, value) in order

    bool has(const std::string& name) const {
        for (const auto& o : options)
            if (o.first == name) return true;
        return false;
    }
    const std::string* get(const std::string& name) const {
        const std::string* v = nullptr;
        for (const auto& o : options)
            if (o.first == name) v = &o.second;
        return v;
    }
};

bool wants_help(const std::vector<std::string>& argv) {
    for (const std::string& a : argv) {
        if (a == "--") return false;
        if (a == "-h" || a == "--help") return true;
    }
    return false;
}

// "--name value", "--name=value", flags, and "--" ending the options. On a
// usage error sets `message` and returns false.
bool parse_args(const std::vector<std::string>& argv, const std::vector<OptionDef>& defs, Args& args,
                std::string& message) {
    bool options_done = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (options_done || a.size() < 2 || a[0] != '-') {
            args.positional.push_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        const std::size_t eq = a.find('=');
        const std::string name = a.substr(0, eq);
        const OptionDef* def = nullptr;
        for (const OptionDef& d : defs)
            if (name == d.name) def = &d;
        if (!def) {
            message = "unknown option '" + name + "'";
            return false;
        }
        std::string value;
        if (def->takes_value) {
            if (eq != std::string::npos) {
                value = a.substr(eq + 1);
            } else if (i + 1 < argv.size()) {
                value = argv[++i];
            } else {
                message = "option " + name + " needs a value";
                return false;
            }
        } else if (eq != std::string::npos) {
            message = "option " + name + " takes no value";
            return false;
        }
        if (!def->repeatable && args.has(name)) {
            message = "option " + name + " given twice";
            return false;
        }
        args.options.emplace_back(name, value);
    }
    return true;
}

bool parse_seed(const std::string& text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20) return false;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        const std::uint64_t d = std::uint64_t(c - '0');
        if (n > (UINT64_MAX - d) / 10) return false;
        n = n * 10 + d;
    }
    out = n;
    return true;
}

// Applies every --meta KEY=VALUE in order: replaces a key's value or appends it.
bool apply_meta(const Args& args, Metadata& metadata, std::string& message) {
    for (const auto& [name, value] : args.options) {
        if (name != "--meta") continue;
        const std::size_t eq = value.find('=');
        if (eq == std::string::npos || eq == 0) {
            message = "--meta needs KEY=VALUE with a non-empty KEY, got '" + value + "'";
            return false;
        }
        const std::string key = value.substr(0, eq);
        bool replaced = false;
        for (auto& kv : metadata) {
            if (kv.first == key) {
                kv.second = value.substr(eq + 1);
                replaced = true;
            }
        }
        if (!replaced) metadata.emplace_back(key, value.substr(eq + 1));
    }
    return true;
}

bool get_dtype(const Args& args, DType& out, std::string& message) {
    out = DType::f32;
    const std::string* v = args.get("--dtype");
    if (v && !parse_dtype(*v, out)) {
        message = "unknown dtype '" + *v + "' (use f32, f16, bf16 or int8)";
        return false;
    }
    return true;
}

// ---------------------------------------------------------------- printing

bool contains_text(const std::string& haystack, const char* needle) {
    return haystack.find(needle) != std::string::npos;
}

// --arch SPEC [--prefix P] / --assume-sequential (predict, convert).
bool get_import_options(const Args& args, ImportOptions& out, std::string& message) {
    if (const std::string* arch = args.get("--arch")) {
        if (arch->empty()) {
            message = "--arch needs a SPEC";
            return false;
        }
        out.architecture = *arch;
    }
    out.assume_sequential = args.has("--assume-sequential");
    if (out.assume_sequential && !out.architecture.empty()) {
        message = "give either --arch or --assume-sequential, not both";
        return false;
    }
    if (const std::string* entry = args.get("--entry")) {
        if (entry->empty()) {
            message = "--entry needs the name of a checkpoint entry";
            return false;
        }
        out.entry = *entry;
    }
    if (const std::string* prefix = args.get("--prefix")) {
        if (prefix->empty() || out.architecture.empty()) {
            message = "--prefix needs a prefix, and goes with --arch";
            return false;
        }
        out.prefix = *prefix;
    }
    return true;
}

std::string plural(std::uint64_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

// "full model, 2 layers, 4 tensors, 26 parameters, f16 weights, 208 bytes"
std::string describe(const FileInfo& info, DType dtype) {
    std::string s = info.kind == FileKind::model ? "full model, " + plural(info.layers.size(), "layer") + ", "
                                                 : std::string("state dict, ");
    s += plural(info.tensors.size(), "tensor") + ", " + plural(info.param_count, "parameter") + ", ";
    s += std::string(dtype_name(dtype)) + " weights, " + plural(info.file_bytes, "byte");
    return s;
}

// Writes rows as columns separated by two spaces, indented by two; columns
// in `right` are right-aligned (numbers).
void print_table(std::vector<std::vector<std::string>> rows, const std::vector<bool>& right) {
    for (auto& row : rows)
        for (std::string& cell : row) cell = escape_text(cell);
    std::vector<std::size_t> width;
    for (const auto& row : rows)
        for (std::size_t c = 0; c < row.size(); ++c) {
            if (width.size() <= c) width.push_back(0);
            if (row[c].size() > width[c]) width[c] = row[c].size();
        }
    for (const auto& row : rows) {
        std::string line = " ";
        for (std::size_t c = 0; c < row.size(); ++c) {
            const std::string pad(width[c] - row[c].size(), ' ');
            const bool last = c + 1 == row.size();
            line += " ";
            if (c < right.size() && right[c])
                line += pad + row[c];
            else
                line += row[c] + (last ? "" : pad);
            if (!last) line += " ";
        }
        std::cout << line << "\n";
    }
}

// "name          value": the inspect listing's fields (value escaped: it may come from the file).
void field(const char* name, const std::string& value) {
    std::string n = name;
    n.resize(14, ' ');
    std::cout << n << escape_text(value) << "\n";
}

void print_metadata(const Metadata& metadata) {
    std::cout << "\nmetadata (" << metadata.size() << ")" << (metadata.empty() ? "" : ":") << "\n";
    if (metadata.empty()) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, v] : metadata) rows.push_back({k, "= " + v});
    print_table(rows, {});
}

// ,"metadata":{...},"integrity":{...}}: how every inspect --json ends.
std::string json_tail(const Metadata& metadata, const Status& integrity) {
    std::string j = ",\"metadata\":{";
    for (std::size_t i = 0; i < metadata.size(); ++i)
        j += (i ? "," : "") + json::quote(metadata[i].first) + ":" + json::quote(metadata[i].second);
    j += "},\"integrity\":{\"ok\":" + std::string(integrity.ok() ? "true" : "false") + ",\"code\":\"" +
         code_name(integrity.code()) + "\",\"message\":" + json::quote(integrity.message()) + "}}";
    return j;
}

const char* kind_name(FileKind kind) { return kind == FileKind::model ? "model" : "state_dict"; }

// A checkpoint's TRAINING section (checkpoint.hpp), as inspect shows it.
struct TrainingView {
    bool present = false;  // the file has the section and it reads
    TrainingState state;
};

std::string scheduler_line(const TrainerOptions& o) {
    return o.has_scheduler ? scheduler_text(o.scheduler) + (o.scheduler_per_batch ? " per batch" : " per epoch")
                           : "none";
}

void print_training_text(const TrainingView& t) {
    if (!t.present) return;
    const TrainingState& s = t.state;
    const TrainerOptions& o = s.options;
    std::cout << "\ntraining:\n";
    field("  optimizer", optimizer_text(o.optimizer));
    field("  loss", loss_text(o.loss));
    field("  scheduler", scheduler_line(o));
    field("  progress", plural(std::uint64_t(s.epoch), "epoch") + " done" +
                            (s.batch > 0 ? " and " + std::to_string(s.batch) + " batches of the next" : "") + ", " +
                            plural(std::uint64_t(s.steps), "step") + " in all");
    field("  batches",
          "size " + std::to_string(o.batch_size) + (o.shuffle ? ", shuffled" : ", in order") + ", seed " +
              std::to_string(o.seed) +
              (o.max_grad_norm > 0 ? ", gradients clipped at " + format_float(float(o.max_grad_norm)) : ""));
    field("  mode", s.training ? "train()" : "eval()");
    std::string meta;
    for (const auto& [k, v] : s.metadata) meta += (meta.empty() ? "" : ", ") + escape_text(k) + "=" + escape_text(v);
    field("  metadata", meta.empty() ? "none" : meta);
}

std::string training_json(const TrainingView& t) {
    if (!t.present) return "null";
    const TrainingState& s = t.state;
    const TrainerOptions& o = s.options;
    std::string j = "{\"optimizer\":" + json::quote(optimizer_text(o.optimizer));
    j += ",\"loss\":" + json::quote(loss_text(o.loss));
    j += ",\"scheduler\":" + (o.has_scheduler ? json::quote(scheduler_text(o.scheduler)) : "null");
    j += ",\"scheduler_per_batch\":" + std::string(o.scheduler_per_batch ? "true" : "false");
    j += ",\"epoch\":" + std::to_string(s.epoch) + ",\"batch\":" + std::to_string(s.batch) +
         ",\"steps\":" + std::to_string(s.steps);
    j += ",\"batch_size\":" + std::to_string(o.batch_size) + ",\"shuffle\":" + (o.shuffle ? "true" : "false") +
         ",\"seed\":" + std::to_string(o.seed) + ",\"max_grad_norm\":" + json::number(float(o.max_grad_norm));
    j += ",\"training\":" + std::string(s.training ? "true" : "false") + ",\"metadata\":{";
    for (std::size_t i = 0; i < s.metadata.size(); ++i)
        j += std::string(i ? "," : "") + json::quote(s.metadata[i].first) + ":" + json::quote(s.metadata[i].second);
    return j + "}}";
}

void print_inspect_text(const std::string& path, const FileInfo& info, const TrainingView& training,
                        const Status& integrity) {
    field("file", path);
    field("version", std::to_string(info.major) + "." + std::to_string(info.minor));
    field("kind", info.kind == FileKind::model ? "full model" : "state dict (tensors only)");
    field("alignment", plural(std::uint64_t(1) << info.align_log2, "byte"));
    field("header", plural(info.header_bytes, "byte"));
    field("size", plural(info.file_bytes, "byte"));
    field("parameters", std::to_string(info.param_count));
    field("architecture", info.kind == FileKind::model ? format_spec(info.layers) : "none (state dict)");

    if (info.kind == FileKind::model) {
        std::cout << "\nlayers (" << info.layers.size() << "):\n";
        std::vector<std::vector<std::string>> rows = {{"name", "kind", "spec"}};
        for (const LayerSpec& l : info.layers) rows.push_back({l.name, layer_kind_name(l.kind), format_layer(l)});
        print_table(rows, {});
    }

    std::cout << "\ntensors (" << info.tensors.size() << "):\n";
    std::vector<std::vector<std::string>> rows = {{"name", "dtype", "shape", "bytes", "offset"}};
    for (const TensorInfo& t : info.tensors)
        rows.push_back(
            {t.name, dtype_name(t.dtype), shape_to_string(t.shape), std::to_string(t.bytes), std::to_string(t.offset)});
    print_table(rows, {false, false, false, true, true});

    print_metadata(info.metadata);
    print_training_text(training);

    std::cout << "\n";
    field("integrity", integrity.ok() ? "ok (header and data CRC-32, padding and int8 scales verified)"
                                      : "FAILED: " + integrity.to_string());
}

void print_inspect_json(const FileInfo& info, const TrainingView& training, const Status& integrity) {
    std::string j = "{\"version\":\"" + std::to_string(info.major) + "." + std::to_string(info.minor) + "\"";
    j += ",\"kind\":\"" + std::string(kind_name(info.kind)) + "\"";
    j += ",\"align\":" + std::to_string(std::uint64_t(1) << info.align_log2);
    j += ",\"header_bytes\":" + std::to_string(info.header_bytes);
    j += ",\"file_bytes\":" + std::to_string(info.file_bytes);
    j += ",\"param_count\":" + std::to_string(info.param_count);
    j += ",\"architecture\":" + (info.kind == FileKind::model ? json::quote(format_spec(info.layers)) : "null");
    j += ",\"layers\":[";
    for (std::size_t i = 0; i < info.layers.size(); ++i) {
        const LayerSpec& l = info.layers[i];
        j += std::string(i ? "," : "") + "{\"name\":" + json::quote(l.name) +
             ",\"kind\":" + json::quote(layer_kind_name(l.kind)) + ",\"spec\":" + json::quote(format_layer(l)) + "}";
    }
    j += "],\"tensors\":[";
    for (std::size_t i = 0; i < info.tensors.size(); ++i) {
        const TensorInfo& t = info.tensors[i];
        j += std::string(i ? "," : "") + "{\"name\":" + json::quote(t.name) + ",\"dtype\":\"" + dtype_name(t.dtype) +
             "\",\"shape\":[";
        for (std::size_t d = 0; d < t.shape.size(); ++d) j += (d ? "," : "") + std::to_string(t.shape[d]);
        j += "],\"bytes\":" + std::to_string(t.bytes) + ",\"offset\":" + std::to_string(t.offset) + "}";
    }
    j += "],\"training\":" + training_json(training);
    j += json_tail(info.metadata, integrity);
    std::cout << j << "\n";
}

// inspect of a PyTorch or safetensors file: what it holds and what would run.
void print_source_text(const std::string& path, const SourceInfo& info, const Status& integrity) {
    field("file", path);
    field("format", file_format_name(info.format));
    field("holds", info.source);
    if (info.entries.size() > 1) {  // a checkpoint with a choice: --entry NAME picks another
        std::string list;
        for (const auto& e : info.entries) list += (list.empty() ? "" : ", ") + e;
        field("entries", list + " (--entry NAME chooses one)");
    }
    field("architecture", info.has_layers ? format_spec(info.layers) : "none: " + info.arch_note);
    if (info.has_module) field("module tree", describe_module(info.module));
    if (!info.globals.empty()) {
        std::cout << "\nglobals (" << info.globals.size() << "):\n";
        for (const auto& g : info.globals) std::cout << "  " << escape_text(g) << "\n";
    }
    std::cout << "\ntensors (" << info.tensors.size() << "):\n";
    std::vector<std::vector<std::string>> rows = {{"name", "dtype", "shape"}};
    for (const SourceTensor& t : info.tensors) rows.push_back({t.name, t.dtype, shape_to_string(t.shape)});
    print_table(rows, {});
    print_metadata(info.metadata);
    std::cout << "\n";
    field("integrity",
          integrity.ok() ? "ok (every storage the tensors use read and checked)" : "FAILED: " + integrity.to_string());
}

void print_source_json(const SourceInfo& info, const Status& integrity) {
    std::string j = "{\"format\":" + json::quote(file_format_name(info.format));
    j += ",\"holds\":" + json::quote(info.source);
    j += ",\"entries\":[";
    for (std::size_t i = 0; i < info.entries.size(); ++i) j += (i ? "," : "") + json::quote(info.entries[i]);
    j += "]";
    j += ",\"architecture\":" + (info.has_layers ? json::quote(format_spec(info.layers)) : "null");
    j += ",\"architecture_note\":" + json::quote(info.arch_note);
    j += ",\"module_tree\":" + (info.has_module ? json::quote(describe_module(info.module)) : "null");
    j += ",\"globals\":[";
    for (std::size_t i = 0; i < info.globals.size(); ++i) j += (i ? "," : "") + json::quote(info.globals[i]);
    j += "],\"tensors\":[";
    for (std::size_t i = 0; i < info.tensors.size(); ++i) {
        const SourceTensor& t = info.tensors[i];
        j += std::string(i ? "," : "") + "{\"name\":" + json::quote(t.name) + ",\"dtype\":" + json::quote(t.dtype) +
             ",\"shape\":[";
        for (std::size_t d = 0; d < t.shape.size(); ++d) j += (d ? "," : "") + std::to_string(t.shape[d]);
        j += "]}";
    }
    j += "]" + json_tail(info.metadata, integrity);
    std::cout << j << "\n";
}

// ---------------------------------------------------------------- commands

int cmd_init(const std::vector<std::string>& argv) {
    Args args;
    std::string msg;
    if (!parse_args(
            argv,
            {{"--seed", true, false}, {"--dtype", true, false}, {"--meta", true, true}, {"--state-dict", false, false}},
            args, msg))
        return usage_error("init", msg);
    if (args.positional.size() != 2)
        return usage_error("init", args.positional.size() < 2
                                       ? "init needs SPEC and OUT.mkp"
                                       : "init takes only SPEC and OUT.mkp, got extra '" + args.positional[2] + "'");
    std::uint64_t seed = 0;
    if (const std::string* s = args.get("--seed"); s && !parse_seed(*s, seed))
        return usage_error("init", "--seed needs an integer from 0 to 18446744073709551615, got '" + *s + "'");
    WriteOptions options;
    if (!get_dtype(args, options.dtype, msg) || !apply_meta(args, options.metadata, msg))
        return usage_error("init", msg);
    const std::string& out_path = args.positional[1];

    std::vector<LayerSpec> specs;
    Status st = parse_spec(args.positional[0], specs);
    if (!st.ok()) return report(st);
    Sequential model;
    st = Sequential::create(specs, seed, model);
    if (!st.ok()) return report(st);

    std::vector<std::uint8_t> bytes;
    const StateDict tensors = model.state_dict();
    st = args.has("--state-dict") ? write_state_dict(tensors, options, bytes) : write_model(model, options, bytes);
    if (!st.ok()) return report(not_written(out_path, st));
    st = write_verified(out_path, OutFormat::mkp, bytes, tensors, &options.metadata);
    if (!st.ok()) return report(st);

    FileInfo info;
    st = read_info(bytes.data(), bytes.size(), false, info);
    if (!st.ok()) return report(st);
    std::cout << "wrote " << escape_text(out_path) << ": " << describe(info, options.dtype) << "\n";
    return exit_ok;
}

int cmd_inspect(const std::vector<std::string>& argv) {
    Args args;
    std::string msg;
    if (!parse_args(argv, {{"--json", false, false}, {"--entry", true, false}}, args, msg))
        return usage_error("inspect", msg);
    ImportOptions inspect_options;
    if (const std::string* entry = args.get("--entry")) inspect_options.entry = *entry;
    if (args.positional.size() != 1)
        return usage_error("inspect", args.positional.empty()
                                          ? "inspect needs FILE"
                                          : "inspect takes one FILE, got extra '" + args.positional[1] + "'");
    const std::string& path = args.positional[0];
    std::vector<std::uint8_t> bytes;
    Status st = read_whole_file(path, bytes);
    if (!st.ok()) return report(st);

    if (detect_format(bytes.data(), bytes.size()) != FileFormat::mkp) {
        SourceInfo source;
        st = read_source(bytes.data(), bytes.size(), source, inspect_options.entry);
        if (!st.ok()) return report(st);
        const Status integrity = check_source(MemorySource(bytes.data(), bytes.size()), inspect_options.entry);
        if (args.has("--json"))
            print_source_json(source, integrity);
        else
            print_source_text(path, source, integrity);
        std::cout.flush();
        return integrity.ok() ? exit_ok : report(integrity);
    }

    // The listing needs only a readable header; the data is checked separately.
    FileInfo info;
    st = read_info(bytes.data(), bytes.size(), false, info);
    if (!st.ok()) return report(st);
    FileInfo checked;
    Status integrity = read_info(bytes.data(), bytes.size(), true, checked);
    // A checkpoint's training section is read (and checked) whole, as --resume would.
    TrainingView training;
    bool has_section = false;
    for (const SectionData& d : info.section_data) has_section = has_section || d.tag == training_section_tag;
    if (integrity.ok() && has_section && info.kind == FileKind::model) {
        Sequential model;
        integrity = read_checkpoint(MemorySource(bytes.data(), bytes.size()), model, training.state, training.present);
        if (!integrity.ok()) training.present = false;
    }

    if (args.has("--json"))
        print_inspect_json(info, training, integrity);
    else
        print_inspect_text(path, info, training, integrity);
    std::cout.flush();
    if (!integrity.ok()) return report(integrity);
    return exit_ok;
}

int cmd_predict(const std::vector<std::string>& argv) {
    Args args;
    std::string msg;
    if (!parse_args(argv,
                    {{"--input", true, false},
                     {"--arch", true, false},
                     {"--prefix", true, false},
                     {"--entry", true, false},
                     {"--assume-sequential", false, false}},
                    args, msg))
        return usage_error("predict", msg);
    ImportOptions import_options;
    if (!get_import_options(args, import_options, msg)) return usage_error("predict", msg);
    if (args.positional.size() != 1)
        return usage_error("predict", args.positional.empty()
                                          ? "predict needs FILE"
                                          : "predict takes one FILE, got extra '" + args.positional[1] + "'");
    const std::string* input = args.get("--input");
    if (!input) return usage_error("predict", "predict needs --input JSON, --input @PATH or --input -");
    const std::string& path = args.positional[0];

    std::vector<std::uint8_t> bytes;
    Status st = read_whole_file(path, bytes);
    if (!st.ok()) return report(st);
    Imported imported;
    st = import_file(bytes.data(), bytes.size(), import_options, true, imported);
    if (st.code() == Code::needs_architecture)  // name the flags (the message is shared with JS)
        return report(
            error(st.code(), st.message() + " — here: --arch SPEC" +
                                 (contains_text(st.message(), "module tree") ? " or --assume-sequential" : "")));
    if (!st.ok()) return report(st);
    const Sequential& model = imported.model;
    bytes = {};

    std::string text;
    if (*input == "-" || (!input->empty() && (*input)[0] == '@')) {
        std::vector<std::uint8_t> raw;
        st = *input == "-" ? read_stream(stdin, "standard input", raw) : read_whole_file(input->substr(1), raw);
        if (!st.ok()) return report(st);
        text.assign(raw.begin(), raw.end());
    } else {
        text = *input;
    }
    Shape shape;
    std::vector<float> data;
    st = json::parse_array(text, shape, data);
    if (!st.ok()) return report(st);
    text = {};

    const Tensor x = from_data(shape, data.data());
    data = {};
    Tensor y;
    st = model.forward(x, y);
    if (!st.ok()) return report(st);

    std::string out = "{\"shape\":[";
    const Shape out_shape = shape_of(y);
    for (std::size_t d = 0; d < out_shape.size(); ++d) out += (d ? "," : "") + std::to_string(out_shape[d]);
    out += "],\"data\":[";
    out.reserve(out.size() + y.size() * 12 + 4);
    const float* values = y.data();
    for (std::size_t i = 0; i < y.size(); ++i) {
        if (i) out += ',';
        out += json::number(values[i]);
    }
    out += "]}\n";
    std::cout << out;
    return exit_ok;
}

OutFormat out_format(const std::string& path) {
    auto ends = [&](const char* ext) {
        const std::size_t n = std::strlen(ext);
        if (path.size() < n) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (std::tolower(static_cast<unsigned char>(path[path.size() - n + i])) != ext[i]) return false;
        return true;
    };
    if (ends(".safetensors")) return OutFormat::safetensors;
    if (ends(".pt") || ends(".pth")) return OutFormat::torch;
    return OutFormat::mkp;
}

int cmd_convert(const std::vector<std::string>& argv) {
    Args args;
    std::string msg;
    if (!parse_args(argv,
                    {{"--dtype", true, false},
                     {"--meta", true, true},
                     {"--state-dict", false, false},
                     {"--arch", true, false},
                     {"--prefix", true, false},
                     {"--entry", true, false},
                     {"--assume-sequential", false, false}},
                    args, msg))
        return usage_error("convert", msg);
    if (args.positional.size() != 2)
        return usage_error("convert", args.positional.size() < 2
                                          ? "convert needs IN and OUT"
                                          : "convert takes only IN and OUT, got extra '" + args.positional[2] + "'");
    WriteOptions options;
    if (!get_dtype(args, options.dtype, msg)) return usage_error("convert", msg);
    ImportOptions import_options;
    if (!get_import_options(args, import_options, msg)) return usage_error("convert", msg);
    const std::string& in_path = args.positional[0];
    const std::string& out_path = args.positional[1];
    const OutFormat format = out_format(out_path);

    std::vector<std::uint8_t> bytes;
    Status st = read_whole_file(in_path, bytes);
    if (!st.ok()) return report(st);
    const std::uint64_t in_bytes = bytes.size();
    Imported in;
    st = import_file(bytes.data(), bytes.size(), import_options, false, in);
    if (!st.ok()) return report(st);
    bytes = {};
    options.metadata = in.info.metadata;
    if (!apply_meta(args, options.metadata, msg)) return usage_error("convert", msg);

    const bool full = in.has_model && !args.has("--state-dict") && format == OutFormat::mkp;
    const StateDict tensors = in.has_model ? in.model.state_dict() : std::move(in.tensors);
    if (format == OutFormat::safetensors)
        st = write_safetensors(tensors, options.metadata, options.dtype, bytes);
    else if (format == OutFormat::torch)
        st = write_torch(tensors, options.dtype, bytes);
    else if (full)
        st = write_model(in.model, options, bytes);
    else
        st = write_state_dict(tensors, options, bytes);
    if (!st.ok()) return report(not_written(out_path, st));
    st = write_verified(out_path, format, bytes, tensors, format == OutFormat::torch ? nullptr : &options.metadata);
    if (!st.ok()) return report(st);

    std::string what;
    if (format == OutFormat::mkp) {
        FileInfo info;
        st = read_info(bytes.data(), bytes.size(), false, info);
        if (!st.ok()) return report(st);
        what = describe(info, options.dtype);
    } else {
        what = std::string(format == OutFormat::torch ? "PyTorch state dict (torch.load, weights_only=True), "
                                                      : "safetensors state dict, ") +
               plural(tensors.size(), "tensor") + ", " + dtype_name(options.dtype) + " weights, " +
               plural(bytes.size(), "byte");
    }
    std::cout << "wrote " << escape_text(out_path) << ": " << what << " (from " << file_format_name(in.info.format)
              << ", " << plural(in_bytes, "byte");
    if (full) std::cout << "; architecture from the " << in.arch_from;
    if (!in.has_model && format == OutFormat::mkp)
        std::cout << "; no architecture: pass --arch SPEC" << (in.info.has_module ? " or --assume-sequential" : "")
                  << " for a full model";
    std::cout << ")\n";
    return exit_ok;
}

// ---------------------------------------------------------------- train

// MODEL of `train`: a model file (any format import_file reads; PyTorch files
// with --arch / --assume-sequential) when a file of that name exists, else a SPEC
// initialised with `seed`.
Status train_model(const std::string& model_arg, const ImportOptions& import_options, std::uint64_t seed,
                   Sequential& model, std::string& what) {
    if (std::FILE* f = std::fopen(model_arg.c_str(), "rb")) {
        std::fclose(f);
        std::vector<std::uint8_t> bytes;
        MK_TRY(read_whole_file(model_arg, bytes));
        Imported imported;
        const Status st = import_file(bytes.data(), bytes.size(), import_options, true, imported);
        if (st.code() == Code::needs_architecture)
            return error(st.code(), st.message() + " — here: --arch SPEC" +
                                        (contains_text(st.message(), "module tree") ? " or --assume-sequential" : ""));
        MK_TRY(st);
        model = std::move(imported.model);
        what = "the weights of '" + model_arg + "'";
        return Status::success();
    }
    std::vector<LayerSpec> specs;
    MK_TRY(parse_spec(model_arg, specs));
    what = "a new model (seed " + std::to_string(seed) + ")";
    return Sequential::create(specs, seed, model);
}

// One line of progress on stderr: on a terminal rewritten in place during the
// epoch, else one line per epoch.
struct Progress {
    bool tty = ::isatty(2) != 0;
    void batch(const BatchResult& r, std::int64_t last_epoch) const {
        if (!tty) return;
        const int width = 24;
        const int done = int(width * (r.batch + 1) / std::max<std::int64_t>(r.batches, 1));
        std::cerr << "\repoch " << r.epoch + 1 << "/" << last_epoch << " [" << std::string(std::size_t(done), '#')
                  << std::string(std::size_t(width - done), '.') << "] " << r.batch + 1 << "/" << r.batches << " loss "
                  << format_float(r.loss) << "   " << std::flush;
    }
    void epoch(std::int64_t epoch, std::int64_t last_epoch, double loss, const Evaluation& ev) const {
        if (tty) std::cerr << "\r";
        std::cerr << "epoch " << epoch << "/" << last_epoch << ": loss " << format_float(float(loss));
        if (!std::isnan(ev.accuracy)) std::cerr << ", accuracy " << format_float(float(ev.accuracy));
        std::cerr << std::string(tty ? 20 : 0, ' ') << "\n";
    }
};

int cmd_train(const std::vector<std::string>& argv) {
    Args args;
    std::string msg;
    if (!parse_args(argv,
                    {{"--data", true, false},
                     {"--target", true, false},
                     {"--loss", true, false},
                     {"--optimizer", true, false},
                     {"--scheduler", true, false},
                     {"--scheduler-per-batch", false, false},
                     {"--max-grad-norm", true, false},
                     {"--epochs", true, false},
                     {"--batch-size", true, false},
                     {"--shuffle", true, false},
                     {"--seed", true, false},
                     {"--resume", true, false},
                     {"--out", true, false},
                     {"--meta", true, true},
                     {"--arch", true, false},
                     {"--prefix", true, false},
                     {"--entry", true, false},
                     {"--assume-sequential", false, false}},
                    args, msg))
        return usage_error("train", msg);
    if (args.positional.size() != 1)
        return usage_error("train", args.positional.empty()
                                        ? "train needs MODEL (a SPEC or a model file)"
                                        : "train takes one MODEL, got extra '" + args.positional[1] + "'");
    ImportOptions import_options;
    if (!get_import_options(args, import_options, msg)) return usage_error("train", msg);
    const std::string* data_path = args.get("--data");
    const std::string* out_path = args.get("--out");
    const std::string* epochs_text = args.get("--epochs");
    if (!data_path || !out_path || !epochs_text)
        return usage_error("train", "train needs --data FILE, --epochs N and --out OUT");
    std::uint64_t epochs = 0, seed = 0, batch_size = 32;
    if (!parse_seed(*epochs_text, epochs) || epochs > 1000000)
        return usage_error("train", "--epochs needs an integer from 0 to 1000000, got '" + *epochs_text + "'");
    if (const std::string* s = args.get("--seed"); s && !parse_seed(*s, seed))
        return usage_error("train", "--seed needs an integer from 0 to 18446744073709551615, got '" + *s + "'");
    if (const std::string* s = args.get("--batch-size");
        s && (!parse_seed(*s, batch_size) || batch_size == 0 || batch_size > max_tensor_elements))
        return usage_error("train", "--batch-size needs an integer from 1 to 2^28, got '" + *s + "'");
    bool shuffle = true;
    if (const std::string* s = args.get("--shuffle")) {
        if (*s != "true" && *s != "false")
            return usage_error("train", "--shuffle takes true or false, got '" + *s + "'");
        shuffle = *s == "true";
    }
    double max_norm = 0;
    if (const std::string* s = args.get("--max-grad-norm")) {
        char* end = nullptr;
        max_norm = std::strtod(s->c_str(), &end);
        if (s->empty() || *end != '\0' || !(max_norm >= 0) || std::isinf(max_norm))
            return usage_error("train", "--max-grad-norm needs a number >= 0, got '" + *s + "'");
    }
    const OutFormat format = out_format(*out_path);
    if (format == OutFormat::safetensors)
        return usage_error("train",
                           "--out must end in .mkp (a modelkeep checkpoint) or .pt (a PyTorch general checkpoint)");

    TrainerOptions options;
    options.seed = seed;
    options.batch_size = std::size_t(batch_size);
    options.shuffle = shuffle;
    options.max_grad_norm = max_norm;
    options.scheduler_per_batch = args.has("--scheduler-per-batch");
    Status st;
    if (const std::string* s = args.get("--optimizer"); s && !(st = parse_optimizer(*s, options.optimizer)).ok())
        return report(st);
    if (const std::string* s = args.get("--loss"); s && !(st = parse_loss(*s, options.loss)).ok()) return report(st);
    if (const std::string* s = args.get("--scheduler")) {
        if (!(st = parse_scheduler(*s, options.scheduler)).ok()) return report(st);
        options.has_scheduler = true;
    }

    Sequential model;
    std::string model_from;
    st = train_model(args.positional[0], import_options, seed, model, model_from);
    if (!st.ok()) return report(st);

    Trainer trainer;
    // The checkpoint's options win over those given (a continuation is exact only with them): say which
    // are ignored.
    auto warn = [](const std::string& what, const std::string& given, const std::string& kept) {
        if (given != kept)
            std::cerr << "modelkeep: warning: " << what << " " << given << " ignored: the checkpoint's " << kept
                      << " continues\n";
    };
    const std::string* resume = args.get("--resume");
    if (resume) {
        std::vector<std::uint8_t> bytes;
        if (!(st = read_whole_file(*resume, bytes)).ok()) return report(st);
        const MemorySource source(bytes.data(), bytes.size());
        const FileFormat resume_format = detect_format(bytes.data(), bytes.size());
        if (resume_format == FileFormat::mkp) {
            Sequential saved;
            TrainingState state;
            bool has_training = false;
            if (!(st = read_checkpoint(source, saved, state, has_training)).ok()) return report(st);
            if (!has_training)
                return report(error(Code::wrong_kind, "'" + *resume +
                                                          "' is a model without a training section: to start "
                                                          "training from its weights, give it as MODEL instead"));
            if (format_spec(saved.specs()) != format_spec(model.specs()))
                return report(error(Code::arch_mismatch, "the checkpoint's architecture " + format_spec(saved.specs()) +
                                                             " is not MODEL's " + format_spec(model.specs())));
            if (args.has("--optimizer"))
                warn("--optimizer", optimizer_text(options.optimizer), optimizer_text(state.options.optimizer));
            if (args.has("--loss")) warn("--loss", loss_text(options.loss), loss_text(state.options.loss));
            if (args.has("--batch-size"))
                warn("--batch-size", std::to_string(batch_size), std::to_string(state.options.batch_size));
            if (args.has("--shuffle"))
                warn("--shuffle", shuffle ? "true" : "false", state.options.shuffle ? "true" : "false");
            if (args.has("--seed")) warn("--seed", std::to_string(seed), std::to_string(state.options.seed));
            model = std::move(saved);
            st = Trainer::resume(model, state, trainer);
            model_from = "'" + *resume + "' (epoch " + std::to_string(state.epoch) + ", step " +
                         std::to_string(state.steps) + ")";
        } else if (resume_format == FileFormat::torch_zip || resume_format == FileFormat::torch_legacy) {
            // A PyTorch general checkpoint: MODEL gives the architecture, the file the weights and the
            // optimizer; the loss, the batches and the generators are the options given.
            if (!args.has("--loss")) return usage_error("train", "--resume with a PyTorch checkpoint needs --loss");
            TorchCheckpoint ck;
            if (!(st = read_torch_checkpoint(source, args.has("--optimizer") ? &options.optimizer : nullptr, ck)).ok())
                return report(st);
            if (!ck.has_optimizer)
                return report(error(Code::wrong_kind, "'" + *resume +
                                                          "' holds no optimizer_state_dict: to start training "
                                                          "from its weights, give it as MODEL (with --arch)"));
            Sequential loaded;
            if (!(st = Sequential::from_state_dict(model.specs(), std::move(ck.model), loaded)).ok()) return report(st);
            model = std::move(loaded);
            if (args.has("--optimizer"))
                warn("--optimizer", optimizer_text(options.optimizer), optimizer_text(ck.optimizer));
            options.optimizer = ck.optimizer;
            if (!(st = Trainer::create(model, options, trainer)).ok()) return report(st);
            TrainingState state = trainer.state();
            if (!(st = torch_training_state(ck, model, state)).ok()) return report(st);
            st = Trainer::resume(model, state, trainer);
            model_from = "'" + *resume + "' (PyTorch checkpoint" +
                         (ck.has_epoch ? ", epoch " + std::to_string(ck.epoch) : std::string()) + ")";
        } else {
            return report(error(Code::unknown_format,
                                "--resume reads a .mkp checkpoint that train wrote or a "
                                "PyTorch general checkpoint (.pt)"));
        }
    } else {
        if (!args.has("--loss")) return usage_error("train", "train needs --loss NAME (or --resume CKPT)");
        st = Trainer::create(model, options, trainer);
    }
    if (!st.ok()) return report(st);

    Dataset data;
    {
        std::vector<std::uint8_t> raw;
        if (!(st = read_whole_file(*data_path, raw)).ok()) return report(st);
        const std::string* target = args.get("--target");
        st = read_dataset(std::string(raw.begin(), raw.end()), target ? *target : "", data);
        if (!st.ok()) return report(st);
    }
    if (!(st = trainer.set_data(data.x, data.y)).ok()) return report(st);

    std::cerr << "training " << model_from << ": " << format_spec(model.specs()) << "\n  "
              << optimizer_text(trainer.options().optimizer) << ", " << loss_text(trainer.options().loss)
              << ", batch size " << trainer.options().batch_size << ", " << plural(trainer.samples(), "sample") << "\n";
    const Progress progress;
    const std::int64_t first_epoch = trainer.state().epoch;
    // N more epochs complete; a checkpoint taken mid-epoch finishes its epoch as the first of them.
    const std::int64_t last_epoch = first_epoch + std::int64_t(epochs);
    double loss_sum = 0;
    std::size_t loss_samples = 0;
    while (trainer.state().epoch < last_epoch) {
        BatchResult r;
        if (!(st = trainer.fit_batch(r)).ok()) return report(st);
        const std::size_t n = std::min<std::size_t>(
            trainer.options().batch_size, trainer.samples() - std::size_t(r.batch) * trainer.options().batch_size);
        loss_sum += double(r.loss) * double(n);
        loss_samples += n;
        progress.batch(r, last_epoch);
        if (!r.epoch_done) continue;
        Evaluation ev;
        if (!(st = trainer.evaluate(data.x, data.y, ev)).ok()) return report(st);
        const double epoch_loss = loss_sum / double(std::max<std::size_t>(loss_samples, 1));
        progress.epoch(r.epoch + 1, last_epoch, epoch_loss, ev);
        trainer.metadata().clear();
        trainer.metadata().emplace_back("loss", format_float(float(epoch_loss)));
        if (!std::isnan(ev.accuracy)) trainer.metadata().emplace_back("accuracy", format_float(float(ev.accuracy)));
        loss_sum = 0;
        loss_samples = 0;
    }

    WriteOptions write_options;
    if (!apply_meta(args, write_options.metadata, msg)) return usage_error("train", msg);
    if (format == OutFormat::torch && !write_options.metadata.empty())
        return usage_error("train", "--meta goes with a .mkp OUT (a PyTorch checkpoint keeps epoch and loss only)");
    const TrainingState state = trainer.state();
    std::vector<std::uint8_t> bytes;
    st = format == OutFormat::torch ? write_torch_checkpoint(model, state, bytes)
                                    : write_checkpoint(model, state, write_options, bytes);
    if (!st.ok()) return report(not_written(*out_path, st));
    {  // the training state must read back as written, before the file replaces anything
        const MemorySource source(bytes.data(), bytes.size());
        std::size_t params = 0;
        if (format == OutFormat::torch) {
            TorchCheckpoint back;
            st = read_torch_checkpoint(source, &state.options.optimizer, back);
            params = back.params.size();
        } else {
            Sequential back;
            TrainingState got;
            bool has_training = false;
            st = read_checkpoint(source, back, got, has_training);
            params = has_training && got.steps == state.steps && got.epoch == state.epoch ? got.params.size() : 0;
        }
        if (st.ok() && params != state.params.size())
            st = error(Code::bad_section, "the optimizer state did not read back as written");
        if (!st.ok()) return report(not_written(*out_path, st));
    }
    st = write_verified(*out_path, format, bytes, model.state_dict(),
                        format == OutFormat::torch ? nullptr : &write_options.metadata);
    if (!st.ok()) return report(st);
    std::cout << "wrote " << escape_text(*out_path) << ": "
              << (format == OutFormat::torch ? "PyTorch general checkpoint" : "modelkeep checkpoint") << " at epoch "
              << state.epoch << ", step " << state.steps << ", " << plural(bytes.size(), "byte") << "\n";
    return exit_ok;
}

// ---------------------------------------------------------------- dispatch

struct Command {
    const char* name;
    int (*run)(const std::vector<std::string>&);
};

const Command commands[] = {{"init", cmd_init},
                            {"inspect", cmd_inspect},
                            {"predict", cmd_predict},
                            {"convert", cmd_convert},
                            {"train", cmd_train}};

std::string command_help(const std::string& name) {
    if (name == "init")
        return std::string(cli_help::init) + cli_help::dtypes + "\n" + cli_help::spec + cli_help::init_tail;
    if (name == "inspect") return cli_help::inspect;
    if (name == "predict") return cli_help::predict;
    if (name == "convert") return std::string(cli_help::convert) + cli_help::dtypes + cli_help::convert_tail;
    if (name == "train") return cli_help::train;
    if (name == "spec") return cli_help::spec;
    if (name == "help")
        return "Usage: modelkeep help [COMMAND|spec]\n\nShows the overview, a command's help or "
               "the SPEC syntax.\n";
    return "";
}

std::string global_help() {
    return std::string("modelkeep ") + cli_help::version +
           " - create, inspect, run and convert modelkeep (.mkp) model files\n" + cli_help::global + cli_help::dtypes +
           "\n" + cli_help::spec + cli_help::global_tail;
}

int run(int argc, char** argv) {
    std::vector<std::string> rest(argv + (argc > 0 ? 1 : 0), argv + (argc > 0 ? argc : 0));
    if (rest.empty()) {
        std::cerr << global_help();
        return exit_usage;
    }
    const std::string cmd = rest[0];
    rest.erase(rest.begin());
    if (cmd == "-h" || cmd == "--help") {
        std::cout << global_help();
        return exit_ok;
    }
    if (cmd == "--version" || cmd == "-V") {
        std::cout << "modelkeep " << cli_help::version << "\n";
        return exit_ok;
    }
    if (cmd == "help") {
        if (rest.empty()) {
            std::cout << global_help();
            return exit_ok;
        }
        const std::string text = command_help(rest[0] == "-h" || rest[0] == "--help" ? "help" : rest[0]);
        if (text.empty())
            return usage_error("", "no help for '" + rest[0] +
                                       "'; the topics are init, inspect, "
                                       "predict, convert, train and spec");
        if (rest.size() > 1) return usage_error("help", "help takes one COMMAND");
        std::cout << text;
        return exit_ok;
    }
    for (const Command& c : commands) {
        if (cmd != c.name) continue;
        if (wants_help(rest)) {
            std::cout << command_help(cmd);
            return exit_ok;
        }
        return c.run(rest);
    }
    if (cmd.size() > 1 && cmd[0] == '-') return usage_error("", "unknown option '" + cmd + "'");
    return usage_error(
        "", "unknown command '" + cmd + "'; the commands are init, inspect, predict, convert, train and help");
}

}  // namespace
}  // namespace modelkeep

int main(int argc, char** argv) {
    int code;
    try {
        code = modelkeep::run(argc, argv);
    } catch (const std::bad_alloc&) {
        std::cerr << "modelkeep: limit_exceeded: out of memory\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "modelkeep: internal: " << e.what() << "\n";
        return 1;
    }
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "modelkeep: io_error: cannot write to standard output\n";
        return 1;
    }
    return code;
}
