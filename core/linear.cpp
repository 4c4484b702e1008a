#include "linear.hpp"

#include "gemm.hpp"

namespace modelkeep {

namespace {

// Checks x (*, in) and bias (out,) against a weight (out, in) and sizes y (*, out).
Status prepare(const Tensor& x, const Shape& weight, const Tensor* bias, Tensor& y, std::size_t& rows) {
    if (weight.size() != 2)
        return error(Code::shape_mismatch, "linear weight must be 2-D, got " + shape_to_string(weight));
    const std::size_t out = weight[0], in = weight[1];
    if (bias && (bias->dimension() != 1 || bias->shape()[0] != out))
        return error(Code::shape_mismatch, "linear bias is " + shape_to_string(shape_of(*bias)) +
                                               " but weight is " + shape_to_string(weight));
    if (x.dimension() < 1 || x.shape()[x.dimension() - 1] != in)
        return error(Code::shape_mismatch, "linear expects input (*, " + std::to_string(in) +
                                               "), got " + shape_to_string(shape_of(x)));
    Shape out_shape = shape_of(x);
    out_shape.back() = out;
    rows = in == 0 ? 0 : x.size() / in;
    y = Tensor(out_shape);
    return Status::success();
}

}  // namespace

Status linear_forward(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y) {
    std::size_t rows = 0;
    MK_TRY(prepare(x, shape_of(weight), bias, y, rows));
    matmul_nt(x.data(), weight.data(), bias ? bias->data() : nullptr, y.data(), rows, weight.shape()[0],
              weight.shape()[1]);
    return Status::success();
}

Status linear_forward(const Tensor& x, const CompactWeight& weight, const Tensor* bias, Tensor& y) {
    std::size_t rows = 0;
    MK_TRY(prepare(x, Shape{weight.rows, weight.cols}, bias, y, rows));
    matmul_nt_compact(x.data(), weight, bias ? bias->data() : nullptr, y.data(), rows);
    return Status::success();
}

}  // namespace modelkeep
