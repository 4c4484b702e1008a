// The .mkp reader over a ByteSource outside memory (a CountingSource, as a
// file held by JavaScript is): each byte of the file is read once, in ranges
// no larger than one chunk — or, when loading, one f32 tensor read straight
// into its own storage — and a failure anywhere in the data hands back
// nothing. (Every test of test_format*.cpp and test_hostile.cpp also runs
// through both paths: format_paths.hpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "counting_source.hpp"
#include "fixtures.hpp"
#include "format_paths.hpp"
#include "import.hpp"

using namespace modelkeep;
using mkt::Bytes;
using mkt::CountingSource;

namespace {

// A weight of 1000 × 1100 (1.1 M values: more than one chunk in every dtype,
// int8 included) and its bias, as a state dict file storing the weight as `dtype`.
Bytes big_file(DType dtype) {
    Tensor w(Shape{1000, 1100}), b(Shape{1000});
    for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] = std::sin(float(i) * 0.001f);
    for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = float(i) * 0.5f;
    WriteOptions opt;
    opt.dtype = dtype;
    Bytes out;
    EXPECT_TRUE(write_state_dict({{"w", w}, {"b", b}}, opt, out).ok());
    return out;
}

std::uint64_t weight_bytes(const Bytes& file) {
    FileInfo info;
    EXPECT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    return info.tensors.at(0).bytes;
}

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
}
// The header CRC (it covers the data CRC field: rewrite that first).
void fix_header_crc(Bytes& b, std::size_t header_len) {
    put32(b, 8, crc32_update(crc32(b.data(), 8), b.data() + 12, header_len - 12));
}
void fix_crcs(Bytes& b, std::size_t header_len) {
    put32(b, 16, crc32(b.data() + header_len, b.size() - header_len));
    fix_header_crc(b, header_len);
}

}  // namespace

TEST(FormatSource, LoadReadsEachByteOnceInChunksOrOneRangePerF32Tensor) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16, DType::int8}) {
        SCOPED_TRACE(dtype_name(dtype));
        const Bytes file = big_file(dtype);
        const CountingSource source(file);
        LoadedFile loaded;
        ASSERT_TRUE(read_file(source, loaded).ok());
        EXPECT_EQ(source.most_reads_of_a_byte(), 1u);
        EXPECT_EQ(source.unread_bytes(), 0u);
        EXPECT_EQ(source.total, file.size());
        if (dtype == DType::f32) {
            EXPECT_EQ(source.largest, weight_bytes(file)) << "the f32 weight in one range, into its storage";
        } else {
            EXPECT_GT(weight_bytes(file), read_chunk_bytes);
            EXPECT_LE(source.largest, read_chunk_bytes) << "narrow dtypes are decoded chunk by chunk";
        }
        LoadedFile from_memory;
        ASSERT_TRUE(read_file(file.data(), file.size(), from_memory).ok());
        EXPECT_TRUE(mkt::same_state_dict(loaded.tensors, from_memory.tensors));
        EXPECT_FLOAT_EQ(loaded.tensors[1].second(999), 499.5f);  // the f32 bias after the chunked weight
    }
}

TEST(FormatSource, CheckingTheDataReadsEachByteOnceInChunks) {
    for (DType dtype : {DType::f32, DType::int8}) {
        SCOPED_TRACE(dtype_name(dtype));
        const Bytes file = big_file(dtype);
        const CountingSource source(file);
        FileInfo info;
        ASSERT_TRUE(read_info(source, true, info).ok());
        EXPECT_TRUE(info.data_checked);
        EXPECT_EQ(source.most_reads_of_a_byte(), 1u);
        EXPECT_EQ(source.total, file.size());
        EXPECT_LE(source.largest, read_chunk_bytes) << "no tensor is allocated, not even an f32 one";
        source.reset();
        ASSERT_TRUE(read_info(source, false, info).ok());
        EXPECT_EQ(source.total, info.header_bytes) << "without the data check, the header alone";
        EXPECT_EQ(source.reads, 2u) << "the fixed header, then the sections";
    }
}

TEST(FormatSource, AFailureInTheLastBytesReturnsNothing) {
    for (DType dtype : {DType::f32, DType::f16, DType::int8}) {
        SCOPED_TRACE(dtype_name(dtype));
        Bytes file = big_file(dtype);
        file.back() ^= 1;  // the last bias byte: everything before it was already decoded
        LoadedFile out;
        EXPECT_EQ(mkt::read_file_both(file, out).code(), Code::checksum_mismatch);
    }
}

TEST(FormatSource, BadScaleIsReportedAfterTheDataCrcLikeTheWholeFileCheck) {
    Bytes file = big_file(DType::int8);
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    const std::size_t last_scale = std::size_t(info.tensors[0].offset) + 4 * 999;
    const float bad = -1.0f;
    std::memcpy(file.data() + last_scale, &bad, 4);
    fix_crcs(file, std::size_t(info.header_bytes));
    LoadedFile out;
    Status st = mkt::read_file_both(file, out);
    EXPECT_EQ(st.code(), Code::bad_scale);
    EXPECT_NE(st.message().find("row 999"), std::string::npos) << st.message();
    EXPECT_EQ(mkt::read_info_both(file, true, info).code(), Code::bad_scale);
    file.back() ^= 1;  // and a corrupted byte after it (the data CRC now wrong): the CRC speaks first
    st = mkt::read_file_both(file, out);
    EXPECT_EQ(st.code(), Code::checksum_mismatch) << st.to_string();
}

TEST(FormatSource, ImportReadsAnMkpByRangesNotAsAWholeCopy) {
    Bytes file;
    ASSERT_TRUE(write_model(mkt::make_model("a=Linear(600,500),ReLU,b=Linear(500,400)"), WriteOptions{}, file).ok());
    const CountingSource source(file);
    Imported in;
    ASSERT_TRUE(import_file(source, ImportOptions(), true, in).ok());
    EXPECT_TRUE(in.has_model);
    const std::size_t detection_head = 8 + 4096;  // read_source's first look at the format
    EXPECT_LE(source.total, file.size() + detection_head);
    EXPECT_EQ(source.largest, 600u * 500u * 4u) << "the largest tensor, read into its storage";
    source.reset();
    SourceInfo listing;
    ASSERT_TRUE(read_source(source, listing).ok());
    EXPECT_LT(source.total, 2 * detection_head) << "listing reads the header, not the weights";
}
