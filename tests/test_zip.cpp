// Tests of zip.hpp: archives written by zip_write read back (and by Python's
// zipfile); hand-built archives in torch's layout (flags 0x0808, zero sizes in
// the local headers + data descriptors, FB padding, ZIP64 end records), with
// zlib-deflated entries and ZIP64 extra fields; one test per failure mode,
// each with its specific code; truncations and byte changes never crash.
// Every listing and read runs twice, over the bytes in memory (MemorySource)
// and over a source with no data() that counts what it is asked to read
// (CountingSource, as an archive held by JavaScript): both must agree exactly,
// and the counting source shows that listing reads the directory, not the data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "counting_source.hpp"
#include "crc32.hpp"
#include "rng.hpp"
#include "source.hpp"
#include "zip.hpp"
#include "zip_builder.hpp"
#include "zlib_reference.hpp"

using namespace modelkeep;

namespace {

using Bytes = std::vector<std::uint8_t>;
using mkt::Appender;
using mkt::Archive;
using mkt::build_zip;
using mkt::CountingSource;
using mkt::Member;
using mkt::Options;
using mkt::z64_csize;
using mkt::z64_offset;
using mkt::z64_size;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes random_bytes(std::size_t n, std::uint64_t seed) {
    Rng rng(seed);
    Bytes b(n);
    for (auto& x : b) x = std::uint8_t(rng.next_u32());
    return b;
}

Bytes text_bytes(std::size_t n) {
    std::string s;
    while (s.size() < n) s += "weight bias running_mean running_var " + std::to_string(s.size() % 97) + " ";
    s.resize(n);
    return bytes_of(s);
}

std::uint16_t get16(const Bytes& b, std::size_t at) { return std::uint16_t(b[at] | b[at + 1] << 8); }
std::uint32_t get32(const Bytes& b, std::size_t at) {
    return std::uint32_t(get16(b, at)) | std::uint32_t(get16(b, at + 2)) << 16;
}
std::uint64_t get64(const Bytes& b, std::size_t at) {
    return std::uint64_t(get32(b, at)) | std::uint64_t(get32(b, at + 4)) << 32;
}
void put16(Bytes& b, std::size_t at, std::uint32_t v) {
    b[at] = std::uint8_t(v);
    b[at + 1] = std::uint8_t(v >> 8);
}
void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    put16(b, at, v & 0xFFFF);
    put16(b, at + 2, v >> 16);
}
void put64(Bytes& b, std::size_t at, std::uint64_t v) {
    put32(b, at, std::uint32_t(v));
    put32(b, at + 4, std::uint32_t(v >> 32));
}

// What torch.save writes (FORMATS.md 1.3).
std::vector<Member> torch_members() {
    std::vector<Member> ms = {
        {"archive/data.pkl", text_bytes(173)},   {"archive/byteorder", bytes_of("little")},
        {"archive/data/0", random_bytes(80, 1)}, {"archive/data/1", random_bytes(20, 2)},
        {"archive/version", bytes_of("3\n")},
    };
    for (Member& m : ms) {
        m.flags = 0x0808;
        m.descriptor = true;
        m.align = true;
    }
    return ms;
}
Options torch_options() {
    Options o;
    o.zip64_end = true;
    o.version_needed = 0;
    return o;
}
Archive torch_archive() { return build_zip(torch_members(), torch_options()); }

// Runs `check` over both kinds of source of the same bytes (exactly sized, for ASan).
template <class Check>
void for_each_source(const Bytes& b, Check check) {
    const Bytes exact(b);
    {
        SCOPED_TRACE("MemorySource");
        const MemorySource memory(exact.data(), exact.size());
        check(static_cast<const ByteSource&>(memory));
    }
    {
        SCOPED_TRACE("CountingSource");
        const CountingSource counting(exact);
        check(static_cast<const ByteSource&>(counting));
    }
}

void expect_same(const Status& expected, const Status& actual, const char* what) {
    EXPECT_EQ(actual.code(), expected.code()) << what << ": " << actual.to_string() << " vs " << expected.to_string();
    EXPECT_EQ(actual.message(), expected.message()) << what;
}

bool same_entries(const std::vector<ZipEntry>& a, const std::vector<ZipEntry>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].method != b[i].method || a[i].crc32 != b[i].crc32 ||
            a[i].data_offset != b[i].data_offset || a[i].compressed_size != b[i].compressed_size ||
            a[i].size != b[i].size)
            return false;
    return true;
}

// zip_list over the bytes in memory (the pointer overload) and over a
// CountingSource: the same status, message and entries.
Status list(const Bytes& b, std::vector<ZipEntry>& entries) {
    const Bytes exact(b);  // exactly sized, for ASan
    const Status st = zip_list(exact.data(), exact.size(), entries);
    const CountingSource counting(exact);
    std::vector<ZipEntry> other(2);
    const Status cs = zip_list(counting, other);
    expect_same(st, cs, "zip_list through a CountingSource");
    EXPECT_TRUE(same_entries(entries, other));
    return st;
}

Status list_exact(const Bytes& b) {
    std::vector<ZipEntry> entries;
    return list(b, entries);
}

// zip_read over the bytes in memory and over a CountingSource (the same
// status and bytes; one read of the entry's stored or compressed bytes), and
// for a stored entry zip_read_into (the same verdict, exactly entry.size bytes
// written, in one read); a deflated entry is refused by zip_read_into.
Status read_both(const Bytes& archive, const ZipEntry& e, Bytes& out) {
    const Status st = zip_read(archive.data(), archive.size(), e, out);
    const CountingSource counting(archive);
    Bytes other = {1, 2, 3};
    const Status cs = zip_read(counting, e, other);
    expect_same(st, cs, "zip_read through a CountingSource");
    EXPECT_TRUE(other == out);
    if (st.ok()) {
        EXPECT_EQ(counting.total, e.method == 0 ? e.size : e.compressed_size);
        EXPECT_LE(counting.reads, 1u);
    }
    // Past check_entry (ok or a CRC mismatch): entry.size lies within the archive.
    const bool checked = st.ok() || st.code() == Code::checksum_mismatch;
    if (checked && e.method == 0) {
        const CountingSource direct(archive);
        Bytes dst(std::size_t(e.size) + 1, 0xEE);  // (one guard byte)
        const Status is = zip_read_into(direct, e, dst.data(), true);
        expect_same(st, is, "zip_read_into");
        EXPECT_EQ(direct.total, e.size);
        EXPECT_EQ(direct.reads, e.size ? 1u : 0u);
        EXPECT_EQ(dst.back(), 0xEE);
        EXPECT_TRUE(std::equal(archive.begin() + std::ptrdiff_t(e.data_offset),
                               archive.begin() + std::ptrdiff_t(e.data_offset + e.size), dst.begin()));
        EXPECT_TRUE(zip_read_into(direct, e, dst.data(), false).ok());
    }
    if (checked && e.method == 8) {
        Bytes dst(std::size_t(e.size) + 1);
        const CountingSource direct(archive);
        EXPECT_EQ(zip_read_into(direct, e, dst.data(), true).code(), Code::invalid_argument);
        EXPECT_EQ(direct.reads, 0u);
    }
    return st;
}

// zip_view over the bytes in memory (returned), and over a CountingSource:
// there never a view, nothing read, no CRC checked; the entry checked the same.
Status view_both(const Bytes& archive, const ZipEntry& e, bool check_crc, const std::uint8_t*& view) {
    const Status st = zip_view(archive.data(), archive.size(), e, check_crc, view);
    const CountingSource counting(archive);
    const std::uint8_t* other = archive.data();
    const Status cs = zip_view(counting, e, check_crc, other);
    expect_same(st.code() == Code::checksum_mismatch ? Status::success() : st, cs, "zip_view through a CountingSource");
    EXPECT_EQ(other, nullptr);
    EXPECT_EQ(counting.reads, 0u);
    return st;
}

void expect_error(const Bytes& b, Code code, const std::string& message_part) {
    const Status st = list_exact(b);
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_TRUE(contains(st.message(), message_part)) << "'" << st.message() << "' lacks '" << message_part << "'";
}

// Reads every entry of an archive and checks it against the members.
void expect_members(const Bytes& archive, const std::vector<Member>& members) {
    std::vector<ZipEntry> entries;
    const Status st = list(archive, entries);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(entries.size(), members.size());
    for (std::size_t i = 0; i < members.size(); ++i) {
        const ZipEntry& e = entries[i];
        EXPECT_EQ(e.name, members[i].name);
        EXPECT_EQ(e.method, members[i].method);
        EXPECT_EQ(e.size, members[i].data.size());
        EXPECT_EQ(e.crc32, crc32(members[i].data.data(), members[i].data.size()));
        Bytes out;
        const Status rs = read_both(archive, e, out);
        ASSERT_TRUE(rs.ok()) << e.name << ": " << rs.to_string();
        EXPECT_TRUE(out == members[i].data) << e.name;
    }
}

std::vector<ZipRecord> records_of(const std::vector<std::pair<std::string, Bytes>>& named) {
    std::vector<ZipRecord> records;
    for (const auto& [name, data] : named) records.push_back({name, data.data(), data.size()});
    return records;
}

}  // namespace

// --- writing ---------------------------------------------------------------

TEST(Zip, WriteThenRead) {
    const std::vector<std::pair<std::string, Bytes>> named = {{"archive/data.pkl", text_bytes(300)},
                                                              {"archive/data/0", random_bytes(64, 1)},
                                                              {"archive/data/1", {}},
                                                              {"archive/data/10", random_bytes(1, 2)},
                                                              {"archive/data/2", random_bytes(100003, 3)},
                                                              {"archive/version", bytes_of("3\n")}};
    Bytes archive;
    zip_write(records_of(named), archive);

    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(archive, entries).ok());
    ASSERT_EQ(entries.size(), named.size());
    for (std::size_t i = 0; i < named.size(); ++i) {
        const ZipEntry& e = entries[i];
        EXPECT_EQ(e.name, named[i].first);
        EXPECT_EQ(e.method, 0);
        EXPECT_EQ(e.size, named[i].second.size());
        EXPECT_EQ(e.compressed_size, e.size);
        EXPECT_EQ(e.crc32, crc32(named[i].second.data(), named[i].second.size()));
        EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
        Bytes out;
        ASSERT_TRUE(read_both(archive, e, out).ok());
        EXPECT_TRUE(out == named[i].second) << e.name;
        const std::uint8_t* view = nullptr;
        ASSERT_TRUE(view_both(archive, e, true, view).ok());
        EXPECT_EQ(view, archive.data() + e.data_offset);
    }
    // Small archives get no ZIP64 records: the EOCD says everything.
    EXPECT_EQ(get32(archive, archive.size() - 22), 0x06054b50u);
    EXPECT_NE(get32(archive, archive.size() - 42), 0x07064b50u);
    EXPECT_EQ(get16(archive, archive.size() - 12), named.size());
}

TEST(Zip, WriteAlignsEveryEntryWithAnFBField) {
    // Name lengths 1..130 make every padding length 0..63 occur.
    std::vector<std::pair<std::string, Bytes>> named;
    for (std::size_t n = 1; n <= 130; ++n)
        named.emplace_back(std::string(n, char('a' + n % 26)) + std::to_string(n), random_bytes(n % 7, n));
    Bytes archive;
    zip_write(records_of(named), archive);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(archive, entries).ok());
    ASSERT_EQ(entries.size(), named.size());
    std::set<std::size_t> paddings;
    std::size_t local = 0;
    for (const ZipEntry& e : entries) {
        ASSERT_EQ(get32(archive, local), 0x04034b50u);
        const std::size_t name_len = get16(archive, local + 26), extra_len = get16(archive, local + 28);
        const std::size_t extra = local + 30 + name_len;
        ASSERT_GE(extra_len, 4u);
        EXPECT_EQ(get16(archive, extra), 0x4246);  // "FB"
        EXPECT_EQ(get16(archive, extra + 2), extra_len - 4);
        for (std::size_t i = 4; i < extra_len; ++i) ASSERT_EQ(archive[extra + i], 'Z');
        EXPECT_EQ(e.data_offset, extra + extra_len);
        EXPECT_EQ(e.data_offset % 64, 0u);
        EXPECT_LT(extra_len - 4, 64u);  // the least padding that aligns
        paddings.insert(extra_len - 4);
        local = e.data_offset + e.size;
    }
    EXPECT_EQ(paddings.size(), 64u);
}

TEST(Zip, WriteHeaderFields) {
    const Bytes data = bytes_of("hello");
    const std::vector<std::pair<std::string, Bytes>> named = {{"archive/a", data}, {"archive/\xC3\xBC", data}};
    Bytes archive;
    zip_write(records_of(named), archive);
    // Local header of the first entry.
    EXPECT_EQ(get32(archive, 0), 0x04034b50u);
    EXPECT_EQ(get16(archive, 4), 20);     // version needed
    EXPECT_EQ(get16(archive, 6), 0);      // flags: ASCII name, no data descriptor
    EXPECT_EQ(get16(archive, 8), 0);      // stored
    EXPECT_EQ(get16(archive, 10), 0);     // 00:00
    EXPECT_EQ(get16(archive, 12), 0x21);  // 1980-01-01
    EXPECT_EQ(get32(archive, 14), crc32(data.data(), data.size()));
    EXPECT_EQ(get32(archive, 18), 5u);
    EXPECT_EQ(get32(archive, 22), 5u);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(archive, entries).ok());
    // The UTF-8 name sets bit 11, locally and centrally.
    const std::size_t second_local = std::size_t(entries[0].data_offset + 5);
    EXPECT_EQ(get16(archive, second_local + 6), 0x0800);
    const std::size_t cd = get32(archive, archive.size() - 6);
    EXPECT_EQ(get32(archive, cd), 0x02014b50u);
    EXPECT_EQ(get16(archive, cd + 8), 0);
    const std::size_t second_central = cd + 46 + get16(archive, cd + 28) + get16(archive, cd + 30);
    EXPECT_EQ(get16(archive, second_central + 8), 0x0800);
    EXPECT_EQ(get32(archive, second_central + 42), second_local);
}

TEST(Zip, WriteIsDeterministic) {
    const std::vector<std::pair<std::string, Bytes>> named = {{"x/data.pkl", text_bytes(99)},
                                                              {"x/data/0", random_bytes(999, 9)}};
    Bytes a, b = random_bytes(50, 1);  // b starts non-empty: zip_write replaces it
    zip_write(records_of(named), a);
    zip_write(records_of(named), b);
    EXPECT_TRUE(a == b);
}

TEST(Zip, WriteEmptyArchive) {
    Bytes archive;
    zip_write({}, archive);
    EXPECT_EQ(archive.size(), 22u);
    std::vector<ZipEntry> entries(3);
    ASSERT_TRUE(list(archive, entries).ok());
    EXPECT_TRUE(entries.empty());
}

TEST(Zip, WriteManyEntriesAddsZip64EndRecords) {
    // 65535 entries no longer fit the EOCD's 16-bit count (0xFFFF means "see ZIP64").
    const std::size_t n = 70000;
    std::vector<std::string> names(n);
    std::vector<std::uint8_t> values(n);
    std::vector<ZipRecord> records;
    for (std::size_t i = 0; i < n; ++i) {
        names[i] = "a/" + std::to_string(i);
        values[i] = std::uint8_t(i * 7);
        records.push_back({names[i], &values[i], 1});
    }
    Bytes archive;
    zip_write(records, archive);
    const std::size_t eocd = archive.size() - 22, locator = eocd - 20, record = locator - 56;
    EXPECT_EQ(get16(archive, eocd + 10), 0xFFFF);
    ASSERT_EQ(get32(archive, locator), 0x07064b50u);
    EXPECT_EQ(get64(archive, locator + 8), record);
    ASSERT_EQ(get32(archive, record), 0x06064b50u);
    EXPECT_EQ(get64(archive, record + 32), n);
    std::vector<ZipEntry> entries;
    const Status st = list(archive, entries);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(entries.size(), n);
    for (std::size_t i = 0; i < n; i += 997) {
        EXPECT_EQ(entries[i].name, names[i]);
        EXPECT_EQ(archive[std::size_t(entries[i].data_offset)], values[i]);
        EXPECT_EQ(entries[i].data_offset % 64, 0u);
    }
}

// --- reading what other tools write ----------------------------------------

TEST(Zip, ReadsTorchStyleArchives) {
    const std::vector<Member> members = torch_members();
    const Archive a = torch_archive();
    // The layout really is torch's: zero sizes locally, data descriptors, ZIP64 end.
    ASSERT_EQ(get16(a.bytes, a.local[0] + 6), 0x0808);
    ASSERT_EQ(get32(a.bytes, a.local[0] + 22), 0u);
    ASSERT_EQ(get32(a.bytes, a.locator), 0x07064b50u);
    expect_members(a.bytes, members);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        EXPECT_EQ(entries[i].data_offset, a.data[i]);
        EXPECT_EQ(entries[i].data_offset % 64, 0u);
    }
}

TEST(Zip, ReadsDeflatedEntries) {
    std::vector<Member> members;
    for (int level : {1, 6, 9})
        members.push_back({"archive/text" + std::to_string(level), text_bytes(20000), 8, level});
    members.push_back({"archive/random", random_bytes(5000, 3), 8, 6});
    members.push_back({"archive/empty", {}, 8, 6});
    members.push_back({"archive/stored", random_bytes(100, 4)});
    members.back().align = true;
    for (Member& m : members) m.flags = 0x0808, m.descriptor = true;
    const Archive a = build_zip(members, torch_options());
    expect_members(a.bytes, members);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    EXPECT_LT(entries[0].compressed_size, entries[0].size / 4);
    // zip_view: no view of a deflated entry (nothing inflated: zip_read checks its CRC), a view of a stored one.
    const std::uint8_t* view = a.bytes.data();
    ASSERT_TRUE(view_both(a.bytes, entries[0], true, view).ok());
    EXPECT_EQ(view, nullptr);
    ASSERT_TRUE(view_both(a.bytes, entries.back(), true, view).ok());
    EXPECT_EQ(view, a.bytes.data() + a.data.back());
}

TEST(Zip, ReadsZip64ExtraFieldsInCentralHeaders) {
    for (unsigned fields = 1; fields <= 7; ++fields) {
        std::vector<Member> members = torch_members();
        members.push_back({"archive/deflated", text_bytes(3000), 8});
        for (Member& m : members) m.zip64 = fields;
        const Archive a = build_zip(members, torch_options());
        expect_members(a.bytes, members);
        if (HasFatalFailure()) return;
    }
}

TEST(Zip, DataOffsetUsesTheLocalExtraField) {
    // The central header has a 10-byte extra field of its own, the local one an FB field.
    std::vector<Member> members = torch_members();
    for (Member& m : members) m.central_extra = {0xFE, 0xCA, 6, 0, 1, 2, 3, 4, 5, 6};
    const Archive a = build_zip(members, torch_options());
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    for (std::size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(entries[i].data_offset, a.data[i]);
    expect_members(a.bytes, members);
}

TEST(Zip, ArchiveComment) {
    Options opt = torch_options();
    opt.comment = "made by hand; PK";
    Archive a = build_zip(torch_members(), opt);
    expect_members(a.bytes, torch_members());
    // The comment length must account for exactly the bytes after the EOCD.
    Bytes longer = a.bytes;
    longer.push_back('!');
    expect_error(longer, Code::corrupt_zip, "no end-of-central-directory record");
    Bytes shorter = a.bytes;
    shorter.pop_back();
    expect_error(shorter, Code::corrupt_zip, "no end-of-central-directory record");
}

// --- refusing bad archives -----------------------------------------------------

TEST(Zip, NotAZipArchive) {
    expect_error({}, Code::corrupt_zip, "too small");
    expect_error(Bytes(21, 0), Code::corrupt_zip, "too small");
    expect_error(random_bytes(100000, 5), Code::corrupt_zip, "no end-of-central-directory record");
    // A local header and data, but no directory: nothing is recovered.
    Archive a = build_zip({{"a", bytes_of("x")}});
    expect_error(Bytes(a.bytes.begin(), a.bytes.begin() + std::ptrdiff_t(a.cd_offset)), Code::corrupt_zip,
                 "no end-of-central-directory record");
    // The EOCD must lie within the last 65535 + 22 bytes.
    Bytes far = a.bytes;
    put16(far, a.eocd + 20, 0xFFFF);
    far.insert(far.end(), 0xFFFF, 'c');
    EXPECT_TRUE(list_exact(far).ok());
    far.push_back('c');
    put16(far, a.eocd + 20, 0);  // (a comment of 65536 bytes cannot exist)
    expect_error(far, Code::corrupt_zip, "no end-of-central-directory record");
}

TEST(Zip, MultiDiskArchivesAreRefused) {
    const Archive plain = build_zip({{"a", bytes_of("x")}});
    const Archive torch = torch_archive();
    struct Case {
        const Archive* a;
        std::size_t at;
        int width;
        std::uint64_t value;
    };
    const Case cases[] = {
        {&plain, plain.eocd + 4, 2, 1},                                            // number of this disk
        {&plain, plain.eocd + 6, 2, 1},                                            // disk with the central directory
        {&plain, plain.eocd + 8, 2, 0},                                            // entries on this disk != total
        {&torch, torch.eocd + 4, 2, 1},        {&torch, torch.locator + 4, 4, 1},  // disk with the ZIP64 EOCD record
        {&torch, torch.locator + 16, 4, 2},                                        // total number of disks
        {&torch, torch.zip64_eocd + 16, 4, 1},                                     // ZIP64: number of this disk
        {&torch, torch.zip64_eocd + 20, 4, 1},  // ZIP64: disk with the central directory
        {&torch, torch.zip64_eocd + 24, 8, 4},  // ZIP64: entries on this disk != total
        {&torch, torch.central[1] + 34, 2, 1},  // an entry starting on disk 1
    };
    for (const Case& c : cases) {
        Bytes b = c.a->bytes;
        if (c.width == 2) put16(b, c.at, std::uint32_t(c.value));
        if (c.width == 4) put32(b, c.at, std::uint32_t(c.value));
        if (c.width == 8) put64(b, c.at, c.value);
        expect_error(b, Code::corrupt_zip, "multi-disk");
    }
}

TEST(Zip, DirectoryOutOfBounds) {
    const Archive plain = build_zip({{"a", bytes_of("x")}, {"b", bytes_of("yz")}});
    Bytes b = plain.bytes;
    put32(b, plain.eocd + 16, std::uint32_t(plain.cd_offset + 1));  // directory offset one too far
    expect_error(b, Code::corrupt_zip, "runs past the end-of-central-directory record");
    b = plain.bytes;
    put32(b, plain.eocd + 12, 0xFFFFFFF0u);  // directory size
    expect_error(b, Code::corrupt_zip, "runs past the end-of-central-directory record");
    b = plain.bytes;
    put32(b, plain.eocd + 16, 0xFFFFFFFFu);
    expect_error(b, Code::corrupt_zip, "runs past the end-of-central-directory record");

    const Archive torch = torch_archive();
    b = torch.bytes;
    put64(b, torch.zip64_eocd + 48, ~std::uint64_t(0) - 3);  // ZIP64 directory offset: overflow
    expect_error(b, Code::corrupt_zip, "runs past the end-of-central-directory record");
    b = torch.bytes;
    put64(b, torch.zip64_eocd + 40, std::uint64_t(1) << 63);  // ZIP64 directory size
    expect_error(b, Code::corrupt_zip, "runs past the end-of-central-directory record");
    b = torch.bytes;
    put64(b, torch.locator + 8, torch.zip64_eocd - 1);  // the locator misses the record
    expect_error(b, Code::corrupt_zip, "no ZIP64 end-of-central-directory record");
    b = torch.bytes;
    put64(b, torch.locator + 8, ~std::uint64_t(0));
    expect_error(b, Code::corrupt_zip, "runs past its locator");
    b = torch.bytes;
    put64(b, torch.zip64_eocd + 4, 43);  // record size below the minimum
    expect_error(b, Code::corrupt_zip, "too small or runs past its locator");
    b = torch.bytes;
    put64(b, torch.zip64_eocd + 4, 45);  // record size running into the locator
    expect_error(b, Code::corrupt_zip, "too small or runs past its locator");
}

TEST(Zip, EntryCountMustMatchTheDirectory) {
    const Archive a = build_zip({{"a", bytes_of("x")}, {"b", bytes_of("yz")}});
    Bytes b = a.bytes;
    put16(b, a.eocd + 8, 3);
    put16(b, a.eocd + 10, 3);
    expect_error(b, Code::corrupt_zip, "cannot fit a central directory");
    b = a.bytes;
    put16(b, a.eocd + 8, 1);
    put16(b, a.eocd + 10, 1);
    expect_error(b, Code::corrupt_zip, "bytes after its 1 entries");
    // Entries claimed by the ZIP64 record count, not the EOCD's.
    const Archive t = torch_archive();
    b = t.bytes;
    put64(b, t.zip64_eocd + 24, 4);
    put64(b, t.zip64_eocd + 32, 4);
    expect_error(b, Code::corrupt_zip, "bytes after its 4 entries");
}

TEST(Zip, TooManyEntries) {
    const Archive t = torch_archive();
    Bytes b = t.bytes;
    put64(b, t.zip64_eocd + 24, max_zip_entries + 1);
    put64(b, t.zip64_eocd + 32, max_zip_entries + 1);
    expect_error(b, Code::corrupt_zip, "over the cap");
    put64(b, t.zip64_eocd + 24, ~std::uint64_t(0));
    put64(b, t.zip64_eocd + 32, ~std::uint64_t(0));
    expect_error(b, Code::corrupt_zip, "over the cap");
}

TEST(Zip, BadSignatures) {
    const Archive t = torch_archive();
    Bytes b = t.bytes;
    b[t.central[2]] = 'Q';
    expect_error(b, Code::corrupt_zip, "no central directory header signature");
    b = t.bytes;
    b[t.local[3] + 1] = 'Q';
    expect_error(b, Code::corrupt_zip, "no local header signature");
    b = t.bytes;
    b[t.zip64_eocd + 3] = 0;
    expect_error(b, Code::corrupt_zip, "no ZIP64 end-of-central-directory record");
}

TEST(Zip, LocalNameMustMatchTheCentralName) {
    std::vector<Member> ms = torch_members();
    ms[1].local_name = "archive/byteordeR";
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "differs from the central directory's");
    ms[1].local_name = "archive/byteorder2";
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "differs from the central directory's");
}

TEST(Zip, DuplicateNames) {
    std::vector<Member> ms = torch_members();
    ms[3].name = ms[2].name;
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "appears twice");
}

TEST(Zip, UnsafeNames) {
    for (const std::string& name : {std::string("archive/../etc/passwd"), std::string(".."), std::string("a/..")}) {
        std::vector<Member> ms = torch_members();
        ms[2].name = name;
        expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "contains '..'");
    }
    std::vector<Member> ms = torch_members();
    ms[2].name = "archive\\data\\0";
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "backslash");
    ms[2].name = "/archive/data/0";
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "absolute path");
    ms[2].name = "";
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "empty name");
    ms[2].name = std::string("archive/data/0\0x", 16);
    expect_error(build_zip(ms, torch_options()).bytes, Code::corrupt_zip, "NUL");
}

TEST(Zip, EncryptedEntriesAreUnsupported) {
    for (std::uint16_t flag : {0x0001, 0x0040}) {
        std::vector<Member> ms = torch_members();
        ms[2].flags |= flag;
        expect_error(build_zip(ms, torch_options()).bytes, Code::unsupported_compression, "encrypted");
    }
}

TEST(Zip, OtherMethodsAreUnsupported) {
    const Archive t = torch_archive();
    for (std::uint16_t method : {1, 9, 12, 14, 93, 95, 99}) {
        Bytes b = t.bytes;
        put16(b, t.central[2] + 10, method);
        expect_error(b, Code::unsupported_compression, "compression method " + std::to_string(method));
    }
}

TEST(Zip, StoredSizesMustAgree) {
    const Archive t = torch_archive();
    Bytes b = t.bytes;
    put32(b, t.central[2] + 20, 79);  // compressed size 79, size 80
    expect_error(b, Code::corrupt_zip, "differs from its size");
}

TEST(Zip, EntryDataMustEndBeforeTheDirectory) {
    std::vector<Member> ms = torch_members();
    ms.push_back({"archive/deflated", text_bytes(1000), 8});
    const Archive a = build_zip(ms, torch_options());
    const std::size_t last = ms.size() - 1;
    // The deflated entry's compressed size reaching one byte into the directory.
    Bytes b = a.bytes;
    put32(b, a.central[last] + 20, std::uint32_t(a.cd_offset - a.data[last] + 1));
    expect_error(b, Code::corrupt_zip, "run past the start of the central directory");
    // Stored: both sizes.
    b = a.bytes;
    put32(b, a.central[4] + 20, std::uint32_t(a.cd_offset));
    put32(b, a.central[4] + 24, std::uint32_t(a.cd_offset));
    expect_error(b, Code::corrupt_zip, "run past the start of the central directory");
    // A local header inside the directory, or past the end of the archive.
    b = a.bytes;
    put32(b, a.central[0] + 42, std::uint32_t(a.cd_offset));
    expect_error(b, Code::corrupt_zip, "runs past the start of the central directory");
    b = a.bytes;
    put32(b, a.central[0] + 42, 0xFFFFFFF0u);
    expect_error(b, Code::corrupt_zip, "runs past the start of the central directory");
    // A local extra length reaching into the directory.
    b = a.bytes;
    put16(b, a.local[last] + 28, 0xFFFF);
    expect_error(b, Code::corrupt_zip, "run past the start of the central directory");
}

TEST(Zip, Zip64ExtraFieldMustHoldWhatIsMissing) {
    std::vector<Member> ms = torch_members();
    ms[1].zip64 = z64_size | z64_csize | z64_offset;
    const Archive a = build_zip(ms, torch_options());
    ASSERT_TRUE(list_exact(a.bytes).ok());
    const std::size_t extra = a.central[1] + 46 + ms[1].name.size();
    ASSERT_EQ(get16(a.bytes, extra), 1);
    Bytes b = a.bytes;
    put16(b, extra, 0x7777);  // not a ZIP64 field any more
    expect_error(b, Code::corrupt_zip, "no ZIP64 extra field");
    b = a.bytes;
    put16(b, extra + 2, 16);  // holds two of the three values
    put16(b, extra + 20, 4);  // (the rest becomes an empty field of its own)
    put16(b, extra + 22, 0);
    expect_error(b, Code::corrupt_zip, "the ZIP64 extra field has 16 bytes, needs 24");
    b = a.bytes;
    put16(b, extra + 2, 25);  // runs past the header's extra data
    expect_error(b, Code::corrupt_zip, "runs past the header's extra data");
    b = a.bytes;
    put64(b, extra + 20, a.cd_offset);  // the ZIP64 offset itself is checked
    expect_error(b, Code::corrupt_zip, "runs past the start of the central directory");
}

TEST(Zip, ImpossibleDeflateSizes) {
    std::vector<Member> ms = {{"archive/zeros", Bytes(100000, 0), 8, 9}};
    const Archive a = build_zip(ms);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    // 1032 bytes out per byte in is the most deflate can do.
    Bytes b = a.bytes;
    put32(b, a.central[0] + 24, std::uint32_t(entries[0].compressed_size * 1032 + 1032));
    expect_error(b, Code::corrupt_zip, "cannot hold");
    // A size deflate could reach, but not this stream: zip_read says so.
    b = a.bytes;
    put32(b, a.central[0] + 24, 100001);
    ASSERT_TRUE(list(b, entries).ok());
    Bytes out;
    const Status st = read_both(b, entries[0], out);
    EXPECT_EQ(st.code(), Code::corrupt_zip) << st.to_string();
    EXPECT_TRUE(out.empty());
}

TEST(Zip, CrcMismatch) {
    std::vector<Member> ms = torch_members();
    ms.push_back({"archive/deflated", text_bytes(1000), 8});
    const Archive a = build_zip(ms, torch_options());
    for (std::size_t i : {std::size_t(2), ms.size() - 1}) {
        Bytes b = a.bytes;
        put32(b, a.central[i] + 16, get32(b, a.central[i] + 16) ^ 0x100);
        std::vector<ZipEntry> entries;
        ASSERT_TRUE(list(b, entries).ok());  // listing does not read the data
        Bytes out;
        Status st = read_both(b, entries[i], out);
        EXPECT_EQ(st.code(), Code::checksum_mismatch) << st.to_string();
        EXPECT_TRUE(out.empty());
        // zip_view checks the CRC of the stored entry it views; a deflated
        // entry gets no view and is not inflated (zip_read checked it above).
        const std::uint8_t* view = nullptr;
        st = view_both(b, entries[i], true, view);
        if (ms[i].method == 0) {
            EXPECT_EQ(st.code(), Code::checksum_mismatch) << st.to_string();
        } else {
            EXPECT_TRUE(st.ok()) << st.to_string();
            EXPECT_EQ(view, nullptr);
        }
        EXPECT_TRUE(view_both(b, entries[i], false, view).ok());
        // A CRC of 0 means "not computed" (torch's set_crc32_options(False)).
        put32(b, a.central[i] + 16, 0);
        ASSERT_TRUE(list(b, entries).ok());
        EXPECT_TRUE(read_both(b, entries[i], out).ok());
        EXPECT_TRUE(out == ms[i].data);
        EXPECT_TRUE(view_both(b, entries[i], true, view).ok());
    }
    // Changed data under a correct CRC.
    Bytes b = a.bytes;
    b[a.data[2] + 5] ^= 1;
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(b, entries).ok());
    Bytes out;
    EXPECT_EQ(read_both(b, entries[2], out).code(), Code::checksum_mismatch);
}

TEST(Zip, CorruptDeflateData) {
    const Archive a = build_zip({{"archive/deflated", text_bytes(5000), 8}});
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    Bytes b = a.bytes;
    b[a.data[0]] |= 6;  // block type 3
    Bytes out;
    const Status st = read_both(b, entries[0], out);
    EXPECT_EQ(st.code(), Code::corrupt_zip);
    EXPECT_TRUE(contains(st.message(), "archive/deflated")) << st.message();
    EXPECT_TRUE(contains(st.message(), "block type 3")) << st.message();
}

TEST(Zip, ReadChecksEntriesAgainstTheArchive) {
    // Entries need not come from zip_list: zip_read and zip_view check them again.
    const Archive a = torch_archive();
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    Bytes out;
    const std::uint8_t* view = nullptr;
    ZipEntry e = entries[2];
    e.data_offset = a.bytes.size() - 10;
    EXPECT_EQ(read_both(a.bytes, e, out).code(), Code::corrupt_zip);
    EXPECT_EQ(view_both(a.bytes, e, false, view).code(), Code::corrupt_zip);
    e.data_offset = ~std::uint64_t(0) - 5;
    EXPECT_EQ(read_both(a.bytes, e, out).code(), Code::corrupt_zip);
    e = entries[2];
    e.size += 1;
    EXPECT_EQ(read_both(a.bytes, e, out).code(), Code::corrupt_zip);
    e = entries[2];
    e.method = 8;
    e.size = ~std::uint64_t(0);
    EXPECT_EQ(read_both(a.bytes, e, out).code(), Code::corrupt_zip);
    e = entries[2];
    e.method = 12;
    EXPECT_EQ(read_both(a.bytes, e, out).code(), Code::unsupported_compression);
    EXPECT_EQ(view_both(a.bytes, e, false, view).code(), Code::unsupported_compression);
}

// --- archives outside memory -----------------------------------------------------

namespace {

// A torch-like archive whose third record is a 10 MB float storage.
struct BigArchive {
    std::vector<Member> members;
    Archive archive;
    std::size_t big = 3;  // index of the 10 MB entry
};

BigArchive big_torch_archive() {
    BigArchive b;
    b.members = torch_members();
    Member big{"archive/data/2", random_bytes(10u << 20, 42)};
    big.flags = 0x0808;
    big.descriptor = true;
    big.align = true;
    b.members.insert(b.members.begin() + std::ptrdiff_t(b.big), big);
    b.archive = build_zip(b.members, torch_options());
    return b;
}

}  // namespace

TEST(Zip, ListingOutsideMemoryReadsOnlyTheStructure) {
    const BigArchive b = big_torch_archive();
    const Bytes& bytes = b.archive.bytes;
    ASSERT_GT(bytes.size(), 10u << 20);
    const CountingSource source(bytes);
    std::vector<ZipEntry> entries;
    const Status st = zip_list(source, entries);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(entries.size(), b.members.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        EXPECT_EQ(entries[i].name, b.members[i].name);
        EXPECT_EQ(entries[i].data_offset, b.archive.data[i]);
        EXPECT_EQ(entries[i].size, b.members[i].data.size());
    }
    // The last kilobyte (EOCD and ZIP64 locator), the ZIP64 end record, the
    // directory in one read, then 30 bytes and the name of each local header.
    const std::size_t directory = b.archive.zip64_eocd - b.archive.cd_offset;
    std::size_t locals = 0;
    for (const Member& m : b.members) locals += 30 + m.name.size();
    EXPECT_EQ(source.total, 1024 + 56 + directory + locals);
    EXPECT_EQ(source.reads, 3 + b.members.size());
    EXPECT_EQ(source.largest, 1024u);
    EXPECT_LT(source.total, 4096u);
    std::printf("[          ] zip_list of a %zu-byte archive read %zu bytes in %zu reads (largest %zu)\n", bytes.size(),
                source.total, source.reads, source.largest);

    // The 10 MB entry: one read of exactly its bytes, straight into the destination.
    const ZipEntry& e = entries[b.big];
    source.reset();
    Bytes dst(std::size_t(e.size));
    ASSERT_TRUE(zip_read_into(source, e, dst.data(), true).ok());
    EXPECT_EQ(source.reads, 1u);
    EXPECT_EQ(source.total, e.size);
    EXPECT_EQ(source.largest, e.size);
    EXPECT_TRUE(dst == b.members[b.big].data);
    // zip_read: the same single read; zip_view: no view, nothing read.
    source.reset();
    Bytes out;
    ASSERT_TRUE(zip_read(source, e, out).ok());
    EXPECT_EQ(source.reads, 1u);
    EXPECT_EQ(source.total, e.size);
    EXPECT_TRUE(out == b.members[b.big].data);
    source.reset();
    const std::uint8_t* view = bytes.data();
    ASSERT_TRUE(zip_view(source, e, true, view).ok());
    EXPECT_EQ(view, nullptr);
    EXPECT_EQ(source.reads, 0u);
    // The same archive in memory: a view into it, nothing copied.
    const MemorySource memory(bytes.data(), bytes.size());
    ASSERT_TRUE(zip_view(memory, e, true, view).ok());
    EXPECT_EQ(view, bytes.data() + b.archive.data[b.big]);
}

TEST(Zip, ReadIntoRefusesWhatItCannotCopy) {
    std::vector<Member> ms = torch_members();
    ms.push_back({"archive/deflated", text_bytes(1000), 8});
    ms.push_back({"archive/empty", {}});
    const Archive a = build_zip(ms, torch_options());
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(list(a.bytes, entries).ok());
    const ZipEntry& stored = entries[2];
    const ZipEntry& deflated = entries[5];
    const ZipEntry& empty = entries[6];
    for_each_source(a.bytes, [&](const ByteSource& source) {
        Bytes dst(2000);
        // A deflated entry: zip_read inflates it.
        Status st = zip_read_into(source, deflated, dst.data(), true);
        EXPECT_EQ(st.code(), Code::invalid_argument) << st.to_string();
        EXPECT_TRUE(contains(st.message(), "zip_read")) << st.message();
        // No buffer for a non-empty entry; an empty entry needs none.
        EXPECT_EQ(zip_read_into(source, stored, nullptr, true).code(), Code::invalid_argument);
        EXPECT_TRUE(zip_read_into(source, empty, nullptr, true).ok());
        // Entries are checked against the archive first, as by zip_read.
        ZipEntry e = stored;
        e.data_offset = a.bytes.size() - 10;
        EXPECT_EQ(zip_read_into(source, e, dst.data(), true).code(), Code::corrupt_zip);
        e.data_offset = ~std::uint64_t(0) - 5;
        EXPECT_EQ(zip_read_into(source, e, dst.data(), true).code(), Code::corrupt_zip);
        e = stored;
        e.size += 1;
        EXPECT_EQ(zip_read_into(source, e, dst.data(), true).code(), Code::corrupt_zip);
        e = stored;
        e.method = 12;
        EXPECT_EQ(zip_read_into(source, e, dst.data(), true).code(), Code::unsupported_compression);
        // The CRC: checked when asked, unless it is 0 ("not computed").
        e = stored;
        e.crc32 ^= 1;
        st = zip_read_into(source, e, dst.data(), true);
        EXPECT_EQ(st.code(), Code::checksum_mismatch) << st.to_string();
        EXPECT_TRUE(zip_read_into(source, e, dst.data(), false).ok());
        e.crc32 = 0;
        EXPECT_TRUE(zip_read_into(source, e, dst.data(), true).ok());
        EXPECT_TRUE(std::equal(ms[2].data.begin(), ms[2].data.end(), dst.begin()));
    });
    // Nothing is read before the entry is known to be readable.
    const CountingSource counting(a.bytes);
    Bytes dst(2000);
    ZipEntry e = stored;
    e.data_offset = a.bytes.size() - 10;
    EXPECT_EQ(zip_read_into(counting, e, dst.data(), true).code(), Code::corrupt_zip);
    EXPECT_EQ(zip_read_into(counting, deflated, dst.data(), true).code(), Code::invalid_argument);
    EXPECT_EQ(counting.reads, 0u);
}

TEST(Zip, DeflatedEntriesOutsideMemory) {
    std::vector<Member> ms = {{"archive/text", text_bytes(50000), 8}, {"archive/stored", random_bytes(300, 1)}};
    const Archive a = build_zip(ms, torch_options());
    const CountingSource source(a.bytes);
    std::vector<ZipEntry> entries;
    ASSERT_TRUE(zip_list(source, entries).ok());
    source.reset();
    Bytes out;
    ASSERT_TRUE(zip_read(source, entries[0], out).ok());
    EXPECT_TRUE(out == ms[0].data);
    EXPECT_EQ(source.reads, 1u);  // the compressed bytes, once
    EXPECT_EQ(source.total, entries[0].compressed_size);
    EXPECT_LT(source.total, ms[0].data.size() / 4);
}

TEST(Zip, EndRecordsBehindALongCommentOutsideMemory) {
    // Comments push the end records out of the last kilobyte: the rest of the
    // tail is read then. With a 65535-byte comment the EOCD is the first byte
    // of the tail and the ZIP64 locator lies just before it.
    for (std::size_t length : {std::size_t(900), std::size_t(1100), std::size_t(5000), std::size_t(0xFFFF)}) {
        SCOPED_TRACE(length);
        Options opt = torch_options();
        opt.comment = std::string(length, 'c');
        const Archive a = build_zip(torch_members(), opt);
        std::vector<ZipEntry> entries;
        ASSERT_TRUE(list(a.bytes, entries).ok());  // the same entries through both sources
        ASSERT_EQ(entries.size(), torch_members().size());
        EXPECT_EQ(entries[2].data_offset, a.data[2]);
        const CountingSource source(a.bytes);
        ASSERT_TRUE(zip_list(source, entries).ok());
        const std::size_t tail = std::min<std::size_t>(a.bytes.size(), 65535 + 22);
        EXPECT_LE(source.largest, tail);
        if (length < 1024 - 22 - 20)
            EXPECT_EQ(source.largest, 1024u);  // found in the first read
        else
            EXPECT_EQ(source.largest, tail - 1024);  // the rest of the tail
    }
    // A torch archive whose locator (or record) is damaged reads the same through both.
    Options opt = torch_options();
    opt.comment = std::string(0xFFFF, 'c');
    const Archive a = build_zip(torch_members(), opt);
    Bytes b = a.bytes;
    b[a.locator] = 'Q';  // no locator: the EOCD's own (32-bit) values, which are right
    EXPECT_TRUE(list_exact(b).ok());
    b = a.bytes;
    put64(b, a.locator + 8, a.zip64_eocd - 1);
    expect_error(b, Code::corrupt_zip, "no ZIP64 end-of-central-directory record");
}

// --- hostile bytes -------------------------------------------------------------

namespace {

std::vector<std::pair<std::string, Bytes>> small_archives() {
    std::vector<std::pair<std::string, Bytes>> out;
    std::vector<Member> ms = torch_members();
    ms.push_back({"archive/deflated", text_bytes(400), 8});
    ms.back().flags = 0x0808;
    ms.back().descriptor = true;
    out.emplace_back("torch", build_zip(ms, torch_options()).bytes);
    const std::vector<std::pair<std::string, Bytes>> named = {{"m/data.pkl", text_bytes(50)},
                                                              {"m/data/0", random_bytes(30, 1)}};
    Bytes written;
    zip_write(records_of(named), written);
    out.emplace_back("zip_write", written);
    return out;
}

}  // namespace

TEST(Zip, EveryTruncationIsAnError) {
    // (list_exact lists through both sources: the CountingSource fails the
    // test on any read past the end.) A commented archive too, whose end
    // records a CountingSource finds only in the second read of its tail.
    std::vector<std::pair<std::string, Bytes>> archives = small_archives();
    Options commented = torch_options();
    commented.comment = std::string(1500, 'c');
    archives.emplace_back("commented", build_zip(torch_members(), commented).bytes);
    for (const auto& [name, archive] : archives) {
        ASSERT_TRUE(list_exact(archive).ok()) << name;
        for (std::size_t n = 0; n < archive.size(); ++n) {
            const Status st = list_exact(Bytes(archive.begin(), archive.begin() + std::ptrdiff_t(n)));
            ASSERT_EQ(st.code(), Code::corrupt_zip) << name << " cut to " << n << " bytes: " << st.to_string();
        }
    }
}

TEST(Zip, EverySingleByteChangeIsAnErrorOrReadsConsistently) {
    // A zip has no checksum over its headers, so some changes still list (a
    // changed time, comment-free padding...). Then every entry must read to
    // its listed size or fail with an error.
    std::size_t listed = 0, tries = 0;
    for (const auto& [name, archive] : small_archives()) {
        for (std::size_t i = 0; i < archive.size(); ++i) {
            for (unsigned d : {1u, 0x80u, 0xFFu}) {
                Bytes b = archive;
                b[i] ^= std::uint8_t(d);
                std::vector<ZipEntry> entries;
                const Status st = list(b, entries);
                ++tries;
                if (!st.ok()) {
                    ASSERT_TRUE(st.code() == Code::corrupt_zip || st.code() == Code::unsupported_compression)
                        << st.to_string();
                    continue;
                }
                ++listed;
                for (const ZipEntry& e : entries) {
                    Bytes out;
                    const Status rs = read_both(b, e, out);
                    if (rs.ok())
                        ASSERT_EQ(out.size(), e.size);
                    else
                        ASSERT_TRUE(rs.code() == Code::corrupt_zip || rs.code() == Code::checksum_mismatch)
                            << rs.to_string();
                }
            }
        }
    }
    EXPECT_LT(listed, tries);  // (most changes to the data itself still list)
    EXPECT_GT(listed, 0u);
}

// --- interoperability --------------------------------------------------------

TEST(Zip, PythonZipfileReadsWrittenArchives) {
    const char* python = "/usr/bin/python3";
    if (::access(python, X_OK) != 0) GTEST_SKIP() << python << " is not installed";

    char dir_template[] = "/tmp/modelkeep_zip_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string dir = dir_template;

    // A torch-like archive, and one with more entries than the EOCD can count (ZIP64 end records).
    std::vector<std::pair<std::string, Bytes>> small = {{"archive/data.pkl", text_bytes(333)},
                                                        {"archive/data/0", random_bytes(1000, 1)},
                                                        {"archive/data/1", {}},
                                                        {"archive/\xC3\xBC\xC3\xA9", bytes_of("utf-8 name")},
                                                        {"archive/data/2", random_bytes(100000, 2)},
                                                        {"archive/version", bytes_of("3\n")}};
    std::vector<std::pair<std::string, Bytes>> many;
    for (int i = 0; i < 66000; ++i) many.push_back({"many/" + std::to_string(i), bytes_of(std::to_string(i % 10))});

    std::string expected, files;
    int index = 0;
    for (const auto* named : {&small, &many}) {
        Bytes archive;
        zip_write(records_of(*named), archive);
        const std::string path = dir + "/" + std::to_string(index++) + ".zip";
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(archive.data()), std::streamsize(archive.size()));
        files += " " + path;
        expected += path + " " + std::to_string(named->size()) + "\n";
        // (Every entry of the small archive, every 1000th of the big one.)
        const std::size_t step = named->size() < 1000 ? 1 : 1000;
        for (std::size_t i = 0; i < named->size(); i += step) {
            const auto& [name, data] = (*named)[i];
            static const char* hex = "0123456789abcdef";
            std::string line;
            for (unsigned char c : name) line += {hex[c >> 4], hex[c & 15]};
            line += " " + std::to_string(data.size()) + " ";
            for (unsigned char c : data) line += {hex[c >> 4], hex[c & 15]};
            expected += line + "\n";
        }
    }

    // testzip() reads every entry and checks its CRC; then names, sizes and contents.
    const std::string script =
        "import sys, zipfile\n"
        "for path in sys.argv[1:]:\n"
        "    with zipfile.ZipFile(path) as z:\n"
        "        assert z.testzip() is None\n"
        "        infos = z.infolist()\n"
        "        print(path, len(infos))\n"
        "        for i in infos[::1 if len(infos) < 1000 else 1000]:\n"
        "            assert i.compress_type == zipfile.ZIP_STORED\n"
        "            print(i.filename.encode('utf-8').hex(), i.file_size, z.read(i).hex())\n";
    const std::string cmd = std::string(python) + " -c \"" + script + "\"" + files + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    char buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
    const int status = ::pclose(pipe);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(status, 0) << output.substr(0, 2000);
    EXPECT_TRUE(output == expected) << output.substr(0, 2000);
}
