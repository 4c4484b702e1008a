// import.cpp — see import.hpp: format detection, module trees to layers, and
// the architecture decision (file, module tree, option, or refusal).
#include "import.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "decimal.hpp"
#include "packed.hpp"
#include "safetensors.hpp"
#include "spec.hpp"

namespace modelkeep {

const char* file_format_name(FileFormat format) {
    switch (format) {
        case FileFormat::mkp: return "modelkeep";
        case FileFormat::torch_zip: return "torch-zip";
        case FileFormat::torch_legacy: return "torch-legacy";
        case FileFormat::safetensors: return "safetensors";
        case FileFormat::unknown: break;
    }
    return "unknown";
}

FileFormat detect_format(const std::uint8_t* data, std::size_t size) { return detect_format_sized(data, size, size); }

FileFormat detect_format_sized(const std::uint8_t* data, std::size_t size, std::uint64_t file_size) {
    if (size >= 4 && std::memcmp(data, format_magic, 4) == 0) return FileFormat::mkp;
    if (size >= 4 && data[0] == 'P' && data[1] == 'K' &&
        ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6)))
        return FileFormat::torch_zip;
    if (legacy_magic_bytes(data, size)) return FileFormat::torch_legacy;
    // safetensors: an 8-byte length, then JSON (leading blanks allowed): '{',
    // or any other JSON value opener when the length fits the file (so that a
    // header of the wrong JSON type is reported as such).
    if (size >= 9) {
        std::uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n |= std::uint64_t(data[i]) << (8 * i);
        for (std::size_t i = 8; i < size && i < 8 + 4096; ++i) {
            const std::uint8_t c = data[i];
            if (c == '{') return FileFormat::safetensors;
            if ((c == '[' || c == '"') && n <= file_size - 8) return FileFormat::safetensors;
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        }
    }
    return FileFormat::unknown;
}

namespace {

std::string short_class(const std::string& path) {
    if (path.rfind("torch.nn.modules.", 0) == 0) return path.substr(path.rfind('.') + 1);
    return path;
}

bool parse_int(const std::string* s, std::int64_t& out) {
    if (!s || s->empty()) return false;
    char* end = nullptr;
    out = std::strtoll(s->c_str(), &end, 10);
    return *end == 0;
}
bool parse_num(const std::string* s, float& out) { return s && parse_float(*s, out); }
bool parse_bool(const std::string* s, bool& out) {
    if (!s || (*s != "True" && *s != "False")) return false;
    out = *s == "True";
    return true;
}
bool has_tensor(const ModuleNode& n, const char* name) {
    for (const auto& t : n.tensors)
        if (t == name) return true;
    return false;
}

// One torch.nn leaf as a modelkeep layer.
Status leaf_layer(const ModuleNode& n, const std::string& name, LayerSpec& spec) {
    const std::string where = (name.empty() ? std::string("the root module") : "child '" + name + "'") + " (" +
                              short_class(n.class_path) + ")";
    auto bad = [&](const std::string& what) { return error(Code::unknown_layer, where + ": " + what); };
    spec = LayerSpec();
    if (!layer_kind_of_torch_class(n.class_path, spec.kind)) return bad("modelkeep has no layer of this class");
    spec.name = name;
    std::int64_t i = 0;
    switch (spec.kind) {
        case LayerKind::linear: {
            std::int64_t out = 0;
            if (!parse_int(n.attr("in_features"), i) || !parse_int(n.attr("out_features"), out) || i < 1 || out < 1)
                return bad("in_features / out_features missing");
            spec.in_features = std::uint64_t(i);
            spec.out_features = std::uint64_t(out);
            spec.bias = has_tensor(n, "bias");
            break;
        }
        case LayerKind::leaky_relu:
            if (!parse_num(n.attr("negative_slope"), spec.slope)) return bad("negative_slope missing");
            break;
        case LayerKind::gelu: {
            const std::string* a = n.attr("approximate");
            if (a && *a != "none" && *a != "tanh") return bad("approximate='" + *a + "'");
            spec.tanh_approx = a && *a == "tanh";
            break;
        }
        case LayerKind::softmax:
        case LayerKind::log_softmax: {
            // modelkeep normalises over the last dimension: dim=-1, or dim=1
            // (the last one of the (N, C) batches an MLP passes).
            const std::string* d = n.attr("dim");
            if (d && *d != "None" && *d != "-1" && *d != "1")
                return bad("dim=" + *d + " (the last dimension is supported)");
            break;
        }
        case LayerKind::dropout:
            if (!parse_num(n.attr("p"), spec.p)) return bad("p missing");
            break;
        case LayerKind::flatten:
            if (!parse_int(n.attr("start_dim"), i)) return bad("start_dim missing");
            spec.start_dim = std::int32_t(i);
            if (!parse_int(n.attr("end_dim"), i)) return bad("end_dim missing");
            spec.end_dim = std::int32_t(i);
            break;
        case LayerKind::layer_norm: {
            const std::string* shape = n.attr("normalized_shape");
            if (!shape || shape->size() < 4 || (*shape)[0] != '(' || shape->substr(shape->size() - 2) != ",)")
                return bad("normalized_shape must have one dimension");
            const std::string dim = shape->substr(1, shape->size() - 3);
            if (!parse_int(&dim, i) || i < 1) return bad("normalized_shape " + *shape);
            spec.in_features = std::uint64_t(i);
            if (!parse_num(n.attr("eps"), spec.eps)) return bad("eps missing");
            if (!parse_bool(n.attr("elementwise_affine"), spec.affine)) return bad("elementwise_affine missing");
            spec.bias = spec.affine && has_tensor(n, "bias");
            break;
        }
        case LayerKind::batch_norm1d:
            if (!parse_int(n.attr("num_features"), i) || i < 1) return bad("num_features missing");
            spec.in_features = std::uint64_t(i);
            if (!parse_num(n.attr("eps"), spec.eps)) return bad("eps missing");
            if (!parse_bool(n.attr("affine"), spec.affine)) return bad("affine missing");
            if (!parse_bool(n.attr("track_running_stats"), spec.track_running_stats))
                return bad("track_running_stats missing");
            break;
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::silu:
        case LayerKind::identity: break;  // no attribute to read
    }
    return validate_layer(spec);
}

Status collect_layers(const ModuleNode& n, const std::string& name, bool sequential_only, std::vector<LayerSpec>& out) {
    LayerKind kind;
    if (n.children.empty() && (!name.empty() || layer_kind_of_torch_class(n.class_path, kind))) {
        // A leaf; at the root (torch.save(nn.Linear(16, 1))), the model is that one
        // layer: the root layer, whose keys have no prefix.
        out.emplace_back();
        return leaf_layer(n, name, out.back());
    }
    const bool sequential = n.class_path == "torch.nn.modules.container.Sequential";
    const std::string label = name.empty() ? "the root module" : "child '" + name + "'";
    if (sequential_only && !sequential)
        return error(Code::needs_architecture,
                     label + " is a " + short_class(n.class_path) + ", whose forward() is not in the file");
    if (!n.tensors.empty())
        return error(Code::needs_architecture, label + " (" + short_class(n.class_path) + ") has tensors of its own (" +
                                                   n.tensors[0] + "), used by a forward() that is not in the file");
    for (const ModuleNode& c : n.children)
        MK_TRY(collect_layers(c, name.empty() ? c.name : name + "." + c.name, sequential_only, out));
    return Status();
}

void describe(const ModuleNode& n, std::string& out) {
    out += short_class(n.class_path);
    if (n.children.empty()) {
        std::string args;
        for (const auto& a : n.attrs) {
            if (a.first == "inplace") continue;
            args += (args.empty() ? "" : ", ") + a.first + "=" + a.second;
        }
        if (!args.empty()) out += "(" + args + ")";
        return;
    }
    out += "(";
    for (std::size_t i = 0; i < n.children.size(); ++i) {
        if (out.size() > 4000) {
            out += "...";
            break;
        }
        out += (i ? ", " : "") + n.children[i].name + ": ";
        describe(n.children[i], out);
    }
    out += ")";
}

void fill_torch_info(const TorchFile& t, SourceInfo& info) {
    info.format = t.legacy ? FileFormat::torch_legacy : FileFormat::torch_zip;
    info.buffer_bytes = t.buffer_bytes;
    info.entries = t.entries;
    info.structure_bytes = t.pickle_bytes;
    info.source = t.source;
    info.globals = t.globals;
    for (const auto& ti : t.infos) info.tensors.push_back({ti.name, storage_dtype_name(ti.dtype), ti.shape});
    info.metadata = t.extras;
    info.has_module = t.has_module;
    if (t.has_module) {
        info.module = t.module;
        const Status st = module_layers(t.module, true, info.layers);
        info.has_layers = st.ok();
        if (!st.ok()) {
            info.layers.clear();
            info.arch_note = st.message();
        }
    } else {
        info.arch_note = "a " + t.source + " holds weights, not the layers that use them";
    }
}

void fill_mkp_info(FileInfo f, SourceInfo& info) {
    info.format = FileFormat::mkp;
    info.source = f.kind == FileKind::model ? "model" : "state dict";
    for (const auto& ti : f.tensors) info.tensors.push_back({ti.name, dtype_name(ti.dtype), ti.shape});
    info.metadata = f.metadata;
    info.layers = f.layers;
    info.has_layers = f.kind == FileKind::model;
    if (!info.has_layers) info.arch_note = "a modelkeep state dict holds weights, not the layers that use them";
    info.mkp = std::move(f);
}

Status fill_safetensors_info(const ByteSource& source, SourceInfo& info, SafetensorsInfo& st) {
    MK_TRY(read_safetensors_info(source, st));
    info.format = FileFormat::safetensors;
    info.source = "state dict";
    info.structure_bytes = st.data_start;
    for (const auto& t : st.tensors) {
        info.tensors.push_back({t.name, t.dtype, t.shape});
        if (t.dtype != "F32")
            info.buffer_bytes = std::max(info.buffer_bytes, t.end - t.begin);  // converted from a buffer
    }
    info.metadata = st.metadata;
    info.arch_note = "a safetensors file holds weights, not the layers that use them";
    return Status();
}

Status unknown(std::uint64_t size) {
    return error(Code::unknown_format, "these " + std::to_string(size) +
                                           " bytes are not a modelkeep (.mkp), PyTorch (.pt: zip or legacy) or "
                                           "safetensors file");
}

}  // namespace

std::uint64_t import_bytes(const SourceInfo& info, const ImportOptions& options, bool need_model) {
    // A .mkp model read as a model with its own architecture goes through
    // read_model (its compact weights kept), anything else .mkp through read_file.
    if (info.format == FileFormat::mkp)
        return read_bytes(info.mkp, info.has_layers && options.architecture.empty() && need_model);
    // PyTorch and safetensors files: every tensor float32, the reader's
    // largest buffer, and bookkeeping (measured, tests/test_import.cpp): the
    // values a parse builds take up to about 45 times the bytes parsed; each
    // tensor has its slot, name and record; and a few fixed tables.
    std::uint64_t tensors = 0, pack = 0;
    for (const SourceTensor& t : info.tensors) {
        tensors += numel(t.shape) * 4;
        if (need_model && t.shape.size() == 2)  // a Linear weight is packed once imported (packed.hpp)
            pack = std::max(pack, pack_scratch_bytes(std::size_t(t.shape[0]), std::size_t(t.shape[1])));
    }
    const std::uint64_t bookkeeping = info.structure_bytes * 64 + info.tensors.size() * 1024 + (16 << 10);
    return tensors + info.buffer_bytes + bookkeeping + pack;
}

std::uint64_t export_bytes(ExportFormat format, const std::vector<std::pair<std::string, Shape>>& tensors,
                           DType dtype) {
    // Per tensor: its stored bytes, and room for its name and its header or
    // pickle record (JSON with offsets; a zip entry and pickle opcodes).
    std::uint64_t data = 0, records = 0;
    for (const auto& [name, shape] : tensors) {
        const std::uint64_t e = numel(shape);
        const bool counter = format == ExportFormat::torch && name.size() >= 19 &&
                             name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;  // int64 in torch
        data += e * (counter ? 8 : shape.size() >= 2 && dtype != DType::f32 ? 2 : 4);
        records += 2 * name.size() + 512;
    }
    // torch: the storages, then the archive that copies them (zip.hpp's zip_write).
    return (format == ExportFormat::torch ? 2 * data : data) + 2 * records + 4096;
}

Status module_layers(const ModuleNode& root, bool sequential_only, std::vector<LayerSpec>& out) {
    out.clear();
    MK_TRY(collect_layers(root, "", sequential_only, out));
    return validate_specs(out);
}

std::string describe_module(const ModuleNode& node) {
    std::string out;
    describe(node, out);
    return out;
}

// The first bytes of a source, enough for detect_format.
static FileFormat detect_source(const ByteSource& source) {
    std::uint8_t head[8 + 4096] = {};
    const std::size_t n = std::size_t(std::min<std::uint64_t>(source.size(), sizeof head));
    source.read(0, head, n);
    const FileFormat f = detect_format(head, n);
    // A safetensors header length is checked against the whole file, not the head.
    if (f == FileFormat::unknown && source.size() > n) return detect_format_sized(head, n, source.size());
    return f;
}

Status read_source(const std::uint8_t* data, std::size_t size, SourceInfo& info, const std::string& entry) {
    return read_source(MemorySource(data, size), info, entry);
}

Status read_source(const ByteSource& source, SourceInfo& info, const std::string& entry) {
    info = SourceInfo();
    const FileFormat format = detect_source(source);
    if (format == FileFormat::torch_zip || format == FileFormat::torch_legacy) {
        TorchFile t;
        MK_TRY(read_torch(source, false, t, entry));
        fill_torch_info(t, info);
        return Status();
    }
    if (format == FileFormat::safetensors) {
        SafetensorsInfo st;
        return fill_safetensors_info(source, info, st);
    }
    if (format == FileFormat::mkp) {
        FileInfo f;
        MK_TRY(read_info(source, false, f));
        fill_mkp_info(f, info);
        return Status();
    }
    return unknown(source.size());
}

Status check_source(const ByteSource& source, const std::string& entry) {
    switch (detect_source(source)) {
        case FileFormat::torch_zip:
        case FileFormat::torch_legacy: {
            TorchFile t;
            return verify_torch(source, t, entry);
        }
        case FileFormat::safetensors: {
            Imported all;
            return import_file(source, ImportOptions(), false, all);
        }
        case FileFormat::mkp: {
            FileInfo f;
            return read_info(source, true, f);
        }
        case FileFormat::unknown: break;
    }
    return unknown(source.size());
}

Status import_file(const std::uint8_t* data, std::size_t size, const ImportOptions& options, bool need_model,
                   Imported& out) {
    return import_file(MemorySource(data, size), options, need_model, out);
}

Status import_file(const ByteSource& source, const ImportOptions& options, bool need_model, Imported& out) {
    out = Imported();
    SourceInfo& info = out.info;
    const FileFormat format = detect_source(source);
    switch (format) {
        case FileFormat::mkp: {
            if (need_model) {  // the file's own model (compact weights kept compact), or the option's
                FileInfo f;
                MK_TRY(read_model_as(source, options.architecture, out.model, f, options.prefix));
                fill_mkp_info(std::move(f), info);
                out.arch_from = options.architecture.empty() ? "file" : "architecture option";
                out.has_model = true;
                return Status();
            }
            LoadedFile f;
            MK_TRY(read_file(source, f));
            fill_mkp_info(std::move(f.info), info);
            out.tensors = std::move(f.tensors);
            break;
        }
        case FileFormat::torch_zip:
        case FileFormat::torch_legacy: {
            TorchFile t;
            MK_TRY(read_torch(source, true, t, options.entry));
            out.tensors = std::move(t.tensors);
            t.tensors.clear();
            fill_torch_info(t, info);
            break;
        }
        case FileFormat::safetensors: {
            SafetensorsInfo st;  // the header is parsed once, for the listing and the values
            MK_TRY(fill_safetensors_info(source, info, st));
            MK_TRY(read_safetensors(source, st, out.tensors));
            break;
        }
        case FileFormat::unknown: return unknown(source.size());
    }
    // What runs: the option, the file, the opt-in, or nothing.
    std::vector<LayerSpec> layers;
    if (!options.architecture.empty()) {
        MK_TRY(parse_spec(options.architecture, layers));
        out.arch_from = "architecture option";
    } else if (info.has_layers) {
        layers = info.layers;
        out.arch_from = info.format == FileFormat::mkp ? "file" : "module tree";
    } else if (options.assume_sequential && info.has_module) {
        MK_TRY(module_layers(info.module, false, layers));
        out.arch_from = "assume_sequential";
    } else if (need_model) {
        if (info.has_module)
            return error(Code::needs_architecture,
                         info.arch_note + ". The module tree is " + describe_module(info.module) +
                             ". Pass an architecture (SPEC), or assumeSequential / --assume-sequential if its "
                             "forward() runs these children in this order");
        std::vector<std::pair<std::string, Shape>> shapes;
        for (const auto& [name, t] : out.tensors) shapes.emplace_back(name, shape_of(t));
        return error(Code::needs_architecture,
                     info.arch_note + (options.assume_sequential ? " (assume_sequential needs a pickled module)" : "") +
                         ". " + architecture_advice(shapes));
    } else {
        return Status();
    }
    MK_TRY(take_prefix(out.tensors, options.prefix));
    MK_TRY(Sequential::from_state_dict(layers, std::move(out.tensors), out.model));
    out.tensors.clear();
    out.has_model = true;
    return Status();
}

}  // namespace modelkeep
