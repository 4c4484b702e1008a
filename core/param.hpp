// param.hpp — one of a layer's tensors as it is held in memory: float32
// values, or (a Linear weight only) float32 pre-packed for the kernels
// (packed.hpp) or a compact form that the kernels read as it is (compact.hpp). Whoever needs float32 whatever the form
// asks f32(scratch); nothing else needs to know how a weight is held.
#pragma once

#include <cstdint>

#include "compact.hpp"
#include "dtype.hpp"
#include "tensor.hpp"

namespace modelkeep {

class Param {
public:
    Param() = default;
    explicit Param(Tensor values) : values_(std::move(values)) {}
    explicit Param(CompactWeight compact) : compact_(std::move(compact)) {}

    bool is_compact() const { return compact_.active(); }
    /// Float32 values held in the kernels' packed layout (packed.hpp).
    bool is_packed() const { return packed_; }
    /// f32, or the compact form's dtype.
    DType dtype() const { return compact_.dtype; }
    Shape shape() const;
    /// Bytes held in memory.
    std::uint64_t bytes() const;

    /// The float32 values, shaped (out, in) but in the packed layout when
    /// is_packed(). Only for a Param that is not compact.
    const Tensor& values() const { return values_; }
    Tensor& values() { return values_; }

    /// A float32 (out, in) weight held in the packed layout from now on,
    /// through assign and set_dtype too (a Linear weight; a tensor of rank
    /// other than 2 and a compact one are left as they are).
    void pack();
    /// The compact form. Only for a compact Param.
    const CompactWeight& compact() const { return compact_; }

    /// Float32 (out, in) rows whatever the form: values(), or the packed or
    /// compact form expanded into `scratch` (which the result then refers to).
    const Tensor& f32(Tensor& scratch) const;

    /// New float32 values, held in the current dtype again when they can be
    /// (compact.hpp), else float32.
    void assign(Tensor values);
    /// Holds the values in `dtype` (f32 expands a compact form back). False,
    /// unchanged, when they cannot be held so (compact.hpp: NaN, inf, beyond
    /// f16's range; a tensor of rank other than 2 is never compact).
    bool set_dtype(DType dtype);
    /// Bytes set_dtype(dtype) holds at its peak beyond what this Param holds now
    /// (the new form beside the old), for a caller that reserves memory first.
    std::uint64_t set_dtype_bytes(DType dtype) const;

private:
    Tensor values_;          // empty when compact
    CompactWeight compact_;  // dtype f32 (inactive) when the values are float32
    bool packed_ = false;    // values_ in the packed layout; kept through assign and set_dtype(f32)
    bool pack_f32_ = false;  // a Linear weight: pack() was called, float32 values are held packed
};

}  // namespace modelkeep
