// wire.hpp — the .mkp format's encodings (format.hpp §1) in one place, for the
// reader and writer of the file (format_reader.cpp, format_writer.cpp) and of
// its TRAINING section (checkpoint.cpp):
//
//   WireWriter  appends little-endian u8 / u32 / u64 / f32 / f64, varints
//               (unsigned LEB128), zigzag svarints and length-prefixed strings
//               to a byte vector;
//   WireReader  reads them back from [pos, end) of one section: every read is
//               bounded by the section's end (bad_section), a varint must be
//               canonical and fit 64 bits (bad_varint), a count is capped and
//               bounded by the bytes left before anything is allocated
//               (limit_exceeded, bad_section), a string is capped and UTF-8
//               (limit_exceeded, bad_name). Messages name the section, the
//               field and the byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "status.hpp"
#include "utf8.hpp"

namespace modelkeep {

struct WireWriter {
    std::vector<std::uint8_t>& b;

    void u8(std::uint8_t v) { b.push_back(v); }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    }
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    }
    void f32(float v) {
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        u32(u);
    }
    void f64(double v) {
        std::uint64_t u;
        std::memcpy(&u, &v, 8);
        u64(u);
    }
    void varint(std::uint64_t v) {
        do {
            std::uint8_t byte = v & 0x7F;
            v >>= 7;
            if (v) byte |= 0x80;
            b.push_back(byte);
        } while (v);
    }
    void svarint(std::int64_t v) { varint((std::uint64_t(v) << 1) ^ std::uint64_t(v >> 63)); }
    void str(const std::string& s) {
        varint(s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
};

struct WireReader {
    const std::uint8_t* data;
    std::size_t pos, end;
    std::string section;  // "header", "METADATA", "TRAINING", ...: messages start "<section> section: "

    std::size_t left() const { return end - pos; }
    Status fail(Code code, const std::string& what) const { return error(code, section + " section: " + what); }

    Status overrun(const char* what) const {
        return fail(Code::bad_section, std::string(what) + " at byte " + std::to_string(pos) +
                                           " runs past the section's end (" + std::to_string(end) + ")");
    }
    Status u8(std::uint8_t& v, const char* what) {
        if (left() < 1) return overrun(what);
        v = data[pos++];
        return Status::success();
    }
    Status u64(std::uint64_t& v, const char* what) {
        if (left() < 8) return overrun(what);
        v = 0;
        for (int i = 0; i < 8; ++i) v |= std::uint64_t(data[pos + i]) << (8 * i);
        pos += 8;
        return Status::success();
    }
    Status f32(float& v, const char* what) {
        if (left() < 4) return overrun(what);
        std::memcpy(&v, data + pos, 4);
        pos += 4;
        return Status::success();
    }
    Status f64(double& v, const char* what) {
        std::uint64_t u = 0;
        MK_TRY(u64(u, what));
        std::memcpy(&v, &u, 8);
        return Status::success();
    }
    Status varint(std::uint64_t& v, const char* what) {
        std::uint64_t out = 0;
        const std::size_t start = pos;
        for (int i = 0;; ++i) {
            if (left() < 1) return overrun(what);
            const std::uint8_t b = data[pos++];
            if (i == 9 && b > 1)
                return fail(Code::bad_varint,
                            std::string(what) + " at byte " + std::to_string(start) + " does not fit 64 bits");
            out |= std::uint64_t(b & 0x7F) << (7 * i);
            if (!(b & 0x80)) {
                if (b == 0 && i > 0)
                    return fail(Code::bad_varint, std::string(what) + " at byte " + std::to_string(start) +
                                                      " is not canonical (overlong)");
                break;
            }
        }
        v = out;
        return Status::success();
    }
    Status svarint(std::int64_t& v, const char* what) {
        std::uint64_t u = 0;
        MK_TRY(varint(u, what));
        v = std::int64_t(u >> 1) ^ -std::int64_t(u & 1);
        return Status::success();
    }
    /// A varint count of records of at least min_record bytes each, at most cap.
    Status count(std::uint64_t& n, std::size_t cap, std::size_t min_record, const char* what) {
        MK_TRY(varint(n, what));
        if (n > cap)
            return fail(Code::limit_exceeded,
                        std::to_string(n) + " " + what + ", over the cap of " + std::to_string(cap));
        if (n > left() / min_record) return overrun(what);
        return Status::success();
    }
    Status str(std::string& s, std::size_t max_bytes, const char* what) {
        std::uint64_t len = 0;
        MK_TRY(varint(len, what));
        if (len > max_bytes)
            return fail(Code::limit_exceeded, std::string(what) + " of " + std::to_string(len) + " bytes at byte " +
                                                  std::to_string(pos) + ", over the cap of " +
                                                  std::to_string(max_bytes));
        if (len > left()) return overrun(what);
        s.assign(reinterpret_cast<const char*>(data + pos), std::size_t(len));
        pos += std::size_t(len);
        if (!valid_utf8(s))
            return fail(Code::bad_name,
                        std::string(what) + " ending at byte " + std::to_string(pos) + " is not valid UTF-8");
        return Status::success();
    }
};

}  // namespace modelkeep
