// format_paths.hpp — the .mkp reader through both of its paths: the pointer +
// size overloads (bytes in memory) and a CountingSource (bytes outside memory,
// as JavaScript holds them). Each read_*_both fails the calling test unless
// both give the same status, message and result, the source path read no byte
// twice, and (on success) asked for no range larger than the header, one
// chunk, or — when decoding — one f32 tensor read into its own storage. On
// failure the source path must leave its output untouched.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counting_source.hpp"
#include "format.hpp"

namespace mkt {

/// The largest range the reader may ask for in a file of this layout.
inline std::uint64_t largest_allowed_range(const modelkeep::FileInfo& info, bool decoding) {
    std::uint64_t bound =
        std::max<std::uint64_t>(info.header_bytes - modelkeep::fixed_header_bytes, modelkeep::read_chunk_bytes);
    if (decoding)
        for (const auto& t : info.tensors)
            if (t.dtype == modelkeep::DType::f32) bound = std::max(bound, t.bytes);
    return bound;
}

inline void expect_same_status(const modelkeep::Status& memory, const modelkeep::Status& source) {
    EXPECT_EQ(source.code(), memory.code()) << "source: " << source.to_string() << ", memory: " << memory.to_string();
    EXPECT_EQ(source.message(), memory.message());
}

inline void expect_lean_reads(const CountingSource& source, const modelkeep::Status& st,
                              const modelkeep::FileInfo& info, bool decoding) {
    EXPECT_LE(source.most_reads_of_a_byte(), 1u) << "the reader read a byte twice";
    if (st.ok()) EXPECT_LE(source.largest, largest_allowed_range(info, decoding)) << "a range larger than needed";
}

/// Bit-for-bit equal tensors (NaNs included).
inline bool same_tensor(const modelkeep::Tensor& a, const modelkeep::Tensor& b) {
    return modelkeep::shape_of(a) == modelkeep::shape_of(b) &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline bool same_state_dict(const modelkeep::StateDict& a, const modelkeep::StateDict& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].first != b[i].first || !same_tensor(a[i].second, b[i].second)) return false;
    return true;
}

inline modelkeep::Status read_info_both(const Bytes& b, bool check_data, modelkeep::FileInfo& info) {
    const Bytes exact(b);  // exactly sized, for ASan
    const modelkeep::Status st = modelkeep::read_info(exact.data(), exact.size(), check_data, info);
    const CountingSource source(exact);
    modelkeep::FileInfo other;
    const modelkeep::Status so = modelkeep::read_info(source, check_data, other);
    expect_same_status(st, so);
    expect_lean_reads(source, so, other, false);
    if (so.ok()) {
        EXPECT_EQ(other.tensors.size(), info.tensors.size());
        EXPECT_EQ(other.data_checked, info.data_checked);
        // The header alone, or (checking the data) every byte once.
        EXPECT_EQ(source.total, check_data ? exact.size() : std::size_t(other.header_bytes));
    }
    return st;
}

inline modelkeep::Status read_file_both(const Bytes& b, modelkeep::LoadedFile& out) {
    const Bytes exact(b);
    const modelkeep::Status st = modelkeep::read_file(exact.data(), exact.size(), out);
    const CountingSource source(exact);
    modelkeep::LoadedFile other;
    other.tensors.emplace_back("untouched", modelkeep::Tensor({1}));
    const modelkeep::Status so = modelkeep::read_file(source, other);
    expect_same_status(st, so);
    expect_lean_reads(source, so, other.info, true);
    if (so.ok()) {
        EXPECT_TRUE(same_state_dict(other.tensors, out.tensors)) << "the two paths decoded different values";
        EXPECT_EQ(source.total, exact.size()) << "every byte once";
    } else {
        EXPECT_TRUE(other.tensors.size() == 1 && other.tensors[0].first == "untouched")
            << "a failed read returned tensors";
    }
    return st;
}

inline modelkeep::Status read_model_both(const Bytes& b, modelkeep::Sequential& model,
                                         modelkeep::Metadata* metadata = nullptr) {
    const Bytes exact(b);
    const modelkeep::Status st = modelkeep::read_model(exact.data(), exact.size(), model, metadata);
    const CountingSource source(exact);
    modelkeep::Sequential other;
    modelkeep::Metadata other_metadata;
    const modelkeep::Status so = modelkeep::read_model(source, other, &other_metadata);
    expect_same_status(st, so);
    EXPECT_LE(source.most_reads_of_a_byte(), 1u) << "the reader read a byte twice";
    if (so.ok()) {
        EXPECT_TRUE(same_state_dict(other.state_dict(), model.state_dict()))
            << "the two paths decoded different values";
        if (metadata) EXPECT_EQ(other_metadata, *metadata);
        EXPECT_EQ(source.total, exact.size()) << "every byte once";
    }
    return st;
}

}  // namespace mkt
