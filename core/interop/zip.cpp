// zip.cpp — reading and writing the zip archives of zip.hpp. Field names and
// offsets follow PKWARE's APPNOTE.TXT (6.3.x), section 4.3 (records) and
// 4.5.3 (the ZIP64 extended information extra field). All integers are
// little-endian. Every offset read from the archive is checked with
// overflow-safe arithmetic (fits()) before anything at it is read: from a
// ByteSource, which copies exactly the ranges asked for (or, in memory, is
// read in place), so a check missed here would be a read out of bounds.
#include "zip.hpp"

#include <cstring>
#include <unordered_set>

#include "crc32.hpp"
#include "inflate.hpp"

namespace modelkeep {

namespace {

// Record signatures (APPNOTE 4.3.7, 4.3.12, 4.3.14, 4.3.15, 4.3.16).
constexpr std::uint32_t sig_local = 0x04034b50;          // "PK\3\4"
constexpr std::uint32_t sig_central = 0x02014b50;        // "PK\1\2"
constexpr std::uint32_t sig_eocd = 0x06054b50;           // "PK\5\6"
constexpr std::uint32_t sig_zip64_eocd = 0x06064b50;     // "PK\6\6"
constexpr std::uint32_t sig_zip64_locator = 0x07064b50;  // "PK\6\7"

// Fixed sizes of those records (without their variable-length tails).
constexpr std::size_t local_size = 30, central_size = 46, eocd_size = 22;
constexpr std::size_t zip64_eocd_size = 56, zip64_locator_size = 20;

constexpr std::uint16_t extra_zip64 = 0x0001;    // APPNOTE 4.5.3
constexpr std::uint16_t extra_padding = 0x4246;  // "FB": torch's alignment padding, 'Z' bytes
constexpr std::uint64_t data_alignment = 64;

constexpr std::uint16_t flag_encrypted = 1u << 0, flag_strong_encryption = 1u << 6, flag_utf8 = 1u << 11;
constexpr std::uint16_t method_stored = 0, method_deflate = 8;

// Deflate cannot expand a byte into more than 1032 bytes: a 258-byte match
// costs at least a 1-bit length code and a 1-bit distance code (RFC 1951).
constexpr std::uint64_t max_deflate_ratio = 1032;

std::uint16_t le16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }
std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
std::uint64_t le64(const std::uint8_t* p) { return std::uint64_t(le32(p)) | std::uint64_t(le32(p + 4)) << 32; }

// [offset, offset + length) lies within [0, limit), without overflow.
bool fits(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) {
    return offset <= limit && length <= limit - offset;
}

Status corrupt(const std::string& what) { return error(Code::corrupt_zip, "zip: " + what); }

std::string entry_label(std::size_t index, const std::string& name) {
    return "entry " + std::to_string(index) + (name.empty() ? std::string() : " ('" + name + "')");
}

// --- end of central directory ----------------------------------------------

// What the end records say about the central directory.
struct Directory {
    std::uint64_t offset = 0;  // of the first central header
    std::uint64_t size = 0;    // bytes of central headers
    std::uint64_t entries = 0;
};

// The last bytes of the archive, [start, size), where the end records are. A
// source in memory is used in place. Any other is read in two steps: the
// last kilobyte first (it holds every end record of an archive without a
// long comment), the rest only when a byte before it is asked for.
class Tail {
public:
    explicit Tail(const ByteSource& source) : source_(source), size_(source.size()) {}

    void init(std::uint64_t start) {
        start_ = start;
        if (const std::uint8_t* data = source_.data()) {
            bytes_ = data + start;
            loaded_ = start;
            return;
        }
        const std::size_t length = std::size_t(size_ - start);  // at most 65535 + 22
        buffer_.resize(length);
        bytes_ = buffer_.data();
        const std::size_t first_read = length < tail_probe ? length : tail_probe;
        loaded_ = size_ - first_read;
        source_.read(loaded_, buffer_.data() + (length - first_read), first_read);
    }

    std::uint64_t start() const { return start_; }

    // The bytes from `offset` (>= start) to the end of the archive.
    const std::uint8_t* at(std::uint64_t offset) {
        if (offset < loaded_) {
            source_.read(start_, buffer_.data(), std::size_t(loaded_ - start_));
            loaded_ = start_;
        }
        return bytes_ + (offset - start_);
    }

private:
    static constexpr std::size_t tail_probe = 1024;
    const ByteSource& source_;
    std::uint64_t size_;
    std::uint64_t start_ = 0, loaded_ = 0;  // [loaded_, size_) is in bytes_
    const std::uint8_t* bytes_ = nullptr;   // the byte at start_
    std::vector<std::uint8_t> buffer_;
};

// The EOCD (APPNOTE 4.3.16) is the last record; only a comment of up to
// 65535 bytes may follow it, and its length field must account for exactly
// the bytes after the record. Scans backwards so the last candidate wins.
Status find_eocd(Tail& tail, std::uint64_t size, std::uint64_t& pos) {
    if (size < eocd_size)
        return corrupt("the archive is " + std::to_string(size) +
                       " bytes, too small for an end-of-central-directory record");
    const std::uint64_t last = size - eocd_size;
    const std::uint64_t first = last > 0xFFFF ? last - 0xFFFF : 0;
    tail.init(first);
    for (std::uint64_t p = last + 1; p-- > first;) {
        const std::uint8_t* e = tail.at(p);
        if (le32(e) == sig_eocd && le16(e + 20) == last - p) {
            pos = p;
            return Status::success();
        }
    }
    return corrupt("no end-of-central-directory record (not a zip archive, or truncated)");
}

// The ZIP64 end of central directory locator (APPNOTE 4.3.15), `loc`, sits
// right before the EOCD, at `locator`, and points at the ZIP64 EOCD record
// (4.3.14), whose 64-bit values replace the EOCD's. `end` becomes where the
// central directory must end.
Status read_zip64_end(const ByteSource& source, const std::uint8_t* loc, std::uint64_t locator, Directory& dir,
                      std::uint64_t& end) {
    const std::uint32_t eocd_disk = le32(loc + 4);  // disk with the ZIP64 EOCD
    const std::uint64_t record = le64(loc + 8);     // offset of the ZIP64 EOCD
    const std::uint32_t disks = le32(loc + 16);     // total number of disks
    if (eocd_disk != 0 || disks > 1)
        return corrupt("multi-disk archive (ZIP64 locator: " + std::to_string(disks) + " disks)");
    if (!fits(record, zip64_eocd_size, locator))
        return corrupt("the ZIP64 end-of-central-directory record at " + std::to_string(record) +
                       " runs past its locator at " + std::to_string(locator));
    std::uint8_t r[zip64_eocd_size];  // (the extensible data sector after it is not used)
    source.read(record, r, zip64_eocd_size);
    if (le32(r) != sig_zip64_eocd)
        return corrupt("no ZIP64 end-of-central-directory record at " + std::to_string(record));
    // "size of zip64 end of central directory record": the bytes after this field.
    const std::uint64_t record_size = le64(r + 4);
    if (record_size < zip64_eocd_size - 12 || !fits(record + 12, record_size, locator))
        return corrupt("the ZIP64 end-of-central-directory record's size " + std::to_string(record_size) +
                       " is too small or runs past its locator");
    const std::uint32_t disk = le32(r + 16), cd_disk = le32(r + 20);
    const std::uint64_t disk_entries = le64(r + 24);
    dir.entries = le64(r + 32);
    dir.size = le64(r + 40);
    dir.offset = le64(r + 48);
    if (disk != 0 || cd_disk != 0 || disk_entries != dir.entries)
        return corrupt("multi-disk archive (ZIP64 end-of-central-directory record)");
    end = record;
    return Status::success();
}

Status read_directory_end(const ByteSource& source, Directory& dir, std::uint64_t& end) {
    Tail tail(source);
    std::uint64_t pos = 0;
    MK_TRY(find_eocd(tail, source.size(), pos));
    const std::uint8_t* e = tail.at(pos);
    const std::uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);
    const std::uint16_t disk_entries = le16(e + 8), entries = le16(e + 10);
    const std::uint32_t cd_size = le32(e + 12), cd_offset = le32(e + 16);
    // The locator is normally in the tail; after a comment of nearly 64 KB it is just before it.
    std::uint8_t before_tail[zip64_locator_size];
    const std::uint8_t* loc = nullptr;
    if (pos >= zip64_locator_size) {
        const std::uint64_t at = pos - zip64_locator_size;
        if (at >= tail.start()) {
            loc = tail.at(at);
        } else {
            source.read(at, before_tail, zip64_locator_size);
            loc = before_tail;
        }
    }
    const bool zip64 = loc && le32(loc) == sig_zip64_locator;
    if (zip64) {
        // The 16-bit disk numbers are either real (0) or "see the ZIP64 record".
        if ((disk != 0 && disk != 0xFFFF) || (cd_disk != 0 && cd_disk != 0xFFFF))
            return corrupt("multi-disk archive (disk " + std::to_string(disk) + ")");
        return read_zip64_end(source, loc, pos - zip64_locator_size, dir, end);
    }
    if (disk != 0 || cd_disk != 0 || disk_entries != entries)
        return corrupt("multi-disk archive (disk " + std::to_string(disk) + ", central directory on disk " +
                       std::to_string(cd_disk) + ")");
    dir.entries = entries;
    dir.size = cd_size;
    dir.offset = cd_offset;
    end = pos;
    return Status::success();
}

// --- central directory -----------------------------------------------------

// The ZIP64 extra field (APPNOTE 4.5.3) holds, in this order, only those of
// uncompressed size, compressed size, local header offset (8 bytes each) and
// disk number (4 bytes) whose central-header field is all ones.
struct Zip64Needs {
    bool size, compressed_size, offset, disk;
};

Status read_zip64_extra(const std::uint8_t* extra, std::size_t length, Zip64Needs needs, ZipEntry& entry,
                        std::uint64_t& offset, const std::string& label) {
    if (!(needs.size || needs.compressed_size || needs.offset || needs.disk)) return Status::success();
    // Extra fields: a 2-byte id, a 2-byte length, that many bytes (APPNOTE 4.5.1).
    for (std::size_t pos = 0; pos + 4 <= length;) {
        const std::uint16_t id = le16(extra + pos), len = le16(extra + pos + 2);
        pos += 4;
        if (len > length - pos) return corrupt(label + ": an extra field runs past the header's extra data");
        if (id == extra_zip64) {
            const std::size_t need = 8 * (needs.size + needs.compressed_size + needs.offset) + 4 * needs.disk;
            if (len < need)
                return corrupt(label + ": the ZIP64 extra field has " + std::to_string(len) + " bytes, needs " +
                               std::to_string(need));
            const std::uint8_t* f = extra + pos;
            if (needs.size) entry.size = le64(f), f += 8;
            if (needs.compressed_size) entry.compressed_size = le64(f), f += 8;
            if (needs.offset) offset = le64(f), f += 8;
            if (needs.disk && le32(f) != 0) return corrupt(label + ": starts on another disk (multi-disk archive)");
            return Status::success();
        }
        pos += len;
    }
    return corrupt(label + ": a size or offset is 0xFFFFFFFF but there is no ZIP64 extra field");
}

// Names are relative paths inside the archive; refuse anything that could
// escape a folder or mean different things on different systems.
Status check_name(const std::string& name, const std::string& label) {
    if (name.empty()) return corrupt(label + " has an empty name");
    if (name.find('\0') != std::string::npos) return corrupt(label + ": the name contains a NUL byte");
    if (name.find('\\') != std::string::npos) return corrupt(label + ": the name contains a backslash");
    if (name[0] == '/') return corrupt(label + ": the name is an absolute path");
    if (name.find("..") != std::string::npos) return corrupt(label + ": the name contains '..'");
    return Status::success();
}

// One central directory header (APPNOTE 4.3.12) at `pos`, which must end by
// `cd_end`; `cd` holds the directory, whose first byte is at `cd_offset` in
// the archive. Fills everything but data_offset; `local` is the local header offset.
Status read_central(const std::uint8_t* cd, std::uint64_t cd_offset, std::uint64_t& pos, std::uint64_t cd_end,
                    std::size_t index, ZipEntry& entry, std::uint64_t& local) {
    std::string label = entry_label(index, "");
    if (!fits(pos, central_size, cd_end))
        return corrupt(label + ": the central directory header runs past the directory's end");
    const std::uint8_t* h = cd + (pos - cd_offset);
    if (le32(h) != sig_central)
        return corrupt(label + ": no central directory header signature at " + std::to_string(pos));
    const std::uint16_t flags = le16(h + 8);
    entry.method = le16(h + 10);
    entry.crc32 = le32(h + 16);
    const std::uint32_t compressed_size = le32(h + 20), size = le32(h + 24);
    const std::uint16_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
    const std::uint16_t disk = le16(h + 34);
    const std::uint32_t offset = le32(h + 42);
    const std::uint64_t tail = std::uint64_t(name_len) + extra_len + comment_len;
    if (!fits(pos + central_size, tail, cd_end))
        return corrupt(label + ": the name, extra field or comment runs past the central directory's end");
    entry.name.assign(reinterpret_cast<const char*>(h + central_size), name_len);
    label = entry_label(index, entry.name);

    entry.size = size;
    entry.compressed_size = compressed_size;
    local = offset;
    const Zip64Needs needs{size == 0xFFFFFFFFu, compressed_size == 0xFFFFFFFFu, offset == 0xFFFFFFFFu, disk == 0xFFFF};
    MK_TRY(read_zip64_extra(h + central_size + name_len, extra_len, needs, entry, local, label));
    if (disk != 0 && disk != 0xFFFF)
        return corrupt(label + ": starts on disk " + std::to_string(disk) + " (multi-disk archive)");

    MK_TRY(check_name(entry.name, label));
    if (flags & (flag_encrypted | flag_strong_encryption))
        return error(Code::unsupported_compression, "zip: " + label + " is encrypted");
    if (entry.method != method_stored && entry.method != method_deflate)
        return error(Code::unsupported_compression, "zip: " + label + " uses compression method " +
                                                        std::to_string(entry.method) +
                                                        " (only stored and deflate are supported)");
    if (entry.method == method_stored && entry.compressed_size != entry.size)
        return corrupt(label + " is stored but its compressed size " + std::to_string(entry.compressed_size) +
                       " differs from its size " + std::to_string(entry.size));
    if (entry.method == method_deflate && entry.size / max_deflate_ratio > entry.compressed_size)
        return corrupt(label + ": " + std::to_string(entry.compressed_size) + " deflated bytes cannot hold " +
                       std::to_string(entry.size) + " bytes");
    pos += central_size + tail;
    return Status::success();
}

// The local header (APPNOTE 4.3.7) at `local`: its name must match the
// central one. The data follows its own (local) name and extra field, whose
// length differs from the central extra's in torch's archives. Data must end
// before the central directory starts. Reads the 30 bytes and, in the same
// read, a name as long as the central one (the extra field is not needed).
Status read_local(const ByteSource& source, std::uint64_t local, std::uint64_t cd_offset, std::size_t index,
                  ZipEntry& entry, std::vector<std::uint8_t>& buffer) {
    const std::string label = entry_label(index, entry.name);
    if (!fits(local, local_size, cd_offset))
        return corrupt(label + ": the local header at " + std::to_string(local) +
                       " runs past the start of the central directory at " + std::to_string(cd_offset));
    const std::size_t expected = local_size + entry.name.size();
    const std::size_t n = fits(local, expected, cd_offset) ? expected : local_size;
    const std::uint8_t* h = source_range(source, local, n, buffer);
    if (le32(h) != sig_local) return corrupt(label + ": no local header signature at " + std::to_string(local));
    const std::uint16_t name_len = le16(h + 26), extra_len = le16(h + 28);
    if (!fits(local + local_size, std::uint64_t(name_len) + extra_len, cd_offset))
        return corrupt(label + ": the local name and extra field run past the start of the central directory");
    // (Equal lengths: the name was read with the header, as it fits before the directory.)
    if (name_len != entry.name.size() || std::memcmp(h + local_size, entry.name.data(), name_len) != 0) {
        std::vector<std::uint8_t> name_buffer;
        const std::uint8_t* name = source_range(source, local + local_size, name_len, name_buffer);
        return corrupt(label + ": the local header's name '" +
                       std::string(reinterpret_cast<const char*>(name), name_len) +
                       "' differs from the central directory's");
    }
    entry.data_offset = local + local_size + name_len + extra_len;
    if (!fits(entry.data_offset, entry.compressed_size, cd_offset))
        return corrupt(label + ": its " + std::to_string(entry.compressed_size) + " bytes of data at " +
                       std::to_string(entry.data_offset) + " run past the start of the central directory at " +
                       std::to_string(cd_offset));
    return Status::success();
}

// Checks an entry (possibly not from zip_list) against the archive.
Status check_entry(std::uint64_t size, const ZipEntry& entry) {
    const std::string label = "entry '" + entry.name + "'";
    if (entry.method != method_stored && entry.method != method_deflate)
        return error(Code::unsupported_compression,
                     "zip: " + label + " uses compression method " + std::to_string(entry.method));
    if (!fits(entry.data_offset, entry.compressed_size, size))
        return corrupt(label + ": its data runs past the end of the archive");
    if (entry.method == method_stored && entry.compressed_size != entry.size)
        return corrupt(label + " is stored but its compressed size differs from its size");
    if (entry.method == method_deflate && entry.size / max_deflate_ratio > entry.compressed_size)
        return corrupt(label + ": " + std::to_string(entry.compressed_size) + " deflated bytes cannot hold " +
                       std::to_string(entry.size) + " bytes");
    if (entry.size > std::uint64_t(SIZE_MAX) || entry.compressed_size > std::uint64_t(SIZE_MAX))
        return corrupt(label + " is too large for this platform");
    return Status::success();
}

Status verify_crc(const ZipEntry& entry, const std::uint8_t* bytes, std::size_t n) {
    if (entry.crc32 == 0) return Status::success();  // "not computed" (torch's set_crc32_options(False))
    const std::uint32_t actual = crc32(bytes, n);
    if (actual == entry.crc32) return Status::success();
    return error(Code::checksum_mismatch, "zip: entry '" + entry.name + "': CRC-32 of the data is " +
                                              std::to_string(actual) + " but the central directory says " +
                                              std::to_string(entry.crc32));
}

// --- writing -----------------------------------------------------------------

struct Out {
    std::vector<std::uint8_t>& b;
    void u16(std::uint32_t v) {
        b.push_back(std::uint8_t(v));
        b.push_back(std::uint8_t(v >> 8));
    }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    }
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    }
    void bytes(const void* p, std::size_t n) {
        const auto* c = static_cast<const std::uint8_t*>(p);
        b.insert(b.end(), c, c + n);
    }
};

constexpr std::uint32_t max32 = 0xFFFFFFFFu;
constexpr std::uint16_t dos_time = 0;                        // 00:00:00
constexpr std::uint16_t dos_date = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: deterministic output
constexpr std::uint16_t version_plain = 20, version_zip64 = 45;

struct Written {
    std::uint64_t offset;  // of the local header
    std::uint32_t crc;
};

std::uint16_t name_flags(const std::string& name) {
    for (unsigned char c : name)
        if (c >= 0x80) return flag_utf8;
    return 0;
}

// Local header + data for one record, data aligned with an "FB" extra field.
Written write_local(Out& o, const ZipRecord& r, const std::string& name) {
    const std::uint64_t offset = o.b.size();
    const std::uint32_t crc = crc32(r.data, r.size);
    const bool big = r.size >= max32;
    const bool zip64 = big || offset >= max32;
    // The local ZIP64 extra, when used, must hold both sizes (APPNOTE 4.5.3).
    const std::size_t zip64_extra = big ? 4 + 16 : 0;
    // The "FB" field's 4-byte header counts toward the alignment; its payload pads the rest.
    const std::uint64_t unpadded = offset + local_size + name.size() + zip64_extra + 4;
    const std::size_t padding = std::size_t((data_alignment - unpadded % data_alignment) % data_alignment);

    o.u32(sig_local);
    o.u16(zip64 ? version_zip64 : version_plain);  // version needed to extract
    o.u16(name_flags(name));                       // general purpose bit flag
    o.u16(method_stored);
    o.u16(dos_time);
    o.u16(dos_date);
    o.u32(crc);
    o.u32(big ? max32 : std::uint32_t(r.size));  // compressed size
    o.u32(big ? max32 : std::uint32_t(r.size));  // uncompressed size
    o.u16(std::uint32_t(name.size()));
    o.u16(std::uint32_t(zip64_extra + 4 + padding));
    o.bytes(name.data(), name.size());
    if (big) {
        o.u16(extra_zip64);
        o.u16(16);
        o.u64(r.size);
        o.u64(r.size);
    }
    o.u16(extra_padding);
    o.u16(std::uint32_t(padding));
    o.b.insert(o.b.end(), padding, std::uint8_t('Z'));
    if (r.size) o.bytes(r.data, r.size);
    return {offset, crc};
}

void write_central(Out& o, const ZipRecord& r, const std::string& name, const Written& w) {
    const bool big = r.size >= max32, far = w.offset >= max32;
    const std::size_t zip64_extra = big || far ? 4 + 16 * big + 8 * far : 0;
    const std::uint16_t version = big || far ? version_zip64 : version_plain;
    o.u32(sig_central);
    o.u16(version);  // version made by: MS-DOS attributes (0), this spec version
    o.u16(version);  // version needed to extract
    o.u16(name_flags(name));
    o.u16(method_stored);
    o.u16(dos_time);
    o.u16(dos_date);
    o.u32(w.crc);
    o.u32(big ? max32 : std::uint32_t(r.size));
    o.u32(big ? max32 : std::uint32_t(r.size));
    o.u16(std::uint32_t(name.size()));
    o.u16(std::uint32_t(zip64_extra));
    o.u16(0);  // comment length
    o.u16(0);  // disk number start
    o.u16(0);  // internal file attributes
    o.u32(0);  // external file attributes
    o.u32(far ? max32 : std::uint32_t(w.offset));
    o.bytes(name.data(), name.size());
    if (zip64_extra) {
        o.u16(extra_zip64);
        o.u16(std::uint32_t(zip64_extra - 4));
        if (big) o.u64(r.size), o.u64(r.size);
        if (far) o.u64(w.offset);
    }
}

// [ZIP64 EOCD record + locator, when a count or offset needs them] + EOCD.
void write_end(Out& o, std::uint64_t entries, std::uint64_t cd_offset, std::uint64_t cd_size) {
    const bool many = entries >= 0xFFFF, far = cd_offset >= max32, big = cd_size >= max32;
    if (many || far || big) {
        const std::uint64_t record = o.b.size();
        o.u32(sig_zip64_eocd);
        o.u64(zip64_eocd_size - 12);  // size of the rest of this record
        o.u16(version_zip64);         // version made by
        o.u16(version_zip64);         // version needed to extract
        o.u32(0);                     // this disk
        o.u32(0);                     // disk with the central directory
        o.u64(entries);               // entries on this disk
        o.u64(entries);               // entries in total
        o.u64(cd_size);
        o.u64(cd_offset);
        o.u32(sig_zip64_locator);
        o.u32(0);  // disk with the ZIP64 EOCD record
        o.u64(record);
        o.u32(1);  // total number of disks
    }
    o.u32(sig_eocd);
    o.u16(0);  // this disk
    o.u16(0);  // disk with the central directory
    o.u16(many ? 0xFFFF : std::uint32_t(entries));
    o.u16(many ? 0xFFFF : std::uint32_t(entries));
    o.u32(big ? max32 : std::uint32_t(cd_size));
    o.u32(far ? max32 : std::uint32_t(cd_offset));
    o.u16(0);  // comment length
}

}  // namespace

Status zip_list(const ByteSource& source, std::vector<ZipEntry>& entries) {
    entries.clear();
    Directory dir;
    std::uint64_t end = 0;  // where the central directory must end
    MK_TRY(read_directory_end(source, dir, end));
    if (!fits(dir.offset, dir.size, end))
        return corrupt("the central directory (" + std::to_string(dir.size) + " bytes at " +
                       std::to_string(dir.offset) + ") runs past the end-of-central-directory record at " +
                       std::to_string(end));
    if (dir.entries > max_zip_entries)
        return corrupt(std::to_string(dir.entries) + " entries, over the cap of " + std::to_string(max_zip_entries));
    if (dir.entries > dir.size / central_size)
        return corrupt(std::to_string(dir.entries) + " entries cannot fit a central directory of " +
                       std::to_string(dir.size) + " bytes");
    // The directory lies within the archive (checked above), so its buffer is
    // never larger than the archive; it must also be addressable here.
    if (dir.size > std::uint64_t(SIZE_MAX))
        return corrupt("the central directory of " + std::to_string(dir.size) +
                       " bytes is too large for this platform");
    std::vector<std::uint8_t> cd_buffer, local_buffer;
    const std::uint8_t* cd = source_range(source, dir.offset, std::size_t(dir.size), cd_buffer);

    std::vector<ZipEntry> list(static_cast<std::size_t>(dir.entries));
    std::unordered_set<std::string> names;
    names.reserve(list.size());
    const std::uint64_t cd_end = dir.offset + dir.size;
    std::uint64_t pos = dir.offset;
    for (std::size_t i = 0; i < list.size(); ++i) {
        std::uint64_t local = 0;
        MK_TRY(read_central(cd, dir.offset, pos, cd_end, i, list[i], local));
        if (!names.insert(list[i].name).second) return corrupt("the name '" + list[i].name + "' appears twice");
        MK_TRY(read_local(source, local, dir.offset, i, list[i], local_buffer));
    }
    if (pos != cd_end)
        return corrupt("the central directory has " + std::to_string(cd_end - pos) + " bytes after its " +
                       std::to_string(list.size()) + " entries");
    entries = std::move(list);
    return Status::success();
}

Status zip_list(const std::uint8_t* data, std::size_t size, std::vector<ZipEntry>& entries) {
    return zip_list(MemorySource(data, size), entries);
}

Status zip_read(const ByteSource& source, const ZipEntry& entry, std::vector<std::uint8_t>& out) {
    out.clear();
    MK_TRY(check_entry(source.size(), entry));
    const std::size_t n = std::size_t(entry.size);
    if (entry.method == method_stored) {
        if (const std::uint8_t* data = source.data()) {
            out.assign(data + entry.data_offset, data + entry.data_offset + n);
        } else {
            out.resize(n);
            if (n) source.read(entry.data_offset, out.data(), n);
        }
    } else {
        std::vector<std::uint8_t> compressed;  // (only for a source outside memory)
        const std::size_t in_size = std::size_t(entry.compressed_size);
        const std::uint8_t* src = source_range(source, entry.data_offset, in_size, compressed);
        out.resize(n);
        const Status st = inflate_raw(src, in_size, out.data(), n);
        if (!st.ok()) {
            out.clear();
            return error(st.code(), "zip: entry '" + entry.name + "': " + st.message());
        }
    }
    const Status st = verify_crc(entry, out.data(), out.size());
    if (!st.ok()) out.clear();
    return st;
}

Status zip_read(const std::uint8_t* data, std::size_t size, const ZipEntry& entry, std::vector<std::uint8_t>& out) {
    return zip_read(MemorySource(data, size), entry, out);
}

Status zip_read_into(const ByteSource& source, const ZipEntry& entry, std::uint8_t* dst, bool check_crc) {
    MK_TRY(check_entry(source.size(), entry));
    if (entry.method != method_stored)
        return error(Code::invalid_argument, "zip: entry '" + entry.name + "' is deflated: read it with zip_read");
    const std::size_t n = std::size_t(entry.size);
    if (n > 0) {
        if (!dst)
            return error(Code::invalid_argument,
                         "zip: entry '" + entry.name + "': no buffer for its " + std::to_string(n) + " bytes");
        source.read(entry.data_offset, dst, n);
    }
    return check_crc ? verify_crc(entry, dst, n) : Status::success();
}

Status zip_view(const ByteSource& source, const ZipEntry& entry, bool check_crc, const std::uint8_t*& view) {
    view = nullptr;
    MK_TRY(check_entry(source.size(), entry));
    const std::uint8_t* data = source.data();
    if (entry.method != method_stored || !data) return Status::success();  // no view: zip_read / zip_read_into
    const std::uint8_t* p = data + entry.data_offset;
    if (check_crc) MK_TRY(verify_crc(entry, p, std::size_t(entry.size)));
    view = p;
    return Status::success();
}

Status zip_view(const std::uint8_t* data, std::size_t size, const ZipEntry& entry, bool check_crc,
                const std::uint8_t*& view) {
    return zip_view(MemorySource(data, size), entry, check_crc, view);
}

void zip_write(const std::vector<ZipRecord>& records, std::vector<std::uint8_t>& out) {
    out.clear();
    // Names longer than a 16-bit length cannot be stored; keep the archive well formed.
    auto stored_name = [](const ZipRecord& r) { return r.name.size() > 0xFFFF ? r.name.substr(0, 0xFFFF) : r.name; };
    std::size_t total = eocd_size + zip64_eocd_size + zip64_locator_size;
    for (const ZipRecord& r : records)
        total += 2 * (r.name.size() + 64) + local_size + central_size + data_alignment + r.size;
    out.reserve(total);

    Out o{out};
    std::vector<Written> written;
    written.reserve(records.size());
    for (const ZipRecord& r : records) written.push_back(write_local(o, r, stored_name(r)));
    const std::uint64_t cd_offset = out.size();
    for (std::size_t i = 0; i < records.size(); ++i) write_central(o, records[i], stored_name(records[i]), written[i]);
    write_end(o, records.size(), cd_offset, out.size() - cd_offset);
}

}  // namespace modelkeep
