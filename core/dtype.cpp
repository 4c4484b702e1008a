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
    if (name == "f32")
        out = DType::f32;
    else if (name == "f16")
        out = DType::f16;
    else if (name == "bf16")
        out = DType::bf16;
    else if (name == "int8")
        out = DType::int8;
    else
        return false;
    return true;
}

bool dtype_known(std::uint8_t code) { return code >= 1 && code <= 4; }

std::uint64_t stored_bytes(DType dtype, std::uint64_t numel, std::uint64_t rows) {
    switch (dtype) {
        case DType::f32: return numel * 4;
        case DType::f16:
        case DType::bf16: return numel * 2;
        case DType::int8: return rows * 4 + numel;
    }
    return 0;
}

bool int8_scale(const float* row, std::uint64_t cols, float& scale) {
    float amax = 0.0f;
    for (std::uint64_t c = 0; c < cols; ++c) {
        if (!std::isfinite(row[c])) return false;
        amax = std::fmax(amax, std::fabs(row[c]));
    }
    scale = amax / 127.0f;
    return true;
}

void quantize_int8_values(const float* x, std::uint64_t n, float scale, std::uint8_t* out) {
    for (std::uint64_t i = 0; i < n; ++i) {
        long v = scale > 0.0f ? std::lround(x[i] / scale) : 0;
        if (v > 127) v = 127;
        if (v < -127) v = -127;
        out[i] = std::uint8_t(std::int8_t(v));
    }
}

bool quantize_int8(const float* x, std::uint64_t rows, std::uint64_t cols, std::uint8_t* out) {
    std::uint8_t* q = out + rows * 4;
    for (std::uint64_t r = 0; r < rows; ++r) {
        float scale;
        if (!int8_scale(x + r * cols, cols, scale)) return false;
        std::memcpy(out + r * 4, &scale, 4);  // little-endian hosts only (checked in format)
        quantize_int8_values(x + r * cols, cols, scale, q + r * cols);
    }
    return true;
}

}  // namespace modelkeep
