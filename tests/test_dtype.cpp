// f16 / bf16 conversions checked exhaustively against the compiler's own
// _Float16 and against the stated bounds; int8 quantisation bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "dtype.hpp"
#include "rng.hpp"

using namespace modelkeep;

namespace {
float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
}  // namespace

TEST(DType, Names) {
    for (DType d : {DType::f32, DType::f16, DType::bf16, DType::int8}) {
        DType back;
        ASSERT_TRUE(parse_dtype(dtype_name(d), back));
        EXPECT_EQ(back, d);
    }
    DType x;
    EXPECT_FALSE(parse_dtype("float32", x));
    EXPECT_FALSE(dtype_known(0));
    EXPECT_FALSE(dtype_known(5));
}

TEST(DType, F16DecodeEveryPatternAndReencode) {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float f = f16_to_f32(std::uint16_t(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
            continue;
        }
        EXPECT_EQ(f32_to_f16(f), h) << std::hex << h;  // every f16 value survives the round trip
    }
}

#if defined(__FLT16_MANT_DIG__) && (defined(__x86_64__) || defined(__aarch64__))
TEST(DType, F16EncodeMatchesTheCompilerOnAStrideOfAllFloats) {
    for (std::uint64_t u = 0; u <= 0xFFFFFFFFull; u += 251) {
        const float f = from_bits(std::uint32_t(u));
        if (std::isnan(f)) continue;
        const _Float16 h = static_cast<_Float16>(f);
        std::uint16_t bits;
        std::memcpy(&bits, &h, 2);
        ASSERT_EQ(f32_to_f16(f), bits) << std::hexfloat << f;
    }
}
#endif

TEST(DType, F16Bounds) {
    Rng rng(3);
    for (int i = 0; i < 100000; ++i) {
        const float x = rng.uniform(-70000.0f, 70000.0f) * std::ldexp(1.0f, -int(rng.next_u32() % 40));
        const float y = f16_to_f32(f32_to_f16(x));
        if (std::fabs(x) > 65504.0f) {
            if (std::fabs(x) >= 65520.0f) EXPECT_TRUE(std::isinf(y)) << x;
            continue;
        }
        const float bound =
            std::fabs(x) >= std::ldexp(1.0f, -14) ? std::ldexp(std::fabs(x), -11) : std::ldexp(1.0f, -25);
        ASSERT_LE(std::fabs(x - y), bound) << std::hexfloat << x;
    }
    EXPECT_EQ(f16_to_f32(f32_to_f16(65504.0f)), 65504.0f);
    EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
    EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
    EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(DType, BF16BoundsAndRounding) {
    Rng rng(4);
    for (int i = 0; i < 100000; ++i) {
        const float x = from_bits(rng.next_u32());
        if (!std::isfinite(x)) continue;
        const float y = bf16_to_f32(f32_to_bf16(x));
        if (std::isinf(y)) continue;  // values within half an ulp of FLT_MAX round up
        if (std::fpclassify(x) == FP_NORMAL) ASSERT_LE(std::fabs(x - y), std::ldexp(std::fabs(x), -8)) << x;
    }
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
    EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000u)), 0x3F80);  // tie → even
    EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000u)), 0x3F82);  // tie → even (up)
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, Int8BoundPerRow) {
    const std::size_t rows = 3, cols = 50;
    std::vector<float> x(rows * cols);
    Rng rng(9);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1) * float(i / cols + 1);
    x[cols] = 0;                                     // a zero inside a row
    std::fill(x.begin() + 2 * cols, x.end(), 0.0f);  // an all-zero row: scale 0
    std::vector<std::uint8_t> q(stored_bytes(DType::int8, x.size(), rows));
    ASSERT_TRUE(quantize_int8(x.data(), rows, cols, q.data()));
    for (std::size_t r = 0; r < rows; ++r) {
        float scale;
        std::memcpy(&scale, q.data() + 4 * r, 4);
        float amax = 0;
        for (std::size_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
        EXPECT_FLOAT_EQ(scale, amax / 127.0f);
        for (std::size_t c = 0; c < cols; ++c) {
            const float v = float(std::int8_t(q[rows * 4 + r * cols + c])) * scale;
            ASSERT_LE(std::fabs(v - x[r * cols + c]), amax / 254.0f * 1.0001f);
        }
    }
    std::vector<float> bad = {1, NAN};
    EXPECT_FALSE(quantize_int8(bad.data(), 1, 2, q.data()));
}
