// dtype.hpp — the storage dtypes of the file format and their conversions to
// and from float32. Tensors are float32 in memory, except Linear weights a
// model holds compact (compact.hpp, in these same encodings); a file may store
// any tensor of rank ≥ 2 narrower.
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
#include <cstring>
#include <string>

namespace modelkeep {

/// On-disk codes (format.hpp §5). Never renumber.
enum class DType : std::uint8_t { f32 = 1, f16 = 2, bf16 = 3, int8 = 4 };

const char* dtype_name(DType dtype);
/// "f32" | "f16" | "bf16" | "int8" → dtype; false for anything else.
bool parse_dtype(const std::string& name, DType& out);
/// Known code?
bool dtype_known(std::uint8_t code);

// Conversions, inline: the reader and writer call them once per element.
namespace detail {
inline std::uint32_t bits_of(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}

inline float float_of(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}
}  // namespace detail

inline std::uint16_t f32_to_f16(float x) {
    const std::uint32_t u = detail::bits_of(x);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t abs = u & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u)  // inf or NaN (keep NaN quiet and non-zero)
        return std::uint16_t(sign | 0x7C00u | (abs > 0x7F800000u ? 0x0200u | ((abs >> 13) & 0x3FFu) : 0));
    if (abs >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);  // rounds past 65504 → inf
    if (abs < 0x38800000u) {                                       // f16 subnormal or zero
        if (abs < 0x33000000u) return std::uint16_t(sign);         // below half the smallest subnormal
        const std::uint32_t exp = abs >> 23;
        const std::uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
        const std::uint32_t shift = 126 - exp;  // 14 + (113 - exp) - 1 ... maps to 2^-24 units
        std::uint32_t h = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1);
        const std::uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) ++h;
        return std::uint16_t(sign | h);
    }
    // normal: rebias exponent 127 → 15, round mantissa 23 → 10 bits to nearest even
    std::uint32_t h = ((abs - 0x38000000u) >> 13);
    const std::uint32_t rem = abs & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
    return std::uint16_t(sign | h);
}

inline float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    const std::uint32_t mant = h & 0x3FFu;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24
        const float v = float(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return detail::float_of(sign | 0x7F800000u | (mant << 13));
    return detail::float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

inline std::uint16_t f32_to_bf16(float x) {
    const std::uint32_t u = detail::bits_of(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((u >> 16) | 0x40u);  // quiet NaN
    const std::uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
    return std::uint16_t((u + rounding) >> 16);
}

inline float bf16_to_f32(std::uint16_t h) { return detail::float_of(std::uint32_t(h) << 16); }

/// Bytes a tensor of numel elements takes in `dtype`, split into `rows` rows
/// (int8 prepends one float32 scale per row). No overflow: numel is capped.
std::uint64_t stored_bytes(DType dtype, std::uint64_t numel, std::uint64_t rows);

/// One int8 row's scale, max|x| / 127. False if a value is NaN or infinite.
bool int8_scale(const float* row, std::uint64_t cols, float& scale);
/// n values of one row (or part of it) → int8 with that row's scale.
void quantize_int8_values(const float* x, std::uint64_t n, float scale, std::uint8_t* out);

/// Quantise `rows` rows of `cols` floats: writes rows float32 scales then
/// rows*cols int8 values into out (stored_bytes long). False if any value is
/// NaN or infinite (int8 cannot represent it).
bool quantize_int8(const float* x, std::uint64_t rows, std::uint64_t cols, std::uint8_t* out);

}  // namespace modelkeep
