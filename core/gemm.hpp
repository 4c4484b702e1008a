// gemm.hpp — the one matrix product the layers need:
//   C (M, N) = A (M, K) · Bᵀ, with B stored (N, K) row-major (PyTorch's Linear
//   weight layout), optionally + bias (N) broadcast over rows.
// matmul_nt_ref is the plain triple loop everything else is tested against;
// matmul_nt_gemv streams the weight rows in order, one dot product each, for
// a few input rows; matmul_nt_blocked packs B into K-blocks of 8-column panels and
// runs a 4×8 register-blocked micro-kernel. Both use WebAssembly SIMD128 in
// the wasm build and compiler-vectorised loops natively. matmul_nt picks by
// shape: GEMV below gemv_max_rows rows, GEMM from there. matmul_nt_compact is
// the same product with the weight in f16, bf16 or int8 (compact.hpp).
// Every kernel ends with an epilogue: C = act(C + bias), the activation that
// follows a Linear applied to each output as it is written (while it is in
// registers or L1), with the same float result as applying it afterwards.
// docs/KERNELS.md: what each kernel reads and its SIMD128 operations per 16
// weights.
#pragma once

#include <cstddef>
#include <cstdint>

#include "activation.hpp"

namespace modelkeep {

struct CompactWeight;             // compact.hpp
enum class DType : std::uint8_t;  // dtype.hpp

/// Reference: C[i][j] = act(bias[j] + Σ_k A[i][k] * B[j][k]). bias may be null.
void matmul_nt_ref(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                   std::size_t K, Activation act = {});

/// The same product, one dot product per output (for a few rows).
void matmul_nt_gemv(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                    std::size_t K, Activation act = {});

/// Rows below which matmul_nt uses the GEMV path.
constexpr std::size_t gemv_max_rows = 4;

/// Cache- and register-blocked version of the same product.
void matmul_nt_blocked(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                       std::size_t K, Activation act = {});

/// The same product with B pre-packed (packed.hpp: k-major panels of 8 rows
/// of B): the GEMM reads the panels where they are (no per-call packing), the
/// GEMV (below gemv_max_rows rows) streams them 8 outputs at a time. Under
/// Kernel::reference, the plain loop over the packed layout.
void matmul_nt_packed(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                      std::size_t K, Activation act = {});

/// C (M, N) = A (M, K) · Wᵀ (+ bias) with W held compact (N = W.rows,
/// K = W.cols). Reference: W expanded to float32, then matmul_nt_ref.
void matmul_nt_compact_ref(const float* A, const CompactWeight& W, const float* bias, float* C, std::size_t M,
                           Activation act = {});

/// The same product without expanding W: from gemv_max_rows rows the GEMM
/// packs decoded panels (bit-identical to matmul_nt_blocked on the expansion);
/// below, f16/bf16 rows are decoded in registers (bf16 bit-identical to
/// matmul_nt_gemv on the expansion; f16 too but for its subnormal weights,
/// added last) and int8 runs integer dot products on int16-quantised input
/// rows (gemm.cpp: |error| ≤ Σ_k |w_k| · max|a| / 65534 beyond float rounding).
void matmul_nt_compact(const float* A, const CompactWeight& W, const float* bias, float* C, std::size_t M,
                       Activation act = {});

/// Bytes of scratch matmul_nt / matmul_nt_compact keep for M rows of K inputs
/// with a weight held in `dtype` (kept by the calling thread and only grown:
/// the compact GEMV's rescaled or quantised input row), for a caller that
/// reserves memory before the first call.
std::uint64_t matmul_scratch_bytes(std::size_t M, std::size_t K, DType dtype);

enum class Kernel { reference, blocked };

/// The kernels Linear uses: the fast ones (gemv/blocked by shape) unless set
/// to the reference loop (e.g. by a benchmark).
void set_kernel(Kernel kernel);
Kernel current_kernel();

/// The kernels allocate nothing once warm: scratch that grows with K is kept
/// per thread and reused.
void matmul_nt(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N, std::size_t K,
               Activation act = {});

}  // namespace modelkeep
