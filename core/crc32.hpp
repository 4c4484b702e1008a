// crc32.hpp — CRC-32 (ISO-HDLC: zlib, zip, PNG; polynomial 0xEDB88320
// reflected, init and final xor 0xFFFFFFFF). The same checksum zip archives
// use, so the later torch .pt writer shares it. Slicing-by-8 for speed, with
// the bitwise definition beside it as the reference.
#pragma once

#include <cstddef>
#include <cstdint>

namespace modelkeep {

/// Continue a CRC: crc32_update(crc32_update(0, a), b) == crc32 of a ++ b.
std::uint32_t crc32_update(std::uint32_t crc, const std::uint8_t* data, std::size_t size);

inline std::uint32_t crc32(const std::uint8_t* data, std::size_t size) { return crc32_update(0, data, size); }

/// Bit-at-a-time definition, for tests.
std::uint32_t crc32_reference(const std::uint8_t* data, std::size_t size);

}  // namespace modelkeep
