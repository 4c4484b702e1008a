#include "param.hpp"

#include "packed.hpp"

namespace modelkeep {

Shape Param::shape() const { return is_compact() ? Shape{compact_.rows, compact_.cols} : shape_of(values_); }

std::uint64_t Param::bytes() const { return compact_.bytes() + std::uint64_t(values_.size()) * 4; }

void Param::pack() {
    pack_f32_ = true;
    if (packed_ || is_compact() || values_.dimension() != 2) return;
    pack_weight(values_.data(), values_.shape()[0], values_.shape()[1]);
    packed_ = true;
}

const Tensor& Param::f32(Tensor& scratch) const {
    if (packed_) {
        const std::size_t rows = values_.shape()[0], cols = values_.shape()[1];
        if (scratch.size() != rows * cols) scratch = Tensor(Shape{0});  // the old freed before the new is made
        scratch.resize({rows, cols});
        unpack_weight_rows(values_.data(), rows, cols, 0, rows, scratch.data());
        return scratch;
    }
    if (!is_compact()) return values_;
    scratch = expand_weight(compact_);
    return scratch;
}

void Param::assign(Tensor values) {
    const DType dtype = compact_.dtype;
    compact_ = CompactWeight{};
    values_ = std::move(values);
    packed_ = false;
    if (dtype != DType::f32) (void)set_dtype(dtype);
    if (!is_compact() && pack_f32_) pack();
}

bool Param::set_dtype(DType dtype) {
    if (dtype == compact_.dtype) return true;
    if (dtype == DType::f32) {
        values_ = expand_weight(compact_);
        compact_ = CompactWeight{};
        if (pack_f32_) pack();
        return true;
    }
    Tensor scratch;
    CompactWeight c;
    if (!compact_weight(f32(scratch), dtype, c)) return false;
    compact_ = std::move(c);
    values_ = Tensor(Shape{0});
    packed_ = false;
    return true;
}

std::uint64_t Param::set_dtype_bytes(DType dtype) const {
    if (dtype == compact_.dtype) return 0;
    const Shape s = shape();
    if (s.size() != 2) return 0;  // never compact: nothing is built
    // The float32 rows made on the way: the compact form expanded, or the packed values unpacked.
    const std::uint64_t expanded = is_compact() || packed_ ? std::uint64_t(s[0]) * s[1] * 4 : 0;
    constexpr std::uint64_t shapes = 64;  // the shape vectors of the tensors made on the way
    if (dtype == DType::f32) return expanded + (pack_f32_ ? pack_scratch_bytes(s[0], s[1]) : 0) + shapes;
    return expanded + compact_peak_bytes(dtype, s[0], s[1]) + shapes;
}

}  // namespace modelkeep
