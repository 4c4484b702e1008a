// safetensors.hpp — reading and writing safetensors files:
//
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data]
//   header: {"__metadata__": {"k": "v", ...},
//            "name": {"dtype": "F32", "shape": [5, 3], "data_offsets": [begin, end]}, ...}
//
// The reader enforces the reference implementation's rules: N ≤ 100,000,000
// (header_too_large), 8 + N within the file (truncated), UTF-8 JSON of exactly
// that shape (bad_header_json; leading whitespace accepted), string-only
// __metadata__, unique keys (duplicate_name), known dtypes (unknown_dtype),
// checked shape products (size_overflow), end - begin == numel × itemsize
// (storage_size_mismatch), spans that tile the data from 0 with no overlap and
// no hole (bad_offsets), and nothing after the last span (trailing_bytes) or
// missing before it (truncated). Data may sit at any offset: values are copied
// out byte-wise, never read through a misaligned pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "format.hpp"
#include "model.hpp"
#include "source.hpp"
#include "status.hpp"

namespace modelkeep {

constexpr std::uint64_t max_safetensors_header = 100000000;

struct SafetensorsTensor {
    std::string name;
    std::string dtype;  // as written: "F32", "BF16", "I64", ...
    Shape shape;
    std::uint64_t begin = 0, end = 0;  // relative to the data start
};

struct SafetensorsInfo {
    Metadata metadata;                       // __metadata__, in file order
    std::vector<SafetensorsTensor> tensors;  // in header order
    std::uint64_t data_start = 0;            // 8 + N
};

/// Validates the whole layout (every rule above) without converting values
/// (from a source: reads the 8-byte length and the header only).
Status read_safetensors_info(const std::uint8_t* data, std::size_t size, SafetensorsInfo& info);
Status read_safetensors_info(const ByteSource& source, SafetensorsInfo& info);

/// read_safetensors_info, then every tensor converted to float32, in header
/// order. F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL
/// convert (integers as float() rounds them);
/// other valid dtypes (F8_*, F6_*, F4, C64) give unsupported_tensor.
Status read_safetensors(const std::uint8_t* data, std::size_t size, StateDict& tensors, Metadata* metadata = nullptr);
/// The same from a source, tensor by tensor: F32 data goes straight into its
/// tensor; other dtypes through a buffer of one tensor's bytes.
Status read_safetensors(const ByteSource& source, StateDict& tensors, Metadata* metadata = nullptr);
/// The values of a file whose layout read_safetensors_info(source, info) validated.
Status read_safetensors(const ByteSource& source, const SafetensorsInfo& info, StateDict& tensors);

/// Writes `tensors` like the reference writer: compact JSON, __metadata__
/// first (omitted when empty), header padded with spaces to a multiple of 8,
/// tensors ordered by descending dtype alignment then name, back to back.
/// Tensors of rank ≥ 2 are stored in `dtype` (f32, f16 or bf16; int8 has no
/// safetensors form → invalid_argument); rank-0/1 tensors stay F32, except
/// "num_batches_tracked" buffers, written as I64 as torch holds them.
Status write_safetensors(const StateDict& tensors, const Metadata& metadata, DType dtype,
                         std::vector<std::uint8_t>& out);

}  // namespace modelkeep
