// The GEMV and blocked kernels against the plain reference loop on awkward shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "compact.hpp"
#include "gemm.hpp"
#include "packed.hpp"
#include "rng.hpp"

using namespace modelkeep;

TEST(Gemm, BlockedMatchesReference) {
    Rng rng(11);
    const std::size_t sizes[] = {1, 2, 3, 4, 5, 15, 16, 17, 33, 255, 256, 257, 513};
    int cases = 0;
    for (std::size_t M : {1, 3, 4, 5, 17, 64})
        for (std::size_t N : sizes)
            for (std::size_t K : sizes) {
                if (M * N * K > 3000000) continue;
                std::vector<float> A(M * K), B(N * K), bias(N), C1(M * N), C2(M * N);
                for (auto& v : A) v = rng.uniform(-1, 1);
                for (auto& v : B) v = rng.uniform(-1, 1);
                for (auto& v : bias) v = rng.uniform(-1, 1);
                const bool with_bias = (M + N + K) % 2;
                matmul_nt_ref(A.data(), B.data(), with_bias ? bias.data() : nullptr, C1.data(), M, N, K);
                matmul_nt_blocked(A.data(), B.data(), with_bias ? bias.data() : nullptr, C2.data(), M, N, K);
                for (std::size_t i = 0; i < M * N; ++i)
                    ASSERT_NEAR(C1[i], C2[i], 1e-5f * std::sqrt(float(K)) + 1e-6f)
                        << M << "x" << N << "x" << K << " at " << i;
                ++cases;
            }
    EXPECT_GT(cases, 500);
}

TEST(Gemm, GemvMatchesReference) {
    Rng rng(12);
    const std::size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 255, 256, 257, 513, 1024};
    int cases = 0;
    for (std::size_t M : {1, 2, 3, 5})
        for (std::size_t N : sizes)
            for (std::size_t K : sizes) {
                std::vector<float> A(M * K), B(N * K), bias(N), C1(M * N), C2(M * N);
                for (auto& v : A) v = rng.uniform(-1, 1);
                for (auto& v : B) v = rng.uniform(-1, 1);
                for (auto& v : bias) v = rng.uniform(-1, 1);
                const bool with_bias = (M + N + K) % 2;
                matmul_nt_ref(A.data(), B.data(), with_bias ? bias.data() : nullptr, C1.data(), M, N, K);
                matmul_nt_gemv(A.data(), B.data(), with_bias ? bias.data() : nullptr, C2.data(), M, N, K);
                for (std::size_t i = 0; i < M * N; ++i)
                    ASSERT_NEAR(C1[i], C2[i], 1e-5f * std::sqrt(float(K)) + 1e-6f)
                        << M << "x" << N << "x" << K << " at " << i;
                ++cases;
            }
    EXPECT_EQ(cases, 4 * 17 * 17);
}

// The pre-packed kernels (packed.hpp): the GEMM reads the same panels the
// blocked kernel packs per call (bit-identical); the GEMV and the reference loop
// over the packed layout agree with the plain loop over the rows. A wrong
// packing (or a kernel reading the rows as panels) fails on every shape with
// N > 1, K > 1.
TEST(Gemm, PackedMatchesReference) {
    Rng rng(21);
    const std::size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 255, 256, 257, 513};
    int cases = 0;
    for (std::size_t M : {1, 2, 3, 4, 5, 17, 64})
        for (std::size_t N : sizes)
            for (std::size_t K : sizes) {
                if (M * N * K > 3000000) continue;
                std::vector<float> A(M * K), B(N * K), bias(N), ref(M * N), blocked(M * N), got(M * N);
                for (auto& v : A) v = rng.uniform(-1, 1);
                for (auto& v : B) v = rng.uniform(-1, 1);
                for (auto& v : bias) v = rng.uniform(-1, 1);
                const float* b = (M + N + K) % 2 ? bias.data() : nullptr;
                const Activation act{(M + N) % 3 ? Activation::Kind::none : Activation::Kind::relu};
                matmul_nt_ref(A.data(), B.data(), b, ref.data(), M, N, K, act);
                matmul_nt_blocked(A.data(), B.data(), b, blocked.data(), M, N, K, act);
                std::vector<float> P = B;
                pack_weight(P.data(), N, K);
                matmul_nt_packed(A.data(), P.data(), b, got.data(), M, N, K, act);
                for (std::size_t i = 0; i < M * N; ++i) {
                    if (M >= gemv_max_rows) ASSERT_EQ(got[i], blocked[i]) << M << "x" << N << "x" << K << " at " << i;
                    ASSERT_NEAR(got[i], ref[i], 1e-5f * std::sqrt(float(K)) + 1e-6f)
                        << M << "x" << N << "x" << K << " at " << i;
                }
                set_kernel(Kernel::reference);
                matmul_nt_packed(A.data(), P.data(), b, got.data(), M, N, K, act);
                set_kernel(Kernel::blocked);
                for (std::size_t i = 0; i < M * N; ++i) ASSERT_EQ(got[i], ref[i]) << M << "x" << N << "x" << K;
                ++cases;
            }
    EXPECT_GT(cases, 1000);
    // Large K, batch 1: the GEMV's k in flight, its odd-K tail and the panel pairs (19 = 2 · 8 + 3).
    const std::size_t N = 19, K = 20001;
    std::vector<float> A(K), B(N * K), ref(N), got(N);
    for (auto& v : A) v = rng.uniform(-1, 1);
    for (auto& v : B) v = rng.uniform(-1, 1);
    matmul_nt_ref(A.data(), B.data(), nullptr, ref.data(), 1, N, K);
    pack_weight(B.data(), N, K);
    matmul_nt_packed(A.data(), B.data(), nullptr, got.data(), 1, N, K);
    for (std::size_t j = 0; j < N; ++j) EXPECT_NEAR(got[j], ref[j], 1e-3f);
}

TEST(Gemm, DispatchByShapeGivesTheSameProduct) {
    // matmul_nt picks GEMV below gemv_max_rows rows and GEMM from there: each
    // row's result must not depend on how many rows came with it.
    Rng rng(13);
    const std::size_t N = 37, K = 70;
    std::vector<float> A(9 * K), B(N * K), bias(N);
    for (auto& v : A) v = rng.uniform(-1, 1);
    for (auto& v : B) v = rng.uniform(-1, 1);
    for (auto& v : bias) v = rng.uniform(-1, 1);
    std::vector<float> all(9 * N), ref(9 * N);
    matmul_nt(A.data(), B.data(), bias.data(), all.data(), 9, N, K);
    matmul_nt_ref(A.data(), B.data(), bias.data(), ref.data(), 9, N, K);
    for (std::size_t i = 0; i < 9; ++i) {
        std::vector<float> one(N);
        matmul_nt(A.data() + i * K, B.data(), bias.data(), one.data(), 1, N, K);
        for (std::size_t j = 0; j < N; ++j) {
            EXPECT_NEAR(one[j], ref[i * N + j], 1e-5f) << i << "," << j;
            EXPECT_NEAR(all[i * N + j], ref[i * N + j], 1e-5f) << i << "," << j;
        }
    }
}

TEST(Gemm, ExactOnIntegers) {
    // Small integers: both kernels are exact, whatever the summation order.
    const std::size_t M = 5, N = 19, K = 300;
    std::vector<float> A(M * K), B(N * K), C1(M * N), C2(M * N);
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = float(int(i % 7) - 3);
    for (std::size_t i = 0; i < B.size(); ++i) B[i] = float(int(i % 5) - 2);
    matmul_nt_ref(A.data(), B.data(), nullptr, C1.data(), M, N, K);
    matmul_nt_blocked(A.data(), B.data(), nullptr, C2.data(), M, N, K);
    EXPECT_EQ(C1, C2);
    matmul_nt_gemv(A.data(), B.data(), nullptr, C2.data(), M, N, K);
    EXPECT_EQ(C1, C2);
    double direct = 0;
    for (std::size_t k = 0; k < K; ++k) direct += double(A[2 * K + k]) * double(B[3 * K + k]);
    EXPECT_EQ(C1[2 * N + 3], float(direct));
}

TEST(Gemm, KernelSwitch) {
    set_kernel(Kernel::reference);
    EXPECT_EQ(current_kernel(), Kernel::reference);
    set_kernel(Kernel::blocked);
    EXPECT_EQ(current_kernel(), Kernel::blocked);
}

// ---- compact weights (f16, bf16, int8) -------------------------------------------------------

namespace {

// A weight of N×K values in [-1, 1) with a few exact zeros and tiny (f16 subnormal) values.
Tensor random_weight(Rng& rng, std::size_t N, std::size_t K) {
    Tensor w(Shape{N, K});
    for (std::size_t i = 0; i < w.size(); ++i) {
        const float u = rng.uniform(-1, 1);
        w.data()[i] = i % 97 == 0 ? 0.0f : i % 89 == 0 ? u * 1e-6f : u;
    }
    return w;
}

// A compact weight (N, K) of random_weight's values, its float32 expansion,
// M input rows in [-amp, amp) and a bias in [-1, 1) (drawn in that order).
struct CompactCase {
    CompactWeight w;
    Tensor B;
    std::vector<float> A, bias;
};

CompactCase compact_case(Rng& rng, DType dtype, std::size_t M, std::size_t N, std::size_t K, float amp) {
    CompactCase c;
    EXPECT_TRUE(compact_weight(random_weight(rng, N, K), dtype, c.w));
    c.B = expand_weight(c.w);
    c.A.resize(M * K);
    for (auto& v : c.A) v = rng.uniform(-amp, amp);
    c.bias.resize(N);
    for (auto& v : c.bias) v = rng.uniform(-1, 1);
    return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

}  // namespace

TEST(Gemm, CompactF16AndBf16AreBitIdenticalToTheirExpansion) {
    // Decoding in registers must give exactly the float32 kernels' results on
    // the expanded weight, on both paths (GEMV below gemv_max_rows rows, GEMM
    // from there) — except f16 GEMV outputs with subnormal weights, whose
    // products are added last: those within float rounding.
    Rng rng(21);
    const std::size_t sizes[] = {1, 3, 4, 7, 8, 9, 17, 64, 255, 257, 513};
    int cases = 0, with_subnormals = 0;
    for (DType dtype : {DType::f16, DType::bf16})
        for (std::size_t M : {1, 2, 3, 4, 5, 17})
            for (std::size_t N : sizes)
                for (std::size_t K : sizes) {
                    if (M * N * K > 2000000) continue;
                    CompactCase c = compact_case(rng, dtype, M, N, K, 2);
                    ASSERT_TRUE(c.w.active());
                    if ((M + K) % 3 == 0) c.A[0] = 70000.0f;  // f16 GEMV: the row cannot be pre-scaled
                    const std::vector<float>& A = c.A;
                    std::vector<float> C1(M * N), C2(M * N);
                    const float* b = (N + K) % 2 ? c.bias.data() : nullptr;
                    matmul_nt(A.data(), c.B.data(), b, C1.data(), M, N, K);
                    matmul_nt_compact(A.data(), c.w, b, C2.data(), M);
                    if (c.w.sub_start.empty() || M >= gemv_max_rows) {
                        ASSERT_TRUE(same_bits(C1, C2)) << dtype_name(dtype) << " " << M << "x" << N << "x" << K;
                    } else {
                        ++with_subnormals;
                        for (std::size_t i = 0; i < M * N; ++i)
                            ASSERT_NEAR(C1[i], C2[i], 1e-6f * std::sqrt(float(K)) * std::max(1.0f, std::fabs(A[0])))
                                << M << "x" << N << "x" << K;
                    }
                    ++cases;
                }
    EXPECT_GT(cases, 1000);
    EXPECT_GT(with_subnormals, 50);
}

TEST(Gemm, CompactKernelsMatchTheirReferenceOnAwkwardShapes) {
    // Every compact kernel (the two-row f16/bf16 GEMV, the four-row int8 GEMV,
    // the GEMM on panels decoded four columns of four rows at a time) against
    // the plain loop on the expansion, with out and in off every tile (1, 3,
    // 17, 33, 1000: odd row pairs, narrow panels, K tails of 1-3 and of 1-15).
    // Within float rounding of Σ|a·w| (int8 below gemv_max_rows rows: plus
    // the documented input quantisation bound, Σ|w|·max|a|/65534).
    Rng rng(26);
    const std::size_t sizes[] = {1, 3, 17, 33, 1000};
    int cases = 0;
    for (DType dtype : {DType::f16, DType::bf16, DType::int8})
        for (std::size_t M : {1, 2, 3, 4, 5, 33})
            for (std::size_t N : sizes)
                for (std::size_t K : sizes) {
                    if (M * N * K > 4000000) continue;
                    const CompactCase c = compact_case(rng, dtype, M, N, K, 2);
                    ASSERT_TRUE(c.w.active());
                    std::vector<float> ref(M * N), got(M * N);
                    matmul_nt_compact_ref(c.A.data(), c.w, c.bias.data(), ref.data(), M);
                    matmul_nt_compact(c.A.data(), c.w, c.bias.data(), got.data(), M);
                    for (std::size_t i = 0; i < M; ++i) {
                        float amax = 0;
                        for (std::size_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(c.A[i * K + k]));
                        for (std::size_t j = 0; j < N; ++j) {
                            double wsum = 0, dot = 0;
                            for (std::size_t k = 0; k < K; ++k) {
                                wsum += std::fabs(c.B.data()[j * K + k]);
                                dot += std::fabs(c.B.data()[j * K + k] * c.A[i * K + k]);
                            }
                            double bound = 2e-7 * (dot + std::fabs(c.bias[j])) * std::sqrt(double(K) + 1);
                            if (dtype == DType::int8 && M < gemv_max_rows) bound += wsum * amax / 65534.0;
                            ASSERT_LE(std::fabs(double(got[i * N + j]) - ref[i * N + j]), bound)
                                << dtype_name(dtype) << " " << M << "x" << N << "x" << K << " at " << i << "," << j;
                        }
                    }
                    ++cases;
                }
    EXPECT_EQ(cases, 3 * 6 * 5 * 5 - 3 * 2);  // (33, 1000, 1000) skipped for each dtype and M = 5, 33
}

TEST(Gemm, CompactF16DecodesEveryFiniteValue) {
    // All 63,488 finite f16 bit patterns (zeros, subnormals, normals, both
    // signs) as a weight (7936, 8); one-hot inputs pick each column out exactly.
    std::vector<std::uint16_t> all;
    for (std::uint32_t h = 0; h < 0x10000; ++h)
        if ((h & 0x7C00u) != 0x7C00u) all.push_back(std::uint16_t(h));
    ASSERT_EQ(all.size(), 7936u * 8);
    std::vector<std::uint8_t> stored(all.size() * 2);
    std::memcpy(stored.data(), all.data(), stored.size());  // little-endian, as the file stores it
    CompactWeight w;
    ASSERT_TRUE(compact_from_stored(DType::f16, 7936, 8, stored.data(), w));
    EXPECT_EQ(w.sub_half.size(), 2u * 1023);  // the subnormals are held apart
    std::vector<float> A(5 * 8, 0.0f), C(5 * w.rows);
    for (std::size_t col = 0; col < 8; ++col) {
        A.assign(A.size(), 0.0f);
        for (std::size_t i = 0; i < 5; ++i) A[i * 8 + col] = 1.0f;
        for (std::size_t M : {1, 5}) {
            matmul_nt_compact(A.data(), w, nullptr, C.data(), M);
            for (std::size_t i = 0; i < M; ++i)
                for (std::size_t j = 0; j < w.rows; ++j)
                    ASSERT_EQ(C[i * w.rows + j], f16_to_f32(all[j * 8 + col])) << "h=" << all[j * 8 + col];
        }
    }
}

TEST(Gemm, CompactInt8GemmIsBitIdenticalToItsExpansion) {
    Rng rng(22);
    for (std::size_t N : {1, 5, 8, 33, 300})
        for (std::size_t K : {1, 7, 16, 100, 513}) {
            const std::size_t M = 6;
            const CompactCase c = compact_case(rng, DType::int8, M, N, K, 2);
            ASSERT_TRUE(c.w.active());
            std::vector<float> C1(M * N), C2(M * N);
            matmul_nt(c.A.data(), c.B.data(), c.bias.data(), C1.data(), M, N, K);
            matmul_nt_compact(c.A.data(), c.w, c.bias.data(), C2.data(), M);
            ASSERT_TRUE(same_bits(C1, C2)) << N << "x" << K;
        }
}

TEST(Gemm, CompactInt8GemvStaysWithinItsBound) {
    // Batch < gemv_max_rows: int16-quantised inputs and integer sums. Against
    // the float reference on the expanded weight, the error stays below the
    // documented Σ|w|·max|a|/65534 (plus float rounding), and it is not zero
    // for every output — the kernel really is a different computation.
    Rng rng(23);
    const std::size_t sizes[] = {1, 3, 15, 16, 17, 511, 512, 513, 1100, 2049};
    bool any_difference = false;
    for (std::size_t M : {1, 3})
        for (std::size_t N : {1, 4, 5, 37})
            for (std::size_t K : sizes) {
                const CompactCase c = compact_case(rng, DType::int8, M, N, K, 3);
                ASSERT_TRUE(c.w.active());
                const std::vector<float>& A = c.A;
                const std::vector<float>& bias = c.bias;
                const Tensor& B = c.B;
                std::vector<float> ref(M * N), got(M * N);
                matmul_nt_ref(A.data(), B.data(), bias.data(), ref.data(), M, N, K);
                matmul_nt_compact(A.data(), c.w, bias.data(), got.data(), M);
                for (std::size_t i = 0; i < M; ++i) {
                    float amax = 0;
                    for (std::size_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(A[i * K + k]));
                    for (std::size_t j = 0; j < N; ++j) {
                        double wsum = 0, dot = 0;
                        for (std::size_t k = 0; k < K; ++k) {
                            wsum += std::fabs(B.data()[j * K + k]);
                            dot += std::fabs(B.data()[j * K + k] * A[i * K + k]);
                        }
                        const double bound =
                            wsum * amax / 65534.0 + 4e-7 * (dot + std::fabs(bias[j])) * std::sqrt(double(K));
                        ASSERT_LE(std::fabs(double(got[i * N + j]) - ref[i * N + j]), bound)
                            << M << "x" << N << "x" << K;
                        any_difference |= got[i * N + j] != ref[i * N + j];
                    }
                }
            }
    EXPECT_TRUE(any_difference);
}

TEST(Gemm, CompactInt8GemvHandsNonFiniteInputToTheReferenceSums) {
    // A row with NaN or inf cannot be quantised: NaN/inf must come out as in float32.
    Rng rng(24);
    const std::size_t N = 9, K = 40;
    CompactWeight w;
    ASSERT_TRUE(compact_weight(random_weight(rng, N, K), DType::int8, w));
    std::vector<float> A(2 * K), ref(2 * N), got(2 * N);
    for (auto& v : A) v = rng.uniform(-1, 1);
    A[5] = std::numeric_limits<float>::quiet_NaN();
    A[K + 3] = std::numeric_limits<float>::infinity();
    matmul_nt_compact_ref(A.data(), w, nullptr, ref.data(), 2);
    matmul_nt_compact(A.data(), w, nullptr, got.data(), 2);
    for (std::size_t j = 0; j < N; ++j) {
        EXPECT_TRUE(std::isnan(got[j]));
        if (std::isnan(ref[N + j]))
            EXPECT_TRUE(std::isnan(got[N + j]));
        else
            EXPECT_EQ(got[N + j], ref[N + j]);
    }
}

TEST(Gemm, CompactReferenceKernelSwitch) {
    // With the reference kernel selected, the compact product is the expansion's reference product.
    Rng rng(25);
    CompactWeight w;
    ASSERT_TRUE(compact_weight(random_weight(rng, 13, 70), DType::int8, w));
    std::vector<float> A(2 * 70), C1(2 * 13), C2(2 * 13);
    for (auto& v : A) v = rng.uniform(-1, 1);
    matmul_nt_compact_ref(A.data(), w, nullptr, C1.data(), 2);
    set_kernel(Kernel::reference);
    matmul_nt_compact(A.data(), w, nullptr, C2.data(), 2);
    set_kernel(Kernel::blocked);
    EXPECT_TRUE(same_bits(C1, C2));
}

TEST(Gemm, EpilogueEqualsTheActivationAppliedAfter) {
    // Every kernel applies `act` to each output as it writes it: the result
    // must be bit for bit the kernel's plain output with act applied after,
    // for every activation, on both paths and awkward shapes (K > KC: the
    // GEMM applies it on its last K block only; K = 0: to the bias alone).
    using K_ = Activation::Kind;
    const Activation acts[] = {{K_::relu}, {K_::leaky_relu, 0.2f}, {K_::sigmoid}, {K_::tanh},
                               {K_::gelu}, {K_::gelu_tanh},        {K_::silu}};
    Rng rng(31);
    int cases = 0;
    for (const Activation& act : acts)
        for (std::size_t M : {1, 3, 4, 9})
            for (std::size_t N : {1, 5, 8, 17})
                for (std::size_t K : {0, 1, 7, 257, 600}) {
                    std::vector<float> A(M * K), bias(N);
                    for (auto& v : A) v = rng.uniform(-2, 2);
                    for (auto& v : bias) v = rng.uniform(-1, 1);
                    const Tensor B = random_weight(rng, N, K);
                    const auto check = [&](const char* what, const auto& run) {
                        std::vector<float> plain(M * N), fused(M * N);
                        run(plain.data(), Activation{});
                        run(fused.data(), act);
                        act.apply(plain.data(), plain.size());
                        EXPECT_TRUE(same_bits(plain, fused))
                            << what << " act " << int(act.kind) << " " << M << "x" << N << "x" << K;
                    };
                    check("ref", [&](float* C, Activation a) {
                        matmul_nt_ref(A.data(), B.data(), bias.data(), C, M, N, K, a);
                    });
                    check("gemv", [&](float* C, Activation a) {
                        matmul_nt_gemv(A.data(), B.data(), bias.data(), C, M, N, K, a);
                    });
                    check("blocked", [&](float* C, Activation a) {
                        matmul_nt_blocked(A.data(), B.data(), nullptr, C, M, N, K, a);
                    });
                    if (K == 0) continue;  // compact weights have at least one column
                    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
                        CompactWeight w;
                        ASSERT_TRUE(compact_weight(B, dtype, w));
                        check(dtype_name(dtype),
                              [&](float* C, Activation a) { matmul_nt_compact(A.data(), w, bias.data(), C, M, a); });
                    }
                    ++cases;
                }
    EXPECT_EQ(cases, 7 * 4 * 4 * 4);
    // And the activation is really applied: ReLU leaves no negative output.
    std::vector<float> A(3 * 5), C(3 * 2);
    for (auto& v : A) v = rng.uniform(-2, 2);
    const Tensor B = random_weight(rng, 2, 5);
    matmul_nt_gemv(A.data(), B.data(), nullptr, C.data(), 3, 2, 5, {K_::relu});
    std::vector<float> plain(3 * 2);
    matmul_nt_gemv(A.data(), B.data(), nullptr, plain.data(), 3, 2, 5);
    for (std::size_t i = 0; i < C.size(); ++i) EXPECT_EQ(C[i], plain[i] > 0 ? plain[i] : 0.0f);
}
