// tensor.hpp — the float32 tensor every layer works on: a row-major
// xt::xarray<float>. Shapes are checked here (with overflow-checked products)
// before anything is handed to xtensor, whose own checks would throw/abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// Built without exceptions, xtensor and xtl report an internal error with
// `std::cerr << msg` and abort (XTENSOR_THROW, XTL_THROW). Naming std::cerr
// links libc++'s iostreams and with them every locale facet (money, time,
// wide-char codecvt...): about a third of the WebAssembly module. The same
// message goes to stderr through stdio instead. The config headers define the
// macros unconditionally, so they are included first and the macros replaced.
#include <cstdio>
#include <cstdlib>
#include <xtensor/xtensor_config.hpp>
#include <xtl/xtl_config.hpp>
#if defined(XTENSOR_DISABLE_EXCEPTIONS) || defined(XTL_NO_EXCEPTIONS)
namespace modelkeep::detail {
[[noreturn]] inline void xtensor_abort(const char* msg) {
    std::fputs(msg, stderr);
    std::fputc('\n', stderr);
    std::abort();
}
[[noreturn]] inline void xtensor_abort(const std::string& msg) { xtensor_abort(msg.c_str()); }
}  // namespace modelkeep::detail
#endif
#if defined(XTENSOR_DISABLE_EXCEPTIONS)
#undef XTENSOR_THROW
#define XTENSOR_THROW(_, msg) \
    { ::modelkeep::detail::xtensor_abort(msg); }
#endif
#if defined(XTL_NO_EXCEPTIONS)
#undef XTL_THROW
#define XTL_THROW(_, msg) \
    { ::modelkeep::detail::xtensor_abort(msg); }
#endif
#include <xtensor/xarray.hpp>

#include "status.hpp"

namespace modelkeep {

using Tensor = xt::xarray<float, xt::layout_type::row_major>;
using Shape = std::vector<std::size_t>;

/// Caps shared by every entry point (files, SPEC strings, JS calls).
constexpr std::size_t max_rank = 8;
constexpr std::uint64_t max_tensor_elements = std::uint64_t(1) << 28;  // 1 GiB of f32

/// a * b, or false when it overflows 64 bits.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    out = a * b;
    return true;
}

/// Product of a shape's dimensions, for a shape already checked (a valid
/// layer's, or one checked_numel accepted); 1 for a scalar.
inline std::uint64_t numel(const Shape& shape) {
    std::uint64_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

/// Product of a shape's dimensions; size_overflow past max_tensor_elements,
/// limit_exceeded past max_rank. `what` names the tensor in the message.
Status checked_numel(const Shape& shape, std::uint64_t& numel, const std::string& what);

/// "(5, 3)"; "()" for a scalar.
std::string shape_to_string(const Shape& shape);

Shape shape_of(const Tensor& t);

/// A zero-filled tensor of `shape`; call only after checked_numel succeeded.
Tensor zeros(const Shape& shape);

/// A tensor of `shape` holding a copy of `data` (numel values).
Tensor from_data(const Shape& shape, const float* data);

}  // namespace modelkeep
