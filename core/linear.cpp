#include "linear.hpp"

#include "gemm.hpp"

namespace modelkeep {

namespace {

// Checks x (*, in) and bias (out,) against a weight (out, in) and sizes y (*, out)
// (shapes held inline and y resized in place: nothing allocated once y fits).
Status prepare(const Tensor& x, std::size_t out, std::size_t in, const Tensor* bias, Tensor& y, std::size_t& rows) {
    if (bias && (bias->dimension() != 1 || bias->shape()[0] != out))
        return error(Code::shape_mismatch, "linear bias is " + shape_to_string(shape_of(*bias)) + " but weight is " +
                                               shape_to_string(Shape{out, in}));
    if (x.dimension() < 1 || x.shape()[x.dimension() - 1] != in)
        return error(Code::shape_mismatch,
                     "linear expects input (*, " + std::to_string(in) + "), got " + shape_to_string(shape_of(x)));
    Tensor::shape_type out_shape = x.shape();
    out_shape.back() = out;
    rows = in == 0 ? 0 : x.size() / in;
    y.resize(out_shape);
    return Status::success();
}

}  // namespace

Status linear_forward_packed(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y, Activation act) {
    if (weight.dimension() != 2)
        return error(Code::shape_mismatch, "linear weight must be 2-D, got " + shape_to_string(shape_of(weight)));
    const std::size_t out = weight.shape()[0], in = weight.shape()[1];
    std::size_t rows = 0;
    MK_TRY(prepare(x, out, in, bias, y, rows));
    matmul_nt_packed(x.data(), weight.data(), bias ? bias->data() : nullptr, y.data(), rows, out, in, act);
    return Status::success();
}

Status linear_forward(const Tensor& x, const CompactWeight& weight, const Tensor* bias, Tensor& y, Activation act) {
    std::size_t rows = 0;
    MK_TRY(prepare(x, weight.rows, weight.cols, bias, y, rows));
    matmul_nt_compact(x.data(), weight, bias ? bias->data() : nullptr, y.data(), rows, act);
    return Status::success();
}

}  // namespace modelkeep
