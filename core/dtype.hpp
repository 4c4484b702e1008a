// dtype.hpp — the storage dtypes of the file format and their conversions to
// and from float32. Tensors are always float32 in memory (for now); a file may
// store them narrower.
//
// Error bounds (tested in tests/test_dtype.cpp), for finite x in range:
//   f16  : round-to-nearest-even, |x - x'| <= 2^-11 |x| for normal values
//          (|x| >= 2^-14), <= 2^-25 absolute below; |x| > 65504 becomes ±inf.
//   bf16 : round-to-nearest-even, |x - x'| <= 2^-8 |x| for normal values.
//   int8 : symmetric per row, scale = max|row| / 127, q = round(x / scale) in
//          [-127, 127]; |x - x'| <= scale / 2 = max|row| / 254.
// NaN stays NaN in f16/bf16; int8 cannot hold NaN or inf (the writer refuses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace modelkeep {

/// On-disk codes (format.hpp §5). Never renumber.
enum class DType : std::uint8_t { f32 = 1, f16 = 2, bf16 = 3, int8 = 4 };

const char* dtype_name(DType dtype);
/// "f32" | "f16" | "bf16" | "int8" → dtype; false for anything else.
bool parse_dtype(const std::string& name, DType& out);
/// Known code?
bool dtype_known(std::uint8_t code);

std::uint16_t f32_to_f16(float x);
float f16_to_f32(std::uint16_t h);
std::uint16_t f32_to_bf16(float x);
float bf16_to_f32(std::uint16_t h);

/// Bytes a tensor of numel elements takes in `dtype`, split into `rows` rows
/// (int8 prepends one float32 scale per row). No overflow: numel is capped.
std::uint64_t stored_bytes(DType dtype, std::uint64_t numel, std::uint64_t rows);

/// Quantise `rows` rows of `cols` floats: writes rows float32 scales then
/// rows*cols int8 values into out (stored_bytes long). False if any value is
/// NaN or infinite (int8 cannot represent it).
bool quantize_int8(const float* x, std::uint64_t rows, std::uint64_t cols, std::uint8_t* out);

}  // namespace modelkeep
