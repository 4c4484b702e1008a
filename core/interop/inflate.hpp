// inflate.hpp — a raw DEFLATE (RFC 1951) decoder for zip entries that another
// tool re-compressed. Bounded: the caller says how many bytes the entry holds,
// and anything that would write past them, read past the input, or end early
// is an error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>

#include "status.hpp"

namespace modelkeep {

/// Decodes the raw deflate stream `in` into exactly `out_size` bytes at `out`.
/// corrupt_zip when the stream is malformed (bad block type, bad Huffman code
/// lengths, distance before the start of the output, stored-block length
/// check failing), ends before its final block, or decodes to more or fewer
/// than out_size bytes.
Status inflate_raw(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out, std::size_t out_size);

/// The memory inflate_raw allocates (its decoding tables), whatever the input.
std::uint64_t inflate_work_bytes();

}  // namespace modelkeep
