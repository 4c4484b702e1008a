// Tests of inflate.hpp: zlib (raw deflate, windowBits -15) is the reference
// compressor for every level and strategy and many shapes of data; hand-built
// streams (a small bit writer below) cover each malformation the decoder must
// refuse; truncations and random changes must give errors, never crashes
// (this file also runs under ASan + UBSan, with inputs and outputs in
// exactly-sized buffers).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "inflate.hpp"
#include "rng.hpp"
#include "zlib_reference.hpp"

using namespace modelkeep;

namespace {

using Bytes = std::vector<std::uint8_t>;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Inflates into a buffer of exactly `size` bytes, from a copy of the input in
// an exactly-sized buffer (so ASan sees any read or write past either end).
Status inflate_to(const Bytes& in, std::size_t size, Bytes& out) {
    const Bytes exact_in(in);
    out.assign(size, 0xAA);
    return inflate_raw(exact_in.data(), exact_in.size(), out.data(), out.size());
}

// --- data of different shapes ----------------------------------------------

enum class Shape { random, text, runs, repeats, small_alphabet, zeros };
const Shape all_shapes[] = {Shape::random,  Shape::text,           Shape::runs,
                            Shape::repeats, Shape::small_alphabet, Shape::zeros};

const char* shape_name(Shape s) {
    switch (s) {
        case Shape::random: return "random";
        case Shape::text: return "text";
        case Shape::runs: return "runs";
        case Shape::repeats: return "repeats";
        case Shape::small_alphabet: return "small_alphabet";
        case Shape::zeros: return "zeros";
    }
    return "?";
}

Bytes make_data(Shape shape, std::size_t n, std::uint64_t seed) {
    Rng rng(seed);
    Bytes b;
    b.reserve(n);
    static const char* words[] = {"weight", "bias", "layer",        "norm", "the", "tensor",  "archive/data/",
                                  "0",      "17",   "running_mean", "\n",   ", ",  "float32", "torch"};
    switch (shape) {
        case Shape::random:
            while (b.size() < n) b.push_back(std::uint8_t(rng.next_u32()));
            break;
        case Shape::text:
            while (b.size() < n) {
                const std::string w = words[rng.next_u32() % (sizeof(words) / sizeof(*words))];
                b.insert(b.end(), w.begin(), w.end());
                b.push_back(' ');
            }
            break;
        case Shape::runs:
            while (b.size() < n) b.insert(b.end(), 1 + rng.next_u32() % 300, std::uint8_t(rng.next_u32() % 4));
            break;
        case Shape::repeats:
            // A random block, then copies of pieces of it from up to ~32 KiB back.
            while (b.size() < n && b.size() < 40000) b.push_back(std::uint8_t(rng.next_u32()));
            while (b.size() < n) {
                const std::size_t back = 1 + rng.next_u32() % std::min<std::size_t>(b.size(), 32768);
                const std::size_t len = 3 + rng.next_u32() % 300;
                for (std::size_t i = 0; i < len; ++i) b.push_back(b[b.size() - back]);
                if (rng.next_u32() % 4 == 0) b.push_back(std::uint8_t(rng.next_u32()));
            }
            break;
        case Shape::small_alphabet:
            while (b.size() < n) b.push_back(std::uint8_t('a' + rng.next_u32() % 3));
            break;
        case Shape::zeros: b.assign(n, 0); break;
    }
    b.resize(n);
    return b;
}

void expect_round_trip(const Bytes& data, const Bytes& compressed, const std::string& what) {
    Bytes out;
    const Status st = inflate_to(compressed, data.size(), out);
    ASSERT_TRUE(st.ok()) << what << ": " << st.to_string();
    ASSERT_TRUE(out == data) << what << ": wrong bytes";
}

// --- a bit writer for hand-built streams (RFC 1951 3.1.1) -------------------

struct BitWriter {
    Bytes bytes;
    unsigned used = 0;  // bits used in the last byte

    // A value, least significant bit first (header fields, extra bits).
    void bits(std::uint32_t v, unsigned n) {
        for (unsigned i = 0; i < n; ++i) bit((v >> i) & 1);
    }
    // A Huffman code, most significant bit first.
    void code(std::uint32_t c, unsigned len) {
        for (unsigned i = len; i-- > 0;) bit((c >> i) & 1);
    }
    void bit(unsigned b) {
        if (used == 0) bytes.push_back(0);
        bytes.back() |= std::uint8_t(b << used);
        used = (used + 1) % 8;
    }
    void align() { used = 0; }
};

// Canonical codes of a set of code lengths (RFC 3.2.2).
std::vector<std::uint32_t> canonical(const std::vector<std::uint8_t>& lengths) {
    unsigned count[16] = {}, next[16] = {};
    for (auto l : lengths) ++count[l];
    count[0] = 0;
    for (unsigned l = 1, c = 0; l < 16; ++l) next[l] = c = (c + count[l - 1]) << 1;
    std::vector<std::uint32_t> codes(lengths.size());
    for (std::size_t s = 0; s < lengths.size(); ++s)
        if (lengths[s]) codes[s] = next[lengths[s]]++;
    return codes;
}

// The fixed code (RFC 3.2.6).
void fixed_literal(BitWriter& w, unsigned sym) {
    if (sym < 144)
        w.code(0x30 + sym, 8);
    else if (sym < 256)
        w.code(0x190 + sym - 144, 9);
    else if (sym < 280)
        w.code(sym - 256, 7);
    else
        w.code(0xC0 + sym - 280, 8);
}
void fixed_header(BitWriter& w, bool final) {
    w.bits(final, 1);
    w.bits(1, 2);
}

// A dynamic block (RFC 3.2.7), with a code length code where 0..12 have 4
// bits and 13..18 have 5 (a complete code), so every code length symbol is usable.
struct Dynamic {
    std::vector<std::uint8_t> litlen, dist;
    std::vector<std::uint8_t> precode = std::vector<std::uint8_t>(19, 4);
    // (code length symbol, extra bits value); empty means "each length once".
    std::vector<std::pair<unsigned, unsigned>> items;
    unsigned hlit_field = ~0u, hdist_field = ~0u;

    Dynamic() {
        for (unsigned s = 13; s < 19; ++s) precode[s] = 5;
    }

    std::vector<std::uint32_t> litcodes, distcodes;

    void header(BitWriter& w, bool final) {
        static const unsigned order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
        w.bits(final, 1);
        w.bits(2, 2);
        w.bits(hlit_field != ~0u ? hlit_field : unsigned(litlen.size() - 257), 5);
        w.bits(hdist_field != ~0u ? hdist_field : unsigned(dist.size() - 1), 5);
        w.bits(19 - 4, 4);
        for (unsigned i = 0; i < 19; ++i) w.bits(precode[order[i]], 3);
        const auto pc = canonical(precode);
        if (items.empty()) {
            for (auto l : litlen) items.emplace_back(l, 0);
            for (auto l : dist) items.emplace_back(l, 0);
        }
        for (auto [sym, extra] : items) {
            w.code(pc[sym], precode[sym]);
            if (sym == 16) w.bits(extra, 2);
            if (sym == 17) w.bits(extra, 3);
            if (sym == 18) w.bits(extra, 7);
        }
        litcodes = canonical(litlen);
        distcodes = canonical(dist);
    }
    void literal(BitWriter& w, unsigned sym) { w.code(litcodes[sym], litlen[sym]); }
    void distance(BitWriter& w, unsigned sym) { w.code(distcodes[sym], dist[sym]); }
};

// Literal/length lengths: 'a', 'b', 256 and 257 (length 3) with 2 bits each.
std::vector<std::uint8_t> four_literal_codes() {
    std::vector<std::uint8_t> l(258, 0);
    l['a'] = l['b'] = l[256] = l[257] = 2;
    return l;
}

Status decode(const Bytes& stream, std::size_t size, Bytes& out) { return inflate_to(stream, size, out); }

void expect_corrupt(const Bytes& stream, std::size_t size, const std::string& message_part) {
    Bytes out;
    const Status st = inflate_to(stream, size, out);
    EXPECT_EQ(st.code(), Code::corrupt_zip) << st.to_string();
    EXPECT_TRUE(contains(st.message(), message_part)) << "'" << st.message() << "' lacks '" << message_part << "'";
}

}  // namespace

// --- zlib as the reference ---------------------------------------------------

TEST(Inflate, ZlibStreamsCoverAllThreeBlockTypes) {
    // So the round trips below really exercise stored, fixed and dynamic blocks.
    const Bytes text = make_data(Shape::text, 5000, 1);
    EXPECT_EQ((zlib_deflate(text, 0)[0] >> 1) & 3, 0);           // stored
    EXPECT_EQ((zlib_deflate(text, 6, Z_FIXED)[0] >> 1) & 3, 1);  // fixed Huffman
    EXPECT_EQ((zlib_deflate(text, 6)[0] >> 1) & 3, 2);           // dynamic Huffman
}

TEST(Inflate, DecodesZlibAtEveryLevelAndStrategy) {
    const std::size_t sizes[] = {0, 1, 3, 17, 258, 1000, 65535, 65536, 65537, 200000};
    const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
    int streams = 0;
    for (Shape shape : all_shapes) {
        for (std::size_t size : sizes) {
            const Bytes data = make_data(shape, size, size + 11);
            for (int level = 0; level <= 9; ++level) {
                if (size > 60000 && level != 0 && level != 1 && level != 6 && level != 9) continue;
                for (int strategy : strategies) {
                    const std::string what = std::string(shape_name(shape)) + " size " + std::to_string(size) +
                                             " level " + std::to_string(level) + " strategy " +
                                             std::to_string(strategy);
                    expect_round_trip(data, zlib_deflate(data, level, strategy), what);
                    if (HasFatalFailure()) return;
                    ++streams;
                }
            }
        }
    }
    EXPECT_GT(streams, 1500);
}

TEST(Inflate, DecodesMegabyteInputs) {
    const std::size_t size = (1u << 20) + 12345;
    for (Shape shape : all_shapes) {
        const Bytes data = make_data(shape, size, 99);
        for (int strategy : {Z_DEFAULT_STRATEGY, Z_FIXED, Z_HUFFMAN_ONLY, Z_RLE}) {
            expect_round_trip(data, zlib_deflate(data, strategy == Z_DEFAULT_STRATEGY ? 9 : 6, strategy),
                              std::string(shape_name(shape)) + " strategy " + std::to_string(strategy));
            if (HasFatalFailure()) return;
        }
        expect_round_trip(data, zlib_deflate(data, 0), std::string(shape_name(shape)) + " level 0");
    }
}

TEST(Inflate, DecodesSmallBlocksAndSmallWindows) {
    // memLevel 1 makes many short blocks (each dynamic block rebuilds its
    // tables); a 512-byte window keeps distances short.
    for (Shape shape : all_shapes) {
        const Bytes data = make_data(shape, 300000, 5);
        expect_round_trip(data, zlib_deflate(data, 6, Z_DEFAULT_STRATEGY, 1),
                          std::string(shape_name(shape)) + " memLevel 1");
        expect_round_trip(data, zlib_deflate(data, 9, Z_DEFAULT_STRATEGY, 9, 9),
                          std::string(shape_name(shape)) + " window 9");
        if (HasFatalFailure()) return;
    }
}

TEST(Inflate, DecodesEveryByteValueAndEveryLength) {
    // Every literal value, and every match length 3..258 (each length symbol and extra).
    Bytes data;
    for (int i = 0; i < 256; ++i) data.push_back(std::uint8_t(i));
    Rng rng(3);
    for (std::size_t len = 3; len <= 258; ++len) {
        data.push_back(std::uint8_t(rng.next_u32()));  // break the previous run
        data.push_back(std::uint8_t(rng.next_u32()));
        for (std::size_t i = 0; i < len; ++i) data.push_back(data[data.size() - 257]);
    }
    for (int level = 1; level <= 9; ++level)
        for (int strategy : {Z_DEFAULT_STRATEGY, Z_FIXED})
            expect_round_trip(data, zlib_deflate(data, level, strategy), "level " + std::to_string(level));
}

// --- sizes -----------------------------------------------------------------

TEST(Inflate, OutputSizeMustMatchExactly) {
    for (Shape shape : {Shape::text, Shape::zeros, Shape::random}) {
        const Bytes data = make_data(shape, 3000, 1);
        const Bytes z = zlib_deflate(data, 6);
        Bytes out;
        Status st = inflate_to(z, data.size() - 1, out);
        EXPECT_EQ(st.code(), Code::corrupt_zip) << shape_name(shape);
        EXPECT_TRUE(contains(st.message(), "more than the expected 2999 bytes")) << st.message();
        st = inflate_to(z, data.size() + 1, out);
        EXPECT_EQ(st.code(), Code::corrupt_zip) << shape_name(shape);
        EXPECT_TRUE(contains(st.message(), "decodes to 3000 bytes, not the expected 3001")) << st.message();
        EXPECT_EQ(inflate_to(z, 0, out).code(), Code::corrupt_zip);
        EXPECT_EQ(inflate_to(z, data.size() * 2, out).code(), Code::corrupt_zip);
    }
    // A stream ending in a long match: the match itself overflows a short buffer.
    const Bytes zeros(1000, 0);
    const Bytes z = zlib_deflate(zeros, 9);
    for (std::size_t n : {1u, 2u, 500u, 998u, 999u}) {
        Bytes out;
        EXPECT_EQ(inflate_to(z, n, out).code(), Code::corrupt_zip) << n;
    }
}

TEST(Inflate, EmptyStreams) {
    Bytes out;
    // No input at all is not a stream.
    EXPECT_EQ(inflate_raw(nullptr, 0, nullptr, 0).code(), Code::corrupt_zip);
    // An empty final stored block, and an empty final fixed block.
    EXPECT_TRUE(decode({0x01, 0x00, 0x00, 0xFF, 0xFF}, 0, out).ok());
    EXPECT_TRUE(decode({0x03, 0x00}, 0, out).ok());
    EXPECT_EQ(decode({0x03, 0x00}, 1, out).code(), Code::corrupt_zip);
    // zlib's empty stream.
    EXPECT_TRUE(decode(zlib_deflate({}, 6), 0, out).ok());
}

TEST(Inflate, TrailingBytesAfterTheFinalBlockAreIgnored) {
    const Bytes data = make_data(Shape::text, 100, 1);
    Bytes z = zlib_deflate(data, 6);
    z.push_back(0x12);
    z.push_back(0x34);
    expect_round_trip(data, z, "with trailing bytes");
}

// --- hand-built streams ----------------------------------------------------

TEST(Inflate, StoredBlocks) {
    Bytes out;
    // Non-final "ab", then final "c".
    const Bytes ok = {0x00, 0x02, 0x00, 0xFD, 0xFF, 'a', 'b', 0x01, 0x01, 0x00, 0xFE, 0xFF, 'c'};
    ASSERT_TRUE(decode(ok, 3, out).ok());
    EXPECT_EQ(std::string(out.begin(), out.end()), "abc");
    // LEN and NLEN disagree.
    expect_corrupt({0x01, 0x02, 0x00, 0xFD, 0xFE, 'a', 'b'}, 2, "does not match its complement");
    // Fewer data bytes than LEN.
    expect_corrupt({0x01, 0x03, 0x00, 0xFC, 0xFF, 'a', 'b'}, 3, "ends before");
    // LEN/NLEN cut short.
    expect_corrupt({0x01, 0x03, 0x00}, 3, "ends before");
    // The stream ends after a non-final block.
    expect_corrupt({0x00, 0x01, 0x00, 0xFE, 0xFF, 'a'}, 1, "ends before");
}

TEST(Inflate, StoredBlockAfterHuffmanBitsStartsAtTheNextByte) {
    // Fixed block "x" (not final), then a stored final block "yz".
    BitWriter w;
    fixed_header(w, false);
    fixed_literal(w, 'x');
    fixed_literal(w, 256);
    w.bits(1, 1);  // final
    w.bits(0, 2);  // stored
    w.align();
    for (std::uint8_t b : Bytes{0x02, 0x00, 0xFD, 0xFF, 'y', 'z'}) w.bytes.push_back(b);
    Bytes out;
    const Status st = decode(w.bytes, 3, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "xyz");
}

TEST(Inflate, InvalidBlockType) {
    expect_corrupt({0x07}, 0, "invalid block type 3");        // final, type 3
    expect_corrupt({0x06, 0x00}, 0, "invalid block type 3");  // not final, type 3
}

TEST(Inflate, FixedBlockWithMatch) {
    // "ab" then length 5 at distance 2 → "abababa".
    BitWriter w;
    fixed_header(w, true);
    fixed_literal(w, 'a');
    fixed_literal(w, 'b');
    fixed_literal(w, 259);  // length 5
    w.code(1, 5);           // distance code 1: distance 2
    fixed_literal(w, 256);
    Bytes out;
    const Status st = decode(w.bytes, 7, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "abababa");
}

TEST(Inflate, DistanceBeforeTheStartIsAnError) {
    for (unsigned literals : {0u, 1u, 2u}) {
        // `literals` bytes, then length 3 at distance 3.
        BitWriter w;
        fixed_header(w, true);
        for (unsigned i = 0; i < literals; ++i) fixed_literal(w, 'a');
        fixed_literal(w, 257);
        w.code(2, 5);  // distance code 2: distance 3
        fixed_literal(w, 256);
        expect_corrupt(w.bytes, literals + 3, "reaches before the start of the output");
    }
}

TEST(Inflate, MaximumDistanceAndLength) {
    // 32768 stored bytes, then length 258 at distance 32768 (code 29, extra 8191).
    Rng rng(8);
    Bytes expected(32768);
    for (auto& b : expected) b = std::uint8_t(rng.next_u32());
    BitWriter w;
    w.bits(0, 3);  // stored, not final
    w.align();
    for (std::uint8_t b : Bytes{0x00, 0x80, 0xFF, 0x7F}) w.bytes.push_back(b);
    w.bytes.insert(w.bytes.end(), expected.begin(), expected.end());
    fixed_header(w, true);
    fixed_literal(w, 285);  // length 258
    w.code(29, 5);
    w.bits(8191, 13);
    fixed_literal(w, 256);
    expected.insert(expected.end(), expected.begin(), expected.begin() + 258);
    Bytes out;
    const Status st = decode(w.bytes, expected.size(), out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_TRUE(out == expected);
}

TEST(Inflate, FixedCodesThatNeverOccurAreErrors) {
    for (unsigned sym : {286u, 287u}) {
        BitWriter w;
        fixed_header(w, true);
        fixed_literal(w, sym);
        w.code(0, 5);
        fixed_literal(w, 256);
        expect_corrupt(w.bytes, 3, "invalid literal/length symbol " + std::to_string(sym));
    }
    for (unsigned dsym : {30u, 31u}) {
        BitWriter w;
        fixed_header(w, true);
        fixed_literal(w, 'a');
        fixed_literal(w, 257);
        w.code(dsym, 5);
        fixed_literal(w, 256);
        expect_corrupt(w.bytes, 4, "invalid distance symbol " + std::to_string(dsym));
    }
}

TEST(Inflate, MissingEndOfBlockBitsAreNotReadAsZeros) {
    // Fixed "a" + end-of-block (7 zero bits) = 18 bits: the last byte holds
    // only zero bits of the end-of-block code. Without it, the decoder must
    // not pretend the missing bits were zeros.
    BitWriter w;
    fixed_header(w, true);
    fixed_literal(w, 'a');
    fixed_literal(w, 256);
    ASSERT_EQ(w.bytes.size(), 3u);
    ASSERT_EQ(w.bytes[2], 0);
    Bytes out;
    ASSERT_TRUE(decode(w.bytes, 1, out).ok());
    expect_corrupt(Bytes(w.bytes.begin(), w.bytes.begin() + 2), 1, "ends before its final block");
}

TEST(Inflate, DynamicBlock) {
    Dynamic d;
    d.litlen = four_literal_codes();
    d.dist = {1, 1};  // distances 1 and 2
    BitWriter w;
    d.header(w, true);
    d.literal(w, 'a');
    d.literal(w, 'b');
    d.literal(w, 257);
    d.distance(w, 1);
    d.literal(w, 256);
    Bytes out;
    const Status st = decode(w.bytes, 5, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "ababa");
}

TEST(Inflate, DynamicBlockWithRepeatCodes) {
    // The 258 + 3 code lengths below, sent with every kind of run: 97 zeros
    // (18), 'a' = 'b' = 2, 157 zeros (18, 17, 17), 256 = 2 and three repeats of
    // it (16: 257 and the first two distances), the last distance = 1.
    std::vector<std::uint8_t> lengths(97, 0);
    lengths.insert(lengths.end(), {2, 2});
    lengths.insert(lengths.end(), 157, 0);
    lengths.insert(lengths.end(), {2, 2, 2, 2, 1});
    ASSERT_EQ(lengths.size(), 258u + 3u);
    Dynamic d;
    d.litlen.assign(lengths.begin(), lengths.begin() + 258);
    d.dist.assign(lengths.begin() + 258, lengths.end());  // {2, 2, 1}: complete
    d.items = {{18, 97 - 11}, {2, 0}, {2, 0}, {18, 138 - 11}, {17, 10 - 3}, {17, 9 - 3}, {2, 0}, {16, 0}, {1, 0}};
    BitWriter w;
    d.header(w, true);
    d.literal(w, 'a');
    d.literal(w, 'b');
    d.literal(w, 257);
    d.distance(w, 1);  // distance 2
    d.literal(w, 257);
    d.distance(w, 2);  // distance 3
    d.literal(w, 256);
    Bytes out;
    const Status st = decode(w.bytes, 8, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "ababaaba");
}

TEST(Inflate, SingleDistanceCodeIsAllowed) {
    // RFC 3.2.7: one distance code of one bit (the other one-bit code unused).
    Dynamic d;
    d.litlen = four_literal_codes();
    d.dist = {1};  // distance 1 only
    BitWriter w;
    d.header(w, true);
    d.literal(w, 'a');
    d.literal(w, 257);
    d.distance(w, 0);
    d.literal(w, 256);
    Bytes out;
    const Status st = decode(w.bytes, 4, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "aaaa");

    // The unused code (bit 1) is an error.
    BitWriter bad;
    d.header(bad, true);
    d.literal(bad, 'a');
    d.literal(bad, 257);
    bad.code(1, 1);
    d.literal(bad, 256);
    expect_corrupt(bad.bytes, 4, "invalid distance code");
}

TEST(Inflate, NoDistanceCodesMeansLiteralsOnly) {
    Dynamic d;
    d.litlen = four_literal_codes();
    d.dist = {0};
    BitWriter w;
    d.header(w, true);
    d.literal(w, 'b');
    d.literal(w, 'a');
    d.literal(w, 256);
    Bytes out;
    const Status st = decode(w.bytes, 2, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(std::string(out.begin(), out.end()), "ba");

    BitWriter bad;
    d.header(bad, true);
    d.literal(bad, 'a');
    d.literal(bad, 257);
    bad.code(0, 1);
    d.literal(bad, 256);
    expect_corrupt(bad.bytes, 4, "invalid distance code");
}

TEST(Inflate, BadCodeLengthSetsAreErrors) {
    auto block = [](Dynamic d) {
        BitWriter w;
        d.header(w, true);
        return w.bytes;
    };
    Dynamic base;
    base.litlen = four_literal_codes();
    base.dist = {1, 1};

    Dynamic d = base;
    d.litlen['c'] = 2;  // five 2-bit codes
    expect_corrupt(block(d), 1, "literal/length code lengths are over-subscribed");
    d = base;
    d.litlen['b'] = 0;  // three 2-bit codes
    expect_corrupt(block(d), 1, "literal/length code lengths are incomplete");
    d = base;
    d.litlen = {};
    d.litlen.assign(258, 0);
    d.litlen[256] = 1;  // a lone 1-bit end-of-block: incomplete, only allowed for distances
    expect_corrupt(block(d), 0, "literal/length code lengths are incomplete");
    d = base;
    d.litlen[256] = 0;
    d.litlen['c'] = 2;  // complete, but no end-of-block
    expect_corrupt(block(d), 1, "without an end-of-block code");
    d = base;
    d.dist = {1, 1, 1};
    expect_corrupt(block(d), 1, "distance code lengths are over-subscribed");
    d = base;
    d.dist = {2, 2};  // two of four 2-bit codes: incomplete, and not a single code
    expect_corrupt(block(d), 1, "distance code lengths are incomplete");
    d = base;
    d.dist = {2};  // a single code, but of 2 bits
    expect_corrupt(block(d), 1, "distance code lengths are incomplete");
    d = base;
    d.precode.assign(19, 4);  // 19 four-bit codes: over-subscribed
    expect_corrupt(block(d), 1, "code length code lengths are over-subscribed");
    d = base;
    d.precode.assign(19, 5);  // incomplete
    expect_corrupt(block(d), 1, "code length code lengths are incomplete");
    d = base;
    d.precode.assign(19, 0);  // empty
    expect_corrupt(block(d), 1, "code length code lengths are incomplete");
}

TEST(Inflate, BadDynamicHeadersAreErrors) {
    auto block = [](Dynamic d) {
        BitWriter w;
        d.header(w, true);
        return w.bytes;
    };
    Dynamic base;
    base.litlen = four_literal_codes();
    base.dist = {1, 1};

    Dynamic d = base;
    d.hlit_field = 30;  // 287 literal/length codes
    expect_corrupt(block(d), 1, "287 literal/length codes");
    d = base;
    d.hdist_field = 30;  // 31 distance codes
    expect_corrupt(block(d), 1, "31 distance codes");
    d = base;
    d.items = {{16, 0}};  // repeat with nothing before
    expect_corrupt(block(d), 1, "no previous length");
    d = base;
    // 258 of the 258 + 2 lengths, then a run of 3.
    d.items = {{18, 127}, {18, 105}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {17, 0}};
    expect_corrupt(block(d), 1, "runs past the 260 code lengths");
    d = base;
    d.items = {{18, 127}, {18, 105}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {16, 0}};
    expect_corrupt(block(d), 1, "runs past the 260 code lengths");
}

// --- hostile input ---------------------------------------------------------

namespace {

std::vector<std::pair<std::string, Bytes>> sample_streams() {
    std::vector<std::pair<std::string, Bytes>> s;
    const Bytes text = make_data(Shape::text, 3000, 4);
    s.emplace_back("dynamic", zlib_deflate(text, 6));
    s.emplace_back("fixed", zlib_deflate(text, 6, Z_FIXED));
    s.emplace_back("stored", zlib_deflate(text, 0));
    s.emplace_back("huffman", zlib_deflate(make_data(Shape::random, 700, 4), 6, Z_HUFFMAN_ONLY));
    s.emplace_back("runs", zlib_deflate(make_data(Shape::runs, 5000, 4), 9, Z_RLE));
    s.emplace_back("short fixed", zlib_deflate(make_data(Shape::zeros, 5, 4), 6, Z_FIXED));
    return s;
}

std::size_t sample_size(const std::string& name) {
    if (name == "huffman") return 700;
    if (name == "runs") return 5000;
    if (name == "short fixed") return 5;
    return 3000;
}

}  // namespace

TEST(Inflate, EveryTruncationIsAnError) {
    for (const auto& [name, z] : sample_streams()) {
        const std::size_t size = sample_size(name);
        Bytes out;
        ASSERT_TRUE(inflate_to(z, size, out).ok()) << name;
        for (std::size_t n = 0; n < z.size(); ++n) {
            const Bytes cut(z.begin(), z.begin() + std::ptrdiff_t(n));
            const Status st = inflate_to(cut, size, out);
            ASSERT_EQ(st.code(), Code::corrupt_zip) << name << " cut to " << n << " of " << z.size() << " bytes";
        }
    }
}

TEST(Inflate, RandomChangesGiveAnErrorOrTheRequestedSize) {
    // Deflate has no checksum: a changed stream may still decode. It must then
    // fill exactly the requested bytes; otherwise fail cleanly.
    Rng rng(17);
    std::size_t failures = 0, tries = 0;
    for (const auto& [name, z] : sample_streams()) {
        const std::size_t size = sample_size(name);
        for (int i = 0; i < 3000; ++i) {
            Bytes m = z;
            const int changes = 1 + int(rng.next_u32() % 3);
            for (int c = 0; c < changes; ++c) m[rng.next_u32() % m.size()] ^= std::uint8_t(1 + rng.next_u32() % 255);
            Bytes out;
            const Status st = inflate_to(m, size, out);
            ++tries;
            if (st.ok()) {
                ASSERT_EQ(out.size(), size);
            } else {
                ASSERT_EQ(st.code(), Code::corrupt_zip) << st.to_string();
                ++failures;
            }
        }
    }
    // Most changes break the stream (the decoder is not accepting everything).
    EXPECT_GT(failures, tries / 2);
}

TEST(Inflate, RandomBytesNeverCrash) {
    Rng rng(23);
    for (int i = 0; i < 20000; ++i) {
        Bytes junk(1 + rng.next_u32() % 200);
        for (auto& b : junk) b = std::uint8_t(rng.next_u32());
        if (i % 3 == 0) junk[0] = std::uint8_t((junk[0] & ~6u) | 4u);  // often a dynamic block header
        Bytes out;
        const Status st = inflate_to(junk, rng.next_u32() % 600, out);
        ASSERT_TRUE(st.ok() || st.code() == Code::corrupt_zip);
    }
}
