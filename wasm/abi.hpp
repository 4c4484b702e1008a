// abi.hpp — what the two binding files share (wasm/bindings.cpp, every module; and
// wasm/train_bindings.cpp, the importer module's training calls): the JSON answer
// (`answer`, which mk_answer() returns, and its writer), the args block, the shapes
// in mk_dims(), the file source and sink that JavaScript holds, reserve(), and the
// ModelHandle a JS Model owns. The conventions are at the top of bindings.cpp.
// Inline; `answer` and `dims` (one of each for both files) and the imports (EM_JS) are
// defined in bindings.cpp.
#pragma once

#include <emscripten/em_macros.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "format.hpp"
#include "json_string.hpp"
#include "model.hpp"
#include "spec.hpp"

// The imports (bindings.cpp defines them with EM_JS; web/src/abi.js says what they do).
extern "C" {
void mk_js_read(void* dst, double offset, std::size_t n) EM_IMPORT(mk_js_read);
void mk_js_sink(double total, double chunk) EM_IMPORT(mk_js_sink);
void mk_js_write(const void* src, double offset, std::size_t n) EM_IMPORT(mk_js_write);
}

namespace mk_abi {

using namespace modelkeep;

// ---- answers -------------------------------------------------------------

extern std::string answer;  // the JSON text of the last call (defined in bindings.cpp)

// A JSON object being written into `answer`.
class Json {
public:
    explicit Json(std::string& out) : out_(out) {}
    Json& key(const char* k) {
        out_ += first_ ? "" : ",";
        first_ = false;
        out_ += '"';
        out_ += k;
        out_ += "\":";
        return *this;
    }
    Json& str(const char* k, const std::string& v) {
        key(k);
        json::append_string(out_, v);
        return *this;
    }
    Json& num(const char* k, double v) {
        key(k);
        number(out_, v);
        return *this;
    }
    Json& boolean(const char* k, bool v) {
        key(k);
        out_ += v ? "true" : "false";
        return *this;
    }
    Json& raw(const char* k, const std::string& v) {
        key(k);
        out_ += v;
        return *this;
    }
    /// A count as JSON: exactly below 2^53; above, to about 16 digits with an
    /// exponent (no printf: its float formatting is a large part of libc).
    static void number(std::string& out, double v) {
        // Every number here is a count or a size; NaN and infinity (which no caller gives) are
        // written as 0 rather than trapping or looping below.
        if (!(v >= 0) || !std::isfinite(v)) v = 0;
        int exponent = 0;
        for (; v >= 9007199254740992.0; ++exponent) v /= 10;
        out += std::to_string(std::uint64_t(v));
        if (exponent) out += "e" + std::to_string(exponent);
    }

private:
    std::string& out_;
    bool first_ = true;
};

// {"ok":true, then fields: begins `answer` and returns the object to fill.
inline Json success() {
    answer = "{";
    Json j(answer);
    j.boolean("ok", true);
    return j;
}

inline const char* done() {
    answer += '}';
    return answer.c_str();
}

inline const char* fail(const Status& st) {
    answer = "{";
    Json(answer).boolean("ok", false).str("code", code_name(st.code())).str("message", st.message());
    return done();
}

inline const char* ok() {
    success();
    return done();
}

inline std::string string_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const std::string& s : items) {
        if (out.size() > 1) out += ',';
        json::append_string(out, s);
    }
    return out + "]";
}

inline std::string shape_array(const Shape& shape) {
    std::string out = "[";
    for (std::size_t d : shape) {
        if (out.size() > 1) out += ',';
        out += std::to_string(d);
    }
    return out + "]";
}

inline std::string metadata_object(const Metadata& metadata) {
    std::string out = "{";
    for (const auto& [k, v] : metadata) {
        if (out.size() > 1) out += ',';
        json::append_string(out, k);
        out += ':';
        json::append_string(out, v);
    }
    return out + "}";
}

inline std::string layers_array(const std::vector<LayerSpec>& specs) {
    std::string out = "[";
    for (const LayerSpec& s : specs) {
        out += out.size() > 1 ? ",{" : "{";
        Json(out).str("name", s.name).str("kind", layer_kind_name(s.kind)).str("spec", format_layer(s));
        out += '}';
    }
    return out + "]";
}

// A string or null.
inline std::string string_or_null(bool present, const std::string& s) {
    if (!present) return "null";
    std::string out;
    json::append_string(out, s);
    return out;
}

// fileInfo's fields of a .mkp file, into the object j.
inline void info_fields(Json& j, const FileInfo& info) {
    j.str("version", std::to_string(info.major) + "." + std::to_string(info.minor))
        .str("kind", info.kind == FileKind::model ? "model" : "state_dict")
        .num("bytes", double(info.file_bytes))
        .num("headerBytes", double(info.header_bytes))
        .num("params", double(info.param_count))
        .raw("architecture", string_or_null(info.kind == FileKind::model, format_spec(info.layers)))
        .raw("layers", layers_array(info.layers));
    std::string tensors = "[";
    std::uint64_t biggest = 0;
    std::string dtype = "f32";
    for (const TensorInfo& t : info.tensors) {
        tensors += tensors.size() > 1 ? ",{" : "{";
        Json(tensors)
            .str("name", t.name)
            .str("dtype", dtype_name(t.dtype))
            .raw("shape", shape_array(t.shape))
            .num("bytes", double(t.bytes))
            .num("offset", double(t.offset));
        tensors += '}';
        if (t.bytes > biggest) {  // the file's dtype: that of its largest tensor
            biggest = t.bytes;
            dtype = dtype_name(t.dtype);
        }
    }
    j.raw("tensors", tensors + "]")
        .str("dtype", dtype)
        .raw("metadata", metadata_object(info.metadata))
        .boolean("dataChecked", info.data_checked)
        .str("format", "modelkeep");
}

// ---- arguments -----------------------------------------------------------

// The strings of an args block, in order (see the conventions at the top).
class Args {
public:
    explicit Args(const std::uint8_t* p) : p_(p) {}
    std::string str() {
        std::uint32_t n;
        std::memcpy(&n, p_, 4);
        std::string s(reinterpret_cast<const char*>(p_ + 4), n);
        p_ += 4 + std::size_t(n);
        return s;
    }
    /// Metadata (the JS layer checked that every value is a string).
    Status metadata(Metadata& out) {
        std::uint32_t n;
        std::memcpy(&n, p_, 4);
        p_ += 4;
        out.clear();
        if (n > max_metadata_entries)
            return error(Code::limit_exceeded, std::to_string(n) + " metadata entries, over the cap of " +
                                                   std::to_string(max_metadata_entries));
        for (std::uint32_t i = 0; i < n; ++i) {
            std::string k = str();
            out.emplace_back(std::move(k), str());
        }
        return Status::success();
    }

private:
    const std::uint8_t* p_;
};

extern double dims[9];  // mk_dims(): shapes in and out (defined in bindings.cpp)

// The shape abi.js wrote into dims (rank entries); false if it is not one.
inline bool read_shape(int rank, Shape& shape) {
    if (rank < 0 || rank > int(max_rank)) return false;
    shape.clear();
    for (int i = 0; i < rank; ++i) {
        const double v = dims[i];
        if (!(v >= 0 && v <= double(max_tensor_elements)) || v != std::floor(v)) return false;
        shape.push_back(std::size_t(v));
    }
    return true;
}

inline void write_shape(const Shape& shape) {
    dims[0] = double(shape.size());
    for (std::size_t i = 0; i < shape.size() && i < 8; ++i) dims[i + 1] = double(shape[i]);
}

// A count as text ("3", not "3.000000").
// Must not convert NaN or a value out of range: in wasm that conversion traps (the module aborts).
inline std::string count_text(double n) {
    return n >= 0 && n < 18446744073709551616.0 ? std::to_string(std::uint64_t(n))
                                                : std::string("an invalid number of");
}

// ---- files ---------------------------------------------------------------

// A file held by JavaScript (abi.js's current source), read by ranges.
class JsSource final : public ByteSource {
public:
    explicit JsSource(double size) : size_(std::uint64_t(size)) {}
    std::uint64_t size() const override { return size_; }
    void read(std::uint64_t offset, void* dst, std::size_t n) const override {
        if (n) mk_js_read(dst, double(offset), n);
    }

private:
    std::uint64_t size_;
};

// A file being built in JavaScript: one Uint8Array, or (chunk_bytes > 0) a list
// of Uint8Arrays of chunk_bytes each, the last one shorter — the chunks the
// IndexedDB store keeps, which it can then store without copying.
class JsSink final : public ByteSink {
public:
    JsSink(std::uint64_t total, std::uint64_t chunk_bytes) { mk_js_sink(double(total), double(chunk_bytes)); }
    void write(std::uint64_t offset, const void* data, std::size_t n) override {
        if (n) mk_js_write(data, double(offset), n);
    }
};

// A .mkp file (its magic), from its first 4 bytes only.
inline bool is_mkp(const ByteSource& file) {
    std::uint8_t head[4] = {0, 0, 0, 0};
    if (file.size() < 4) return false;
    file.read(0, head, 4);
    return std::memcmp(head, format_magic, 4) == 0;
}

// With -fno-exceptions a failed `new` aborts the whole module, so every
// allocation whose size comes from input is tried first with malloc (which,
// with memory growth, returns null instead): if the memory cannot be had, the
// caller gets out_of_memory and the module lives on.
// The sizes come from the core, which knows the layout (model.hpp, format.hpp,
// import.hpp: model_bytes, forward_bytes, read_bytes, import_bytes, ...).
inline constexpr double max_wasm_bytes = 3.5 * 1024 * 1024 * 1024;

inline Status reserve(double bytes, const std::string& what) {
    bytes += 1 << 20;  // slack for the small allocations around the big ones
    void* p = bytes < max_wasm_bytes ? std::malloc(std::size_t(bytes)) : nullptr;
    if (!p)
        return error(Code::out_of_memory, what + " needs about " + std::to_string(std::uint64_t(bytes) >> 20) +
                                              " MiB, more than the WebAssembly memory can grow to");
    std::free(p);
    return Status::success();
}

// A planned .mkp file emitted into JavaScript (mk_js_sink, then mk_js_write per range),
// in chunks of chunk_bytes when > 0; wasm memory holds only emit_file's scratch,
// reserved first.
inline Status emit_to_js(const WritePlan& plan, double chunk_bytes) {
    MK_TRY(reserve(double(emit_bytes(plan)), "the file"));
    JsSink sink(plan.info.file_bytes, std::uint64_t(chunk_bytes));
    emit_file(plan, sink);
    return Status::success();
}

/// A Sequential owned by exactly one JS Model object (which calls mk_model_delete).
struct ModelHandle {
    Sequential model;
    // What forward keeps between calls, for inputs of `shape`; emptied
    // whenever the model is replaced or the shape changes.
    struct Warm {
        bool ready = false;
        Shape shape;
        Tensor input, output;
        ForwardBuffers buffers;
    } warm;
};

}  // namespace mk_abi
