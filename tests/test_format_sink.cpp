// The writer's plan + emit path (format.hpp, sink.hpp): the files are byte for
// byte those of the writer before it was split (sizes and CRC-32s recorded from
// it), through any scratch size; each byte is emitted once (the fixed header
// last), no write is larger than the scratch or one float32 tensor, the plan's
// info is what read_info reports, and every error comes before any byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "alloc_tracking.hpp"
#include "write_cases.hpp"

using namespace modelkeep;
using mkt::Bytes;

namespace {

struct Recorded {
    const char* label;
    std::size_t bytes;
    std::uint32_t crc;
};

// From the single-buffer writer (commit 54dc8a4), for mkt::write_cases() in order.
const Recorded recorded[] = {
    {"tiny f32 align 2", 608, 0x49a92bf5},
    {"tiny f32 align 4", 680, 0x2845fd17},
    {"tiny f32 align 12", 41032, 0xa1d66acd},
    {"state dict f32", 6052, 0xdbb6ddc6},
    {"held f16 stored f32", 6084, 0x562d4088},
    {"held bf16 stored f32", 6084, 0xf1d1e938},
    {"held int8 stored f32", 6084, 0x2a8da9f9},
    {"tiny f16 align 2", 524, 0x15a549c9},
    {"tiny f16 align 4", 596, 0x149ab062},
    {"tiny f16 align 12", 40996, 0x6d5755b6},
    {"state dict f16", 3236, 0x40c30de8},
    {"held f16 stored f16", 3268, 0xc7a7e4b5},
    {"held bf16 stored f16", 3268, 0x3151ca4e},
    {"held int8 stored f16", 3268, 0xb493beea},
    {"tiny bf16 align 2", 524, 0x6b5ab9e9},
    {"tiny bf16 align 4", 596, 0x30fa1cf4},
    {"tiny bf16 align 12", 40996, 0xf378f8d0},
    {"state dict bf16", 3236, 0x4741da7e},
    {"held f16 stored bf16", 3268, 0xf6d8c4d6},
    {"held bf16 stored bf16", 3268, 0x3263df82},
    {"held int8 stored bf16", 3268, 0x4482b400},
    {"tiny int8 align 2", 518, 0xea168fe2},
    {"tiny int8 align 4", 590, 0x4823a659},
    {"tiny int8 align 12", 40990, 0xf103f018},
    {"state dict int8", 1972, 0x313ca004},
    {"held f16 stored int8", 2004, 0xd1b4e6c5},
    {"held bf16 stored int8", 2004, 0xe586bbd0},
    {"held int8 stored int8", 2004, 0x3ce1b79b},
    {"empty", 29, 0x311587b0},
};

// A sink over a buffer of the planned size that records every write.
class CountingSink final : public ByteSink {
public:
    explicit CountingSink(std::size_t size) : bytes(size, 0), hits(size, 0) {}
    void write(std::uint64_t offset, const void* data, std::size_t n) override {
        ++writes;
        largest = std::max(largest, n);
        order.push_back(offset);
        if (offset > bytes.size() || n > bytes.size() - offset) {
            ADD_FAILURE() << "a write of " << n << " bytes at " << offset << " runs past the " << bytes.size()
                          << "-byte file";
            return;
        }
        if (n) std::memcpy(bytes.data() + offset, data, n);
        for (std::size_t i = 0; i < n; ++i) ++hits[std::size_t(offset) + i];
    }
    Bytes bytes;
    std::vector<unsigned> hits;
    std::vector<std::uint64_t> order;
    std::size_t writes = 0, largest = 0;
};

WritePlan plan_case(const mkt::WriteCase& c, const StateDict& sd) {
    WritePlan plan;
    const Status st = c.state_dict ? plan_state_dict(sd, c.options, plan) : plan_model(c.model, c.options, plan);
    EXPECT_TRUE(st.ok()) << c.label << ": " << st.to_string();
    return plan;
}

// The largest float32 tensor a case holds, in bytes.
std::size_t largest_f32(const mkt::WriteCase& c) {
    std::size_t most = 0;
    c.model.for_each_tensor([&](const std::string&, const Tensor& t) { most = std::max(most, t.size() * 4); });
    return most;
}

}  // namespace

TEST(FormatSink, WritesTheSameBytesAsTheSingleBufferWriter) {
    const auto cases = mkt::write_cases();
    ASSERT_EQ(cases.size(), std::size(recorded));
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Bytes b = mkt::write_case(cases[i]);
        EXPECT_EQ(cases[i].label, recorded[i].label);
        EXPECT_EQ(b.size(), recorded[i].bytes) << cases[i].label;
        EXPECT_EQ(crc32(b.data(), b.size()), recorded[i].crc) << cases[i].label;
    }
}

TEST(FormatSink, AnyScratchSizeGivesTheSameBytes) {
    for (const auto& c : mkt::write_cases()) {
        const Bytes want = mkt::write_case(c);
        const StateDict sd = c.model.state_dict();
        const WritePlan plan = plan_case(c, sd);
        for (std::size_t scratch : {std::size_t(8), std::size_t(60), std::size_t(64), std::size_t(1000)}) {
            CountingSink sink(std::size_t(plan.info.file_bytes));
            emit_file(plan, sink, scratch);
            EXPECT_EQ(sink.bytes, want) << c.label << ", scratch " << scratch;
        }
    }
}

TEST(FormatSink, EachByteOnceFixedHeaderLastWritesBounded) {
    const std::size_t scratch = 64;
    for (const auto& c : mkt::write_cases()) {
        const StateDict sd = c.model.state_dict();
        const WritePlan plan = plan_case(c, sd);
        CountingSink sink(std::size_t(plan.info.file_bytes));
        emit_file(plan, sink, scratch);
        EXPECT_EQ(*std::min_element(sink.hits.begin(), sink.hits.end()), 1u) << c.label;
        EXPECT_EQ(*std::max_element(sink.hits.begin(), sink.hits.end()), 1u) << c.label;
        ASSERT_FALSE(sink.order.empty());
        EXPECT_EQ(sink.order.back(), 0u) << c.label << ": the fixed header is written last";
        EXPECT_TRUE(std::is_sorted(sink.order.begin(), sink.order.end() - 1)) << c.label << ": in file order";
        // The sections, a padding run, a float32 tensor, a compact weight's arrays or its int8 scales go in
        // one write; conversions by the scratch (one row of f16 with subnormals if wider).
        const std::size_t sections = std::size_t(plan.info.header_bytes) - fixed_header_bytes;
        const std::size_t padding = (std::size_t(1) << c.options.align_log2) - 1;
        EXPECT_LE(sink.largest, std::max({scratch, largest_f32(c), sections, padding, std::size_t(40 * 2)})) << c.label;
    }
}

TEST(FormatSink, LargeWritesAreTheScratchForConvertedDtypes) {
    // One 512 × 512 weight: int8 / f16 / bf16 from float32 never write more than the scratch at once.
    const Sequential m = mkt::make_model("fc=Linear(512,512,bias=false)");
    for (DType d : {DType::f16, DType::bf16, DType::int8}) {
        WriteOptions opt;
        opt.dtype = d;
        WritePlan plan;
        ASSERT_TRUE(plan_model(m, opt, plan).ok());
        CountingSink sink(std::size_t(plan.info.file_bytes));
        emit_file(plan, sink, 4096);
        EXPECT_LE(sink.largest, d == DType::int8 ? std::max<std::size_t>(4096, 512 * 4) : 4096u) << dtype_name(d);
        Bytes want;
        ASSERT_TRUE(write_model(m, opt, want).ok());
        EXPECT_EQ(sink.bytes, want) << dtype_name(d);
    }
}

TEST(FormatSink, PlanInfoIsWhatReadInfoReports) {
    for (const auto& c : mkt::write_cases()) {
        const StateDict sd = c.model.state_dict();
        const WritePlan plan = plan_case(c, sd);
        const Bytes b = mkt::write_case(c);
        FileInfo read;
        ASSERT_TRUE(read_info(b.data(), b.size(), false, read).ok()) << c.label;
        const FileInfo& p = plan.info;
        EXPECT_EQ(p.major, read.major);
        EXPECT_EQ(p.minor, read.minor);
        EXPECT_EQ(p.kind, read.kind) << c.label;
        EXPECT_EQ(p.align_log2, read.align_log2) << c.label;
        EXPECT_EQ(p.header_bytes, read.header_bytes) << c.label;
        EXPECT_EQ(p.file_bytes, read.file_bytes) << c.label;
        EXPECT_EQ(p.metadata, read.metadata) << c.label;
        EXPECT_EQ(p.param_count, read.param_count) << c.label;
        EXPECT_EQ(p.layers.size(), read.layers.size()) << c.label;
        for (std::size_t i = 0; i < p.layers.size() && i < read.layers.size(); ++i)
            EXPECT_EQ(format_layer(p.layers[i]), format_layer(read.layers[i])) << c.label;
        ASSERT_EQ(p.tensors.size(), read.tensors.size()) << c.label;
        for (std::size_t i = 0; i < p.tensors.size(); ++i) {
            EXPECT_EQ(p.tensors[i].name, read.tensors[i].name) << c.label;
            EXPECT_EQ(p.tensors[i].dtype, read.tensors[i].dtype) << c.label;
            EXPECT_EQ(p.tensors[i].shape, read.tensors[i].shape) << c.label;
            EXPECT_EQ(p.tensors[i].offset, read.tensors[i].offset) << c.label << " " << p.tensors[i].name;
            EXPECT_EQ(p.tensors[i].bytes, read.tensors[i].bytes) << c.label << " " << p.tensors[i].name;
        }
    }
}

TEST(FormatSink, ErrorsComeFromThePlanBeforeAnyByte) {
    WriteOptions int8;
    int8.dtype = DType::int8;
    StateDict nan = {{"w", Tensor(Shape{2, 3})}};
    nan[0].second.data()[4] = std::numeric_limits<float>::quiet_NaN();
    StateDict dup = {{"a", Tensor(Shape{2})}, {"a", Tensor(Shape{2})}};
    StateDict unnamed = {{"", Tensor(Shape{2})}};
    StateDict big_names;
    for (int i = 0; i < 20; ++i)
        big_names.push_back({std::string(1000, char('a' + i % 26)) + std::to_string(i), Tensor(Shape{1})});
    WriteOptions huge_meta;
    for (int i = 0; i < 20; ++i) huge_meta.metadata.push_back({"k" + std::to_string(i), std::string(1u << 20, 'x')});
    WriteOptions bad_align;
    bad_align.align_log2 = 13;
    const struct {
        const char* what;
        const StateDict& sd;
        const WriteOptions& opt;
        Code code;
    } cases[] = {
        {"int8 NaN", nan, int8, Code::invalid_argument},
        {"duplicate", dup, WriteOptions{}, Code::duplicate_name},
        {"empty name", unnamed, WriteOptions{}, Code::bad_name},
        {"header too large", big_names, huge_meta, Code::header_too_large},
        {"alignment", nan, bad_align, Code::bad_alignment},
    };
    for (const auto& c : cases) {
        WritePlan plan;
        const Status st = plan_state_dict(c.sd, c.opt, plan);
        EXPECT_EQ(st.code(), c.code) << c.what << ": " << st.to_string();
        Bytes out = {1, 2, 3};
        EXPECT_EQ(write_state_dict(c.sd, c.opt, out).code(), c.code) << c.what;
        EXPECT_EQ(out, (Bytes{1, 2, 3})) << c.what << ": the output is left alone";
    }
    // A compact bf16 weight holding infinity cannot be stored as int8 either.
    Sequential m = mkt::make_model("fc=Linear(3,2)");
    StateDict sd = m.state_dict();
    sd[0].second.data()[1] = std::numeric_limits<float>::infinity();
    LoadReport report;
    ASSERT_TRUE(m.load_state_dict(sd, true, report).ok());
    m.set_weight_dtype(DType::bf16);
    WritePlan plan;
    EXPECT_EQ(plan_model(m, int8, plan).code(), Code::invalid_argument);
}

TEST(FormatSink, EmitBytesBoundsWhatEmitHolds) {
    // Every case, at a small scratch (so that an f16 weight's wide row grows
    // it) and at the default: emit_file holds at most emit_bytes, and reaches
    // it but for the header copy and the scratch's own slack.
    for (const mkt::WriteCase& c : mkt::write_cases())
        for (std::size_t scratch : {std::size_t(16), write_chunk_bytes}) {
            const StateDict sd = c.state_dict ? c.model.state_dict() : StateDict();
            const WritePlan plan = plan_case(c, sd);
            Bytes file(std::size_t(plan.info.file_bytes));
            MemorySink sink(file.data());
            const std::uint64_t predicted = emit_bytes(plan, scratch);
            const mkt::AllocScope scope;
            emit_file(plan, sink, scratch);
            EXPECT_LE(scope.peak(), predicted) << c.label << ", scratch " << scratch;
            EXPECT_GE(scope.peak() + plan.header.size() + 64, predicted) << c.label << ", scratch " << scratch;
        }
}
