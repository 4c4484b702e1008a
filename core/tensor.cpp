#include "tensor.hpp"

#include <algorithm>

namespace modelkeep {

Status checked_numel(const Shape& shape, std::uint64_t& numel, const std::string& what) {
    if (shape.size() > max_rank)
        return error(Code::limit_exceeded, what + " has rank " + std::to_string(shape.size()) + ", over the cap of " +
                                               std::to_string(max_rank));
    std::uint64_t n = 1;
    for (std::size_t d : shape) {
        if (!checked_mul(n, d, n) || n > max_tensor_elements)
            return error(Code::size_overflow, what + " shape " + shape_to_string(shape) + " has more than " +
                                                  std::to_string(max_tensor_elements) + " elements");
    }
    numel = n;
    return Status::success();
}

std::string shape_to_string(const Shape& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

Shape shape_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

Tensor zeros(const Shape& shape) {
    Tensor t(shape);
    std::fill(t.begin(), t.end(), 0.0f);
    return t;
}

Tensor from_data(const Shape& shape, const float* data) {
    Tensor t(shape);
    std::copy(data, data + t.size(), t.data());
    return t;
}

}  // namespace modelkeep
