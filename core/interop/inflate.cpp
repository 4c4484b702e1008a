// inflate.cpp — a raw DEFLATE decoder, written from RFC 1951.
//
// Bits are read least-significant first (RFC 3.1.1) into a 64-bit buffer.
// Huffman codes are packed most-significant bit first, so the tables are
// indexed by the bit-reversed code: a primary table on the next `bits` input
// bits, and for longer codes a link to a subtable on the bits after those.
// Past the end of the input the buffer is topped up with zero bytes that are
// counted ("phantom" bits); consuming any of them means the stream was cut
// short. Every write is checked against the end of the output first.
#include "inflate.hpp"

#include <cstring>
#include <string>
#include <vector>

namespace modelkeep {

namespace {

// --- Huffman decoding tables ----------------------------------------------
//
// A table entry (32 bits): 0 is "no code here" (an unused code of an
// incomplete set), otherwise
//   bits 0-4   code length in bits (a leaf) or subtable index bits (a link)
//   bits 5-6   kind: 1 leaf, 2 link
//   bits 16-31 the symbol (leaf) or the subtable's first entry (link)

constexpr unsigned max_code_bits = 15;  // RFC 3.2.7: code lengths are 0..15
constexpr std::uint32_t kind_leaf = 1u << 5, kind_link = 2u << 5, kind_mask = 3u << 5;

constexpr std::uint32_t leaf(unsigned symbol, unsigned length) {
    return std::uint32_t(symbol) << 16 | kind_leaf | length;
}
constexpr std::uint32_t link(unsigned first, unsigned sub_bits) {
    return std::uint32_t(first) << 16 | kind_link | sub_bits;
}

struct Table {
    // primary: the most index bits of the primary table; symbols: the size of
    // the alphabet. One subtable of at most 2^(15 - primary) entries per long
    // code bounds the space the subtables can need.
    Table(unsigned primary, unsigned symbols)
        : entries((std::size_t(1) << primary) + (std::size_t(symbols) << (max_code_bits - primary))),
          max_primary(primary) {}

    std::vector<std::uint32_t> entries;
    unsigned max_primary;
    unsigned bits = 0;  // index bits of the primary table of the current code (<= max_primary)
};

unsigned reverse_bits(unsigned code, unsigned length) {
    unsigned r = 0;
    for (unsigned i = 0; i < length; ++i, code >>= 1) r = (r << 1) | (code & 1);
    return r;
}

enum class Alphabet { code_lengths, literal_length, distance };

const char* alphabet_name(Alphabet a) {
    switch (a) {
        case Alphabet::code_lengths: return "code length";
        case Alphabet::literal_length: return "literal/length";
        case Alphabet::distance: return "distance";
    }
    return "?";
}

// Builds the decoding table of the canonical Huffman code with these code
// lengths (RFC 3.2.2). Over-subscribed sets are always rejected. Incomplete
// sets are rejected except for the distance code, where RFC 3.2.7 allows
// "one distance code of zero bits" (no distances used: every entry stays
// empty, so a block that uses one fails) and a single code of one bit.
// Returns what is wrong with the lengths, or nullptr.
const char* build_table(const std::uint8_t* lengths, unsigned n, Alphabet alphabet, Table& t) {
    unsigned count[max_code_bits + 1] = {};
    for (unsigned s = 0; s < n; ++s) ++count[lengths[s]];
    count[0] = 0;
    const unsigned used = [&] {
        unsigned u = 0;
        for (unsigned l = 1; l <= max_code_bits; ++l) u += count[l];
        return u;
    }();

    // Kraft sum: `left` is the number of unused codes of length l.
    int left = 1;
    unsigned max_length = 0;
    for (unsigned l = 1; l <= max_code_bits; ++l) {
        left = 2 * left - int(count[l]);
        if (left < 0) return "over-subscribed";
        if (count[l]) max_length = l;
    }
    if (left > 0) {
        const bool allowed = alphabet == Alphabet::distance && (used == 0 || (used == 1 && count[1] == 1));
        if (!allowed) return "incomplete";
    }

    t.bits = max_length < t.max_primary ? (max_length ? max_length : 1) : t.max_primary;
    const std::size_t primary_size = std::size_t(1) << t.bits;
    std::memset(t.entries.data(), 0, primary_size * sizeof(std::uint32_t));
    if (used == 0) return nullptr;

    // First code of each length (RFC 3.2.2 step 2).
    unsigned next_code[max_code_bits + 1] = {};
    unsigned code = 0;
    for (unsigned l = 1; l <= max_code_bits; ++l) {
        code = (code + count[l - 1]) << 1;
        next_code[l] = code;
    }

    const unsigned sub_bits = max_length > t.bits ? max_length - t.bits : 0;
    const std::size_t sub_size = std::size_t(1) << sub_bits;
    std::size_t next_sub = primary_size;
    for (unsigned s = 0; s < n; ++s) {
        const unsigned len = lengths[s];
        if (len == 0) continue;
        const unsigned rev = reverse_bits(next_code[len]++, len);
        if (len <= t.bits) {
            for (std::size_t i = rev; i < primary_size; i += std::size_t(1) << len) t.entries[i] = leaf(s, len);
            continue;
        }
        // A long code: its first t.bits bits pick a subtable, the rest an entry in it.
        std::uint32_t& slot = t.entries[rev & (primary_size - 1)];
        if ((slot & kind_mask) != kind_link) {
            if (next_sub + sub_size > t.entries.size()) return "too long";  // cannot happen for a prefix code
            std::memset(t.entries.data() + next_sub, 0, sub_size * sizeof(std::uint32_t));
            slot = link(unsigned(next_sub), sub_bits);
            next_sub += sub_size;
        }
        const std::size_t first = slot >> 16;
        for (std::size_t i = rev >> t.bits; i < sub_size; i += std::size_t(1) << (len - t.bits))
            t.entries[first + i] = leaf(s, len);
    }
    return nullptr;
}

// --- the bit reader --------------------------------------------------------

struct BitReader {
    const std::uint8_t* start;
    const std::uint8_t* p;
    const std::uint8_t* end;
    std::uint64_t buf = 0;  // bits not yet consumed, next bit lowest
    unsigned count = 0;     // bits in buf, phantom ones included
    unsigned phantom = 0;   // zero bits appended past the end of the input (the top of buf)

    BitReader(const std::uint8_t* in, std::size_t size) : start(in), p(in), end(in + size) {}

    // Leaves at least 56 bits in buf.
    void refill() {
        if (end - p >= 8) {
            std::uint64_t v = 0;
            for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];  // little-endian load
            // Loading whole words may put the low bits of the next byte above
            // `count`; the next refill ORs that same byte at the same place.
            buf |= v << count;
            p += (63 - count) >> 3;
            count |= 56;
            return;
        }
        while (count < 56) {
            if (p < end)
                buf |= std::uint64_t(*p++) << count;
            else
                phantom += 8;
            count += 8;
        }
    }
    // n <= count (callers refill first).
    unsigned take(unsigned n) {
        const unsigned v = unsigned(buf & ((std::uint64_t(1) << n) - 1));
        buf >>= n;
        count -= n;
        return v;
    }
    bool overrun() const { return count < phantom; }
    // The input byte holding the next bit.
    std::size_t position() const { return std::size_t(p - start) - (overrun() ? 0 : (count - phantom) / 8); }

    // Decodes one symbol; false for an unused code. Needs 15 bits in buf.
    bool decode(const Table& t, unsigned& symbol) {
        std::uint32_t e = t.entries[buf & ((std::uint64_t(1) << t.bits) - 1)];
        if ((e & kind_mask) == kind_link) {
            const unsigned sub_bits = e & 31;
            e = t.entries[(e >> 16) + ((buf >> t.bits) & ((std::uint64_t(1) << sub_bits) - 1))];
        }
        if ((e & kind_mask) != kind_leaf) return false;
        take(e & 31);
        symbol = e >> 16;
        return true;
    }

    // Drops the bits up to the next byte boundary and hands the whole bytes
    // still in buf back to the input (for stored blocks). False if that
    // boundary lies past the end of the input.
    bool align_to_byte() {
        take(count & 7);
        if (overrun()) return false;
        p -= (count - phantom) / 8;
        buf = 0;
        count = 0;
        phantom = 0;
        return true;
    }
};

// --- length and distance symbols (RFC 3.2.5) -------------------------------

constexpr std::uint16_t length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                           31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr std::uint8_t length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                           2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                         33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                         1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr std::uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                         6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

// The order code length code lengths are sent in (RFC 3.2.7).
constexpr std::uint8_t code_length_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

constexpr unsigned litlen_primary_bits = 10, dist_primary_bits = 8;

struct Inflater {
    BitReader in;
    std::uint8_t* const out_start;
    std::uint8_t* out;
    std::uint8_t* const out_end;
    Table litlen{litlen_primary_bits, 288};
    Table dist{dist_primary_bits, 32};
    Table code_lengths{7, 0};  // code length codes have at most 7 bits: no subtables

    Inflater(const std::uint8_t* src, std::size_t src_size, std::uint8_t* dst, std::size_t dst_size)
        : in(src, src_size), out_start(dst), out(dst), out_end(dst + dst_size) {}

    Status fail(const std::string& what) const {
        return error(Code::corrupt_zip, "deflate: " + what + " (input byte " + std::to_string(in.position()) +
                                            ", output byte " + std::to_string(out - out_start) + ")");
    }
    Status truncated() const { return fail("the stream ends before its final block is complete"); }
    Status too_long() const {
        return fail("the stream decodes to more than the expected " + std::to_string(out_end - out_start) + " bytes");
    }

    Status build(const std::uint8_t* lengths, unsigned n, Alphabet alphabet, Table& t) const {
        const char* problem = build_table(lengths, n, alphabet, t);
        if (!problem) return Status::success();
        return fail(std::string("the ") + alphabet_name(alphabet) + " code lengths are " + problem);
    }

    Status run();
    Status stored_block();
    Status fixed_tables();
    Status dynamic_tables();
    Status huffman_block();
};

// Block type 00 (RFC 3.2.4): byte-aligned LEN, NLEN = ~LEN, then LEN bytes.
Status Inflater::stored_block() {
    if (!in.align_to_byte()) return truncated();
    if (in.end - in.p < 4) return truncated();
    const unsigned len = unsigned(in.p[0]) | unsigned(in.p[1]) << 8;
    const unsigned nlen = unsigned(in.p[2]) | unsigned(in.p[3]) << 8;
    in.p += 4;
    if ((len ^ 0xFFFFu) != nlen)
        return fail("stored block length " + std::to_string(len) + " does not match its complement " +
                    std::to_string(nlen));
    if (std::size_t(in.end - in.p) < len) return truncated();
    if (std::size_t(out_end - out) < len) return too_long();
    if (len) std::memcpy(out, in.p, len);
    in.p += len;
    out += len;
    return Status::success();
}

// Block type 01 (RFC 3.2.6): the fixed codes.
Status Inflater::fixed_tables() {
    std::uint8_t lengths[288];
    std::memset(lengths, 8, 144);
    std::memset(lengths + 144, 9, 112);
    std::memset(lengths + 256, 7, 24);
    std::memset(lengths + 280, 8, 8);
    MK_TRY(build(lengths, 288, Alphabet::literal_length, litlen));
    // All 32 distance codes have 5 bits; 30 and 31 never occur in valid data.
    std::memset(lengths, 5, 32);
    return build(lengths, 32, Alphabet::distance, dist);
}

// Block type 10 (RFC 3.2.7): HLIT, HDIST, HCLEN, the code length code, then the
// literal/length and distance code lengths in it (16 repeats the previous
// length 3-6 times, 17 and 18 give 3-10 and 11-138 zeros; runs may cross from
// one alphabet to the other).
Status Inflater::dynamic_tables() {
    in.refill();
    const unsigned hlit = in.take(5) + 257;
    const unsigned hdist = in.take(5) + 1;
    const unsigned hclen = in.take(4) + 4;
    if (hlit > 286) return fail("dynamic block with " + std::to_string(hlit) + " literal/length codes (at most 286)");
    if (hdist > 30) return fail("dynamic block with " + std::to_string(hdist) + " distance codes (at most 30)");

    std::uint8_t lengths[286 + 30] = {};
    for (unsigned i = 0; i < hclen; ++i) {
        in.refill();
        lengths[code_length_order[i]] = std::uint8_t(in.take(3));
    }
    if (in.overrun()) return truncated();
    MK_TRY(build(lengths, 19, Alphabet::code_lengths, code_lengths));

    const unsigned total = hlit + hdist;
    for (unsigned n = 0; n < total;) {
        in.refill();
        unsigned sym = 0;
        if (!in.decode(code_lengths, sym)) return fail("invalid code length code");
        unsigned repeat = 1, value = sym;
        if (sym == 16) {
            if (n == 0) return fail("code length 16 (repeat previous) with no previous length");
            value = lengths[n - 1];
            repeat = 3 + in.take(2);
        } else if (sym == 17) {
            value = 0;
            repeat = 3 + in.take(3);
        } else if (sym == 18) {
            value = 0;
            repeat = 11 + in.take(7);
        }
        if (in.overrun()) return truncated();
        if (repeat > total - n)
            return fail("code length repeat runs past the " + std::to_string(total) + " code lengths");
        std::memset(lengths + n, int(value), repeat);
        n += repeat;
    }
    if (lengths[256] == 0) return fail("dynamic block without an end-of-block code");

    MK_TRY(build(lengths, hlit, Alphabet::literal_length, litlen));
    return build(lengths + hlit, hdist, Alphabet::distance, dist);
}

// The symbols of a fixed or dynamic block, up to end-of-block (256).
Status Inflater::huffman_block() {
    for (;;) {
        // A refill leaves at least 56 bits: up to three literals (15 bits
        // each), or a length/distance pair (15 + 5 + 15 + 13 bits).
        if (in.count < max_code_bits) in.refill();
        unsigned sym = 0;
        if (!in.decode(litlen, sym)) return fail("invalid literal/length code");
        if (sym < 256) {
            if (in.overrun()) return truncated();
            if (out == out_end) return too_long();
            *out++ = std::uint8_t(sym);
            continue;
        }
        if (sym == 256) {
            if (in.overrun()) return truncated();
            return Status::success();
        }
        sym -= 257;
        if (sym >= 29) return fail("invalid literal/length symbol " + std::to_string(sym + 257));
        if (in.count < 5 + max_code_bits + 13) in.refill();
        const std::size_t len = length_base[sym] + in.take(length_extra[sym]);
        unsigned dsym = 0;
        if (!in.decode(dist, dsym)) return fail("invalid distance code");
        if (dsym >= 30) return fail("invalid distance symbol " + std::to_string(dsym));
        const std::size_t d = dist_base[dsym] + in.take(dist_extra[dsym]);
        if (in.overrun()) return truncated();
        if (d > std::size_t(out - out_start))
            return fail("distance " + std::to_string(d) + " reaches before the start of the output");
        if (len > std::size_t(out_end - out)) return too_long();

        const std::uint8_t* src = out - d;
        if (d >= 8 && std::size_t(out_end - out) >= len + 8) {
            // 8 bytes at a time: each chunk's source ends at or before its
            // destination starts; the last one may overshoot len (inside the output).
            for (std::size_t i = 0; i < len; i += 8) std::memcpy(out + i, src + i, 8);
        } else if (d == 1) {
            std::memset(out, *src, len);
        } else {
            for (std::size_t i = 0; i < len; ++i) out[i] = src[i];
        }
        out += len;
    }
}

Status Inflater::run() {
    for (bool final = false; !final;) {
        in.refill();
        final = in.take(1) == 1;
        const unsigned type = in.take(2);
        if (in.overrun()) return truncated();
        switch (type) {
            case 0: MK_TRY(stored_block()); break;
            case 1:
                MK_TRY(fixed_tables());
                MK_TRY(huffman_block());
                break;
            case 2:
                MK_TRY(dynamic_tables());
                MK_TRY(huffman_block());
                break;
            default: return fail("invalid block type 3");
        }
    }
    if (out != out_end)
        return fail("the stream decodes to " + std::to_string(out - out_start) + " bytes, not the expected " +
                    std::to_string(out_end - out_start));
    return Status::success();
}

}  // namespace

std::uint64_t inflate_work_bytes() {
    // The three tables of Inflater, each sized by Table's constructor.
    const auto entries = [](unsigned primary, unsigned symbols) {
        return (std::uint64_t(1) << primary) + (std::uint64_t(symbols) << (max_code_bits - primary));
    };
    return (entries(litlen_primary_bits, 288) + entries(dist_primary_bits, 32) + entries(7, 0)) * sizeof(std::uint32_t);
}

Status inflate_raw(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out, std::size_t out_size) {
    Inflater inflater(in, in_size, out, out_size);
    return inflater.run();
}

}  // namespace modelkeep
