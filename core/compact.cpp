#include "compact.hpp"

#include <cmath>
#include <cstring>

namespace modelkeep {

namespace {

// f16 values the kernels decode: everything but inf and NaN (exponent 31).
bool f16_decodable(std::uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

bool f16_subnormal(std::uint16_t h) { return (h & 0x7C00u) == 0 && (h & 0x3FFu) != 0; }

// Moves the f16 subnormals of c.half into the side table (compact.hpp).
void split_subnormals(CompactWeight& c) {
    std::size_t count = 0;
    for (std::uint16_t h : c.half) count += f16_subnormal(h);
    // Beyond one in 16 (trained weights have far fewer), the side table would
    // cost more than the speed is worth: they stay in `half` (the kernels
    // decode them exactly, only slower), and a weight never takes more than
    // 2.4 bytes per value.
    if (!count || count > c.half.size() / 16) return;
    c.sub_start.assign(c.rows + 1, 0);
    c.sub_col.reserve(count);
    c.sub_half.reserve(count);
    for (std::size_t r = 0; r < c.rows; ++r) {
        for (std::size_t k = 0; k < c.cols; ++k) {
            std::uint16_t& h = c.half[r * c.cols + k];
            if (!f16_subnormal(h)) continue;
            c.sub_col.push_back(std::uint32_t(k));
            c.sub_half.push_back(h);
            h &= 0x8000u;  // ±0
        }
        c.sub_start[r + 1] = std::uint32_t(c.sub_col.size());
    }
}

}  // namespace

bool compact_weight(const Tensor& w, DType dtype, CompactWeight& out) {
    if (w.dimension() != 2 || dtype == DType::f32) return false;
    CompactWeight c;
    c.dtype = dtype;
    c.rows = w.shape()[0];
    c.cols = w.shape()[1];
    const std::size_t n = c.rows * c.cols;
    const float* x = w.data();
    switch (dtype) {
        case DType::f16:
            c.half.resize(n);
            for (std::size_t i = 0; i < n; ++i)
                if (!f16_decodable(c.half[i] = f32_to_f16(x[i]))) return false;
            split_subnormals(c);
            break;
        case DType::bf16:
            c.half.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                if (!std::isfinite(x[i])) return false;
                c.half[i] = f32_to_bf16(x[i]);
            }
            break;
        case DType::int8: {
            // The file writer's quantiser, into the file layout, then split.
            std::vector<std::uint8_t> stored(std::size_t(stored_bytes(dtype, n, c.rows)));
            if (!quantize_int8(x, c.rows, c.cols, stored.data())) return false;
            return compact_from_stored(dtype, c.rows, c.cols, stored.data(), out);
        }
        case DType::f32: return false;
    }
    out = std::move(c);
    return true;
}

bool finish_compact(CompactWeight& w) {
    if (w.dtype == DType::int8) {
        for (float s : w.scale)
            if (!(s >= 0.0f) || !std::isfinite(s)) return false;
    } else if (w.dtype == DType::f16) {
        for (std::uint16_t h : w.half)
            if (!f16_decodable(h)) return false;
        split_subnormals(w);
    }
    return w.dtype != DType::f32;
}

bool compact_from_stored(DType dtype, std::size_t rows, std::size_t cols, const std::uint8_t* stored,
                         CompactWeight& out) {
    if (dtype == DType::f32) return false;
    CompactWeight c;
    c.dtype = dtype;
    c.rows = rows;
    c.cols = cols;
    const std::size_t n = rows * cols;
    if (dtype == DType::int8) {
        c.scale.resize(rows);
        std::memcpy(c.scale.data(), stored, rows * 4);  // little-endian hosts only (checked in format)
        c.q.resize(n);
        std::memcpy(c.q.data(), stored + rows * 4, n);
    } else {
        c.half.resize(n);
        std::memcpy(c.half.data(), stored, n * 2);
    }
    if (!finish_compact(c)) return false;
    out = std::move(c);
    return true;
}

void compact_to_stored(const CompactWeight& w, std::uint8_t* out) {
    if (w.dtype == DType::int8) {
        std::memcpy(out, w.scale.data(), w.rows * 4);
        std::memcpy(out + w.rows * 4, w.q.data(), w.q.size());
    } else {
        compact_rows_to_stored(w, 0, w.rows, out);
    }
}

void compact_rows_to_stored(const CompactWeight& w, std::size_t r0, std::size_t r1, std::uint8_t* out) {
    std::memcpy(out, w.half.data() + r0 * w.cols, (r1 - r0) * w.cols * 2);
    for (std::size_t r = r0; r < r1 && r + 1 < w.sub_start.size(); ++r)
        for (std::uint32_t i = w.sub_start[r]; i < w.sub_start[r + 1]; ++i)
            std::memcpy(out + 2 * ((r - r0) * w.cols + w.sub_col[i]), &w.sub_half[i], 2);
}

std::uint64_t compact_bytes_bound(DType dtype, std::size_t rows, std::size_t cols) {
    const std::uint64_t n = std::uint64_t(rows) * cols;
    switch (dtype) {
        case DType::f32: return 0;
        case DType::bf16: return n * 2;
        // The halves, and the subnormal side table at its largest (split_subnormals:
        // at most n / 16 entries of a 4-byte column and a 2-byte half, and rows + 1 starts).
        case DType::f16: return n * 2 + n / 16 * 6 + (std::uint64_t(rows) + 1) * 4;
        case DType::int8: return n + std::uint64_t(rows) * 4;
    }
    return 0;
}

std::uint64_t compact_peak_bytes(DType dtype, std::size_t rows, std::size_t cols) {
    // int8: the file layout (scales + q) quantised first, then copied into the compact form.
    return compact_bytes_bound(dtype, rows, cols) * (dtype == DType::int8 ? 2 : 1);
}

Tensor expand_weight(const CompactWeight& w) {
    Tensor t(Shape{w.rows, w.cols});
    float* dst = t.data();
    const std::size_t n = w.rows * w.cols;
    switch (w.dtype) {
        case DType::f16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(w.half[i]);
            for (std::size_t r = 0; r + 1 < w.sub_start.size(); ++r)
                for (std::uint32_t i = w.sub_start[r]; i < w.sub_start[r + 1]; ++i)
                    dst[r * w.cols + w.sub_col[i]] = f16_to_f32(w.sub_half[i]);
            break;
        case DType::bf16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(w.half[i]);
            break;
        case DType::int8:
            for (std::size_t r = 0; r < w.rows; ++r)
                for (std::size_t c = 0; c < w.cols; ++c) dst[r * w.cols + c] = float(w.q[r * w.cols + c]) * w.scale[r];
            break;
        case DType::f32: break;
    }
    return t;
}

}  // namespace modelkeep
