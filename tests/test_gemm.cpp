// The GEMV and blocked kernels against the plain reference loop on awkward shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gemm.hpp"
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
