#include "gemm.hpp"

#include <algorithm>
#include <vector>

namespace modelkeep {

void matmul_nt_ref(const float* A, const float* B, const float* bias, float* C, std::size_t M,
                   std::size_t N, std::size_t K) {
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            float acc = 0.0f;
            for (std::size_t k = 0; k < K; ++k) acc += A[i * K + k] * B[j * K + k];
            C[i * N + j] = bias ? acc + bias[j] : acc;
        }
}

namespace {

constexpr std::size_t NR = 8;    // columns of C per panel: two SSE vectors (measured best of 8/16 × 4/6)
constexpr std::size_t MR = 4;    // rows of C per micro-kernel
constexpr std::size_t KC = 256;  // K block: an 8 × 256 panel (8 KiB) stays in L1

// acc (MR × NR) += A rows [i, i+mr) × packed panel P (kc × NR), k in [0, kc).
// A is (M, K) with row stride K, already offset to the block's first column.
template <std::size_t mr>
inline void micro_kernel(const float* A, std::size_t lda, const float* P, std::size_t kc,
                         float* acc) {
    float c[mr][NR] = {};
    for (std::size_t k = 0; k < kc; ++k) {
        const float* p = P + k * NR;
        for (std::size_t r = 0; r < mr; ++r) {
            const float a = A[r * lda + k];
            for (std::size_t j = 0; j < NR; ++j) c[r][j] += a * p[j];
        }
    }
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t j = 0; j < NR; ++j) acc[r * NR + j] += c[r][j];
}

}  // namespace

void matmul_nt_blocked(const float* A, const float* B, const float* bias, float* C, std::size_t M,
                       std::size_t N, std::size_t K) {
    std::vector<float> panel(KC * NR);
    std::vector<float> acc(MR * NR);
    for (std::size_t j0 = 0; j0 < N; j0 += NR) {
        const std::size_t nr = std::min(NR, N - j0);
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < nr; ++j) C[i * N + j0 + j] = bias ? bias[j0 + j] : 0.0f;
        for (std::size_t k0 = 0; k0 < K; k0 += KC) {
            const std::size_t kc = std::min(KC, K - k0);
            // Pack B[j0 : j0+nr, k0 : k0+kc] transposed into panel (kc × NR), zero-padded.
            for (std::size_t k = 0; k < kc; ++k)
                for (std::size_t j = 0; j < NR; ++j)
                    panel[k * NR + j] = j < nr ? B[(j0 + j) * K + k0 + k] : 0.0f;
            for (std::size_t i = 0; i < M; i += MR) {
                const std::size_t mr = std::min(MR, M - i);
                std::fill(acc.begin(), acc.end(), 0.0f);
                const float* a = A + i * K + k0;
                switch (mr) {
                    case 4: micro_kernel<4>(a, K, panel.data(), kc, acc.data()); break;
                    case 3: micro_kernel<3>(a, K, panel.data(), kc, acc.data()); break;
                    case 2: micro_kernel<2>(a, K, panel.data(), kc, acc.data()); break;
                    default: micro_kernel<1>(a, K, panel.data(), kc, acc.data()); break;
                }
                for (std::size_t r = 0; r < mr; ++r)
                    for (std::size_t j = 0; j < nr; ++j) C[(i + r) * N + j0 + j] += acc[r * NR + j];
            }
        }
    }
}

static Kernel g_kernel = Kernel::blocked;

void set_kernel(Kernel kernel) { g_kernel = kernel; }
Kernel current_kernel() { return g_kernel; }

void matmul_nt(const float* A, const float* B, const float* bias, float* C, std::size_t M,
               std::size_t N, std::size_t K) {
    if (g_kernel == Kernel::reference)
        matmul_nt_ref(A, B, bias, C, M, N, K);
    else
        matmul_nt_blocked(A, B, bias, C, M, N, K);
}

}  // namespace modelkeep
