// packed.hpp — a float32 Linear weight (out, in) laid out for the kernels:
// k-major panels of panel_rows output rows, built once when the weight is set
// (Param::pack), never on a call.
//
// Layout (exactly rows × cols floats, no padding, in the weight's own storage):
// 1. Rows [8b, 8b + nr), nr = min(8, rows − 8b), form block b; it occupies
//    [8b · cols, (8b + nr) · cols) in both layouts.
// 2. Within the block, weight (8b + j, k) sits at 8b · cols + k · nr + j: a
//    full block is a (cols, 8) panel the GEMM's 4×8 micro-kernel reads as it
//    is, one 32-byte row per k, and the GEMV streams with 8 output columns
//    per pass (no horizontal sums); only the last block may be narrower.
// The state dict, the file writers and every reader see (out, in) rows:
// unpack_weight_rows gives them back a row range at a time.
//
// Why only the packed form is held (not both): it costs no memory (the same
// floats, permuted in place), where keeping the rows beside it would double a
// float32 model in wasm memory and break "a load peaks under 2× the stored
// bytes". The price is a copy for whoever needs rows (state_dict, writers,
// set_dtype), which were making copies already.
#pragma once

#include <cstddef>
#include <cstdint>

namespace modelkeep {

constexpr std::size_t panel_rows = 8;

/// w (rows, cols) row-major → the packed layout, in place.
void pack_weight(float* w, std::size_t rows, std::size_t cols);
/// The inverse: packed → (rows, cols) row-major, in place.
void unpack_weight(float* w, std::size_t rows, std::size_t cols);
/// Rows [r0, r1) of a packed (rows, cols) weight, row-major into out ((r1 − r0) · cols).
void unpack_weight_rows(const float* packed, std::size_t rows, std::size_t cols, std::size_t r0, std::size_t r1,
                        float* out);
/// Values [first, first + n) of the row-major (rows, cols) order, read from
/// the packed layout into out (n floats): any range, whole rows or not.
void unpack_weight_range(const float* packed, std::size_t rows, std::size_t cols, std::size_t first, std::size_t n,
                         float* out);
/// The transient buffer pack_weight / unpack_weight allocate (one block).
std::uint64_t pack_scratch_bytes(std::size_t rows, std::size_t cols);

}  // namespace modelkeep
