// Write → read round trips for every dtype and both file kinds, compactness,
// alignment, and reading the info without the weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "fixtures.hpp"
#include "format_paths.hpp"

using namespace modelkeep;
using mkt::Bytes;

namespace {

// The bound format.hpp / dtype.hpp promise for one stored value.
float bound(DType dtype, float x, float row_max) {
    switch (dtype) {
        case DType::f32: return 0.0f;
        case DType::f16: return std::max(std::ldexp(std::fabs(x), -11), std::ldexp(1.0f, -25));
        case DType::bf16: return std::ldexp(std::fabs(x), -8);
        case DType::int8: return row_max / 254.0f * 1.0001f;
    }
    return 0.0f;
}

void expect_within(const Tensor& ours, const Tensor& ref, DType dtype, const std::string& what) {
    ASSERT_EQ(shape_of(ours), shape_of(ref)) << what;
    const std::size_t rows = ref.dimension() >= 2 ? ref.shape()[0] : 1;
    const std::size_t cols = rows ? ref.size() / rows : 0;
    for (std::size_t r = 0; r < rows; ++r) {
        float row_max = 0.0f;
        for (std::size_t c = 0; c < cols; ++c) row_max = std::max(row_max, std::fabs(ref.data()[r * cols + c]));
        for (std::size_t c = 0; c < cols; ++c) {
            const float a = ours.data()[r * cols + c], b = ref.data()[r * cols + c];
            EXPECT_LE(std::fabs(a - b), bound(dtype, b, row_max)) << what << " [" << r << "," << c << "]";
        }
    }
}

const DType all_dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::int8};

}  // namespace

TEST(Format, TutorialModelIsAtMost160Bytes) {
    const Bytes b = mkt::write_model_bytes(mkt::make_model("fc1=Linear(3,5)"), DType::f32);
    // write_model_bytes adds metadata {note: v1}; without it:
    Bytes bare;
    ASSERT_TRUE(write_model(mkt::tutorial_model(), WriteOptions{}, bare).ok());
    EXPECT_LE(bare.size(), 160u);
    EXPECT_LE(b.size(), 160u + 8u);
    RecordProperty("tutorial_bytes", int(bare.size()));
}

TEST(Format, RoundTripFullModelEveryDtype) {
    const Sequential m = mkt::tiny_model();
    const StateDict ref = m.state_dict();
    for (DType dtype : all_dtypes) {
        const Bytes b = mkt::write_model_bytes(m, dtype);
        Sequential back;
        Metadata meta;
        const Status st = mkt::read_model_both(b, back, &meta);
        ASSERT_TRUE(st.ok()) << dtype_name(dtype) << ": " << st.to_string();
        EXPECT_EQ(format_spec(back.specs()), format_spec(m.specs()));
        ASSERT_EQ(meta.size(), 1u);
        EXPECT_EQ(meta[0].second, "v1");
        const StateDict got = back.state_dict();
        ASSERT_EQ(got.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) {
            EXPECT_EQ(got[i].first, ref[i].first);
            // rank < 2 tensors are always stored as f32
            expect_within(got[i].second, ref[i].second, ref[i].second.dimension() >= 2 ? dtype : DType::f32,
                          std::string(dtype_name(dtype)) + " " + ref[i].first);
        }
    }
}

TEST(Format, F32RoundTripIsBitExactAndPredictsTheSame) {
    const Sequential m = mkt::tiny_model();
    const Bytes b = mkt::write_model_bytes(m);
    Sequential back;
    ASSERT_TRUE(mkt::read_model_both(b, back).ok());
    const float in[8] = {0.5f, -1, 2, 3, 1, 1, -2, 0.25f};
    const Tensor x = from_data({2, 4}, in);
    Tensor y1, y2;
    ASSERT_TRUE(m.forward(x, y1).ok());
    ASSERT_TRUE(back.forward(x, y2).ok());
    ASSERT_EQ(y1.size(), y2.size());
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4));
    // and writing again gives the same bytes (the writer is deterministic)
    EXPECT_EQ(mkt::write_model_bytes(back), b);
}

TEST(Format, RoundTripStateDictEveryDtype) {
    const Sequential m = mkt::tiny_model();
    const StateDict ref = m.state_dict();
    for (DType dtype : all_dtypes) {
        const Bytes b = mkt::write_state_dict_bytes(m, dtype);
        LoadedFile f;
        ASSERT_TRUE(mkt::read_file_both(b, f).ok()) << dtype_name(dtype);
        EXPECT_EQ(f.info.kind, FileKind::state_dict);
        EXPECT_TRUE(f.info.layers.empty());
        ASSERT_EQ(f.tensors.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) {
            EXPECT_EQ(f.tensors[i].first, ref[i].first);
            expect_within(f.tensors[i].second, ref[i].second, ref[i].second.dimension() >= 2 ? dtype : DType::f32,
                          ref[i].first);
        }
        // and it loads into a fresh model of the same architecture
        Sequential fresh = mkt::make_model(format_spec(m.specs()), 99);
        LoadReport report;
        EXPECT_TRUE(fresh.load_state_dict(f.tensors, true, report).ok());
    }
}

TEST(Format, QuantisedSizes) {
    const Sequential m = mkt::make_model("Linear(784,512),ReLU,Linear(512,512),ReLU,Linear(512,10)");
    std::size_t sizes[4];
    for (int i = 0; i < 4; ++i) {
        Bytes b;
        WriteOptions opt;
        opt.dtype = all_dtypes[i];
        ASSERT_TRUE(write_model(m, opt, b).ok());
        sizes[i] = b.size();
    }
    const std::size_t weights = 784 * 512 + 512 * 512 + 512 * 10, biases = 512 + 512 + 10;
    EXPECT_LE(sizes[0], weights * 4 + biases * 4 + 256);
    EXPECT_LE(sizes[1], weights * 2 + biases * 4 + 256);
    EXPECT_EQ(sizes[1], sizes[2]);
    EXPECT_LE(sizes[3], weights + (512 + 512 + 10) * 4 + biases * 4 + 256);
}

TEST(Format, DataIsAlignedForInPlaceViews) {
    const Bytes b = mkt::write_model_bytes(mkt::tiny_model(), DType::f32);
    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(b, true, info).ok());
    for (const TensorInfo& t : info.tensors)
        if (t.bytes) EXPECT_EQ(t.offset % 16, 0u) << t.name;
}

TEST(Format, InfoWithoutDecodingWeights) {
    const Sequential m = mkt::tiny_model();
    const Bytes b = mkt::write_model_bytes(m, DType::f16);
    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(b, false, info).ok());
    EXPECT_FALSE(info.data_checked);
    EXPECT_EQ(info.major, 1);
    EXPECT_EQ(info.kind, FileKind::model);
    EXPECT_EQ(info.param_count, m.param_count());
    EXPECT_EQ(info.layers.size(), m.layers().size());
    EXPECT_EQ(info.file_bytes, b.size());
    ASSERT_EQ(info.tensors.size(), m.state_dict().size());
    EXPECT_EQ(info.tensors[0].name, "fc1.weight");
    EXPECT_EQ(info.tensors[0].dtype, DType::f16);
    EXPECT_EQ(info.tensors[1].dtype, DType::f32);  // bias stays f32
    EXPECT_EQ(info.tensors[0].bytes, 6u * 4u * 2u);
    // the listing even works when only the data is damaged
    Bytes damaged = b;
    damaged.back() ^= 0x40;
    EXPECT_TRUE(mkt::read_info_both(damaged, false, info).ok());
    EXPECT_EQ(mkt::read_info_both(damaged, true, info).code(), Code::checksum_mismatch);
}

TEST(Format, ParamCountExcludesBuffers) {
    const Sequential m = mkt::make_model("Linear(3,4),BatchNorm1d(4)");
    EXPECT_EQ(m.param_count(), 3u * 4u + 4u + 4u + 4u);
}

TEST(Format, EmptyModelAndEmptyStateDict) {
    Bytes b;
    ASSERT_TRUE(write_model(mkt::make_model("ReLU"), WriteOptions{}, b).ok());
    Sequential back;
    ASSERT_TRUE(mkt::read_model_both(b, back).ok());
    EXPECT_EQ(format_spec(back.specs()), "0=ReLU");
    ASSERT_TRUE(write_state_dict({}, WriteOptions{}, b).ok());
    LoadedFile f;
    ASSERT_TRUE(mkt::read_file_both(b, f).ok());
    EXPECT_TRUE(f.tensors.empty());
}

TEST(Format, ZeroSizedTensorsTakeNoBytes) {
    StateDict sd;
    sd.emplace_back("empty", zeros({0, 3}));
    sd.emplace_back("scalar", zeros({}));
    sd.back().second() = 3.5f;
    for (DType dtype : all_dtypes) {
        Bytes b;
        WriteOptions opt;
        opt.dtype = dtype;
        ASSERT_TRUE(write_state_dict(sd, opt, b).ok());
        LoadedFile f;
        ASSERT_TRUE(mkt::read_file_both(b, f).ok());
        EXPECT_EQ(shape_of(f.tensors[0].second), (Shape{0, 3}));
        EXPECT_EQ(f.tensors[1].second(), 3.5f);
    }
}

TEST(Format, WriterRefusesWhatTheReaderWould) {
    Bytes b;
    StateDict dup;
    dup.emplace_back("a", zeros({1}));
    dup.emplace_back("a", zeros({1}));
    EXPECT_EQ(write_state_dict(dup, WriteOptions{}, b).code(), Code::duplicate_name);
    StateDict bad_name;
    bad_name.emplace_back("", zeros({1}));
    EXPECT_EQ(write_state_dict(bad_name, WriteOptions{}, b).code(), Code::bad_name);
    StateDict nan;
    nan.emplace_back("w", zeros({2, 2}));
    nan.back().second(1, 1) = NAN;
    WriteOptions int8;
    int8.dtype = DType::int8;
    EXPECT_EQ(write_state_dict(nan, int8, b).code(), Code::invalid_argument);
    WriteOptions meta;
    meta.metadata = {{"k", "1"}, {"k", "2"}};
    EXPECT_EQ(write_state_dict({}, meta, b).code(), Code::duplicate_name);
    meta.metadata = {{"bad\xc3", "1"}};
    EXPECT_EQ(write_state_dict({}, meta, b).code(), Code::bad_name);
    StateDict wide;  // no elements, but a dim over 2^28, which the reader refuses
    wide.emplace_back("w", zeros({0, std::size_t(max_tensor_elements) + 1}));
    EXPECT_EQ(write_state_dict(wide, WriteOptions{}, b).code(), Code::size_overflow);
    wide[0].second = zeros({0, std::size_t(max_tensor_elements)});
    ASSERT_TRUE(write_state_dict(wide, WriteOptions{}, b).ok());
    FileInfo info;
    EXPECT_TRUE(read_info(b.data(), b.size(), true, info).ok());
}

// §1.6 in the writer: control characters are refused, naming the culprit escaped.
TEST(Format, WriterRefusesControlCharacters) {
    Bytes b;
    for (const std::string& name :
         std::vector<std::string>{"w\x1b[31m", "w\n", "w\x7f", "w\xc2\x9b", std::string("w\0", 2)}) {
        StateDict sd;
        sd.emplace_back(name, zeros({1}));
        const Status st = write_state_dict(sd, WriteOptions{}, b);
        EXPECT_EQ(st.code(), Code::bad_name) << st.to_string();
        EXPECT_TRUE(st.message().find("tensor name 'w\\x") != std::string::npos ||
                    st.message().find("tensor name 'w\\u") != std::string::npos)
            << st.message();
        for (char c : st.message()) EXPECT_TRUE(c >= 0x20 || c < 0) << st.message();  // no raw C0 byte
    }
    WriteOptions meta;
    for (const auto& kv : std::vector<std::pair<std::string, std::string>>{
             {"k\x1b", "v"}, {"k\t", "v"}, {"k", "v\x1b"}, {"k", "v\r\n"}, {"k", "\xc2\x85"}}) {
        meta.metadata = {kv};
        EXPECT_EQ(write_state_dict({}, meta, b).code(), Code::bad_name) << kv.first << "=" << kv.second;
    }
    meta.metadata = {{"note", "line 1\n\tline 2"}};  // newline and tab are free text
    ASSERT_TRUE(write_state_dict({}, meta, b).ok());
    FileInfo info;
    ASSERT_TRUE(read_info(b.data(), b.size(), true, info).ok());
    EXPECT_EQ(info.metadata, meta.metadata);
}

TEST(Format, NaNAndInfSurviveFloatDtypes) {
    StateDict sd;
    sd.emplace_back("w", zeros({1, 3}));
    sd[0].second(0, 0) = NAN;
    sd[0].second(0, 1) = INFINITY;
    sd[0].second(0, 2) = -0.0f;
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
        Bytes b;
        WriteOptions opt;
        opt.dtype = dtype;
        ASSERT_TRUE(write_state_dict(sd, opt, b).ok());
        LoadedFile f;
        ASSERT_TRUE(mkt::read_file_both(b, f).ok());
        EXPECT_TRUE(std::isnan(f.tensors[0].second(0, 0)));
        EXPECT_EQ(f.tensors[0].second(0, 1), INFINITY);
        EXPECT_TRUE(std::signbit(f.tensors[0].second(0, 2)));
    }
}

TEST(Format, MetadataRoundTripsInOrder) {
    Bytes b;
    WriteOptions opt;
    opt.metadata = {{"z", "last"}, {"a", "ünïcödé ✓"}, {"empty", ""}};
    ASSERT_TRUE(write_model(mkt::tutorial_model(), opt, b).ok());
    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(b, true, info).ok());
    EXPECT_EQ(info.metadata, opt.metadata);
}

TEST(Format, OtherAlignmentsRead) {
    for (unsigned a : {2u, 6u, 12u}) {
        Bytes b;
        WriteOptions opt;
        opt.align_log2 = a;
        ASSERT_TRUE(write_model(mkt::tiny_model(), opt, b).ok());
        FileInfo info;
        ASSERT_TRUE(mkt::read_info_both(b, true, info).ok()) << a;
        for (const TensorInfo& t : info.tensors)
            if (t.bytes) EXPECT_EQ(t.offset % (1u << a), 0u);
    }
}

TEST(Format, ARootLayerModelIsVersion11AndReadsBack) {
    const Sequential m = mkt::make_model("=Linear(3,2,bias=false)", 5);
    const Bytes b = mkt::write_model_bytes(m, DType::f32);
    EXPECT_EQ(b[5], 1);  // minor version 1.1: 1.0 readers refuse an empty layer name
    Sequential back;
    ASSERT_TRUE(read_model(b.data(), b.size(), back).ok());
    EXPECT_EQ(back.state_dict()[0].first, "weight");
    EXPECT_EQ(back.state_dict()[0].second, m.state_dict()[0].second);
    // Every other model stays 1.0.
    EXPECT_EQ(mkt::write_model_bytes(mkt::make_model("fc1=Linear(3,2)"), DType::f32)[5], 0);
}

// 1.2: optional sections with data written from (pointer, size) pieces: the header
// lists them in tag order, the data follows the tensors aligned and under the data CRC,
// and read_model hands back the payload and data of the tags a caller asks for.
TEST(Format, SectionsWithDataRoundTrip) {
    const Sequential m = mkt::tiny_model();
    const std::vector<std::uint8_t> a = {1, 2, 3}, b = {4, 5, 6, 7, 8};
    std::vector<float> big(1000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = float(i) * 0.5f - 3.0f;
    WriteOptions opt;
    opt.sections.push_back({192, {9, 9}, {{a.data(), a.size()}, {b.data(), b.size()}}});
    opt.sections.push_back({200, {}, {}});  // no data: no padding either
    opt.sections.push_back({230, {7}, {{big.data(), big.size() * 4}}});
    WritePlan plan;
    ASSERT_TRUE(plan_model(m, opt, plan).ok());
    EXPECT_EQ(plan.info.minor, format_data_minor);
    EXPECT_LT(emit_bytes(plan, 64), 4000u);  // the data is emitted from its pieces, not copied
    Bytes file;
    ASSERT_TRUE(write_model(m, opt, file).ok());
    EXPECT_EQ(file.size(), plan.info.file_bytes);

    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(file, true, info).ok());
    ASSERT_EQ(info.section_data.size(), 3u);
    EXPECT_EQ(info.minor, 2);
    EXPECT_EQ(info.section_data[0].tag, 192);
    EXPECT_EQ(info.section_data[0].bytes, 8u);
    EXPECT_EQ(info.section_data[0].offset % 16, 0u);
    EXPECT_EQ(info.section_data[1].bytes, 0u);
    EXPECT_EQ(info.section_data[2].offset % 16, 0u);
    EXPECT_EQ(info.section_data[2].offset + 4000, file.size());
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(info.section_data[i].offset, plan.info.section_data[i].offset);
        EXPECT_EQ(info.section_data[i].bytes, plan.info.section_data[i].bytes);
    }

    // The plain-model path (a reader that knows none of the tags) reads the same model.
    Sequential plain;
    ASSERT_TRUE(read_model(file.data(), file.size(), plain).ok());
    EXPECT_TRUE(mkt::same_state_dict(plain.state_dict(), m.state_dict()));
    Bytes model_only;
    ASSERT_TRUE(write_model(m, WriteOptions{}, model_only).ok());
    FileInfo model_info;
    ASSERT_TRUE(read_info(model_only.data(), model_only.size(), false, model_info).ok());
    EXPECT_TRUE(std::equal(model_only.begin() + 20, model_only.begin() + model_info.header_bytes, file.begin() + 20))
        << "the model's sections come first, unchanged";
    ASSERT_EQ(info.tensors.size(), model_info.tensors.size());
    for (std::size_t i = 0; i < info.tensors.size(); ++i) {  // and each tensor's stored bytes
        ASSERT_EQ(info.tensors[i].bytes, model_info.tensors[i].bytes);
        EXPECT_TRUE(std::equal(model_only.begin() + model_info.tensors[i].offset,
                               model_only.begin() + model_info.tensors[i].offset + model_info.tensors[i].bytes,
                               file.begin() + info.tensors[i].offset));
    }

    // Asking for 192 and 230 (and 250, which is absent).
    std::vector<SectionContent> want(3);
    want[0].tag = 192;
    want[1].tag = 230;
    want[2].tag = 250;
    want[2].present = true;  // reset by the reader
    Sequential back;
    FileInfo back_info;
    ASSERT_TRUE(read_model(MemorySource(file.data(), file.size()), back, nullptr, &back_info, &want).ok());
    EXPECT_TRUE(mkt::same_state_dict(back.state_dict(), m.state_dict()));
    ASSERT_TRUE(want[0].present);
    EXPECT_EQ(want[0].payload, (std::vector<std::uint8_t>{9, 9}));
    EXPECT_EQ(want[0].data, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8}));
    ASSERT_TRUE(want[1].present);
    EXPECT_EQ(want[1].payload, (std::vector<std::uint8_t>{7}));
    ASSERT_EQ(want[1].data.size(), 4000u);
    EXPECT_EQ(std::memcmp(want[1].data.data(), big.data(), 4000), 0);
    EXPECT_FALSE(want[2].present);
    EXPECT_GE(read_bytes(back_info, true, true), read_bytes(back_info, true) + 8 + 4000);

    // Writing without sections stays 1.0 (the lowest minor that holds the file).
    EXPECT_EQ(model_only[5], 0);
}

TEST(Format, SectionsWithDataRefusedTags) {
    const Sequential m = mkt::tiny_model();
    Bytes out;
    for (const std::vector<std::uint8_t>& tags : {std::vector<std::uint8_t>{191}, {200, 200}, {210, 200}, {128}, {3}}) {
        WriteOptions opt;
        for (std::uint8_t t : tags) opt.sections.push_back({t, {}, {}});
        const Status st = write_model(m, opt, out);
        EXPECT_EQ(st.code(), Code::bad_section) << st.to_string();
    }
}

// A failed read hands back no section: corrupt data (CRC) and a truncated file.
TEST(Format, SectionsWithDataFailedReadFillsNothing) {
    const Sequential m = mkt::tiny_model();
    const std::vector<std::uint8_t> a(100, 7);
    WriteOptions opt;
    opt.sections.push_back({192, {1}, {{a.data(), a.size()}}});
    Bytes file;
    ASSERT_TRUE(write_model(m, opt, file).ok());
    Bytes flipped = file;
    flipped[flipped.size() - 3] ^= 0x10;
    Bytes cut(file.begin(), file.end() - 1);
    for (const Bytes* b : {&flipped, &cut}) {
        std::vector<SectionContent> want(1);
        want[0].tag = 192;
        Sequential back;
        const Status st = read_model(MemorySource(b->data(), b->size()), back, nullptr, nullptr, &want);
        EXPECT_FALSE(st.ok());
        EXPECT_EQ(st.code(), b == &flipped ? Code::checksum_mismatch : Code::truncated) << st.to_string();
        EXPECT_FALSE(want[0].present);
        EXPECT_TRUE(want[0].payload.empty());
        EXPECT_TRUE(want[0].data.empty());
    }
}
