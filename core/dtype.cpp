#include "dtype.hpp"

#include <cmath>
#include <cstring>

namespace modelkeep {

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "f32";
        case DType::f16: return "f16";
        case DType::bf16: return "bf16";
        case DType::int8: return "int8";
    }
    return "unknown";
}

bool parse_dtype(const std::string& name, DType& out) {
    if (name == "f32") out = DType::f32;
    else if (name == "f16") out = DType::f16;
    else if (name == "bf16") out = DType::bf16;
    else if (name == "int8") out = DType::int8;
    else return false;
    return true;
}

bool dtype_known(std::uint8_t code) { return code >= 1 && code <= 4; }

static std::uint32_t bits_of(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}

static float float_of(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

std::uint16_t f32_to_f16(float x) {
    const std::uint32_t u = bits_of(x);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t abs = u & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u)  // inf or NaN (keep NaN quiet and non-zero)
        return std::uint16_t(sign | 0x7C00u | (abs > 0x7F800000u ? 0x0200u | ((abs >> 13) & 0x3FFu) : 0));
    if (abs >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);  // rounds past 65504 → inf
    if (abs < 0x38800000u) {                                       // f16 subnormal or zero
        if (abs < 0x33000000u) return std::uint16_t(sign);          // below half the smallest subnormal
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

float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    const std::uint32_t mant = h & 0x3FFu;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24
        const float v = float(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return float_of(sign | 0x7F800000u | (mant << 13));
    return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

std::uint16_t f32_to_bf16(float x) {
    const std::uint32_t u = bits_of(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((u >> 16) | 0x40u);  // quiet NaN
    const std::uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
    return std::uint16_t((u + rounding) >> 16);
}

float bf16_to_f32(std::uint16_t h) { return float_of(std::uint32_t(h) << 16); }

std::uint64_t stored_bytes(DType dtype, std::uint64_t numel, std::uint64_t rows) {
    switch (dtype) {
        case DType::f32: return numel * 4;
        case DType::f16:
        case DType::bf16: return numel * 2;
        case DType::int8: return rows * 4 + numel;
    }
    return 0;
}

bool quantize_int8(const float* x, std::uint64_t rows, std::uint64_t cols, std::uint8_t* out) {
    std::uint8_t* q = out + rows * 4;
    for (std::uint64_t r = 0; r < rows; ++r) {
        const float* row = x + r * cols;
        float amax = 0.0f;
        for (std::uint64_t c = 0; c < cols; ++c) {
            if (!std::isfinite(row[c])) return false;
            amax = std::fmax(amax, std::fabs(row[c]));
        }
        const float scale = amax / 127.0f;
        std::memcpy(out + r * 4, &scale, 4);  // little-endian hosts only (checked in format)
        for (std::uint64_t c = 0; c < cols; ++c) {
            long v = scale > 0.0f ? std::lround(row[c] / scale) : 0;
            if (v > 127) v = 127;
            if (v < -127) v = -127;
            q[r * cols + c] = std::uint8_t(std::int8_t(v));
        }
    }
    return true;
}

}  // namespace modelkeep
