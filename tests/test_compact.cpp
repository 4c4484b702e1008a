// Compact Linear weights (compact.hpp) and models holding them: conversions
// against the file format's own decoding, what cannot be held, and a model
// that keeps its weights compact through forward, state_dict, save and load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "compact.hpp"
#include "format.hpp"
#include "gemm.hpp"
#include "import.hpp"
#include "model.hpp"
#include "rng.hpp"
#include "spec.hpp"

using namespace modelkeep;

namespace {

Tensor random_tensor(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    Rng rng(seed);
    Tensor t(Shape{rows, cols});
    for (std::size_t i = 0; i < t.size(); ++i) {
        const float u = rng.uniform(-1, 1);
        t.data()[i] = i % 29 == 0 ? u * 1e-6f : u;  // some f16 subnormals (1 in 29)
    }
    return t;
}

Sequential mlp(std::uint64_t seed) {
    std::vector<LayerSpec> specs;
    EXPECT_TRUE(parse_spec("0=Linear(33,20),1=ReLU,2=Linear(20,7,bias=False),3=LayerNorm(7)", specs).ok());
    Sequential m;
    EXPECT_TRUE(Sequential::create(specs, seed, m).ok());
    return m;
}

}  // namespace

TEST(Compact, StoredBytesRoundTripExactly) {
    // compact_from_stored then compact_to_stored gives back the file's bytes,
    // and expand_weight gives what the file reader decodes.
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        const Tensor w = random_tensor(9, 21, 5);
        WriteOptions options;
        options.dtype = dtype;
        std::vector<std::uint8_t> file;
        ASSERT_TRUE(write_state_dict({{"w", w}}, options, file).ok());
        LoadedFile loaded;
        ASSERT_TRUE(read_file(file.data(), file.size(), loaded).ok());
        const TensorInfo& info = loaded.info.tensors[0];
        CompactWeight c;
        ASSERT_TRUE(compact_from_stored(dtype, 9, 21, file.data() + info.offset, c)) << dtype_name(dtype);
        EXPECT_EQ(c.bytes() < 9 * 21 * 4, true);
        std::vector<std::uint8_t> again(std::size_t(info.bytes));
        compact_to_stored(c, again.data());
        EXPECT_EQ(0, std::memcmp(again.data(), file.data() + info.offset, again.size())) << dtype_name(dtype);
        const Tensor e = expand_weight(c);
        EXPECT_EQ(0, std::memcmp(e.data(), loaded.tensors[0].second.data(), e.size() * 4)) << dtype_name(dtype);
        if (dtype == DType::f16) EXPECT_FALSE(c.sub_half.empty());
    }
}

TEST(Compact, ManyF16SubnormalsStayInPlaceAndStayExact) {
    // More than 1 in 16 subnormal: no side table (it would outweigh the
    // weight); the kernels still decode them exactly.
    Tensor w = random_tensor(6, 40, 8);
    for (std::size_t i = 0; i < w.size(); i += 2) w.data()[i] *= 1e-6f;
    CompactWeight c;
    ASSERT_TRUE(compact_weight(w, DType::f16, c));
    EXPECT_TRUE(c.sub_start.empty());
    EXPECT_LE(c.bytes(), w.size() * 2);
    const Tensor e = expand_weight(c);
    std::vector<float> x(40), y1(6), y2(6);
    Rng rng(9);
    for (float& v : x) v = rng.uniform(-1, 1);
    matmul_nt(x.data(), e.data(), nullptr, y1.data(), 1, 6, 40);
    matmul_nt_compact(x.data(), c, nullptr, y2.data(), 1);
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), 6 * 4));
}

TEST(Compact, RefusesWhatTheDtypeCannotHold) {
    Tensor w = random_tensor(3, 4, 6);
    CompactWeight c;
    w.data()[5] = 70000.0f;  // beyond f16's ±65504
    EXPECT_FALSE(compact_weight(w, DType::f16, c));
    EXPECT_TRUE(compact_weight(w, DType::bf16, c));
    EXPECT_TRUE(compact_weight(w, DType::int8, c));
    w.data()[5] = std::numeric_limits<float>::quiet_NaN();
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        CompactWeight d;
        EXPECT_FALSE(compact_weight(w, dtype, d)) << dtype_name(dtype);
        EXPECT_FALSE(d.active());
    }
    // Stored f16 inf and a negative int8 scale are not held either (the reader decodes them instead).
    const std::uint8_t inf_f16[2] = {0x00, 0x7C};
    EXPECT_FALSE(compact_from_stored(DType::f16, 1, 1, inf_f16, c));
    std::uint8_t bad_scale[5];
    const float minus = -1.0f;
    std::memcpy(bad_scale, &minus, 4);
    bad_scale[4] = 1;
    EXPECT_FALSE(compact_from_stored(DType::int8, 1, 1, bad_scale, c));
}

TEST(Compact, ModelKeepsWeightsCompactThroughForwardStateDictAndFiles) {
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        Sequential m = mlp(7);
        const std::uint64_t f32_bytes = m.memory_bytes();
        std::vector<std::string> unchanged;
        m.set_weight_dtype(dtype, &unchanged);
        EXPECT_TRUE(unchanged.empty());
        EXPECT_EQ(m.weight_dtype(), dtype);
        EXPECT_LT(m.memory_bytes(), f32_bytes * (dtype == DType::int8 ? 0.4 : 0.6)) << dtype_name(dtype);
        EXPECT_EQ(m.param_count(), mlp(7).param_count());

        // The compact model computes what a float32 model of its decoded weights computes.
        Sequential expanded = mlp(1);
        LoadReport report;
        ASSERT_TRUE(expanded.load_state_dict(m.state_dict(), true, report).ok());
        EXPECT_EQ(expanded.weight_dtype(), DType::f32);
        Tensor x(Shape{5, 33});
        Rng rng(8);
        for (float& v : x) v = rng.uniform(-2, 2);
        Tensor y1, y2;
        ASSERT_TRUE(m.forward(x, y1).ok());
        ASSERT_TRUE(expanded.forward(x, y2).ok());
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << dtype_name(dtype);  // GEMM: bit-identical

        // Written in its own dtype, the file holds the compact bytes as they are.
        WriteOptions options;
        options.dtype = dtype;
        std::vector<std::uint8_t> a, b;
        ASSERT_TRUE(write_model(m, options, a).ok());
        ASSERT_TRUE(write_model(expanded, options, b).ok());
        if (dtype != DType::int8) EXPECT_EQ(a, b) << dtype_name(dtype);  // int8 re-quantises the expansion

        // Back to float32: the decoded values, exactly.
        m.set_weight_dtype(DType::f32);
        EXPECT_EQ(m.weight_dtype(), DType::f32);
        EXPECT_EQ(m.memory_bytes(), f32_bytes);
        const StateDict s1 = m.state_dict(), s2 = expanded.state_dict();
        for (std::size_t i = 0; i < s1.size(); ++i)
            EXPECT_EQ(0, std::memcmp(s1[i].second.data(), s2[i].second.data(), s1[i].second.size() * 4));
    }
}

TEST(Compact, LoadStateDictIntoACompactModelStaysCompact) {
    Sequential m = mlp(3);
    m.set_weight_dtype(DType::bf16);
    const Sequential other = mlp(4);
    LoadReport report;
    ASSERT_TRUE(m.load_state_dict(other.state_dict(), true, report).ok());
    EXPECT_EQ(m.weight_dtype(), DType::bf16);
    Tensor rows;
    const Tensor& w = other.layers()[0].params[0].f32(rows);
    const Tensor got = m.state_dict()[0].second;
    for (std::size_t i = 0; i < w.size(); ++i) EXPECT_EQ(got.data()[i], bf16_to_f32(f32_to_bf16(w.data()[i])));
    // A shape mismatch changes nothing.
    Tensor wrong(Shape{2, 2});
    EXPECT_EQ(m.load_state_dict({{"0.weight", wrong}}, false, report).code(), Code::shape_mismatch);
    EXPECT_EQ(m.weight_dtype(), DType::bf16);
}

TEST(Compact, ALayerThatCannotBeHeldStaysAsItWas) {
    Sequential m = mlp(5);
    StateDict sd = m.state_dict();
    sd[0].second.data()[3] = 1e6f;  // 0.weight beyond f16
    LoadReport report;
    ASSERT_TRUE(m.load_state_dict(sd, true, report).ok());
    std::vector<std::string> unchanged;
    m.set_weight_dtype(DType::f16, &unchanged);
    EXPECT_EQ(unchanged, std::vector<std::string>({"0"}));
    EXPECT_FALSE(m.layers()[0].params[0].is_compact());
    EXPECT_TRUE(m.layers()[2].params[0].is_compact());
    EXPECT_EQ(m.state_dict()[0].second.data()[3], 1e6f);
}

TEST(Compact, FilesStoredCompactLoadCompact) {
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        WriteOptions options;
        options.dtype = dtype;
        std::vector<std::uint8_t> file;
        ASSERT_TRUE(write_model(mlp(9), options, file).ok());
        Sequential direct;
        ASSERT_TRUE(read_model(file.data(), file.size(), direct).ok());
        EXPECT_EQ(direct.weight_dtype(), dtype);
        Imported in;
        ASSERT_TRUE(import_file(file.data(), file.size(), ImportOptions(), true, in).ok());
        EXPECT_EQ(in.model.weight_dtype(), dtype) << dtype_name(dtype);
        EXPECT_EQ(in.arch_from, "file");
        EXPECT_TRUE(in.info.mkp.data_checked);
        // Its values are the file's, as read_file decodes them; saved again, the same bytes.
        LoadedFile decoded;
        ASSERT_TRUE(read_file(file.data(), file.size(), decoded).ok());
        const StateDict sd = in.model.state_dict();
        for (std::size_t i = 0; i < sd.size(); ++i)
            EXPECT_EQ(0, std::memcmp(sd[i].second.data(), decoded.tensors[i].second.data(), sd[i].second.size() * 4));
        std::vector<std::uint8_t> again;
        ASSERT_TRUE(write_model(in.model, options, again).ok());
        EXPECT_EQ(again, file) << dtype_name(dtype);
    }
    // f16 inf in a weight cannot be held compact: that layer loads as float32, inf and all.
    Sequential m = mlp(10);
    StateDict sd = m.state_dict();
    sd[0].second.data()[1] = std::numeric_limits<float>::infinity();
    LoadReport report;
    ASSERT_TRUE(m.load_state_dict(sd, true, report).ok());
    WriteOptions options;
    options.dtype = DType::f16;
    std::vector<std::uint8_t> file;
    ASSERT_TRUE(write_model(m, options, file).ok());
    Sequential back;
    ASSERT_TRUE(read_model(file.data(), file.size(), back).ok());
    EXPECT_FALSE(back.layers()[0].params[0].is_compact());
    EXPECT_TRUE(back.layers()[2].params[0].is_compact());
    EXPECT_EQ(back.state_dict()[0].second.data()[1], std::numeric_limits<float>::infinity());
}
