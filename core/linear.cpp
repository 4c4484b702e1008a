#include "linear.hpp"

#include "gemm.hpp"

namespace modelkeep {

Status linear_forward(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y) {
    if (weight.dimension() != 2)
        return error(Code::shape_mismatch, "linear weight must be 2-D, got " +
                                               shape_to_string(shape_of(weight)));
    const std::size_t out = weight.shape()[0], in = weight.shape()[1];
    if (bias && (bias->dimension() != 1 || bias->shape()[0] != out))
        return error(Code::shape_mismatch, "linear bias is " + shape_to_string(shape_of(*bias)) +
                                               " but weight is " +
                                               shape_to_string(shape_of(weight)));
    if (x.dimension() < 1 || x.shape()[x.dimension() - 1] != in)
        return error(Code::shape_mismatch, "linear expects input (*, " + std::to_string(in) +
                                               "), got " + shape_to_string(shape_of(x)));
    Shape out_shape = shape_of(x);
    out_shape.back() = out;
    const std::size_t rows = in == 0 ? 0 : x.size() / in;
    y = Tensor(out_shape);
    matmul_nt(x.data(), weight.data(), bias ? bias->data() : nullptr, y.data(), rows, out, in);
    return Status::success();
}

}  // namespace modelkeep
