// compact.hpp — a Linear weight (out, in) held in a storage dtype narrower than
// float32 and used by the kernels as it is: f16 or bf16 (2 bytes per weight) or
// int8 with one float32 scale per row (1 byte per weight; value = q · scale,
// the file format's int8, dtype.hpp). Never expanded in memory: the GEMV
// kernels decode in registers and the GEMM packs a cache-sized panel at a time.
// The (out, in) rows are also the kernels' layout (docs/KERNELS.md: why, and
// the instruction counts of each dtype's kernel).
//
// From float32, a weight holding NaN or inf, or for f16 any |w| > 65504 (f16's
// inf and NaN are not decoded by the kernels), is not compacted:
// compact_weight reports it and the layer stays float32. From a file, bytes
// are taken as stored, except f16 inf/NaN and bad int8 scales (the reader then
// decodes that tensor to float32 instead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dtype.hpp"
#include "tensor.hpp"

namespace modelkeep {

struct CompactWeight {
    DType dtype = DType::f32;         // f32: none (the layer's float32 tensor holds the weight)
    std::size_t rows = 0, cols = 0;   // (out, in)
    std::vector<std::uint16_t> half;  // f16 / bf16 bits, rows × cols
    std::vector<float> scale;         // int8: rows
    std::vector<std::int8_t> q;       // int8: rows × cols
    // f16 subnormals (0 < |w| < 2^-14) decode to float32 subnormals in the
    // kernels' bit trick, and x86 takes a slow path for every arithmetic
    // operation on one. So `half` holds them as ±0 and they live here, by row
    // (CSR): row r's are sub_col/sub_half[sub_start[r] .. sub_start[r+1]).
    // Empty when there are none, or more than 1 in 16 (then they stay in
    // `half`: exact, only slower), and for bf16 / int8.
    std::vector<std::uint32_t> sub_start, sub_col;
    std::vector<std::uint16_t> sub_half;

    bool active() const { return dtype != DType::f32; }
    /// Bytes held (what the weight costs in memory).
    std::size_t bytes() const {
        return half.size() * 2 + scale.size() * 4 + q.size() + (sub_start.size() + sub_col.size()) * 4 +
               sub_half.size() * 2;
    }
};

/// w (rows, cols) → its compact form in `dtype` (f16, bf16 or int8). False,
/// with out untouched, if a value cannot be held (see the top of this file).
bool compact_weight(const Tensor& w, DType dtype, CompactWeight& out);

/// Stored bytes in the file format's layout (§5: f16/bf16 little-endian
/// elements; int8: rows float32 scales then rows × cols int8) → compact form.
/// False if the values cannot be held as they are (f16 inf/NaN, int8 scale not
/// finite or negative); the caller then decodes to float32 instead.
bool compact_from_stored(DType dtype, std::size_t rows, std::size_t cols, const std::uint8_t* stored,
                         CompactWeight& out);

/// For a reader that filled dtype, rows, cols and `half` (f16/bf16) or
/// `scale` + `q` (int8) itself: the checks and the f16 subnormal split of
/// compact_from_stored. False if the values cannot be held as they are.
bool finish_compact(CompactWeight& w);

/// The file format's bytes of `w` (stored_bytes(w.dtype, rows·cols, rows) long).
void compact_to_stored(const CompactWeight& w, std::uint8_t* out);
/// f16 / bf16: rows [r0, r1) of those bytes ((r1 - r0) · cols · 2 long), for a
/// writer that emits a large weight a bounded range at a time.
void compact_rows_to_stored(const CompactWeight& w, std::size_t r0, std::size_t r1, std::uint8_t* out);

/// The most a CompactWeight of (rows, cols) in `dtype` holds (f16: with its
/// subnormal side table at its largest).
std::uint64_t compact_bytes_bound(DType dtype, std::size_t rows, std::size_t cols);

/// The most memory compact_weight(w (rows, cols), dtype, out) holds at once
/// while it works (the compact form and its transient buffers), for a caller
/// that reserves memory before it starts.
std::uint64_t compact_peak_bytes(DType dtype, std::size_t rows, std::size_t cols);

/// Decoded float32 values, as the file reader decodes the same bytes.
Tensor expand_weight(const CompactWeight& w);

}  // namespace modelkeep
