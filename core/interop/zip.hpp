// zip.hpp — the zip archives torch.save writes (and tools that re-zip them).
//
// Reading: the end-of-central-directory record (and the ZIP64 locator and
// record, which torch always writes) → the central directory (the only place
// with real sizes: torch's local headers carry zero sizes and a data
// descriptor) → each entry's local header, for the data offset. Entries are
// stored (method 0) or deflated (method 8, inflate.hpp). Every offset and size
// is bounds-checked against the archive before use; nothing is recovered from
// a damaged archive (no central directory → corrupt_zip). The archive is a
// ByteSource (source.hpp): listing reads only its directory structures, and
// an entry's bytes are read when asked for, so an archive held outside wasm
// memory is never copied in whole.
//
// Writing: stored entries with real sizes and CRC-32s in the local headers,
// each entry's data aligned to 64 bytes with torch's "FB" padding extra field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "source.hpp"
#include "status.hpp"

namespace modelkeep {

constexpr std::size_t max_zip_entries = 1u << 20;

struct ZipEntry {
    std::string name;               // as stored ("archive/data/0")
    std::uint16_t method = 0;       // 0 stored, 8 deflate
    std::uint32_t crc32 = 0;        // from the central directory
    std::uint64_t data_offset = 0;  // first byte of the (compressed) data in the archive
    std::uint64_t compressed_size = 0;
    std::uint64_t size = 0;  // uncompressed
};

/// Lists an archive: EOCD (+ ZIP64), central directory, local headers.
/// corrupt_zip for any inconsistency (offsets or sizes past the end, entries
/// overlapping the directory, a local header whose name differs from the
/// central one, duplicate names, more than max_zip_entries, ...);
/// unsupported_compression for a method other than 0 and 8, or encryption.
///
/// Reads only the archive's structure, never an entry's data: the end records
/// (from the last kilobyte, or when a long archive comment hides them, from
/// the last 65535 + 22 bytes), the ZIP64 end record, the central directory
/// (one buffer; its size is checked against the archive first) and each
/// local header (30 bytes and its name). A source in memory is not copied at all.
Status zip_list(const ByteSource& source, std::vector<ZipEntry>& entries);
Status zip_list(const std::uint8_t* data, std::size_t size, std::vector<ZipEntry>& entries);

/// An entry's uncompressed bytes. Stored entries are copied, deflated ones
/// inflated; the result must be exactly entry.size bytes and match the CRC-32
/// (checksum_mismatch; a CRC of 0 means "not computed" and is not checked).
/// `out` is empty after any error. Entries need not come from zip_list: the
/// entry is checked against the archive first (corrupt_zip).
Status zip_read(const ByteSource& source, const ZipEntry& entry, std::vector<std::uint8_t>& out);
Status zip_read(const std::uint8_t* data, std::size_t size, const ZipEntry& entry, std::vector<std::uint8_t>& out);

/// A STORED entry's bytes copied straight from the source into `dst`, which
/// must hold entry.size bytes: one copy, no buffer in between. The CRC-32 is
/// checked when check_crc is true and the stored CRC is not 0
/// (checksum_mismatch; `dst` then holds the bytes that did not match).
/// invalid_argument for a deflated entry (read it with zip_read) or a null
/// `dst` for a non-empty entry; the entry is checked against the archive first.
Status zip_read_into(const ByteSource& source, const ZipEntry& entry, std::uint8_t* dst, bool check_crc);

/// For a stored entry of a source in memory (source.data() != nullptr), a
/// pointer into it instead of a copy; its CRC-32 is checked when check_crc is
/// true (and the stored CRC is not 0). Otherwise — a deflated entry, or a
/// source outside memory — `view` is nullptr and nothing is read or checked:
/// read the entry with zip_read (which inflates and checks the CRC) or
/// zip_read_into. The entry is checked against the archive either way.
Status zip_view(const ByteSource& source, const ZipEntry& entry, bool check_crc, const std::uint8_t*& view);
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
