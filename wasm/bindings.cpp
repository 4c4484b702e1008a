// bindings.cpp — the whole binding surface between the core and JavaScript: a
// plain C ABI (no Embind: it cost a quarter of the lean module, docs/
// PERFORMANCE.md "Download size"), wrapped by web/src/abi.js, which gives the
// rest of the package the methods it calls.
//
// The conventions, all of them:
// - A call that answers with data returns a pointer to a NUL-terminated JSON
//   text, { "ok": true, ... } or { "ok": false, "code", "message" }, valid until
//   the next call (one buffer, `answer`). abi.js parses it.
// - A call that returns a float* (forward, state dict entries) returns null on
//   failure, with the failure's JSON at mk_answer().
// - Strings and metadata come in one "args" block written by abi.js: each
//   string is a little-endian u32 byte length then its UTF-8 bytes; metadata is
//   a u32 count then that many key and value strings.
// - Shapes go both ways through mk_dims(): up to 9 doubles (in: the dims; out:
//   the rank then the dims).
// - A file is read where JavaScript holds it (a Uint8Array or the chunks the
//   IndexedDB store keeps): the core asks for byte ranges through the import
//   mk_js_read, which copies each straight into wasm memory, so a load never
//   holds the file twice. A file being written is built in JavaScript the same
//   way: mk_js_sink sizes it, mk_js_write copies each range the writer emits.
// - Float data in is written by abi.js into memory the call hands out. Data
//   out is copied by abi.js during the call, through the import mk_js_take
//   (each tensor of a state dict: some exist only while it is produced, such
//   as a packed weight's (out, in) rows), or right after it (forward's output).
// - A model moves between modules (web/src/model.js) as it is held: mk_model_take
//   copies it out tensor by tensor, mk_give_begin / _add / _end build it in the
//   other module.
// The reader build (MODELKEEP_READER, web/dist-reader/) has only the calls that
// load a .mkp model and run it, describe it and take it: the rest is #if'd out
// below, and the linker drops the code only they used.
// No exception or abort is reachable from any input: every allocation sized by
// input is reserved first (reserve), and every failure is a Status.
#include <emscripten/em_js.h>
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "abi.hpp"
#include "compact.hpp"
#include "format.hpp"
#include "json_string.hpp"
#include "layer.hpp"
#include "model.hpp"
#include "parallel.hpp"
#include "spec.hpp"
#if MODELKEEP_INTEROP
#include "import.hpp"
#include "safetensors.hpp"
#include "torch_file.hpp"
#endif

// The imports (web/src/abi.js defines what they do, on the module object).
// clang-format off
EM_JS(void, mk_js_read, (void* dst, double offset, std::size_t n), { Module["mkRead"](dst >>> 0, offset, n >>> 0); });
EM_JS(void, mk_js_sink, (double total, double chunk), { Module["mkSink"](total, chunk); });
EM_JS(void, mk_js_write, (const void* src, double offset, std::size_t n), { Module["mkWrite"](src >>> 0, offset, n >>> 0); });
EM_JS(void, mk_js_take, (const void* data, double n), { Module["mkTake"](data >>> 0, n); });
// clang-format on

using namespace modelkeep;
using namespace mk_abi;

namespace mk_abi {
std::string answer;
double dims[9];
}  // namespace mk_abi

namespace {

#if MODELKEEP_INTEROP
// What a PyTorch or safetensors file holds (fileInfo for formats other than .mkp).
void source_fields(Json& j, const SourceInfo& info) {
    j.str("format", file_format_name(info.format))
        .str("holds", info.source)
        .raw("architecture", string_or_null(info.has_layers, format_spec(info.layers)))
        .str("architectureNote", info.arch_note)
        .raw("moduleTree", string_or_null(info.has_module, info.has_module ? describe_module(info.module) : ""))
        .raw("layers", layers_array(info.layers))
        .raw("entries", string_array(info.entries))
        .raw("globals", string_array(info.globals));
    std::string tensors = "[";
    double elements = 0;
    for (const SourceTensor& t : info.tensors) {
        tensors += tensors.size() > 1 ? ",{" : "{";
        Json(tensors).str("name", t.name).str("dtype", t.dtype).raw("shape", shape_array(t.shape));
        tensors += '}';
        double e = 1;
        for (std::size_t d : t.shape) e *= double(d);
        elements += e;
    }
    j.raw("tensors", tensors + "]").num("elements", elements).raw("metadata", metadata_object(info.metadata));
}
#endif

#if !MODELKEEP_INTEROP
// What the lean build says of a file that is not .mkp.
Status not_mkp() {
    return error(Code::needs_importer,
                 "these bytes are not a modelkeep (.mkp) file, and this build of modelkeep "
                 "reads no other format (its PyTorch / safetensors importer is left out)");
}
#endif

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

#if !MODELKEEP_READER
// A state dict being passed in (mk_sd_begin, mk_sd_add, then mk_sd_load).
StateDict pending;
std::size_t pending_total = 0;
#endif

// [{ name, shape }] of the tensors `each` produces, whose values JavaScript
// copies as each is produced (mk_js_take), in the same order.
template <typename Each>
std::string tensor_list(Each&& each) {
    std::string out = "[";
    each([&](const std::string& name, const Tensor& t) {
        mk_js_take(t.data(), double(t.size()) * 4);
        out += out.size() > 1 ? ",{" : "{";
        Json(out).str("name", name).raw("shape", shape_array(shape_of(t)));
        out += '}';
    });
    return out + "]";
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE void* mk_alloc(std::size_t n) { return std::malloc(n); }
EMSCRIPTEN_KEEPALIVE void mk_free(void* p) { std::free(p); }
EMSCRIPTEN_KEEPALIVE double* mk_dims() { return dims; }
EMSCRIPTEN_KEEPALIVE const char* mk_answer() { return answer.c_str(); }

EMSCRIPTEN_KEEPALIVE ModelHandle* mk_model_new() { return new (std::nothrow) ModelHandle(); }
EMSCRIPTEN_KEEPALIVE void mk_model_delete(ModelHandle* h) { delete h; }

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// args: SPEC. → ok; the handle holds the new model, with PyTorch's initialisation from `seed`.
EMSCRIPTEN_KEEPALIVE const char* mk_model_init(ModelHandle* h, const std::uint8_t* args, double seed) {
    std::vector<LayerSpec> specs;
    Status st = parse_spec(Args(args).str(), specs);
    if (!st.ok()) return fail(st);
    if (!(seed >= 0 && seed <= 9007199254740991.0))
        return fail(error(Code::invalid_argument, "seed must be an integer in [0, 2^53)"));
    st = validate_specs(specs);
    if (st.ok()) st = reserve(double(model_bytes(specs)), "the model");
    if (!st.ok()) return fail(st);
    st = Sequential::create(specs, std::uint64_t(seed), h->model);
    h->warm = {};
    if (!st.ok()) return fail(st);
    return ok();
}
#endif

/// Any readable file of `size` bytes (.mkp, torch zip or legacy, safetensors; the
/// current source) → { ok, format, holds, architectureFrom, ...info }. args:
/// architecture (a SPEC, or ""), prefix (or ""), entry (or ""). architecture and
/// assume_sequential say what runs when the file does not (needs_architecture
/// otherwise); prefix keeps only the file's keys under it, prefix off, for an
/// architecture; entry names a torch checkpoint's model entry. Without the
/// importer (the lean build), .mkp files only (needs_importer otherwise).
EMSCRIPTEN_KEEPALIVE const char* mk_model_load(ModelHandle* h, double size, const std::uint8_t* args,
                                               int assume_sequential) {
    const JsSource file(size);
    Args a(args);
    const std::string architecture = a.str(), prefix = a.str(), entry = a.str();
    if (is_mkp(file)) {
        // The header alone sizes the work; the reader then streams the data once.
        FileInfo info;
        Status st = read_info(file, false, info);
        if (st.ok()) st = reserve(double(read_bytes(info, architecture.empty())), "the model");
        Sequential model;
#if MODELKEEP_READER
        // The reader loads model files as they are; the JS layer sends everything else to the core.
        (void)prefix;
        if (st.ok() && !architecture.empty())
            st = error(Code::invalid_argument, "loads with an architecture are the core module's, not the reader's");
        if (st.ok()) st = read_model(file, model, nullptr, &info);
        if (st.code() == Code::wrong_kind)
            st = error(
                Code::needs_architecture,
                "a modelkeep state dict holds weights, not the layers that use them: load it with an architecture");
#else
        if (st.ok()) st = read_model_as(file, architecture, model, info, prefix);
#endif
        if (!st.ok()) return fail(st);
        h->model = std::move(model);
        h->warm = {};
        Json j = success();
        info_fields(j, info);
        j.str("holds", info.kind == FileKind::model ? "model" : "state dict")
            .str("architectureFrom", architecture.empty() ? "file" : "architecture option");
        return done();
    }
#if MODELKEEP_INTEROP
    // The structure alone sizes the work; import_file then reads everything (CRCs once).
    SourceInfo source;
    ImportOptions options;
    options.architecture = architecture;
    options.assume_sequential = assume_sequential != 0;
    options.prefix = prefix;
    options.entry = entry;
    Status st = reserve_to_read(file);
    if (st.ok()) st = read_source(file, source, entry);
    if (st.ok()) st = reserve(double(import_bytes(source, options, true)), "the model");
    if (!st.ok()) return fail(st);
    Imported in;
    st = import_file(file, options, true, in);
    if (!st.ok()) return fail(st);
    h->model = std::move(in.model);
    h->warm = {};
    Json j = success();
    source_fields(j, in.info);
    j.str("holds", in.info.source).str("architectureFrom", in.arch_from);
    return done();
#else
    (void)assume_sequential;
    return fail(not_mkp());
#endif
}

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// args: format ('safetensors' | 'pt'), dtype ('f32' | 'f16' | 'bf16'), metadata
/// → ok, the state dict's file copied to JavaScript (mk_js_take).
EMSCRIPTEN_KEEPALIVE const char* mk_model_export(ModelHandle* h, const std::uint8_t* args) {
    Args a(args);
    const std::string format = a.str(), dtype = a.str();
#if MODELKEEP_INTEROP
    DType d;
    if (!parse_dtype(dtype, d) || d == DType::int8)
        return fail(error(Code::invalid_argument,
                          "dtype '" + dtype + "' is not one of f32, f16, bf16 (" + format + " has no int8 form)"));
    if (format != "safetensors" && format != "pt")
        return fail(error(Code::invalid_argument, "export format '" + format + "' is not safetensors or pt"));
    const ExportFormat f = format == "pt" ? ExportFormat::torch : ExportFormat::safetensors;
    Metadata meta;
    Status st = a.metadata(meta);
    // The state dict's copy, then the file.
    if (st.ok())
        st = reserve(double(h->model.state_dict_bytes() + modelkeep::export_bytes(f, h->model.state_dict_shapes(), d)),
                     "the file");
    if (!st.ok()) return fail(st);
    std::vector<std::uint8_t> bytes;
    st = f == ExportFormat::safetensors ? write_safetensors(h->model.state_dict(), meta, d, bytes)
                                        : write_torch(h->model.state_dict(), d, bytes);
    if (!st.ok()) return fail(st);
    mk_js_take(bytes.data(), double(bytes.size()));
    return ok();
#else
    (void)h;
    return fail(error(Code::needs_importer, "exporting to ." + (format == "pt" ? format : std::string("safetensors")) +
                                                " needs the importer, which this build of modelkeep leaves out"));
#endif
}
#endif

/// Step 1 of forward: the input's shape (rank dims in mk_dims()) and its
/// `length` values → where abi.js writes them (the model's warm input), or null
/// with the failure at mk_answer(). The input, the layers' outputs and the
/// result stay in wasm memory for the next call: one on the same shape
/// allocates nothing there.
EMSCRIPTEN_KEEPALIVE float* mk_forward_input(ModelHandle* h, int rank, double length) {
    Shape shape;
    if (!read_shape(rank, shape)) {
        fail(error(Code::invalid_input, "shape must be an array of at most 8 non-negative integers"));
        return nullptr;
    }
    std::uint64_t numel = 0;
    Status st = checked_numel(shape, numel, "input");
    if (st.ok() && length != double(numel))
        st = error(Code::shape_mismatch, "input has " + count_text(length) + " values but shape " +
                                             shape_to_string(shape) + " holds " + std::to_string(numel));
    ModelHandle::Warm& warm = h->warm;
    if (st.ok() && (!warm.ready || shape != warm.shape)) {
        // A new shape: the last one's tensors go, then room for the input
        // and what the forward allocates (model.hpp).
        warm = {};
        st = reserve(double(numel) * 4 + double(h->model.forward_bytes(shape)), "this input");
    }
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    warm.input.resize(shape);
    warm.shape = shape;
    return warm.input.data();
}

/// Step 2: runs the model on the input step 1 took → the output's values (its
/// shape in mk_dims(): rank, then dims), or null with the failure at mk_answer().
EMSCRIPTEN_KEEPALIVE const float* mk_forward_run(ModelHandle* h) {
    ModelHandle::Warm& warm = h->warm;
    const Status st = h->model.forward(warm.input, warm.output, warm.buffers);
    if (!st.ok()) {
        warm = {};
        fail(st);
        return nullptr;
    }
    warm.ready = true;
    write_shape(shape_of(warm.output));
    return warm.output.data();
}

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// args: dtype ('f32' | 'f16' | 'bf16' | 'int8'), metadata; state_dict: no
/// architecture → { ok, ...info } once the file has gone to mk_js_sink /
/// mk_js_write (chunk_bytes > 0: in chunks of that many bytes).
EMSCRIPTEN_KEEPALIVE const char* mk_model_to_bytes(ModelHandle* h, const std::uint8_t* args, int state_dict,
                                                   double chunk_bytes) {
    Args a(args);
    const std::string dtype = a.str();
    WriteOptions opt;
    if (!parse_dtype(dtype, opt.dtype))
        return fail(error(Code::invalid_argument, "dtype '" + dtype + "' is not one of f32, f16, bf16, int8"));
    Status st = a.metadata(opt.metadata);
    if (!st.ok()) return fail(st);
    if (!(chunk_bytes >= 0 && chunk_bytes <= 9007199254740991.0) || chunk_bytes != std::floor(chunk_bytes))
        return fail(error(Code::invalid_argument, "chunkBytes must be a non-negative integer"));
    // A state dict is written from a copy of the tensors; a model straight from its own.
    StateDict copy;
    if (state_dict) {
        st = reserve(double(h->model.state_dict_bytes()), "the state dict");
        if (!st.ok()) return fail(st);
        copy = h->model.state_dict();
    }
    WritePlan plan;
    st = state_dict ? plan_state_dict(copy, opt, plan) : plan_model(h->model, opt, plan);
    // The file itself is built in JavaScript; wasm memory holds the scratch and at most one expanded weight.
    if (st.ok()) st = emit_to_js(plan, chunk_bytes);
    if (!st.ok()) return fail(st);
    Json j = success();
    info_fields(j, plan.info);
    return done();
}
#endif

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// → { ok, stateDict: [{ name, shape }] } in PyTorch's order, each tensor's
/// values copied to JavaScript (mk_js_take).
EMSCRIPTEN_KEEPALIVE const char* mk_state_dict(ModelHandle* h) {
    const std::string list = tensor_list([&](auto&& add) { h->model.for_each_tensor(add); });
    success().raw("stateDict", list);
    return done();
}
#endif

#if !MODELKEEP_READER
/// A state dict being passed in: mk_sd_begin(n entries), then mk_sd_add for
/// each, then mk_sd_load. → ok, or limit_exceeded.
EMSCRIPTEN_KEEPALIVE const char* mk_sd_begin(double n) {
    pending.clear();
    pending_total = 0;
    if (!(n <= double(max_tensors)))
        return fail(
            error(Code::limit_exceeded, count_text(n) + " tensors, over the cap of " + std::to_string(max_tensors)));
    pending_total = std::size_t(n);
    return ok();
}

/// args: the entry's name; its shape in mk_dims() (rank dims); `length` values
/// → where abi.js writes them, or null with the failure at mk_answer().
EMSCRIPTEN_KEEPALIVE float* mk_sd_add(const std::uint8_t* args, int rank, double length) {
    const std::string name = Args(args).str();
    Shape shape;
    Status st;
    if (pending.size() >= pending_total)
        st = error(Code::invalid_argument, "more state dict entries than mk_sd_begin announced");
    else if (!read_shape(rank, shape))
        st = error(Code::invalid_input,
                   "state dict entry " + std::to_string(pending.size()) + " needs a string name and a shape array");
    std::uint64_t numel = 0;
    if (st.ok()) st = checked_numel(shape, numel, "tensor '" + name + "'");
    if (st.ok() && length != double(numel))
        st = error(Code::shape_mismatch,
                   "tensor '" + name + "' has " + count_text(length) + " values but shape " + shape_to_string(shape));
    if (st.ok()) st = reserve(double(numel) * 4, "tensor '" + name + "'");
    if (!st.ok()) {
        pending.clear();
        fail(st);
        return nullptr;
    }
    Tensor t;
    t.resize(shape);
    pending.emplace_back(name, std::move(t));
    return pending.back().second.data();
}

/// The entries passed in → { ok, missingKeys, unexpectedKeys } or a failure
/// (nothing changes then).
EMSCRIPTEN_KEEPALIVE const char* mk_sd_load(ModelHandle* h, int strict) {
    StateDict sd = std::move(pending);
    pending.clear();
    LoadReport report;
    const Status st = h->model.load_state_dict(sd, strict != 0, report);
    if (!st.ok()) return fail(st);
    success()
        .raw("missingKeys", string_array(report.missing_keys))
        .raw("unexpectedKeys", string_array(report.unexpected_keys));
    return done();
}
#endif

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// args: dtype ('f32' | 'f16' | 'bf16' | 'int8') → { ok, unchanged: [layer names] }:
/// every Linear weight held in that dtype (compact.hpp), except those it
/// cannot hold (NaN/inf, or beyond f16's range), which stay as they were.
EMSCRIPTEN_KEEPALIVE const char* mk_set_weight_dtype(ModelHandle* h, const std::uint8_t* args) {
    const std::string dtype = Args(args).str();
    DType d;
    if (!parse_dtype(dtype, d))
        return fail(error(Code::invalid_argument, "dtype '" + dtype + "' is not one of f32, f16, bf16, int8"));
    const Status st = reserve(double(h->model.set_weight_dtype_bytes(d)), "changing the weights' dtype");
    if (!st.ok()) return fail(st);
    std::vector<std::string> unchanged;
    h->model.set_weight_dtype(d, &unchanged);
    success().raw("unchanged", string_array(unchanged));
    return done();
}
#endif

/// → { ok, architecture, layers, weightDtype, memoryBytes, paramCount }.
EMSCRIPTEN_KEEPALIVE const char* mk_model_describe(ModelHandle* h) {
    success()
        .str("architecture", format_spec(h->model.specs()))
        .raw("layers", layers_array(h->model.specs()))
        .str("weightDtype", dtype_name(h->model.weight_dtype()))
        .num("memoryBytes", double(h->model.memory_bytes()))
        .num("paramCount", double(h->model.param_count()));
    return done();
}

/// A model moving to another module (web/src/model.js: the reader holds only
/// what load and forward need; the core or the importer does the rest): → { ok,
/// architecture, tensors: [{ dtype, shape }] } in state-dict order, each tensor
/// as it is held copied to JavaScript (mk_js_take): a compact weight as the
/// file format's stored bytes (lossless: mk_give_add takes them back as they
/// are), anything else as float32 rows (a packed weight unpacked for the copy).
EMSCRIPTEN_KEEPALIVE const char* mk_model_take(ModelHandle* h) {
    // The largest transient: one weight's stored bytes or unpacked rows.
    double largest = 0;
    for (const Layer& layer : h->model.layers())
        for (const Param& p : layer.params) largest = std::max(largest, double(p.bytes()));
    const Status st = reserve(largest, "moving the model");
    if (!st.ok()) return fail(st);
    std::string tensors = "[";
    Tensor scratch;
    std::vector<std::uint8_t> stored;
    for (const Layer& layer : h->model.layers())
        for (const Param& p : layer.params) {
            if (p.is_compact()) {
                const CompactWeight& w = p.compact();
                stored.resize(std::size_t(stored_bytes(w.dtype, std::uint64_t(w.rows) * w.cols, w.rows)));
                compact_to_stored(w, stored.data());
                mk_js_take(stored.data(), double(stored.size()));
            } else {
                const Tensor& t = p.f32(scratch);
                mk_js_take(t.data(), double(t.size()) * 4);
            }
            tensors += tensors.size() > 1 ? ",{" : "{";
            Json(tensors).str("dtype", dtype_name(p.dtype())).raw("shape", shape_array(p.shape()));
            tensors += '}';
        }
    success().str("architecture", format_spec(h->model.specs())).raw("tensors", tensors + "]");
    return done();
}

#if !MODELKEEP_READER  // the reader only ever gives a model away
namespace {
// A model moving in (mk_give_begin, mk_give_add per tensor, mk_give_end): what
// mk_model_take gave in another module.
struct Giving {
    std::vector<LayerSpec> specs;
    std::vector<ParamInfo> expected;   // every tensor of specs, in state-dict order
    std::vector<Param> params;         // those given so far
    std::vector<std::uint8_t> stored;  // the last compact weight's stored bytes, until taken in
    DType stored_dtype = DType::f32;
} giving;

// The compact weight mk_give_add handed out last, from its stored bytes.
Status finish_given() {
    if (giving.stored_dtype == DType::f32) return Status::success();
    const Shape& s = giving.expected[giving.params.size()].shape;
    CompactWeight w;
    const bool held = compact_from_stored(giving.stored_dtype, s[0], s[1], giving.stored.data(), w);
    giving.stored = {};
    giving.stored_dtype = DType::f32;
    if (!held) return error(Code::invalid_input, "a compact weight given to the model holds values it cannot hold");
    giving.params.emplace_back(std::move(w));
    return Status::success();
}
}  // namespace

/// args: the SPEC (mk_model_take's architecture) → ok, or its failure.
EMSCRIPTEN_KEEPALIVE const char* mk_give_begin(const std::uint8_t* args) {
    giving = {};
    Status st = parse_spec(Args(args).str(), giving.specs);
    if (st.ok()) st = validate_specs(giving.specs);
    if (!st.ok()) return fail(st);
    for (const LayerSpec& spec : giving.specs)
        for (ParamInfo& info : layer_params(spec)) giving.expected.push_back(std::move(info));
    return ok();
}

/// The next tensor in state-dict order, held in `dtype` ('f32', or 'f16' |
/// 'bf16' | 'int8' for a Linear weight) and `bytes` long (mk_model_take's) →
/// where abi.js writes them, or null with the failure at mk_answer().
EMSCRIPTEN_KEEPALIVE std::uint8_t* mk_give_add(const std::uint8_t* args, double bytes) {
    const std::string dtype = Args(args).str();
    DType d;
    Status st = finish_given();
    const std::size_t i = giving.params.size();
    if (st.ok() && i >= giving.expected.size()) st = error(Code::invalid_argument, "more tensors than the model has");
    if (st.ok() && !parse_dtype(dtype, d)) st = error(Code::invalid_argument, "dtype '" + dtype + "' is unknown");
    if (!st.ok()) {
        giving = {};
        fail(st);
        return nullptr;
    }
    const Shape& shape = giving.expected[i].shape;
    const std::uint64_t n = numel(shape);
    if (d != DType::f32 && shape.size() != 2)
        st = error(Code::invalid_argument, "only a weight of rank 2 is held compact");
    else if (bytes != double(d == DType::f32 ? n * 4 : stored_bytes(d, n, shape[0])))
        st = error(Code::shape_mismatch, "tensor " + std::to_string(i) + " of the model is " + shape_to_string(shape) +
                                             ", not " + count_text(bytes) + " bytes of " + dtype);
    if (st.ok()) st = reserve(bytes * 2, "moving the model");
    if (!st.ok()) {
        giving = {};
        fail(st);
        return nullptr;
    }
    if (d == DType::f32) {
        giving.params.emplace_back(Tensor(shape));
        return reinterpret_cast<std::uint8_t*>(giving.params.back().values().data());
    }
    giving.stored.resize(std::size_t(bytes));
    giving.stored_dtype = d;
    return giving.stored.data();
}

/// The tensors given → ok, the handle holding the model (packed for the kernels), or a failure.
EMSCRIPTEN_KEEPALIVE const char* mk_give_end(ModelHandle* h) {
    Status st = finish_given();
    if (st.ok() && giving.params.size() != giving.expected.size())
        st = error(Code::invalid_argument, "the model has " + std::to_string(giving.expected.size()) + " tensors, " +
                                               std::to_string(giving.params.size()) + " were given");
    if (!st.ok()) {
        giving = {};
        return fail(st);
    }
    h->model = Sequential::from_parts(giving.specs, std::move(giving.params));
    h->warm = {};
    giving = {};
    return ok();
}

#endif

#if !MODELKEEP_READER  // fileInfo() is the core's
/// Any readable file of `size` bytes (the current source) → its info object
/// without decoding weights (.mkp: the header; torch: the pickle and the
/// storages' sizes; safetensors: the header). check_data also reads every
/// value (CRCs, conversions; a .mkp file is streamed through one chunk, no
/// tensor is allocated).
EMSCRIPTEN_KEEPALIVE const char* mk_file_info(double size, int check_data) {
    const JsSource file(size);
    if (is_mkp(file)) {
        FileInfo info;
        const Status st = read_info(file, check_data != 0, info);
        if (!st.ok()) return fail(st);
        Json j = success();
        info_fields(j, info);
        return done();
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
    Json j = success();
    source_fields(j, source);
    j.boolean("dataChecked", check_data != 0);
    return done();
#else
    return fail(not_mkp());
#endif
}
#endif

#if !MODELKEEP_READER  // not in the reader: the model moves to the core (mk_model_take)
/// Any readable file of `size` bytes (the current source) → { ok, format,
/// stateDict: [{ name, shape }] }, each tensor's values copied to JavaScript
/// (mk_js_take).
EMSCRIPTEN_KEEPALIVE const char* mk_read_tensors(double size) {
    const JsSource file(size);
    if (is_mkp(file)) {
        FileInfo info;
        Status st = read_info(file, false, info);
        if (st.ok()) st = reserve(double(read_bytes(info, false)), "the tensors");
        LoadedFile loaded;
        if (st.ok()) st = read_file(file, loaded);
        if (!st.ok()) return fail(st);
        const std::string list = tensor_list([&](auto&& add) {
            for (const auto& [name, t] : loaded.tensors) add(name, t);
        });
        success().str("format", "modelkeep").raw("stateDict", list);
        return done();
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
    const std::string list = tensor_list([&](auto&& add) {
        if (in.has_model)
            in.model.for_each_tensor(add);
        else
            for (const auto& [name, t] : in.tensors) add(name, t);
    });
    success().str("format", file_format_name(in.info.format)).raw("stateDict", list);
    return done();
#else
    return fail(not_mkp());
#endif
}
#endif

/// Threads the kernels use: 1, or up to 4 in the pthreads build (parallel.hpp).
EMSCRIPTEN_KEEPALIVE int mk_thread_count() { return int(thread_count()); }

}  // extern "C"
