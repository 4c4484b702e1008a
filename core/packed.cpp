#include "packed.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace modelkeep {

namespace {

// Each block copied out, then written back permuted: only one block is ever
// held twice.
template <bool Pack>
void permute(float* w, std::size_t rows, std::size_t cols) {
    if (rows == 0 || cols == 0) return;
    std::vector<float> block(std::min(rows, panel_rows) * cols);
    for (std::size_t r0 = 0; r0 < rows; r0 += panel_rows) {
        const std::size_t nr = std::min(panel_rows, rows - r0);
        float* b = w + r0 * cols;
        std::memcpy(block.data(), b, nr * cols * sizeof(float));
        for (std::size_t j = 0; j < nr; ++j)
            for (std::size_t k = 0; k < cols; ++k)
                if (Pack)
                    b[k * nr + j] = block[j * cols + k];
                else
                    b[j * cols + k] = block[k * nr + j];
    }
}

}  // namespace

void pack_weight(float* w, std::size_t rows, std::size_t cols) { permute<true>(w, rows, cols); }

void unpack_weight(float* w, std::size_t rows, std::size_t cols) { permute<false>(w, rows, cols); }

void unpack_weight_rows(const float* packed, std::size_t rows, std::size_t cols, std::size_t r0, std::size_t r1,
                        float* out) {
    for (std::size_t r = r0; r < r1; ++r) {
        const std::size_t b = r / panel_rows * panel_rows, nr = std::min(panel_rows, rows - b), j = r - b;
        const float* p = packed + b * cols + j;
        float* o = out + (r - r0) * cols;
        for (std::size_t k = 0; k < cols; ++k) o[k] = p[k * nr];
    }
}

void unpack_weight_range(const float* packed, std::size_t rows, std::size_t cols, std::size_t first, std::size_t n,
                         float* out) {
    for (std::size_t i = first, end = first + n; i < end;) {
        const std::size_t r = i / cols, k0 = i % cols, k1 = std::min(cols, k0 + (end - i));
        const std::size_t b = r / panel_rows * panel_rows, nr = std::min(panel_rows, rows - b);
        const float* p = packed + b * cols + (r - b);
        for (std::size_t k = k0; k < k1; ++k) *out++ = p[k * nr];
        i += k1 - k0;
    }
}

std::uint64_t pack_scratch_bytes(std::size_t rows, std::size_t cols) {
    return std::uint64_t(std::min(rows, panel_rows)) * cols * sizeof(float);
}

}  // namespace modelkeep
