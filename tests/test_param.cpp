// Param: a layer's tensor held float32 or compact, and what each operation
// does to its form — the one place that knows how a weight is held.
#include <gtest/gtest.h>

#include "param.hpp"

using namespace modelkeep;

namespace {

Tensor weight() {
    Tensor w = zeros({3, 4});
    for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] = float(i) * 0.25f - 1.0f;
    return w;
}

}  // namespace

TEST(Param, Float32UntilADtypeIsSet) {
    Param p(weight());
    EXPECT_FALSE(p.is_compact());
    EXPECT_EQ(p.dtype(), DType::f32);
    EXPECT_EQ(p.shape(), (Shape{3, 4}));
    EXPECT_EQ(p.bytes(), 48u);
    Tensor scratch;
    EXPECT_EQ(&p.f32(scratch), &p.values());  // no copy
}

TEST(Param, CompactFormsAndBack) {
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        Param p(weight());
        ASSERT_TRUE(p.set_dtype(dtype)) << dtype_name(dtype);
        EXPECT_TRUE(p.is_compact());
        EXPECT_EQ(p.dtype(), dtype);
        EXPECT_EQ(p.shape(), (Shape{3, 4}));
        EXPECT_EQ(p.bytes(), p.compact().bytes());
        EXPECT_LT(p.bytes(), 48u);
        Tensor scratch;
        const Tensor& f = p.f32(scratch);
        EXPECT_EQ(&f, &scratch);
        EXPECT_EQ(f, expand_weight(p.compact()));
        // Every value here is exact in f16 and bf16; int8 is within its bound.
        const Tensor w = weight();
        for (std::size_t i = 0; i < w.size(); ++i)
            EXPECT_NEAR(f.data()[i], w.data()[i], 2.0f / 254) << dtype_name(dtype);
        ASSERT_TRUE(p.set_dtype(DType::f32));
        EXPECT_FALSE(p.is_compact());
        EXPECT_EQ(p.values(), f);
    }
}

TEST(Param, AssignKeepsTheDtypeWhenItCan) {
    Param p(weight());
    ASSERT_TRUE(p.set_dtype(DType::bf16));
    p.assign(weight() * 2.0f);
    EXPECT_EQ(p.dtype(), DType::bf16);
    Tensor scratch;
    EXPECT_EQ(p.f32(scratch)(1, 1), 0.5f);
    // A value the dtype cannot hold (beyond f16's range): float32 then.
    ASSERT_TRUE(p.set_dtype(DType::f16));
    Tensor big = weight();
    big(0, 0) = 1e6f;  // beyond f16
    p.assign(big);
    EXPECT_FALSE(p.is_compact());
    EXPECT_EQ(p.values()(0, 0), 1e6f);
}

TEST(Param, OnlyRank2IsEverCompact) {
    Param bias(zeros({4}));
    EXPECT_FALSE(bias.set_dtype(DType::f16));
    EXPECT_FALSE(bias.is_compact());
    EXPECT_EQ(bias.set_dtype_bytes(DType::f16), 0u);
    Param w(weight());
    EXPECT_EQ(w.set_dtype_bytes(DType::f32), 0u);  // already float32: nothing to build
    EXPECT_GT(w.set_dtype_bytes(DType::int8), 0u);
}
