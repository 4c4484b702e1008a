// bindings.cpp — the whole binding surface between the core and JavaScript
// (Embind). Small and data-only: strings, numbers, typed arrays in; plain
// objects and freshly copied typed arrays out. No exception or abort is
// reachable from any input: every failure comes back as
// { ok: false, code, message } and the JS layer throws a ModelError.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "format.hpp"
#include "model.hpp"
#include "parallel.hpp"
#include "spec.hpp"
#if MODELKEEP_INTEROP
#include "import.hpp"
#include "safetensors.hpp"
#include "torch_file.hpp"
#endif

using emscripten::val;
using namespace modelkeep;

namespace {

val fail(const Status& st) {
    val out = val::object();
    out.set("ok", false);
    out.set("code", std::string(code_name(st.code())));
    out.set("message", st.message());
    return out;
}

val success() {
    val out = val::object();
    out.set("ok", true);
    return out;
}

// A JS-owned copy of n floats (the wasm heap may grow and move; views would dangle).
val float_array(const float* data, std::size_t n) {
    return val::global("Float32Array").new_(emscripten::typed_memory_view(n, data));
}

#if MODELKEEP_INTEROP
val byte_array(const std::vector<std::uint8_t>& bytes) {
    return val::global("Uint8Array").new_(emscripten::typed_memory_view(bytes.size(), bytes.data()));
}
#endif

val shape_array(const Shape& shape) {
    val out = val::array();
    for (std::size_t d : shape) out.call<void>("push", double(d));
    return out;
}

// A JS array's length as text ("3", not "3.000000").
std::string count_text(double n) { return std::to_string(std::uint64_t(n)); }

// Reads a JS array of non-negative integers as a Shape; false if it is not one.
bool read_shape(const val& js, Shape& shape) {
    if (!js.isArray()) return false;
    const unsigned n = js["length"].as<unsigned>();
    if (n > max_rank) return false;
    shape.clear();
    for (unsigned i = 0; i < n; ++i) {
        const val d = js[i];
        if (!d.isNumber()) return false;
        const double v = d.as<double>();
        if (!(v >= 0 && v <= double(max_tensor_elements)) || v != double(std::uint64_t(v))) return false;
        shape.push_back(std::size_t(v));
    }
    return true;
}

val layers_array(const std::vector<LayerSpec>& specs) {
    val out = val::array();
    for (const LayerSpec& s : specs) {
        val layer = val::object();
        layer.set("name", s.name);
        layer.set("kind", std::string(layer_kind_name(s.kind)));
        layer.set("spec", format_layer(s));
        out.call<void>("push", layer);
    }
    return out;
}

val info_object(const FileInfo& info) {
    val out = success();
    out.set("version", std::to_string(info.major) + "." + std::to_string(info.minor));
    out.set("kind", std::string(info.kind == FileKind::model ? "model" : "state_dict"));
    out.set("bytes", double(info.file_bytes));
    out.set("headerBytes", double(info.header_bytes));
    out.set("params", double(info.param_count));
    out.set("architecture", info.kind == FileKind::model ? val(format_spec(info.layers)) : val::null());
    out.set("layers", layers_array(info.layers));
    val tensors = val::array();
    std::uint64_t biggest = 0;
    std::string dtype = "f32";
    for (const TensorInfo& t : info.tensors) {
        val tensor = val::object();
        tensor.set("name", t.name);
        tensor.set("dtype", std::string(dtype_name(t.dtype)));
        tensor.set("shape", shape_array(t.shape));
        tensor.set("bytes", double(t.bytes));
        tensor.set("offset", double(t.offset));
        tensors.call<void>("push", tensor);
        if (t.bytes > biggest) {  // the file's dtype: that of its largest tensor
            biggest = t.bytes;
            dtype = dtype_name(t.dtype);
        }
    }
    out.set("tensors", tensors);
    out.set("dtype", dtype);
    val metadata = val::object();
    for (const auto& [k, v] : info.metadata) metadata.set(k, v);
    out.set("metadata", metadata);
    out.set("dataChecked", info.data_checked);
    out.set("format", std::string("modelkeep"));
    return out;
}

#if MODELKEEP_INTEROP
val metadata_object(const Metadata& metadata) {
    val out = val::object();
    for (const auto& [k, v] : metadata) out.set(k, v);
    return out;
}
#endif

#if MODELKEEP_INTEROP
// What a PyTorch or safetensors file holds (fileInfo for formats other than .mkp).
val source_object(const SourceInfo& info) {
    val out = success();
    out.set("format", std::string(file_format_name(info.format)));
    out.set("holds", info.source);
    out.set("architecture", info.has_layers ? val(format_spec(info.layers)) : val::null());
    out.set("architectureNote", info.arch_note);
    out.set("moduleTree", info.has_module ? val(describe_module(info.module)) : val::null());
    out.set("layers", layers_array(info.layers));
    val globals = val::array();
    for (const auto& g : info.globals) globals.call<void>("push", g);
    val entries = val::array();
    for (const auto& e : info.entries) entries.call<void>("push", e);
    out.set("entries", entries);
    out.set("globals", globals);
    val tensors = val::array();
    double elements = 0;
    for (const SourceTensor& t : info.tensors) {
        val tensor = val::object();
        tensor.set("name", t.name);
        tensor.set("dtype", t.dtype);
        tensor.set("shape", shape_array(t.shape));
        tensors.call<void>("push", tensor);
        double e = 1;
        for (std::size_t d : t.shape) e *= double(d);
        elements += e;
    }
    out.set("tensors", tensors);
    out.set("elements", elements);
    out.set("metadata", metadata_object(info.metadata));
    return out;
}
#endif

// Metadata from a plain JS object of strings (the JS layer validates types).
Status read_metadata(const val& js, Metadata& out) {
    out.clear();
    if (js.isUndefined() || js.isNull()) return Status::success();
    const val entries = val::global("Object").call<val>("entries", js);
    const unsigned n = entries["length"].as<unsigned>();
    if (n > max_metadata_entries)
        return error(Code::limit_exceeded,
                     std::to_string(n) + " metadata entries, over the cap of " + std::to_string(max_metadata_entries));
    for (unsigned i = 0; i < n; ++i) {
        const val kv = entries[i];
        if (!kv[1].isString()) return error(Code::invalid_argument, "metadata values must be strings");
        out.emplace_back(kv[0].as<std::string>(), kv[1].as<std::string>());
    }
    return Status::success();
}

// A file held by JavaScript: a Uint8Array, or the Uint8Arrays of its chunks
// in order (as the IndexedDB store keeps it). Readers copy only the ranges
// they ask for, straight into wasm memory, so a load never holds the file
// twice, and JavaScript need not join the chunks into one array first.
class JsSource final : public ByteSource {
public:
    explicit JsSource(const val& file) {
        if (!file.isArray()) {
            add(file);
            return;
        }
        const unsigned n = file["length"].as<unsigned>();
        for (unsigned i = 0; i < n; ++i) add(file[i]);
    }
    std::uint64_t size() const override { return size_; }
    void read(std::uint64_t offset, void* dst, std::size_t n) const override {
        auto* out = static_cast<std::uint8_t*>(dst);
        // The chunk holding `offset`: the last one starting at or before it.
        std::size_t i = std::size_t(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin()) - 1;
        for (; n && i < chunks_.size(); ++i) {
            const std::uint64_t begin = offset - starts_[i];
            const std::size_t take = std::size_t(std::min<std::uint64_t>(n, lengths_[i] - begin));
            const val part = chunks_[i].call<val>("subarray", double(begin), double(begin + take));
            val(emscripten::typed_memory_view(take, out)).call<void>("set", part);
            out += take;
            offset += take;
            n -= take;
        }
    }

private:
    void add(const val& chunk) {
        chunks_.push_back(chunk);
        starts_.push_back(size_);
        lengths_.push_back(std::uint64_t(chunk["length"].as<double>()));
        size_ += lengths_.back();
    }

    std::vector<val> chunks_;
    std::vector<std::uint64_t> starts_, lengths_;  // of each chunk, in the file
    std::uint64_t size_ = 0;
};

// A file being built in JavaScript: one Uint8Array, or (chunk_bytes > 0) a
// list of Uint8Arrays of chunk_bytes each, the last one shorter — the chunks
// the IndexedDB store keeps, which it can then store without copying. Each
// range the writer emits is copied straight from wasm memory into its place,
// so the file is never whole in wasm memory and is copied once.
class JsSink final : public ByteSink {
public:
    JsSink(std::uint64_t total, std::uint64_t chunk_bytes)
        : chunk_(chunk_bytes ? chunk_bytes : std::max<std::uint64_t>(total, 1)) {
        const val u8 = val::global("Uint8Array");
        for (std::uint64_t at = 0; at < total || chunks_.empty(); at += chunk_)
            chunks_.push_back(u8.new_(double(std::min(chunk_, total - at))));
    }
    void write(std::uint64_t offset, const void* data, std::size_t n) override {
        const auto* p = static_cast<const std::uint8_t*>(data);
        while (n) {
            const std::size_t i = std::size_t(offset / chunk_);
            const std::uint64_t within = offset - i * chunk_;
            const std::size_t take = std::size_t(std::min<std::uint64_t>(n, chunk_ - within));
            chunks_[i].call<void>("set", val(emscripten::typed_memory_view(take, p)), double(within));
            p += take;
            offset += take;
            n -= take;
        }
    }
    const std::vector<val>& chunks() const { return chunks_; }

private:
    std::uint64_t chunk_;
    std::vector<val> chunks_;
};

// A .mkp file (its magic), from its first 4 bytes only.
bool is_mkp(const ByteSource& file) {
    std::uint8_t head[4] = {0, 0, 0, 0};
    if (file.size() < 4) return false;
    file.read(0, head, 4);
    return std::memcmp(head, format_magic, 4) == 0;
}

#if !MODELKEEP_INTEROP
// What the lean build says of a file that is not .mkp.
Status not_mkp() {
    return error(Code::needs_importer,
                 "these bytes are not a modelkeep (.mkp) file, and this build of modelkeep "
                 "reads no other format (its PyTorch / safetensors importer is left out)");
}
#endif

// t resized to `shape` (in place when it holds as many values) and filled
// straight from a JS array-like of numbers (one copy).
void fill_from_js(const val& data, const Shape& shape, Tensor& t) {
    t.resize(shape);
    if (t.size()) val(emscripten::typed_memory_view(t.size(), t.data())).call<void>("set", data);
}

Tensor tensor_from_js(const val& data, const Shape& shape) {
    Tensor t;
    fill_from_js(data, shape, t);
    return t;
}

// With -fno-exceptions a failed `new` aborts the whole module, so every
// allocation whose size comes from input is tried first with malloc (which,
// with memory growth, returns null instead): if the memory cannot be had, the
// caller gets out_of_memory and the module lives on.
// The sizes come from the core, which knows the layout (model.hpp, format.hpp,
// import.hpp: model_bytes, forward_bytes, read_bytes, import_bytes, ...).
constexpr double max_wasm_bytes = 3.5 * 1024 * 1024 * 1024;

Status reserve(double bytes, const std::string& what) {
    bytes += 1 << 20;  // slack for the small allocations around the big ones
    void* p = bytes < max_wasm_bytes ? std::malloc(std::size_t(bytes)) : nullptr;
    if (!p)
        return error(Code::out_of_memory, what + " needs about " + std::to_string(std::uint64_t(bytes) >> 20) +
                                              " MiB, more than the WebAssembly memory can grow to");
    std::free(p);
    return Status::success();
}

#if MODELKEEP_INTEROP
// Before read_source: a legacy torch file (its magic number up front) is copied
// into wasm memory whole before it is parsed (read_torch), so that copy is
// reserved first; the other formats are read by ranges.
Status reserve_to_read(const ByteSource& file) {
    std::uint8_t head[32] = {};
    const std::size_t n = std::size_t(std::min<std::uint64_t>(sizeof head, file.size()));
    file.read(0, head, n);
    return legacy_magic_bytes(head, n) ? reserve(double(file.size()), "the file") : Status::success();
}
#endif

}  // namespace

/// A Sequential owned by exactly one JS Model object (which calls delete()).
/// JS creates an empty handle, then fills it with init() or load().
class ModelHandle {
public:
    /// SPEC + seed → { ok } or a failure; the handle holds the new model.
    val init(const std::string& spec, double seed) {
        std::vector<LayerSpec> specs;
        Status st = parse_spec(spec, specs);
        if (!st.ok()) return fail(st);
        if (!(seed >= 0 && seed <= 9007199254740991.0))
            return fail(error(Code::invalid_argument, "seed must be an integer in [0, 2^53)"));
        st = validate_specs(specs);
        if (st.ok()) st = reserve(double(model_bytes(specs)), "the model");
        if (!st.ok()) return fail(st);
        st = Sequential::create(specs, std::uint64_t(seed), model_);
        warm_ = {};
        if (!st.ok()) return fail(st);
        return success();
    }

    /// Any readable file (.mkp, torch zip or legacy, safetensors) as a
    /// Uint8Array or an array of its chunks (JsSource) → { ok, format, holds,
    /// architectureFrom, ... } or a failure. architecture (a SPEC, or "") and
    /// assumeSequential say what runs when the file does not (needs_architecture
    /// otherwise); prefix (or "") keeps only the file's keys under it, prefix off,
    /// for an architecture; entry (or "") names a torch checkpoint's model entry. Without the importer (the lean
    /// build), .mkp files only (needs_importer otherwise).
    val load(const val& bytes, const std::string& architecture, bool assume_sequential, const std::string& prefix,
             const std::string& entry) {
        const JsSource file(bytes);
        if (is_mkp(file)) {
            // The header alone sizes the work; the reader then streams the data once.
            FileInfo info;
            Status st = read_info(file, false, info);
            if (st.ok()) st = reserve(double(read_bytes(info, architecture.empty())), "the model");
            Sequential model;
            if (st.ok()) st = read_model_as(file, architecture, model, info, prefix);
            if (!st.ok()) return fail(st);
            model_ = std::move(model);
            warm_ = {};
            val out = info_object(info);
            out.set("holds", std::string(info.kind == FileKind::model ? "model" : "state dict"));
            out.set("architectureFrom", std::string(architecture.empty() ? "file" : "architecture option"));
            return out;
        }
#if MODELKEEP_INTEROP
        // The structure alone sizes the work; import_file then reads everything (CRCs once).
        SourceInfo source;
        ImportOptions options;
        options.architecture = architecture;
        options.assume_sequential = assume_sequential;
        options.prefix = prefix;
        options.entry = entry;
        Status st = reserve_to_read(file);
        if (st.ok()) st = read_source(file, source, entry);
        if (st.ok()) st = reserve(double(import_bytes(source, options, true)), "the model");
        if (!st.ok()) return fail(st);
        Imported in;
        st = import_file(file, options, true, in);
        if (!st.ok()) return fail(st);
        model_ = std::move(in.model);
        warm_ = {};
        val out = source_object(in.info);
        out.set("holds", in.info.source);
        out.set("architectureFrom", in.arch_from);
        return out;
#else
        (void)assume_sequential, (void)entry;
        return fail(not_mkp());
#endif
    }

    /// format: 'safetensors' | 'pt', dtype: 'f32' | 'f16' | 'bf16' → { ok, bytes } (a state dict).
    val export_bytes(const std::string& format, const std::string& dtype, const val& metadata) const {
#if MODELKEEP_INTEROP
        DType d;
        if (!parse_dtype(dtype, d) || d == DType::int8)
            return fail(error(Code::invalid_argument,
                              "dtype '" + dtype + "' is not one of f32, f16, bf16 (" + format + " has no int8 form)"));
        if (format != "safetensors" && format != "pt")
            return fail(error(Code::invalid_argument, "export format '" + format + "' is not safetensors or pt"));
        const ExportFormat f = format == "pt" ? ExportFormat::torch : ExportFormat::safetensors;
        Metadata meta;
        Status st = read_metadata(metadata, meta);
        // The state dict's copy, then the file.
        if (st.ok())
            st = reserve(double(model_.state_dict_bytes() + modelkeep::export_bytes(f, model_.state_dict_shapes(), d)),
                         "the file");
        if (!st.ok()) return fail(st);
        std::vector<std::uint8_t> bytes;
        st = f == ExportFormat::safetensors ? write_safetensors(model_.state_dict(), meta, d, bytes)
                                            : write_torch(model_.state_dict(), d, bytes);
        if (!st.ok()) return fail(st);
        val out = success();
        out.set("bytes", byte_array(bytes));
        return out;
#else
        (void)format, (void)dtype, (void)metadata;
        return fail(error(Code::needs_importer,
                          "exporting to .pt or .safetensors needs the importer, which this "
                          "build of modelkeep leaves out"));
#endif
    }

    /// data: Float32Array, shape: number[] → { ok, shape, data } or a failure.
    /// The input, the layers' outputs and the result stay in wasm memory for
    /// the next call: one on the same shape allocates nothing there.
    val forward(const val& data, const val& shape_js) {
        Shape shape;
        if (!read_shape(shape_js, shape))
            return fail(error(Code::invalid_input, "shape must be an array of at most 8 non-negative integers"));
        std::uint64_t numel = 0;
        Status st = checked_numel(shape, numel, "input");
        if (!st.ok()) return fail(st);
        if (data["length"].as<double>() != double(numel))
            return fail(error(Code::shape_mismatch, "input has " + count_text(data["length"].as<double>()) +
                                                        " values but shape " + shape_to_string(shape) + " holds " +
                                                        std::to_string(numel)));
        if (!warm_.ready || shape != warm_.shape) {
            // A new shape: the last one's tensors go, then room for the input
            // and what the forward allocates (model.hpp).
            warm_ = {};
            st = reserve(double(numel) * 4 + double(model_.forward_bytes(shape)), "this input");
            if (!st.ok()) return fail(st);
        }
        fill_from_js(data, shape, warm_.input);
        st = model_.forward(warm_.input, warm_.output, warm_.buffers);
        if (!st.ok()) {
            warm_ = {};
            return fail(st);
        }
        warm_.shape = shape;
        warm_.ready = true;
        val out = success();
        out.set("shape", shape_array(shape_of(warm_.output)));
        out.set("data", float_array(warm_.output.data(), warm_.output.size()));
        return out;
    }

    /// dtype: 'f32' | 'f16' | 'bf16' | 'int8', metadata: { [k]: string }, stateDict: bool
    /// → the file's info object (as fileInfo gives) with its `bytes`.
    /// dtype, metadata, state_dict (no architecture) → { ok, ...info, bytes }, or
    /// with chunk_bytes > 0 { ok, ...info, chunks: [Uint8Array of chunk_bytes, …] }.
    val to_bytes(const std::string& dtype, const val& metadata, bool state_dict, double chunk_bytes) const {
        WriteOptions opt;
        if (!parse_dtype(dtype, opt.dtype))
            return fail(error(Code::invalid_argument, "dtype '" + dtype + "' is not one of f32, f16, bf16, int8"));
        Status st = read_metadata(metadata, opt.metadata);
        if (!st.ok()) return fail(st);
        // A state dict is written from a copy of the tensors; a model straight from its own.
        StateDict copy;
        if (state_dict) {
            st = reserve(double(model_.state_dict_bytes()), "the state dict");
            if (!st.ok()) return fail(st);
            copy = model_.state_dict();
        }
        WritePlan plan;
        st = state_dict ? plan_state_dict(copy, opt, plan) : plan_model(model_, opt, plan);
        // The file itself is built in JavaScript; wasm memory holds the scratch and at most one expanded weight.
        if (st.ok()) st = reserve(double(emit_bytes(plan)), "the file");
        if (!st.ok()) return fail(st);
        if (!(chunk_bytes >= 0 && chunk_bytes <= 9007199254740991.0))
            return fail(error(Code::invalid_argument, "chunkBytes must be a non-negative integer"));
        JsSink sink(plan.info.file_bytes, std::uint64_t(chunk_bytes));
        emit_file(plan, sink);
        val out = info_object(plan.info);
        if (chunk_bytes > 0) {
            val list = val::array();
            for (const val& c : sink.chunks()) list.call<void>("push", c);
            out.set("chunks", list);
        } else {
            out.set("bytes", sink.chunks()[0]);
        }
        return out;
    }

    /// [{ name, shape, data }] in PyTorch's order.
    val state_dict() const {
        val out = val::array();
        model_.for_each_tensor([&](const std::string& key, const Tensor& t) {
            val entry = val::object();
            entry.set("name", key);
            entry.set("shape", shape_array(shape_of(t)));
            entry.set("data", float_array(t.data(), t.size()));
            out.call<void>("push", entry);
        });
        return out;
    }

    /// entries: [{ name, shape, data: Float32Array }] → { ok, missingKeys, unexpectedKeys } or a failure.
    val load_state_dict(const val& entries, bool strict) {
        if (!entries.isArray()) return fail(error(Code::invalid_input, "a state dict must be an array of entries"));
        const unsigned n = entries["length"].as<unsigned>();
        if (n > max_tensors)
            return fail(error(Code::limit_exceeded,
                              std::to_string(n) + " tensors, over the cap of " + std::to_string(max_tensors)));
        StateDict sd;
        for (unsigned i = 0; i < n; ++i) {
            const val e = entries[i];
            Shape shape;
            if (!e["name"].isString() || !read_shape(e["shape"], shape))
                return fail(error(Code::invalid_input,
                                  "state dict entry " + std::to_string(i) + " needs a string name and a shape array"));
            const std::string name = e["name"].as<std::string>();
            std::uint64_t numel = 0;
            Status st = checked_numel(shape, numel, "tensor '" + name + "'");
            if (!st.ok()) return fail(st);
            if (e["data"]["length"].as<double>() != double(numel))
                return fail(error(Code::shape_mismatch, "tensor '" + name + "' has " +
                                                            count_text(e["data"]["length"].as<double>()) +
                                                            " values but shape " + shape_to_string(shape)));
            st = reserve(double(numel) * 4, "tensor '" + name + "'");
            if (!st.ok()) return fail(st);
            sd.emplace_back(name, tensor_from_js(e["data"], shape));
        }
        LoadReport report;
        const Status st = model_.load_state_dict(sd, strict, report);
        if (!st.ok()) return fail(st);
        val out = success();
        val missing = val::array(), unexpected = val::array();
        for (const auto& k : report.missing_keys) missing.call<void>("push", k);
        for (const auto& k : report.unexpected_keys) unexpected.call<void>("push", k);
        out.set("missingKeys", missing);
        out.set("unexpectedKeys", unexpected);
        return out;
    }

    /// dtype: 'f32' | 'f16' | 'bf16' | 'int8' → { ok, unchanged: [layer names] }:
    /// every Linear weight held in that dtype (compact.hpp), except those it
    /// cannot hold (NaN/inf, or beyond f16's range), which stay as they were.
    val set_weight_dtype(const std::string& dtype) {
        DType d;
        if (!parse_dtype(dtype, d))
            return fail(error(Code::invalid_argument, "dtype '" + dtype + "' is not one of f32, f16, bf16, int8"));
        const Status st = reserve(double(model_.set_weight_dtype_bytes(d)), "changing the weights' dtype");
        if (!st.ok()) return fail(st);
        std::vector<std::string> unchanged;
        model_.set_weight_dtype(d, &unchanged);
        val names = val::array();
        for (const std::string& n : unchanged) names.call<void>("push", n);
        val out = success();
        out.set("unchanged", names);
        return out;
    }

    std::string weight_dtype() const { return dtype_name(model_.weight_dtype()); }
    double memory_bytes() const { return double(model_.memory_bytes()); }

    std::string architecture() const { return format_spec(model_.specs()); }
    val layers() const { return layers_array(model_.specs()); }
    double param_count() const { return double(model_.param_count()); }

private:
    Sequential model_;
    // What forward keeps between calls, for inputs of `shape`; emptied
    // whenever the model is replaced or the shape changes.
    struct Warm {
        bool ready = false;
        Shape shape;
        Tensor input, output;
        ForwardBuffers buffers;
    } warm_;
};

namespace {

/// Bytes of any readable file → its info object without decoding weights
/// (.mkp: the header; torch: the pickle and the storages' sizes; safetensors:
/// the header). check_data also reads every value (CRCs, conversions; a .mkp
/// file is streamed through one chunk, no tensor is allocated).
val file_info(const val& u8, bool check_data) {
    const JsSource file(u8);
    if (is_mkp(file)) {
        FileInfo info;
        const Status st = read_info(file, check_data, info);
        if (!st.ok()) return fail(st);
        return info_object(info);
    }
#if MODELKEEP_INTEROP
    SourceInfo source;
    Status st = reserve_to_read(file);
    if (st.ok()) st = read_source(file, source);
    if (st.ok() && check_data) {
        // At most what an import holds (a torch file's check holds one storage at a time).
        st = reserve(double(import_bytes(source, ImportOptions(), false)), "the check");
        if (st.ok()) st = check_source(file);
    }
    if (!st.ok()) return fail(st);
    val out = source_object(source);
    out.set("dataChecked", check_data);
    return out;
#else
    (void)check_data;
    return fail(not_mkp());
#endif
}

/// Bytes of any readable file → { ok, format, stateDict: [{ name, shape, data }] }.
val read_tensors(const val& u8) {
    const JsSource file(u8);
    val entries = val::array();
    auto add = [&](const std::string& name, const Tensor& t) {
        val e = val::object();
        e.set("name", name);
        e.set("shape", shape_array(shape_of(t)));
        e.set("data", float_array(t.data(), t.size()));
        entries.call<void>("push", e);
    };
    val out = success();
    if (is_mkp(file)) {
        FileInfo info;
        Status st = read_info(file, false, info);
        if (st.ok()) st = reserve(double(read_bytes(info, false)), "the tensors");
        LoadedFile loaded;
        if (st.ok()) st = read_file(file, loaded);
        if (!st.ok()) return fail(st);
        for (const auto& [name, t] : loaded.tensors) add(name, t);
        out.set("format", std::string("modelkeep"));
        out.set("stateDict", entries);
        return out;
    }
#if MODELKEEP_INTEROP
    SourceInfo source;
    Status st = reserve_to_read(file);
    if (st.ok()) st = read_source(file, source);
    if (st.ok()) st = reserve(double(import_bytes(source, ImportOptions(), false)), "the tensors");
    if (!st.ok()) return fail(st);
    Imported in;
    st = import_file(file, ImportOptions(), false, in);
    if (!st.ok()) return fail(st);
    if (in.has_model)
        in.model.for_each_tensor(add);
    else
        for (const auto& [name, t] : in.tensors) add(name, t);
    out.set("format", std::string(file_format_name(in.info.format)));
    out.set("stateDict", entries);
    return out;
#else
    return fail(not_mkp());
#endif
}

}  // namespace

EMSCRIPTEN_BINDINGS(modelkeep) {
    emscripten::class_<ModelHandle>("ModelHandle")
        .constructor<>()
        .function("init", &ModelHandle::init)
        .function("load", &ModelHandle::load)
        .function("forward", &ModelHandle::forward)
        .function("toBytes", &ModelHandle::to_bytes)
        .function("exportBytes", &ModelHandle::export_bytes)
        .function("stateDict", &ModelHandle::state_dict)
        .function("loadStateDict", &ModelHandle::load_state_dict)
        .function("architecture", &ModelHandle::architecture)
        .function("layers", &ModelHandle::layers)
        .function("paramCount", &ModelHandle::param_count)
        .function("setWeightDtype", &ModelHandle::set_weight_dtype)
        .function("weightDtype", &ModelHandle::weight_dtype)
        .function("memoryBytes", &ModelHandle::memory_bytes);
    emscripten::function("fileInfo", &file_info);
    emscripten::function("readTensors", &read_tensors);
    // Threads the kernels use: 1, or up to 4 in the pthreads build (parallel.hpp).
    emscripten::function(
        "threadCount", +[]() { return double(thread_count()); });
}
