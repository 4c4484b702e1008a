// zip.hpp — the zip archives torch.save writes (and tools that re-zip them).
//
// Reading: the end-of-central-directory record (and the ZIP64 locator and
// record, which torch always writes) → the central directory (the only place
// with real sizes: torch's local headers carry zero sizes and a data
// descriptor) → each entry's local header, for the data offset. Entries are
// stored (method 0) or deflated (method 8, inflate.hpp). Every offset and size
// is bounds-checked against the archive before use; nothing is recovered from
// a damaged archive (no central directory → corrupt_zip).
//
// Writing: stored entries with real sizes and CRC-32s in the local headers,
// each entry's data aligned to 64 bytes with torch's "FB" padding extra field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "status.hpp"

namespace modelkeep {

constexpr std::size_t max_zip_entries = 1u << 20;

struct ZipEntry {
    std::string name;              // as stored ("archive/data/0")
    std::uint16_t method = 0;      // 0 stored, 8 deflate
    std::uint32_t crc32 = 0;       // from the central directory
    std::uint64_t data_offset = 0; // first byte of the (compressed) data in the archive
    std::uint64_t compressed_size = 0;
    std::uint64_t size = 0;        // uncompressed
};

/// Lists an archive: EOCD (+ ZIP64), central directory, local headers.
/// corrupt_zip for any inconsistency (offsets or sizes past the end, entries
/// overlapping the directory, a local header whose name differs from the
/// central one, duplicate names, more than max_zip_entries, ...);
/// unsupported_compression for a method other than 0 and 8, or encryption.
Status zip_list(const std::uint8_t* data, std::size_t size, std::vector<ZipEntry>& entries);

/// An entry's uncompressed bytes. Stored entries are copied, deflated ones
/// inflated; the result must be exactly entry.size bytes and match the CRC-32
/// (checksum_mismatch; a CRC of 0 means "not computed" and is not checked).
Status zip_read(const std::uint8_t* data, std::size_t size, const ZipEntry& entry,
                std::vector<std::uint8_t>& out);

/// For a stored entry, a pointer into the archive instead of a copy (nullptr
/// for deflated entries). The CRC is checked either way when check_crc is true.
Status zip_view(const std::uint8_t* data, std::size_t size, const ZipEntry& entry, bool check_crc,
                const std::uint8_t*& view);

struct ZipRecord {
    std::string name;
    const std::uint8_t* data = nullptr;
    std::size_t size = 0;
};

/// A stored archive of `records`, in order, each one's data 64-byte aligned
/// ("FB" extra field of 'Z' bytes, as torch writes), real sizes and CRC-32s in
/// the local and central headers, ZIP64 records when an offset or size needs them.
void zip_write(const std::vector<ZipRecord>& records, std::vector<std::uint8_t>& out);

}  // namespace modelkeep
