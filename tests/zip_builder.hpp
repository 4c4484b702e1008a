// zip_builder.hpp — hand-made zip archives for the tests: every field chosen
// by the test (stored or deflated by zlib, data descriptors, torch's 64-byte
// alignment, ZIP64 fields), so that readers meet layouts no writer of ours makes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crc32.hpp"
#include "zlib_reference.hpp"

namespace mkt {

using ZipBytes = std::vector<std::uint8_t>;

struct Appender {
    ZipBytes& b;
    void u16(std::uint32_t v) { b.push_back(std::uint8_t(v)), b.push_back(std::uint8_t(v >> 8)); }
    void u32(std::uint32_t v) { u16(v & 0xFFFF), u16(v >> 16); }
    void u64(std::uint64_t v) { u32(std::uint32_t(v)), u32(std::uint32_t(v >> 32)); }
    void raw(const ZipBytes& x) { b.insert(b.end(), x.begin(), x.end()); }
    void raw(const std::string& x) { b.insert(b.end(), x.begin(), x.end()); }
};

// --- a builder of hand-made archives -----------------------------------------

constexpr unsigned z64_size = 1, z64_csize = 2, z64_offset = 4;

struct Member {
    std::string name;
    ZipBytes data;             // uncompressed
    std::uint16_t method = 0;  // 0 stored; 8 deflated by zlib at `level`
    int level = 6;
    std::uint16_t flags = 0;
    bool descriptor = false;   // torch: zero CRC and sizes locally, a data descriptor after the data
    bool align = false;        // torch: an FB extra field pads the data to 64 bytes
    unsigned zip64 = 0;        // central fields given as 0xFFFFFFFF + ZIP64 extra (z64_* bits)
    std::string local_name{};  // when set, the local header's (different) name
    ZipBytes central_extra{};  // appended to the central header's extra field
};

struct Options {
    bool zip64_end = false;  // torch always writes the ZIP64 EOCD record and locator
    std::string comment;
    std::uint16_t version_needed = 20;
};

struct Archive {
    ZipBytes bytes;
    std::vector<std::size_t> local, central, data;  // offsets of each member's headers and data
    std::size_t cd_offset = 0, eocd = 0, zip64_eocd = 0, locator = 0;
};

inline Archive build_zip(const std::vector<Member>& members, const Options& opt = {}) {
    Archive a;
    Appender o{a.bytes};
    std::vector<ZipBytes> payloads;
    for (const Member& m : members) {
        const ZipBytes payload = m.method == 8 ? zlib_deflate(m.data, m.level) : m.data;
        const std::uint32_t crc = modelkeep::crc32(m.data.data(), m.data.size());
        const std::string local_name = m.local_name.empty() ? m.name : m.local_name;
        a.local.push_back(a.bytes.size());
        std::size_t padding = 0;
        if (m.align) padding = (64 - (a.bytes.size() + 30 + local_name.size() + 4) % 64) % 64;
        o.u32(0x04034b50);
        o.u16(opt.version_needed);
        o.u16(m.flags);
        o.u16(m.method);
        o.u16(0);
        o.u16(0x21);
        o.u32(m.descriptor ? 0 : crc);
        o.u32(m.descriptor ? 0 : std::uint32_t(payload.size()));
        o.u32(m.descriptor ? 0 : std::uint32_t(m.data.size()));
        o.u16(std::uint32_t(local_name.size()));
        o.u16(m.align ? std::uint32_t(4 + padding) : 0);
        o.raw(local_name);
        if (m.align) {
            o.u16(0x4246);
            o.u16(std::uint32_t(padding));
            a.bytes.insert(a.bytes.end(), padding, 'Z');
        }
        a.data.push_back(a.bytes.size());
        o.raw(payload);
        if (m.descriptor) {
            o.u32(0x08074b50);
            o.u32(crc);
            o.u32(std::uint32_t(payload.size()));
            o.u32(std::uint32_t(m.data.size()));
        }
        payloads.push_back(payload);
    }
    a.cd_offset = a.bytes.size();
    for (std::size_t i = 0; i < members.size(); ++i) {
        const Member& m = members[i];
        a.central.push_back(a.bytes.size());
        ZipBytes z64;
        Appender x{z64};
        if (m.zip64 & z64_size) x.u64(m.data.size());
        if (m.zip64 & z64_csize) x.u64(payloads[i].size());
        if (m.zip64 & z64_offset) x.u64(a.local[i]);
        const std::size_t extra = (z64.empty() ? 0 : 4 + z64.size()) + m.central_extra.size();
        o.u32(0x02014b50);
        o.u16(opt.version_needed);  // made by
        o.u16(opt.version_needed);
        o.u16(m.flags);
        o.u16(m.method);
        o.u16(0);
        o.u16(0x21);
        o.u32(modelkeep::crc32(m.data.data(), m.data.size()));
        o.u32(m.zip64 & z64_csize ? 0xFFFFFFFFu : std::uint32_t(payloads[i].size()));
        o.u32(m.zip64 & z64_size ? 0xFFFFFFFFu : std::uint32_t(m.data.size()));
        o.u16(std::uint32_t(m.name.size()));
        o.u16(std::uint32_t(extra));
        o.u16(0);
        o.u16(0);
        o.u16(0);
        o.u32(0);
        o.u32(m.zip64 & z64_offset ? 0xFFFFFFFFu : std::uint32_t(a.local[i]));
        o.raw(m.name);
        if (!z64.empty()) {
            o.u16(1);
            o.u16(std::uint32_t(z64.size()));
            o.raw(z64);
        }
        o.raw(m.central_extra);
    }
    const std::size_t cd_size = a.bytes.size() - a.cd_offset;
    if (opt.zip64_end) {
        a.zip64_eocd = a.bytes.size();
        o.u32(0x06064b50);
        o.u64(44);
        o.u16(45);
        o.u16(45);
        o.u32(0);
        o.u32(0);
        o.u64(members.size());
        o.u64(members.size());
        o.u64(cd_size);
        o.u64(a.cd_offset);
        a.locator = a.bytes.size();
        o.u32(0x07064b50);
        o.u32(0);
        o.u64(a.zip64_eocd);
        o.u32(1);
    }
    a.eocd = a.bytes.size();
    o.u32(0x06054b50);
    o.u16(0);
    o.u16(0);
    o.u16(std::uint32_t(members.size()));
    o.u16(std::uint32_t(members.size()));
    o.u32(std::uint32_t(cd_size));
    o.u32(std::uint32_t(a.cd_offset));
    o.u16(std::uint32_t(opt.comment.size()));
    o.raw(opt.comment);
    return a;
}

}  // namespace mkt
