// gemm.cpp — see gemm.hpp. Two fast paths beside the reference loop:
//   a few rows (batch 1-3): each output is a dot product streamed over one
//     weight row, four weight rows at a time sharing the input loads (GEMV:
//     the weights are read exactly once, no packing);
//   more rows: B packed into K-blocks of 8-column panels, a 4×8 register-
//     blocked micro-kernel (GEMM).
// Both use WebAssembly SIMD128 intrinsics when built with -msimd128 and plain
// loops the compiler vectorises otherwise.
#include "gemm.hpp"

#include <algorithm>
#include <vector>

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

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
#if defined(__wasm_simd128__)
    // Two f32x4 accumulators per row (NR = 8): 8 live vectors at mr = 4.
    v128_t c0[mr], c1[mr];
    for (std::size_t r = 0; r < mr; ++r) c0[r] = c1[r] = wasm_f32x4_splat(0.0f);
    for (std::size_t k = 0; k < kc; ++k) {
        const v128_t p0 = wasm_v128_load(P + k * NR), p1 = wasm_v128_load(P + k * NR + 4);
        for (std::size_t r = 0; r < mr; ++r) {
            const v128_t a = wasm_f32x4_splat(A[r * lda + k]);
            c0[r] = wasm_f32x4_add(c0[r], wasm_f32x4_mul(a, p0));
            c1[r] = wasm_f32x4_add(c1[r], wasm_f32x4_mul(a, p1));
        }
    }
    for (std::size_t r = 0; r < mr; ++r) {
        wasm_v128_store(acc + r * NR, wasm_f32x4_add(wasm_v128_load(acc + r * NR), c0[r]));
        wasm_v128_store(acc + r * NR + 4, wasm_f32x4_add(wasm_v128_load(acc + r * NR + 4), c1[r]));
    }
#else
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
#endif
}

// Four dot products of `a` (K) with rows b[0..3] (K each) → out[0..3].
inline void dot4(const float* a, const float* const b[4], std::size_t K, float out[4]) {
    std::size_t k = 0;
#if defined(__wasm_simd128__)
    v128_t s[4][2];
    for (auto& row : s) row[0] = row[1] = wasm_f32x4_splat(0.0f);
    for (; k + 8 <= K; k += 8) {
        const v128_t x0 = wasm_v128_load(a + k), x1 = wasm_v128_load(a + k + 4);
        for (int r = 0; r < 4; ++r) {
            s[r][0] = wasm_f32x4_add(s[r][0], wasm_f32x4_mul(x0, wasm_v128_load(b[r] + k)));
            s[r][1] = wasm_f32x4_add(s[r][1], wasm_f32x4_mul(x1, wasm_v128_load(b[r] + k + 4)));
        }
    }
    for (int r = 0; r < 4; ++r) {
        const v128_t v = wasm_f32x4_add(s[r][0], s[r][1]);
        out[r] = wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
                 wasm_f32x4_extract_lane(v, 3);
    }
#else
    float s[4][8] = {};
    for (; k + 8 <= K; k += 8)
        for (int r = 0; r < 4; ++r)
            for (int l = 0; l < 8; ++l) s[r][l] += a[k + l] * b[r][k + l];
    // The same order of additions as the SIMD128 path, so that native and
    // wasm builds give bit-identical results: lanes l and l + 4, then across.
    for (int r = 0; r < 4; ++r)
        out[r] = (s[r][0] + s[r][4]) + (s[r][1] + s[r][5]) + (s[r][2] + s[r][6]) + (s[r][3] + s[r][7]);
#endif
    for (; k < K; ++k)
        for (int r = 0; r < 4; ++r) out[r] += a[k] * b[r][k];
}

}  // namespace

void matmul_nt_gemv(const float* A, const float* B, const float* bias, float* C, std::size_t M,
                    std::size_t N, std::size_t K) {
    for (std::size_t i = 0; i < M; ++i) {
        const float* a = A + i * K;
        float* c = C + i * N;
        std::size_t j = 0;
        float out[4];
        for (; j + 4 <= N; j += 4) {
            const float* rows[4] = {B + j * K, B + (j + 1) * K, B + (j + 2) * K, B + (j + 3) * K};
            dot4(a, rows, K, out);
            for (int r = 0; r < 4; ++r) c[j + std::size_t(r)] = bias ? out[r] + bias[j + std::size_t(r)] : out[r];
        }
        for (; j < N; ++j) {  // the last N % 4 rows: the same sum with the row repeated
            const float* rows[4] = {B + j * K, B + j * K, B + j * K, B + j * K};
            dot4(a, rows, K, out);
            c[j] = bias ? out[0] + bias[j] : out[0];
        }
    }
}

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
    else if (M < gemv_max_rows)
        matmul_nt_gemv(A, B, bias, C, M, N, K);
    else
        matmul_nt_blocked(A, B, bias, C, M, N, K);
}

}  // namespace modelkeep
