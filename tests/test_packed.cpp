// The packed layout of a float32 Linear weight (packed.hpp) and a Param that
// holds it: element by element against the definition, round trips in place,
// and a model whose state dict, files and outputs are those of the rows.
#include <gtest/gtest.h>

#include <vector>

#include "format.hpp"
#include "model.hpp"
#include "packed.hpp"
#include "param.hpp"
#include "rng.hpp"
#include "spec.hpp"

using namespace modelkeep;

namespace {

std::vector<float> iota(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = float(i);
    return v;
}

}  // namespace

TEST(Packed, LayoutIsTheDefinitionAndRoundTripsInPlace) {
    for (std::size_t rows : {1, 2, 7, 8, 9, 15, 16, 17, 33})
        for (std::size_t cols : {1, 2, 3, 8, 31, 257}) {
            const std::vector<float> w = iota(rows * cols);  // w[r][k] = r · cols + k
            std::vector<float> p = w;
            pack_weight(p.data(), rows, cols);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t k = 0; k < cols; ++k) {
                    const std::size_t b = r / 8 * 8, nr = std::min<std::size_t>(8, rows - b);
                    ASSERT_EQ(p[b * cols + k * nr + (r - b)], w[r * cols + k]) << rows << "x" << cols;
                }
            std::vector<float> some(3 * cols);
            const std::size_t r0 = rows / 2, r1 = std::min(rows, r0 + 3);
            unpack_weight_rows(p.data(), rows, cols, r0, r1, some.data());
            for (std::size_t i = 0; i < (r1 - r0) * cols; ++i) ASSERT_EQ(some[i], w[r0 * cols + i]);
            std::vector<float> range(rows * cols);
            for (std::size_t first : {std::size_t(0), std::size_t(1), cols + 1, rows * cols / 2}) {
                if (first >= rows * cols) continue;
                const std::size_t n = std::min(rows * cols - first, 2 * cols + 3);
                unpack_weight_range(p.data(), rows, cols, first, n, range.data());
                for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(range[i], w[first + i]) << rows << "x" << cols;
            }
            unpack_weight(p.data(), rows, cols);
            ASSERT_EQ(p, w) << rows << "x" << cols;
        }
    EXPECT_EQ(pack_scratch_bytes(3, 10), 120u);
    EXPECT_EQ(pack_scratch_bytes(100, 10), 320u);
}

TEST(Packed, AParamKeepsItsLayoutThroughAssignAndDtypes) {
    Tensor w(Shape{11, 5});
    for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] = float(i) / 4;  // exact in f16 and bf16
    Param p(w);
    p.pack();
    EXPECT_TRUE(p.is_packed());
    EXPECT_EQ(p.shape(), (Shape{11, 5}));
    EXPECT_EQ(p.bytes(), 11u * 5 * 4);  // the same floats, no copy beside them
    EXPECT_NE(p.values(), w);
    Tensor scratch;
    EXPECT_EQ(p.f32(scratch), w);
    ASSERT_TRUE(p.set_dtype(DType::f16));
    EXPECT_FALSE(p.is_packed());
    EXPECT_EQ(p.f32(scratch), w);
    ASSERT_TRUE(p.set_dtype(DType::f32));
    EXPECT_TRUE(p.is_packed());
    EXPECT_EQ(p.f32(scratch), w);
    p.assign(w * 2.0f);
    EXPECT_TRUE(p.is_packed());
    EXPECT_EQ(p.f32(scratch), Tensor(w * 2.0f));
    Param bias(zeros({4}));
    bias.pack();
    EXPECT_FALSE(bias.is_packed());  // rank 1: never packed
}

TEST(Packed, AModelPacksItsLinearWeightsAndShowsRows) {
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("a=Linear(13,11),ReLU,b=Linear(11,3)", specs).ok());
    Sequential m;
    ASSERT_TRUE(Sequential::create(specs, 5, m).ok());
    EXPECT_TRUE(m.layers()[0].params[0].is_packed());
    EXPECT_FALSE(m.layers()[0].params[1].is_packed());
    // The state dict is the rows; a model rebuilt from it, and one read back from
    // its file, hold the same packed values and give the same outputs.
    const StateDict sd = m.state_dict();
    Sequential fresh;
    StateDict copy = sd;
    ASSERT_TRUE(Sequential::from_state_dict(specs, std::move(copy), fresh).ok());
    EXPECT_EQ(fresh.layers()[0].params[0].values(), m.layers()[0].params[0].values());
    std::vector<std::uint8_t> bytes;
    ASSERT_TRUE(write_model(m, WriteOptions{}, bytes).ok());
    Sequential back;
    ASSERT_TRUE(read_model(bytes.data(), bytes.size(), back).ok());
    EXPECT_TRUE(back.layers()[2].params[0].is_packed());
    EXPECT_EQ(back.state_dict(), sd);
    // Row 0 of "a.weight" is what PyTorch's layout puts first: the packed
    // storage differs, the state dict does not.
    const Tensor& w = sd[0].second;
    EXPECT_NE(m.layers()[0].params[0].values(), w);
    Tensor x(Shape{2, 13});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i % 7) - 3.0f;
    Tensor y1, y2;
    ASSERT_TRUE(m.forward(x, y1).ok());
    ASSERT_TRUE(back.forward(x, y2).ok());
    EXPECT_EQ(y1, y2);
    // By hand from the rows: relu(x · aᵀ + a.bias) · bᵀ + b.bias.
    const Tensor &wa = sd[0].second, &ba = sd[1].second, &wb = sd[2].second, &bb = sd[3].second;
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t o = 0; o < 3; ++o) {
            float out = bb(o);
            for (std::size_t h = 0; h < 11; ++h) {
                float acc = ba(h);
                for (std::size_t k = 0; k < 13; ++k) acc += x(i, k) * wa(h, k);
                out += std::max(acc, 0.0f) * wb(o, h);
            }
            EXPECT_NEAR(y1(i, o), out, 1e-4f);
        }
}
