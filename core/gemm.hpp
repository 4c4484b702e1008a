// gemm.hpp — the one matrix product the layers need:
//   C (M, N) = A (M, K) · Bᵀ, with B stored (N, K) row-major (PyTorch's Linear
//   weight layout), optionally + bias (N) broadcast over rows.
// matmul_nt_ref is the plain triple loop everything else is tested against;
// matmul_nt_blocked packs B into K-blocks of 8-column panels and runs a
// 4×8 register-blocked micro-kernel the compiler vectorises. matmul_nt picks
// one; the SIMD kernels of a later issue plug in here.
#pragma once

#include <cstddef>

namespace modelkeep {

/// Reference: C[i][j] = bias[j] + Σ_k A[i][k] * B[j][k]. bias may be null.
void matmul_nt_ref(const float* A, const float* B, const float* bias, float* C, std::size_t M,
                   std::size_t N, std::size_t K);

/// Cache- and register-blocked version of the same product.
void matmul_nt_blocked(const float* A, const float* B, const float* bias, float* C, std::size_t M,
                       std::size_t N, std::size_t K);

enum class Kernel { reference, blocked };

/// The kernel Linear uses (blocked unless set otherwise, e.g. by a benchmark).
void set_kernel(Kernel kernel);
Kernel current_kernel();

void matmul_nt(const float* A, const float* B, const float* bias, float* C, std::size_t M,
               std::size_t N, std::size_t K);

}  // namespace modelkeep
