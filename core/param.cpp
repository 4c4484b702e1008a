#include "param.hpp"

namespace modelkeep {

Shape Param::shape() const { return is_compact() ? Shape{compact_.rows, compact_.cols} : shape_of(values_); }

std::uint64_t Param::bytes() const { return compact_.bytes() + std::uint64_t(values_.size()) * 4; }

const Tensor& Param::f32(Tensor& scratch) const {
    if (!is_compact()) return values_;
    scratch = expand_weight(compact_);
    return scratch;
}

void Param::assign(Tensor values) {
    const DType dtype = compact_.dtype;
    compact_ = CompactWeight{};
    values_ = std::move(values);
    if (dtype != DType::f32) (void)set_dtype(dtype);
}

bool Param::set_dtype(DType dtype) {
    if (dtype == compact_.dtype) return true;
    if (dtype == DType::f32) {
        values_ = expand_weight(compact_);
        compact_ = CompactWeight{};
        return true;
    }
    Tensor scratch;
    CompactWeight c;
    if (!compact_weight(f32(scratch), dtype, c)) return false;
    compact_ = std::move(c);
    values_ = Tensor(Shape{0});
    return true;
}

std::uint64_t Param::set_dtype_bytes(DType dtype) const {
    if (dtype == compact_.dtype) return 0;
    const Shape s = shape();
    if (s.size() != 2) return 0;  // never compact: nothing is built
    const std::uint64_t expanded = is_compact() ? std::uint64_t(s[0]) * s[1] * 4 : 0;
    constexpr std::uint64_t shapes = 64;  // the shape vectors of the tensors made on the way
    if (dtype == DType::f32) return expanded + shapes;
    return expanded + compact_peak_bytes(dtype, s[0], s[1]) + shapes;
}

}  // namespace modelkeep
