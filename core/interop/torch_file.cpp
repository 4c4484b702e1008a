// torch_file.cpp — see torch_file.hpp: the zip and legacy containers, turning
// pickled tensors (strided views of storages) into float32 tensors after
// every bounds check, walking module trees, and the zip writer for export.
#include "torch_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "decimal.hpp"
#include "inflate.hpp"
#include "utf8.hpp"
#include "zip.hpp"

namespace modelkeep {

const std::string* ModuleNode::attr(const std::string& key) const {
    for (const auto& a : attrs)
        if (a.first == key) return &a.second;
    return nullptr;
}

std::string ModuleNode::class_name() const {
    const std::size_t dot = class_path.rfind('.');
    return dot == std::string::npos ? class_path : class_path.substr(dot + 1);
}

namespace {

using Kind = Value::Kind;

// Where each storage's bytes are: in memory already (a view of the file), or
// a zip entry still to be read from the source. `bytes` is the record size.
struct StorageRecord {
    const std::uint8_t* view = nullptr;
    const ZipEntry* entry = nullptr;
    std::uint64_t bytes = 0;
};
struct Storages {
    const ByteSource* source = nullptr;
    std::uint64_t file_bytes = 0;
    bool verify = false;  // without values: still read each used storage once (CRC), materialising nothing
    std::map<std::string, StorageRecord> records;
};

// ---- the object: state dict, checkpoint or module ----

bool is_tensor_dict(const Value& v) {
    if (v.kind != Kind::dict) return false;
    for (const auto& e : v.entries)
        if (e.first->kind != Kind::string || e.second->kind != Kind::tensor) return false;
    return true;
}

std::string scalar_text(const Value& v) {
    switch (v.kind) {
        case Kind::none: return "None";
        case Kind::boolean: return v.boolean ? "True" : "False";
        case Kind::integer: return std::to_string(v.integer);
        case Kind::floating: return format_double(v.floating);
        case Kind::string: return v.text;
        case Kind::tuple: {
            std::string s = "(";
            for (const auto& it : v.items) s += scalar_text(*it) + (v.items.size() == 1 ? "," : ", ");
            if (v.items.size() > 1) s.resize(s.size() - 2);
            return s + ")";
        }
        default: return "";
    }
}

bool is_scalar(const Value& v) {
    if (v.kind == Kind::tuple) {
        for (const auto& it : v.items)
            if (!is_scalar(*it) || it->kind == Kind::tuple) return false;
        return true;
    }
    return v.kind == Kind::none || v.kind == Kind::boolean || v.kind == Kind::integer || v.kind == Kind::floating ||
           v.kind == Kind::string;
}

// A module record's tree and its state dict entries (torch's _save_to_state_dict
// order: parameters, persistent buffers, then each child).
// A module tree is walked path by path, as torch's state_dict() does: a module
// that appears under two names (shared) is visited under each. The walk is
// counted before it grows, so that a pickle whose modules reference each other
// level after level (a DAG, 2^levels paths from a few kilobytes) is refused
// after max_module_nodes nodes.
Status walk_module(const Value& m, const std::string& name, const std::string& prefix, ModuleNode& node,
                   TensorRefs& refs, std::size_t& nodes) {
    if (++nodes > max_module_nodes)
        return error(Code::limit_exceeded, "the module tree has more than " + std::to_string(max_module_nodes) +
                                               " modules (counting a shared module once per path)");
    node.name = name;
    node.class_path = m.text;
    const Value* params = m.get("_parameters");
    const Value* buffers = m.get("_buffers");
    const Value* modules = m.get("_modules");
    const Value* non_persistent = m.get("_non_persistent_buffers_set");
    for (const Value* d : {params, buffers, modules})
        if (!d || d->kind != Kind::dict)
            return error(Code::bad_pickle, "module " + m.text + (prefix.empty() ? "" : " at '" + prefix + "'") +
                                               " lacks _parameters, _buffers or _modules");
    auto skipped = [&](const std::string& key) {
        if (!non_persistent || non_persistent->kind != Kind::set) return false;
        for (const auto& it : non_persistent->items)
            if (it->kind == Kind::string && it->text == key) return true;
        return false;
    };
    for (const Value* d : {params, buffers}) {
        for (const auto& e : d->entries) {
            if (e.first->kind != Kind::string)
                return error(Code::bad_pickle, "a module tensor name that is not a string");
            if (e.second->kind == Kind::none) continue;  // Linear(bias=False) keeps bias = None
            if (e.second->kind != Kind::tensor)
                return error(Code::bad_pickle, "module tensor '" + prefix + e.first->text + "' is not a tensor");
            if (d == buffers && skipped(e.first->text)) continue;
            if (refs.size() >= max_tensors)
                return error(Code::limit_exceeded, "the module tree has more than " + std::to_string(max_tensors) +
                                                       " tensors (counting a shared module once per path)");
            node.tensors.push_back(e.first->text);
            refs.emplace_back(prefix + e.first->text, e.second.get());
        }
    }
    for (const auto& e : m.entries) {
        const std::string& key = e.first->kind == Kind::string ? e.first->text : std::string();
        if (key.empty() || key[0] == '_' || key == "training" || !is_scalar(*e.second)) continue;
        node.attrs.emplace_back(key, scalar_text(*e.second));
    }
    for (const auto& e : modules->entries) {
        if (e.first->kind != Kind::string) return error(Code::bad_pickle, "a child module name that is not a string");
        if (e.second->kind == Kind::none) continue;
        if (e.second->kind != Kind::module)
            return error(Code::bad_pickle, "child '" + prefix + e.first->text + "' is not a module");
        node.children.emplace_back();
        MK_TRY(walk_module(*e.second, e.first->text, prefix + e.first->text + ".", node.children.back(), refs, nodes));
    }
    return Status();
}

// A checkpoint entry that can hold the model: a non-empty state dict or a module.
bool model_entry(const Value& v) { return (is_tensor_dict(v) || v.kind == Kind::module) && !v.entries.empty(); }

Status interpret(const Value& root, TorchFile& out, TensorRefs& refs, const std::string& wanted) {
    if (!wanted.empty() && (root.kind != Kind::dict || is_tensor_dict(root)))
        return error(Code::missing_key, "entry '" + wanted + "' was asked for, but the file holds " +
                                            (root.kind == Kind::module   ? "a module"
                                             : root.kind == Kind::tensor ? "one tensor"
                                             : root.kind == Kind::dict   ? "a state dict"
                                                                         : "no checkpoint") +
                                            ", not a checkpoint with entries");
    auto take_dict = [&](const Value& d) {
        for (const auto& e : d.entries) refs.emplace_back(e.first->text, e.second.get());
    };
    if (root.kind == Kind::module) {
        out.source = "module " + root.text;
        out.has_module = true;
        std::size_t nodes = 0;
        return walk_module(root, "", "", out.module, refs, nodes);
    }
    if (root.kind == Kind::tensor) {  // torch.save(tensor): one tensor, named "tensor"
        out.source = "tensor";
        refs.emplace_back("tensor", &root);
        return Status();
    }
    if (is_tensor_dict(root)) {
        out.source = "state dict";
        take_dict(root);
        return Status();
    }
    if (root.kind == Kind::dict) {
        // A checkpoint: the state dict under a preferred key, else the first one;
        // else a module stored under some key.
        // An entry asked for by name wins.
        const Value* chosen = nullptr;
        std::string chosen_key;
        for (const auto& e : root.entries)
            if (e.first->kind == Kind::string && model_entry(*e.second)) out.entries.push_back(e.first->text);
        if (!wanted.empty()) {
            const Value* v = root.get(wanted);
            if (!v || !model_entry(*v)) {
                std::string have;
                for (const std::string& k : out.entries) have += (have.empty() ? "" : ", ") + k;
                return error(Code::missing_key,
                             "the checkpoint has no state dict or module under '" + wanted + "'" +
                                 (have.empty() ? std::string() : "; its entries that hold one: " + have));
            }
            chosen = v;
            chosen_key = wanted;
        }
        for (const char* key : {"model_state_dict", "state_dict", "model", "net", "module"}) {
            const Value* v = root.get(key);
            if (!chosen && v && model_entry(*v)) {
                chosen = v;
                chosen_key = key;
            }
        }
        for (const auto& e : root.entries) {
            if (e.first->kind != Kind::string) continue;
            const Value& v = *e.second;
            if (!chosen && model_entry(v)) {
                chosen = &v;
                chosen_key = e.first->text;
            }
            if (is_scalar(v) && v.kind != Kind::tuple) out.extras.emplace_back(e.first->text, scalar_text(v));
        }
        if (chosen) {
            out.source = "checkpoint['" + chosen_key + "']";
            if (chosen->kind == Kind::module) {
                out.has_module = true;
                out.source += ", module " + chosen->text;
                std::size_t nodes = 0;
                return walk_module(*chosen, "", "", out.module, refs, nodes);
            }
            take_dict(*chosen);
            return Status();
        }
    }
    std::string what = root.kind == Kind::dict ? "a dict without a state dict or module in it" : "no dict or module";
    return error(Code::wrong_kind, "the file holds " + what + "; modelkeep reads state dicts, checkpoints and modules");
}

// ---- tensors ----

Status tensor_info(const std::string& name, const Value& t, TorchTensorInfo& info) {
    info.name = name;
    info.dtype = t.storage->storage_type;
    if (t.shape.size() > max_rank)
        return error(Code::limit_exceeded, "tensor '" + name + "' has rank " + std::to_string(t.shape.size()) +
                                               " (at most " + std::to_string(max_rank) + ")");
    for (std::size_t k = 0; k < t.shape.size(); ++k)  // each dim capped as in every reader, a zero product too
        if (t.shape[k] > max_tensor_elements)
            return error(Code::size_overflow, "tensor '" + name + "' dim " + std::to_string(k) + " is " +
                                                  std::to_string(t.shape[k]) + ", over " +
                                                  std::to_string(max_tensor_elements));
    std::uint64_t numel = 1;
    for (std::uint64_t d : t.shape)
        if (!checked_mul(numel, d, numel) || numel > max_tensor_elements) {
            std::string dims;
            for (std::uint64_t x : t.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(x);
            return error(Code::size_overflow, "tensor '" + name + "' of shape (" + dims + ") is over " +
                                                  std::to_string(max_tensor_elements) + " elements");
        }
    info.shape.assign(t.shape.begin(), t.shape.end());
    // The last element the view touches must lie inside the storage.
    if (numel > 0) {
        std::uint64_t last = t.offset;
        for (std::size_t k = 0; k < t.shape.size(); ++k) {
            std::uint64_t step = 0;
            if (!checked_mul(t.shape[k] - 1, t.stride[k], step) || last + step < last)
                return error(Code::view_out_of_bounds, "tensor '" + name + "': its strides overflow");
            last += step;
        }
        if (last >= t.storage->numel)
            return error(Code::view_out_of_bounds, "tensor '" + name + "' reads element " + std::to_string(last) +
                                                       " of storage '" + t.storage->text + "', which has " +
                                                       std::to_string(t.storage->numel));
    }
    return Status();
}

float element(const std::uint8_t* p, StorageType type) {
    std::uint64_t u = 0;
    std::memcpy(&u, p, storage_item_size(type));  // little-endian host (native x86/arm, wasm)
    switch (type) {
        case StorageType::f32: {
            float f;
            std::memcpy(&f, p, 4);
            return f;
        }
        case StorageType::f64: {
            double d;
            std::memcpy(&d, p, 8);
            return float(d);
        }
        case StorageType::f16: return f16_to_f32(std::uint16_t(u));
        case StorageType::bf16: return bf16_to_f32(std::uint16_t(u));
        case StorageType::i64: return float(std::int64_t(u));
        case StorageType::i32: return float(std::int32_t(std::uint32_t(u)));
        case StorageType::i16: return float(std::int16_t(std::uint16_t(u)));
        case StorageType::i8: return float(std::int8_t(std::uint8_t(u)));
        case StorageType::u8: return float(std::uint8_t(u));
        case StorageType::boolean: return u ? 1.0f : 0.0f;
        case StorageType::u16: return float(std::uint16_t(u));
        case StorageType::u32: return float(std::uint32_t(u));
        case StorageType::u64: return float(u);
    }
    return 0;
}

// Copies the strided view out of its storage (bounds checked by tensor_info).
// Every element is written, so the tensor starts uninitialised (one pass less).
Tensor materialize(const Value& t, const TorchTensorInfo& info, const std::uint8_t* storage) {
    Tensor out(info.shape);
    const std::size_t rank = info.shape.size(), item = storage_item_size(info.dtype);
    float* dst = out.data();
    const std::size_t n = out.size();
    if (n == 0) return out;
    // Fast path: contiguous float32.
    bool contiguous = true;
    std::uint64_t expect = 1;
    for (std::size_t k = rank; k-- > 0;) {
        if (info.shape[k] != 1 && t.stride[k] != expect) contiguous = false;
        expect *= info.shape[k];
    }
    if (contiguous && info.dtype == StorageType::f32) {
        std::memcpy(dst, storage + t.offset * 4, n * 4);
        return out;
    }
    std::vector<std::uint64_t> idx(rank, 0);
    std::uint64_t at = t.offset;
    for (std::size_t i = 0; i < n; ++i) {
        dst[i] = element(storage + at * item, info.dtype);
        for (std::size_t k = rank; k-- > 0;) {  // odometer over the dims, last fastest
            if (++idx[k] < info.shape[k]) {
                at += t.stride[k];
                break;
            }
            at -= (info.shape[k] - 1) * t.stride[k];
            idx[k] = 0;
        }
    }
    return out;
}

Status finish(const Storages& storages, const TensorRefs& refs, bool with_values, TorchFile& out) {
    if (refs.size() > max_tensors)
        return error(Code::limit_exceeded,
                     std::to_string(refs.size()) + " tensors (at most " + std::to_string(max_tensors) + ")");
    out.infos.resize(refs.size());
    for (std::size_t i = 0; i < refs.size(); ++i) {
        const Value& t = *refs[i].second;
        MK_TRY(tensor_info(refs[i].first, t, out.infos[i]));
        const auto it = storages.records.find(t.storage->text);
        if (it == storages.records.end())
            return error(Code::missing_storage, "tensor '" + refs[i].first + "' needs storage '" + t.storage->text +
                                                    "', which is not in the file");
        std::uint64_t want = 0;
        if (!checked_mul(t.storage->numel, storage_item_size(t.storage->storage_type), want) ||
            want != it->second.bytes)
            return error(Code::storage_size_mismatch,
                         "storage '" + t.storage->text + "' should hold " + std::to_string(t.storage->numel) + " " +
                             storage_dtype_name(t.storage->storage_type) + " values but has " +
                             std::to_string(it->second.bytes) + " bytes");
    }
    // What the views would materialise, bounded before anything is: a stride-0
    // or overlapping view, many views of one storage, or a deflated archive can
    // ask for far more values than the file holds bytes.
    std::uint64_t elements = 0;
    for (const TorchTensorInfo& info : out.infos) elements += numel(info.shape);
    const std::uint64_t budget = max_view_elements(storages.file_bytes);
    if (elements > budget)
        return error(Code::limit_exceeded,
                     "the tensors would hold " + std::to_string(elements) + " values, more than the " +
                         std::to_string(budget) + " a file of " + std::to_string(storages.file_bytes) +
                         " bytes may expand to (views that repeat their storage, or a deflated archive)");
    // Storage by storage, so that at most one storage is ever buffered: a
    // float32 storage that one contiguous tensor covers exactly is read
    // straight into that tensor; any other is read (or inflated) once, then
    // every tensor that views it is copied out.
    std::map<std::string, std::vector<std::size_t>> users;
    for (std::size_t i = 0; i < refs.size(); ++i) users[refs[i].second->storage->text].push_back(i);
    const auto direct = [&](const StorageRecord& rec, const std::vector<std::size_t>& which) {
        const Value& first = *refs[which[0]].second;
        std::uint64_t numel = 1;
        for (std::uint64_t d : first.shape) numel *= d;
        bool dense = first.offset == 0 && numel == first.storage->numel;
        for (std::size_t k = first.shape.size(), step = 1; dense && k-- > 0; step *= std::size_t(first.shape[k]))
            dense = first.shape[k] == 1 || first.stride[k] == step;
        return rec.entry && rec.entry->method == 0 && which.size() == 1 &&
               out.infos[which[0]].dtype == StorageType::f32 && dense && numel > 0;
    };
    std::uint64_t inflated = 0;  // all deflated storages together share the file's budget
    for (const auto& [key, which] : users) {
        const StorageRecord& rec = storages.records.at(key);
        // A deflated storage is inflated whole, however little of it the views use.
        if (rec.entry && rec.entry->method != 0 && rec.entry->size > max_inflated_bytes(storages.file_bytes))
            return error(Code::limit_exceeded,
                         "storage '" + key + "' inflates to " + std::to_string(rec.entry->size) +
                             " bytes, more than the " + std::to_string(max_inflated_bytes(storages.file_bytes)) +
                             " a file of " + std::to_string(storages.file_bytes) + " bytes may inflate to");
        if (rec.entry && rec.entry->method != 0) inflated += rec.entry->size;
        if (inflated > max_inflated_bytes(storages.file_bytes))
            return error(Code::limit_exceeded, "the deflated storages inflate to more than the " +
                                                   std::to_string(max_inflated_bytes(storages.file_bytes)) +
                                                   " bytes a file of " + std::to_string(storages.file_bytes) +
                                                   " bytes may inflate to");
        if (rec.entry && !direct(rec, which))
            out.buffer_bytes = std::max(
                out.buffer_bytes,
                rec.entry->size + (rec.entry->method == 0 ? 0 : rec.entry->compressed_size + inflate_work_bytes()));
    }
    if (!with_values) {
        if (!storages.verify) return Status();
        std::vector<std::uint8_t> buffer;  // one storage at a time, CRC-checked (or inflated) and dropped
        for (const auto& [key, which] : users) {
            const StorageRecord& rec = storages.records.at(key);
            if (rec.entry && !rec.view) MK_TRY(zip_read(*storages.source, *rec.entry, buffer));
            buffer = {};
        }
        return Status();
    }
    out.tensors.resize(refs.size());
    std::vector<std::uint8_t> buffer;
    for (const auto& [key, which] : users) {
        const StorageRecord& rec = storages.records.at(key);
        if (!rec.view && direct(rec, which)) {
            Tensor t(out.infos[which[0]].shape);
            MK_TRY(zip_read_into(*storages.source, *rec.entry, reinterpret_cast<std::uint8_t*>(t.data()), true));
            out.tensors[which[0]] = {refs[which[0]].first, std::move(t)};
            continue;
        }
        const std::uint8_t* bytes = rec.view;
        if (!bytes) {
            MK_TRY(zip_read(*storages.source, *rec.entry, buffer));
            bytes = buffer.data();
        }
        for (std::size_t i : which) out.tensors[i] = {refs[i].first, materialize(*refs[i].second, out.infos[i], bytes)};
        buffer = {};
    }
    return Status();
}

// The tensors whose data is in the pickle itself (numpy arrays): records that
// view the pickle's bytes values, which live as long as the Unpickled.
void add_inline_storages(const TensorRefs& refs, Storages& storages) {
    for (const auto& r : refs) {
        const Value& s = *r.second->storage;
        if (!s.storage) continue;
        StorageRecord rec;
        rec.view = reinterpret_cast<const std::uint8_t*>(s.storage->text.data());
        rec.bytes = s.storage->text.size();
        storages.records[s.text] = rec;
    }
}

// ---- containers ----

Status read_zip(const ByteSource& source, bool with_values, TorchFile& out, std::vector<ZipEntry>& entries,
                const std::string& wanted, bool verify = false, const ExtraTensors* extra = nullptr);
Status read_legacy(const std::uint8_t* data, std::size_t size, bool with_values, TorchFile& out,
                   const std::string& wanted, const ExtraTensors* extra = nullptr);

// The model's tensors chosen (interpret), then the caller's extra ones after them.
Status choose_tensors(const Value& root, TorchFile& out, TensorRefs& refs, const std::string& wanted,
                      const ExtraTensors* extra) {
    MK_TRY(interpret(root, out, refs, wanted));
    out.model_tensors = refs.size();
    if (extra && *extra) MK_TRY((*extra)(root, refs));
    return Status();
}

// A record read whole, its declared size checked before anything is read or
// inflated: at most `cap` bytes, and a deflated one within the file's inflation
// budget (a few compressed bytes may declare gigabytes).
Status read_record(const ByteSource& source, const ZipEntry& e, std::uint64_t cap, std::vector<std::uint8_t>& out) {
    if (e.size > cap)
        return error(Code::limit_exceeded, "record '" + e.name + "' is " + std::to_string(e.size) + " bytes (at most " +
                                               std::to_string(cap) + ")");
    if (e.method != 0 && e.size > max_inflated_bytes(source.size()))
        return error(Code::limit_exceeded, "record '" + e.name + "' inflates to " + std::to_string(e.size) +
                                               " bytes, more than the " +
                                               std::to_string(max_inflated_bytes(source.size())) + " a file of " +
                                               std::to_string(source.size()) + " bytes may inflate to");
    return zip_read(source, e, out);
}

bool model_file_name(const std::string& name) {
    for (const char* ext : {".pt", ".pth", ".ckpt", ".bin", ".tar"})
        if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
            return true;
    return false;
}

// A zip that is not a torch archive but holds torch files (Stable-Baselines3's
// model.zip: policy.pth beside JSON): `wanted` names the member to read (its
// bytes inflated into memory, within the file's inflation budget); otherwise
// unknown_format listing the members that look like model files.
Status read_member(const ByteSource& source, bool with_values, TorchFile& out, const std::vector<ZipEntry>& entries,
                   const std::string& wanted, bool verify, const ExtraTensors* extra) {
    std::string models;
    const ZipEntry* member = nullptr;
    for (const ZipEntry& e : entries) {
        if (model_file_name(e.name)) models += (models.empty() ? "" : ", ") + escape_text(e.name);
        if (!wanted.empty() && e.name == wanted) member = &e;
    }
    if (!member)
        return error(
            Code::unknown_format,
            models.empty()
                ? "a zip archive that is not a torch.save file (no <folder>/data.pkl) and holds no .pt, .pth "
                  "or .ckpt file"
                : (wanted.empty() ? std::string() : "the archive has no member '" + escape_text(wanted) + "'; ") +
                      "a zip archive that is not a torch.save file but holds model files: " + models +
                      "; choose one with the entry option (CLI --entry NAME, JS { entry: 'NAME' })");
    std::vector<std::uint8_t> bytes;
    MK_TRY(read_record(source, *member, std::uint64_t(SIZE_MAX), bytes));
    const MemorySource inner(bytes.data(), bytes.size());
    std::uint8_t head[4] = {0, 0, 0, 0};
    if (bytes.size() >= 4) std::memcpy(head, bytes.data(), 4);
    if (head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
        std::vector<ZipEntry> inner_entries;
        MK_TRY(read_zip(inner, with_values, out, inner_entries, "", verify, extra));
    } else {
        MK_TRY(read_legacy(bytes.data(), bytes.size(), with_values, out, "", extra));
    }
    out.source = escape_text(wanted) + ": " + out.source;
    // The member is held whole (and, deflated, its compressed bytes beside it while it inflates).
    out.buffer_bytes += bytes.size() + (member->method == 0 ? 0 : member->compressed_size + inflate_work_bytes());
    return Status();
}

Status read_zip(const ByteSource& source, bool with_values, TorchFile& out, std::vector<ZipEntry>& entries,
                const std::string& wanted, bool verify, const ExtraTensors* extra) {
    MK_TRY(zip_list(source, entries));
    if (entries.empty()) return error(Code::unknown_format, "an empty zip archive, not a torch.save file");
    const std::string& first = entries[0].name;
    const std::size_t slash = first.find('/');
    const std::string root = slash == std::string::npos || slash == 0 ? std::string() : first.substr(0, slash + 1);
    bool torch_archive = false;
    for (const ZipEntry& e : entries) torch_archive = torch_archive || (!root.empty() && e.name == root + "data.pkl");
    if (!torch_archive) return read_member(source, with_values, out, entries, wanted, verify, extra);
    const ZipEntry *pkl = nullptr, *version = nullptr, *byteorder = nullptr, *format_version = nullptr;
    std::map<std::string, const ZipEntry*> records;
    for (const ZipEntry& e : entries) {
        if (e.name.compare(0, root.size(), root) != 0) continue;  // torch looks only inside its folder
        const std::string rel = e.name.substr(root.size());
        if (rel == "constants.pkl" || rel.compare(0, 5, "code/") == 0)
            return error(Code::torchscript_archive,
                         "a TorchScript archive (torch.jit.save): it holds code, which "
                         "modelkeep never runs; save the model's state_dict() instead");
        if (rel == "data.pkl") pkl = &e;
        if (rel == "version" || rel == ".data/version") version = &e;
        if (rel == "byteorder") byteorder = &e;
        if (rel == ".format_version") format_version = &e;
        if (rel.compare(0, 5, "data/") == 0) records[rel.substr(5)] = &e;
    }
    if (!pkl) return error(Code::unknown_format, "a zip archive without " + root + "data.pkl: not a torch.save file");
    std::vector<std::uint8_t> buf;
    std::string text;
    const auto text_record = [&](const ZipEntry& e) {
        MK_TRY(read_record(source, e, 64, buf));
        text.assign(buf.begin(), buf.end());
        return Status();
    };
    if (version) {
        MK_TRY(text_record(*version));
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
        if (text != "1" && text != "2" && text != "3")
            return error(Code::unsupported_version,
                         "torch archive version '" + escape_text(text.substr(0, 20)) + "' (1 to 3 are read)");
    }
    // torch 2.7+: .format_version "1" (storage records in numeric order; nothing
    // else changes for a reader that looks records up by name).
    if (format_version) {
        MK_TRY(text_record(*format_version));
        if (text != "1")
            return error(Code::unsupported_version,
                         "torch archive .format_version '" + escape_text(text.substr(0, 20)) + "' (1 is read)");
    }
    if (byteorder) {
        MK_TRY(text_record(*byteorder));
        if (text != "little")
            return error(Code::unsupported_byteorder,
                         "the archive's byteorder is '" + escape_text(text.substr(0, 20)) + "', not little");
    }
    MK_TRY(read_record(source, *pkl, max_pickle_bytes, buf));
    out.pickle_bytes = pkl->size;
    Unpickled u;
    MK_TRY(unpickle(buf.data(), buf.size(), false, u));
    out.globals = u.globals;
    // torch writes one pickle; anything after its STOP (a second pickle torch
    // would never read, hidden from a listing of the first) is refused.
    if (u.consumed != buf.size())
        return error(Code::trailing_bytes,
                     std::to_string(buf.size() - u.consumed) + " bytes after the STOP of " + root + "data.pkl");
    TensorRefs refs;
    MK_TRY(choose_tensors(*u.root, out, refs, wanted, extra));
    // Only the storages the chosen tensors use are looked at (and CRC-checked).
    Storages storages;
    storages.source = &source;
    storages.file_bytes = source.size();
    storages.verify = verify;
    add_inline_storages(refs, storages);
    for (const auto& r : refs) {
        const std::string& key = r.second->storage->text;
        const auto it = records.find(key);
        if (storages.records.count(key) || it == records.end()) continue;  // finish() reports missing_storage
        StorageRecord rec;
        rec.entry = it->second;
        rec.bytes = it->second->size;
        // In memory and stored: viewed in place (CRC-checked once, here).
        if ((with_values || verify) && it->second->method == 0) MK_TRY(zip_view(source, *it->second, true, rec.view));
        storages.records[key] = rec;
    }
    return finish(storages, refs, with_values, out);
}

}  // namespace

std::size_t legacy_magic_bytes(const std::uint8_t* data, std::size_t size) {
    // The first legacy pickle: PROTO 2..5, a FRAME (protocol 4 and 5 frame it),
    // LONG1 of 10 bytes = 0x1950a86a20f9469cfc6c, STOP.
    static const std::uint8_t magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    if (size < 2 || data[0] != 0x80 || data[1] < 2 || data[1] > 5) return 0;
    std::size_t pos = 2;
    if (size > pos && data[pos] == 0x95) pos += 9;  // FRAME and its 8-byte length
    if (size < pos + sizeof magic || std::memcmp(data + pos, magic, sizeof magic) != 0) return 0;
    return pos + sizeof magic;
}

namespace {

Status read_legacy(const std::uint8_t* data, std::size_t size, bool with_values, TorchFile& out,
                   const std::string& wanted, const ExtraTensors* extra) {
    out.legacy = true;
    std::size_t pos = legacy_magic_bytes(data, size);
    if (!pos) return error(Code::unknown_format, "not a legacy torch file (no magic number)");
    Unpickled version, sys_info, object, keys;
    MK_TRY(unpickle(data + pos, size - pos, true, version));
    pos += version.consumed;
    if (version.root->kind != Kind::integer || version.root->integer != 1001)
        return error(
            Code::unsupported_version,
            "legacy torch protocol version " +
                (version.root->kind == Kind::integer ? std::to_string(version.root->integer) : std::string("?")) +
                " (1001 is read)");
    MK_TRY(unpickle(data + pos, size - pos, true, sys_info));
    pos += sys_info.consumed;
    const Value* little = sys_info.root->get("little_endian");
    if (!little || little->kind != Kind::boolean) return error(Code::bad_pickle, "legacy sys_info lacks little_endian");
    if (!little->boolean) return error(Code::unsupported_byteorder, "a big-endian legacy torch file");
    MK_TRY(unpickle(data + pos, size - pos, true, object));
    pos += object.consumed;
    out.globals = object.globals;
    MK_TRY(unpickle(data + pos, size - pos, true, keys));
    pos += keys.consumed;
    out.pickle_bytes = pos;
    if (keys.root->kind != Kind::list) return error(Code::bad_pickle, "the legacy storage key list is not a list");
    TensorRefs refs;
    MK_TRY(choose_tensors(*object.root, out, refs, wanted, extra));
    // Each storage's type (item size) is known only from its persistent id: every
    // storage the pickle named, used by the chosen tensors or not (optimizer state).
    std::map<std::string, const Value*> types;
    for (const auto& s : object.storages) types[s->text] = s.get();
    Storages storages;
    for (const auto& k : keys.root->items) {
        if (k->kind != Kind::string) return error(Code::bad_pickle, "a legacy storage key that is not a string");
        const auto it = types.find(k->text);
        if (it == types.end())
            return error(Code::bad_pickle,
                         "legacy storage '" + k->text + "' is named by no persistent id (its size is unknown)");
        if (size - pos < 8) return error(Code::truncated, "the file ends before storage '" + k->text + "'");
        std::uint64_t count = 0;
        for (int i = 0; i < 8; ++i) count |= std::uint64_t(data[pos + std::size_t(i)]) << (8 * i);
        pos += 8;
        std::uint64_t bytes = 0;
        if (!checked_mul(count, storage_item_size(it->second->storage_type), bytes) || bytes > size - pos)
            return error(Code::truncated, "storage '" + k->text + "' declares " + std::to_string(count) +
                                              " values, more than the file holds");
        if (storages.records.count(k->text))
            return error(Code::duplicate_name, "legacy storage '" + k->text + "' twice");
        StorageRecord rec;
        rec.view = data + pos;
        rec.bytes = bytes;
        storages.records[k->text] = rec;
        pos += std::size_t(bytes);
    }
    storages.file_bytes = size;
    if (pos != size) return error(Code::trailing_bytes, std::to_string(size - pos) + " bytes after the last storage");
    add_inline_storages(refs, storages);
    MK_TRY(finish(storages, refs, with_values, out));
    out.buffer_bytes = size;  // read from memory: a source outside it is copied in first (read_torch)
    return Status();
}

}  // namespace

Status read_torch(const ByteSource& source, bool with_values, TorchFile& out, const std::string& wanted,
                  const ExtraTensors& extra) {
    out = TorchFile();
    std::uint8_t head[4] = {0, 0, 0, 0};
    if (source.size() >= 4) source.read(0, head, 4);
    if (head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
        std::vector<ZipEntry> entries;  // outlives the storages that point at it
        return read_zip(source, with_values, out, entries, wanted, false, &extra);
    }
    // Legacy files interleave pickles and storages: read from memory (they are rare and old).
    if (const std::uint8_t* p = source.data())
        return read_legacy(p, std::size_t(source.size()), with_values, out, wanted, &extra);
    if (source.size() > std::uint64_t(SIZE_MAX)) return error(Code::limit_exceeded, "the file is too large");
    std::vector<std::uint8_t> copy(std::size_t(source.size()));
    source.read(0, copy.data(), copy.size());
    return read_legacy(copy.data(), copy.size(), with_values, out, wanted, &extra);
}

Status verify_torch(const ByteSource& source, TorchFile& out, const std::string& wanted) {
    out = TorchFile();
    std::uint8_t head[4] = {0, 0, 0, 0};
    if (source.size() >= 4) source.read(0, head, 4);
    if (head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
        std::vector<ZipEntry> entries;
        return read_zip(source, false, out, entries, wanted, true);
    }
    return read_torch(source, false, out, wanted);  // legacy: no checksums; the bounds are all there is
}

Status read_torch(const std::uint8_t* data, std::size_t size, bool with_values, TorchFile& out,
                  const std::string& wanted) {
    return read_torch(MemorySource(data, size), with_values, out, wanted);
}

// ---- writing ----

void PickleWriter::global(const char* module, const char* name) {
    op('c');
    for (const char* s : {module, name}) {
        out.insert(out.end(), s, s + std::strlen(s));
        op('\n');
    }
}

void PickleWriter::str(const std::string& s) {
    op('X');
    for (int i = 0; i < 4; ++i) op(std::uint8_t(std::uint32_t(s.size()) >> (8 * i)));
    out.insert(out.end(), s.begin(), s.end());
}

void PickleWriter::integer(std::uint64_t v) {
    if (v < 256) {
        op('K');
        op(std::uint8_t(v));
    } else if (v < 65536) {
        op('M');
        op(std::uint8_t(v));
        op(std::uint8_t(v >> 8));
    } else if (v < 0x80000000u) {
        op('J');
        for (int i = 0; i < 4; ++i) op(std::uint8_t(v >> (8 * i)));
    } else {
        op(0x8a);  // LONG1, 8 bytes, non-negative
        op(8);
        for (int i = 0; i < 8; ++i) op(std::uint8_t(v >> (8 * i)));
    }
}

void PickleWriter::int64(std::int64_t v) {
    if (v >= 0) return integer(std::uint64_t(v));
    const std::uint64_t u = std::uint64_t(v);  // two's complement, as both opcodes hold it
    const bool small = v >= -std::int64_t(0x80000000);
    op(small ? 'J' : 0x8a);  // BININT (signed 4 bytes) or LONG1 of 8 bytes
    if (!small) op(8);
    for (int i = 0; i < (small ? 4 : 8); ++i) op(std::uint8_t(u >> (8 * i)));
}

void PickleWriter::floating(double v) {
    std::uint64_t u = 0;
    std::memcpy(&u, &v, 8);
    op('G');  // BINFLOAT: big-endian IEEE double
    for (int i = 7; i >= 0; --i) op(std::uint8_t(u >> (8 * i)));
}

void PickleWriter::int_tuple(const std::vector<std::uint64_t>& v) {
    op('(');
    for (std::uint64_t x : v) integer(x);
    op('t');
}

void PickleWriter::tensor(const char* storage, const std::string& key, std::uint64_t numel, const Shape& dims) {
    std::vector<std::uint64_t> shape(dims.begin(), dims.end()), stride(shape.size());
    std::uint64_t step = 1;
    for (std::size_t k = shape.size(); k-- > 0;) {
        stride[k] = step;
        step *= shape[k];
    }
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');  // persistent id ('storage', torch.XStorage, key, 'cpu', numel)
    str("storage");
    global("torch", storage);
    str(key);
    str("cpu");
    integer(numel);
    op('t');
    op('Q');
    integer(0);
    int_tuple(shape);
    int_tuple(stride);
    op(0x89);  // requires_grad = False
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('t');
    op('R');
}

Status pickle_state_dict(const StateDict& tensors, DType dtype, PickleWriter& p,
                         std::vector<std::vector<std::uint8_t>>& storages) {
    if (dtype == DType::int8)
        return error(Code::invalid_argument, "a .pt file has no int8-per-row form; use f32, f16 or bf16");
    std::set<std::string> seen;
    for (const auto& kv : tensors)
        if (!seen.insert(kv.first).second) return error(Code::duplicate_name, "tensor '" + kv.first + "' twice");
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('(');
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const std::string& key = tensors[i].first;
        const Tensor& t = tensors[i].second;
        const bool counter = key == "num_batches_tracked" ||
                             (key.size() > 20 && key.compare(key.size() - 20, 20, ".num_batches_tracked") == 0);
        const DType d = t.dimension() >= 2 ? dtype : DType::f32;
        const char* storage = counter            ? "LongStorage"
                              : d == DType::f16  ? "HalfStorage"
                              : d == DType::bf16 ? "BFloat16Storage"
                                                 : "FloatStorage";
        storages.emplace_back();
        std::vector<std::uint8_t>& s = storages.back();
        const std::size_t n = t.size();
        const float* v = t.data();
        s.resize(n * (counter ? 8 : d == DType::f32 ? 4 : 2));
        for (std::size_t k = 0; k < n; ++k) {
            if (counter) {
                const std::int64_t c = std::int64_t(std::llround(double(v[k])));
                std::memcpy(&s[k * 8], &c, 8);
            } else if (d == DType::f32) {
                std::memcpy(&s[k * 4], &v[k], 4);
            } else {
                const std::uint16_t h = d == DType::f16 ? f32_to_f16(v[k]) : f32_to_bf16(v[k]);
                std::memcpy(&s[k * 2], &h, 2);
            }
        }
        p.str(key);
        p.tensor(storage, std::to_string(storages.size() - 1), n, shape_of(t));
    }
    p.op('u');
    return Status();
}

void write_torch_archive(const std::vector<std::uint8_t>& pickle,
                         const std::vector<std::vector<std::uint8_t>>& storages, std::vector<std::uint8_t>& out) {
    const std::string version = "3\n", order = "little";
    std::vector<ZipRecord> records;
    std::vector<std::string> names(storages.size());
    records.push_back({"archive/data.pkl", pickle.data(), pickle.size()});
    records.push_back({"archive/byteorder", reinterpret_cast<const std::uint8_t*>(order.data()), order.size()});
    for (std::size_t i = 0; i < storages.size(); ++i) {
        names[i] = "archive/data/" + std::to_string(i);
        records.push_back({names[i], storages[i].data(), storages[i].size()});
    }
    records.push_back({"archive/version", reinterpret_cast<const std::uint8_t*>(version.data()), version.size()});
    zip_write(records, out);
}

Status write_torch(const StateDict& tensors, DType dtype, std::vector<std::uint8_t>& out) {
    PickleWriter p;
    p.op(0x80);
    p.op(2);
    std::vector<std::vector<std::uint8_t>> storages;
    storages.reserve(tensors.size());
    MK_TRY(pickle_state_dict(tensors, dtype, p, storages));
    p.op('.');
    write_torch_archive(p.out, storages, out);
    return Status();
}

}  // namespace modelkeep
