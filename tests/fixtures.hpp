// fixtures.hpp — shared test helpers: a tiny model, and a builder for
// hand-written .mkp bytes with correct (or deliberately wrong) checksums.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crc32.hpp"
#include "format.hpp"
#include "model.hpp"
#include "spec.hpp"

namespace mkt {

using Bytes = std::vector<std::uint8_t>;

/// Builds a model from a SPEC, failing the calling test on error.
inline modelkeep::Sequential make_model(const std::string& spec, std::uint64_t seed = 1) {
    std::vector<modelkeep::LayerSpec> specs;
    modelkeep::Sequential m;
    auto st = modelkeep::parse_spec(spec, specs);
    if (st.ok()) st = modelkeep::Sequential::create(specs, seed, m);
    if (!st.ok()) ADD_FAILURE() << "make_model(" << spec << "): " << st.to_string();
    return m;
}

/// The tutorial model of the PyTorch "save and load" page: Linear(3, 5) named fc1.
inline modelkeep::Sequential tutorial_model() { return make_model("fc1=Linear(3,5)", 42); }

/// A small model touching every kind that has tensors.
inline modelkeep::Sequential tiny_model() {
    return make_model(
        "fc1=Linear(4,6),act=GELU(tanh),norm=LayerNorm(6),bn=BatchNorm1d(6),drop=Dropout(0.2),"
        "head=Linear(6,3,bias=false),out=LogSoftmax",
        7);
}

inline Bytes write_model_bytes(const modelkeep::Sequential& m, modelkeep::DType dtype = modelkeep::DType::f32) {
    Bytes out;
    modelkeep::WriteOptions opt;
    opt.dtype = dtype;
    opt.metadata = {{"note", "v1"}};
    const auto st = modelkeep::write_model(m, opt, out);
    if (!st.ok()) ADD_FAILURE() << st.to_string();
    return out;
}

inline Bytes write_state_dict_bytes(const modelkeep::Sequential& m, modelkeep::DType dtype = modelkeep::DType::f32) {
    Bytes out;
    modelkeep::WriteOptions opt;
    opt.dtype = dtype;
    const auto st = modelkeep::write_state_dict(m.state_dict(), opt, out);
    if (!st.ok()) ADD_FAILURE() << st.to_string();
    return out;
}

/// Little byte writer for hand-made files.
struct Writer {
    Bytes b;
    Writer& u8(std::uint8_t v) {
        b.push_back(v);
        return *this;
    }
    Writer& u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
        return *this;
    }
    Writer& f32(float v) {
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        return u32(u);
    }
    Writer& varint(std::uint64_t v) {
        do {
            std::uint8_t byte = v & 0x7F;
            v >>= 7;
            if (v) byte |= 0x80;
            b.push_back(byte);
        } while (v);
        return *this;
    }
    Writer& str(const std::string& s) {
        varint(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Writer& raw(const Bytes& r) {
        b.insert(b.end(), r.begin(), r.end());
        return *this;
    }
    Writer& section(std::uint8_t tag, const Bytes& payload) {
        u8(tag);
        varint(payload.size());
        return raw(payload);
    }
};

/// A complete file from its parts: 20-byte fixed header + `sections` +
/// `data` (placed right after the header; the caller includes any padding).
/// CRCs are computed unless overridden.
struct FileSpec {
    std::uint8_t major = 1, minor = 0, kind = 1, align_log2 = 4;
    Bytes sections;
    Bytes data;
    bool fix_header_crc = true, fix_data_crc = true;
    std::int64_t header_len_override = -1;
};

inline Bytes build_file(const FileSpec& f) {
    Writer w;
    w.u8(0x89).u8('M').u8('K').u8('P').u8(f.major).u8(f.minor).u8(f.kind).u8(f.align_log2);
    w.u32(0);
    const std::uint32_t header_len =
        f.header_len_override >= 0 ? std::uint32_t(f.header_len_override) : std::uint32_t(20 + f.sections.size());
    w.u32(header_len);
    w.u32(0);
    w.raw(f.sections);
    w.raw(f.data);
    Bytes& b = w.b;
    auto put = [&](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
    };
    const std::size_t hl = std::min<std::size_t>(header_len, b.size());
    if (f.fix_data_crc) put(16, modelkeep::crc32(b.data() + hl, b.size() - hl));
    if (f.fix_header_crc && hl >= 12)
        put(8, modelkeep::crc32_update(modelkeep::crc32(b.data(), 8), b.data() + 12, hl - 12));
    return b;
}

/// A TENSORS section payload with one f32 tensor record.
inline Bytes one_tensor(const std::string& name, std::uint8_t dtype, const std::vector<std::uint64_t>& dims) {
    Writer w;
    w.varint(1).str(name).u8(dtype).u8(std::uint8_t(dims.size()));
    for (auto d : dims) w.varint(d);
    return w.b;
}

}  // namespace mkt
