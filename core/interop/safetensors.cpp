// safetensors.cpp — the reader and writer of safetensors.hpp.
//
// Reading: length prefix → header bytes (UTF-8) → a strict JSON parser driven
// by the header's schema (an object of objects holding strings and arrays of
// integers: no generic values, so nesting never goes deeper than three levels
// and any other value is bad_header_json) → each entry checked as it is
// parsed (name, dtype, rank, element count, span size) → the spans tile the
// data → the data length. Nothing is allocated for values until all passed.
//
// Decided edge cases, beyond the rules listed in safetensors.hpp:
//  * "__metadata__": null means no metadata (serde reads it as a None Option).
//  * A tensor entry must hold exactly dtype, shape and data_offsets: a missing
//    or extra key is bad_header_json (the reference ignores extra keys).
//  * Numbers are non-negative integers without fraction, exponent or leading
//    zero, below 2^64; anything else is bad_header_json.
//  * Each dim is at most max_tensor_elements (size_overflow), as in .mkp, even
//    in a zero-element shape: dims must fit size_t on wasm32.
//  * At most 65536 tensors and 65536 metadata entries (limit_exceeded); tensor
//    names are 1 to 1024 bytes (bad_name; the reference allows "").
//  * F4 / F6_* tensors whose numel × bits is not whole bytes give
//    storage_size_mismatch (the reference's MisalignedSlice).
//  * Conversion to float32 rounds to nearest: F64 (±inf past float's range),
//    I64 and I32 beyond 2^24. A BOOL byte other than 0 or 1 gives
//    unsupported_tensor naming the element, rather than a guess at its value.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <string_view>
#include <unordered_set>

#include "json_string.hpp"
#include "safetensors.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the safetensors reader assumes a little-endian host");

namespace modelkeep {

namespace {

constexpr std::size_t max_st_tensors = 65536;
constexpr std::size_t max_st_metadata = 65536;

// --- dtypes ---------------------------------------------------------------

enum class Conv { none, f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };

struct StDtype {
    const char* name;
    unsigned bits;
    Conv conv;
};

// The reference enum, in its order: the writer sorts by descending index.
constexpr StDtype st_dtypes[] = {
    {"BOOL", 8, Conv::boolean},
    {"F4", 4, Conv::none},
    {"F6_E2M3", 6, Conv::none},
    {"F6_E3M2", 6, Conv::none},
    {"U8", 8, Conv::u8},
    {"I8", 8, Conv::i8},
    {"F8_E5M2", 8, Conv::none},
    {"F8_E4M3", 8, Conv::none},
    {"F8_E8M0", 8, Conv::none},
    {"F8_E4M3FNUZ", 8, Conv::none},
    {"F8_E5M2FNUZ", 8, Conv::none},
    {"I16", 16, Conv::i16},
    {"U16", 16, Conv::u16},
    {"F16", 16, Conv::f16},
    {"BF16", 16, Conv::bf16},
    {"I32", 32, Conv::i32},
    {"U32", 32, Conv::u32},
    {"F32", 32, Conv::f32},
    {"C64", 64, Conv::none},
    {"F64", 64, Conv::f64},
    {"I64", 64, Conv::i64},
    {"U64", 64, Conv::u64},
};
constexpr int st_dtype_count = int(sizeof(st_dtypes) / sizeof(st_dtypes[0]));

int find_dtype(const std::string& name) {
    for (int i = 0; i < st_dtype_count; ++i)
        if (name == st_dtypes[i].name) return i;
    return -1;
}

// --- messages ---------------------------------------------------------------

// 'name' for a message, cut to 80 bytes at a UTF-8 boundary.
std::string quoted(const std::string& s) {
    if (s.size() <= 80) return "'" + s + "'";
    std::size_t n = 80;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return "'" + s.substr(0, n) + "...' (" + std::to_string(s.size()) + " bytes)";
}

std::string tensor_label(const std::string& name) { return "tensor " + quoted(name); }

// --- the JSON header parser -----------------------------------------------

struct Entry {
    std::string name;
    std::string dtype;
    std::array<std::uint64_t, max_rank> dims{};
    std::size_t rank = 0;
    std::uint64_t begin = 0, end = 0;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

struct Parser {
    const std::string& s;  // the header, already known to be UTF-8
    std::size_t pos = 0;

    Status fail(const std::string& what) const {
        return error(Code::bad_header_json, "header byte " + std::to_string(pos) + ": " + what);
    }
    void skip_ws() {
        while (pos < s.size() && is_ws(s[pos])) ++pos;
    }
    // Skips whitespace, then consumes c if it is next.
    bool eat(char c) {
        skip_ws();
        if (pos < s.size() && s[pos] == c) {
            ++pos;
            return true;
        }
        return false;
    }
    // The message is built only on failure: "expected ']' to close the shape of tensor 'w'".
    Status expect(char c, const char* context, const std::string& label = std::string()) {
        if (eat(c)) return Status::success();
        return fail(std::string("expected '") + c + "' " + context + label);
    }
    Status hex4(std::uint32_t& v) {
        if (s.size() - pos < 4) return fail("a \\u escape needs 4 hex digits");
        v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s[pos];
            std::uint32_t d;
            if (c >= '0' && c <= '9')
                d = std::uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f')
                d = std::uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                d = std::uint32_t(c - 'A' + 10);
            else
                return fail("a \\u escape needs 4 hex digits");
            v = v << 4 | d;
            ++pos;
        }
        return Status::success();
    }
    // After "\u": one code point, a surrogate pair taking two escapes.
    Status unicode_escape(std::string& out) {
        std::uint32_t cp = 0;
        MK_TRY(hex4(cp));
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("a lone low surrogate escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s.size() - pos < 2 || s[pos] != '\\' || s[pos + 1] != 'u')
                return fail("a high surrogate escape not followed by a low one");
            pos += 2;
            std::uint32_t low = 0;
            MK_TRY(hex4(low));
            if (low < 0xDC00 || low > 0xDFFF) return fail("a high surrogate escape not followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        return Status::success();
    }
    Status string(std::string& out, const char* what) {
        skip_ws();
        if (pos >= s.size() || s[pos] != '"') return fail(std::string("expected a string (") + what + ")");
        ++pos;
        out.clear();
        for (;;) {
            std::size_t run = pos;
            while (run < s.size() && s[run] != '"' && s[run] != '\\' && static_cast<unsigned char>(s[run]) >= 0x20)
                ++run;
            out.append(s, pos, run - pos);
            pos = run;
            if (pos >= s.size()) return fail(std::string("unterminated string (") + what + ")");
            const char c = s[pos];
            if (c == '"') {
                ++pos;
                return Status::success();
            }
            if (c != '\\') return fail("unescaped control character " + std::to_string(int(c)) + " in a string");
            if (++pos >= s.size()) return fail("unterminated escape");
            switch (s[pos++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': MK_TRY(unicode_escape(out)); break;
                default:
                    --pos;
                    return fail("invalid escape: byte " + std::to_string(int(static_cast<unsigned char>(s[pos]))) +
                                " after a backslash");
            }
        }
    }
    // A non-negative integer below 2^64: digits only, no leading zero.
    Status uint(std::uint64_t& v, const char* what, const std::string& label) {
        skip_ws();
        if (pos < s.size() && s[pos] == '-') return fail(std::string(what) + " of " + label + " is negative");
        if (pos >= s.size() || s[pos] < '0' || s[pos] > '9')
            return fail(std::string("expected a non-negative integer for ") + what + " of " + label);
        const std::size_t start = pos;
        v = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            const std::uint64_t d = std::uint64_t(s[pos] - '0');
            if (v > (UINT64_MAX - d) / 10) return fail(std::string(what) + " of " + label + " does not fit 64 bits");
            v = v * 10 + d;
            ++pos;
        }
        if (s[start] == '0' && pos - start > 1) return fail(std::string(what) + " of " + label + " has a leading zero");
        if (pos < s.size() && (s[pos] == '.' || s[pos] == 'e' || s[pos] == 'E'))
            return fail(std::string(what) + " of " + label + " is not an integer (fraction or exponent)");
        return Status::success();
    }
    // Whitespace only after the top-level object (the writer's space padding).
    Status finish() {
        skip_ws();
        if (pos != s.size())
            return fail(std::to_string(s.size() - pos) + " bytes after the header object that are not whitespace");
        return Status::success();
    }
};

// [d0, d1, ...]: the rank is checked as the dims arrive.
Status parse_shape(Parser& p, Entry& e, const std::string& label) {
    MK_TRY(p.expect('[', "to open the shape of ", label));
    e.rank = 0;
    if (p.eat(']')) return Status::success();
    do {
        if (e.rank == max_rank)
            return error(Code::limit_exceeded,
                         label + " has a shape of more than " + std::to_string(max_rank) + " dims, over the cap");
        MK_TRY(p.uint(e.dims[e.rank], "a dim", label));
        ++e.rank;
    } while (p.eat(','));
    return p.expect(']', "to close the shape of ", label);
}

// [begin, end]: exactly two integers.
Status parse_offsets(Parser& p, Entry& e, const std::string& label) {
    MK_TRY(p.expect('[', "to open the data_offsets of ", label));
    MK_TRY(p.uint(e.begin, "the begin offset", label));
    MK_TRY(p.expect(',', "after the begin offset (data_offsets is [begin, end]) of ", label));
    MK_TRY(p.uint(e.end, "the end offset", label));
    return p.expect(']', "after the end offset (data_offsets is [begin, end]) of ", label);
}

// {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, keys in any order.
Status parse_entry(Parser& p, Entry& e) {
    const std::string label = tensor_label(e.name);
    MK_TRY(p.expect('{', "to open the entry of ", label));
    bool have_dtype = false, have_shape = false, have_offsets = false;
    if (!p.eat('}')) {
        std::string key;
        do {
            MK_TRY(p.string(key, "a key of a tensor entry"));
            MK_TRY(p.expect(':', "after a key of ", label));
            bool* seen;
            if (key == "dtype")
                seen = &have_dtype;
            else if (key == "shape")
                seen = &have_shape;
            else if (key == "data_offsets")
                seen = &have_offsets;
            else
                return p.fail(label + " has the key " + quoted(key) +
                              "; only dtype, shape and data_offsets are allowed");
            if (*seen) return error(Code::duplicate_name, label + " has the key '" + key + "' twice");
            *seen = true;
            if (key == "dtype")
                MK_TRY(p.string(e.dtype, "dtype"));
            else if (key == "shape")
                MK_TRY(parse_shape(p, e, label));
            else
                MK_TRY(parse_offsets(p, e, label));
        } while (p.eat(','));
        MK_TRY(p.expect('}', "to close the entry of ", label));
    }
    const char* missing = !have_dtype ? "dtype" : !have_shape ? "shape" : !have_offsets ? "data_offsets" : nullptr;
    if (missing) return p.fail(label + " has no '" + missing + "'");
    return Status::success();
}

using KeySet = std::unordered_set<std::string_view>;

// {"k": "v", ...} or null. Strings live in a deque, so the views stay valid.
Status parse_metadata(Parser& p, std::deque<std::pair<std::string, std::string>>& out) {
    p.skip_ws();
    if (p.s.size() - p.pos >= 4 && p.s.compare(p.pos, 4, "null") == 0) {
        p.pos += 4;
        return Status::success();
    }
    MK_TRY(p.expect('{', "to open __metadata__ (an object of strings, or null)"));
    if (p.eat('}')) return Status::success();
    KeySet keys;
    do {
        if (out.size() == max_st_metadata)
            return error(Code::limit_exceeded,
                         "__metadata__ has more than " + std::to_string(max_st_metadata) + " entries, over the cap");
        out.emplace_back();
        auto& [key, value] = out.back();
        MK_TRY(p.string(key, "a __metadata__ key"));
        if (!p.eat(':')) return p.fail("expected ':' after __metadata__ key " + quoted(key));
        p.skip_ws();
        if (p.pos >= p.s.size() || p.s[p.pos] != '"')
            return p.fail("the value of __metadata__ key " + quoted(key) + " is not a string");
        MK_TRY(p.string(value, "a __metadata__ value"));
        if (!keys.insert(key).second)
            return error(Code::duplicate_name, "__metadata__ has the key " + quoted(key) + " twice");
    } while (p.eat(','));
    return p.expect('}', "to close __metadata__");
}

// The per-entry rules: name, dtype, rank, element count, span size.
Status check_entry(const Entry& e, SafetensorsTensor& t) {
    if (e.name.empty()) return error(Code::bad_name, "a tensor has an empty name");
    if (e.name.size() > max_name_bytes || !valid_utf8(e.name))
        return error(Code::bad_name, tensor_label(e.name) + ": names must be 1 to " + std::to_string(max_name_bytes) +
                                         " bytes of UTF-8");
    const std::string label = tensor_label(e.name);
    const int d = find_dtype(e.dtype);
    if (d < 0) return error(Code::unknown_dtype, label + " has unknown dtype " + quoted(e.dtype));
    for (std::size_t i = 0; i < e.rank; ++i)
        if (e.dims[i] > max_tensor_elements)
            return error(Code::size_overflow, label + " dim " + std::to_string(i) + " is " + std::to_string(e.dims[i]) +
                                                  ", over " + std::to_string(max_tensor_elements));
    t.name = e.name;
    t.dtype = e.dtype;
    t.shape.assign(e.dims.begin(), e.dims.begin() + std::ptrdiff_t(e.rank));
    std::uint64_t numel;
    MK_TRY(checked_numel(t.shape, numel, label));
    if (e.end < e.begin)
        return error(Code::bad_offsets, label + " has data_offsets [" + std::to_string(e.begin) + ", " +
                                            std::to_string(e.end) + "], which run backwards");
    const std::uint64_t bits = numel * st_dtypes[d].bits;  // ≤ 2^28 × 64: no overflow
    if (bits % 8)
        return error(Code::storage_size_mismatch, label + " (" + e.dtype + ", " + std::to_string(numel) +
                                                      " elements) is " + std::to_string(bits) +
                                                      " bits, not a whole number of bytes");
    if (e.end - e.begin != bits / 8)
        return error(Code::storage_size_mismatch,
                     label + " (" + e.dtype + ", shape " + shape_to_string(t.shape) + ") needs " +
                         std::to_string(bits / 8) + " bytes but its data_offsets [" + std::to_string(e.begin) + ", " +
                         std::to_string(e.end) + "] span " + std::to_string(e.end - e.begin));
    t.begin = e.begin;
    t.end = e.end;
    return Status::success();
}

// The top-level object: __metadata__ and tensor entries, each checked as read.
Status parse_header(const std::string& header, SafetensorsInfo& info) {
    Parser p{header};
    MK_TRY(p.expect('{', "at the start of the header (it is a JSON object)"));
    std::deque<std::pair<std::string, std::string>> metadata;
    std::deque<std::string> names;  // stable storage for the views in `seen`
    KeySet seen;
    bool have_metadata = false;
    if (!p.eat('}')) {
        do {
            Entry e;
            MK_TRY(p.string(e.name, "a tensor name or __metadata__"));
            if (!p.eat(':')) return p.fail("expected ':' after the key " + quoted(e.name));
            if (e.name == "__metadata__") {
                if (have_metadata) return error(Code::duplicate_name, "the header has __metadata__ twice");
                have_metadata = true;
                MK_TRY(parse_metadata(p, metadata));
                continue;
            }
            if (info.tensors.size() == max_st_tensors)
                return error(Code::limit_exceeded,
                             "the header has more than " + std::to_string(max_st_tensors) + " tensors, over the cap");
            MK_TRY(parse_entry(p, e));
            SafetensorsTensor t;
            MK_TRY(check_entry(e, t));
            names.push_back(e.name);
            if (!seen.insert(names.back()).second)
                return error(Code::duplicate_name, tensor_label(e.name) + " appears twice in the header");
            info.tensors.push_back(std::move(t));
        } while (p.eat(','));
        MK_TRY(p.expect('}', "or ',' after a header entry"));
    }
    MK_TRY(p.finish());
    info.metadata.reserve(metadata.size());
    for (auto& kv : metadata) info.metadata.push_back(std::move(kv));
    return Status::success();
}

// Sorted by begin, the spans must start at 0 and follow each other exactly.
Status check_tiling(const std::vector<SafetensorsTensor>& tensors, std::uint64_t& last_end) {
    std::vector<std::size_t> order(tensors.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (tensors[a].begin != tensors[b].begin) return tensors[a].begin < tensors[b].begin;
        if (tensors[a].end != tensors[b].end) return tensors[a].end < tensors[b].end;
        return a < b;
    });
    std::uint64_t at = 0;
    const SafetensorsTensor* prev = nullptr;
    for (std::size_t i : order) {
        const SafetensorsTensor& t = tensors[i];
        if (t.begin < at)
            return error(Code::bad_offsets, tensor_label(t.name) + " starts at " + std::to_string(t.begin) +
                                                ", inside " + tensor_label(prev->name) + " [" +
                                                std::to_string(prev->begin) + ", " + std::to_string(prev->end) +
                                                "): the spans overlap");
        if (t.begin > at)
            return error(Code::bad_offsets, tensor_label(t.name) + " starts at " + std::to_string(t.begin) +
                                                " but the data before it ends at " + std::to_string(at) +
                                                ": a hole of " + std::to_string(t.begin - at) + " bytes");
        at = t.end;
        prev = &t;
    }
    last_end = at;
    return Status::success();
}

// --- converting values --------------------------------------------------------

template <class T>
T load(const std::uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

template <class T>
void convert_ints(const std::uint8_t* p, std::size_t n, float* dst) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float(load<T>(p + i * sizeof(T)));
}

Status convert(const std::uint8_t* p, const SafetensorsTensor& t, Conv conv, Tensor& out) {
    out = Tensor(t.shape);
    const std::size_t n = out.size();
    float* dst = out.data();
    switch (conv) {
        case Conv::f32:
            if (n) std::memcpy(dst, p, n * 4);
            break;
        case Conv::f64:
            for (std::size_t i = 0; i < n; ++i) dst[i] = float(load<double>(p + 8 * i));
            break;
        case Conv::f16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(std::uint16_t(p[2 * i] | p[2 * i + 1] << 8));
            break;
        case Conv::bf16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(std::uint16_t(p[2 * i] | p[2 * i + 1] << 8));
            break;
        case Conv::i64: convert_ints<std::int64_t>(p, n, dst); break;
        case Conv::i32: convert_ints<std::int32_t>(p, n, dst); break;
        case Conv::i16: convert_ints<std::int16_t>(p, n, dst); break;
        case Conv::i8: convert_ints<std::int8_t>(p, n, dst); break;
        case Conv::u64: convert_ints<std::uint64_t>(p, n, dst); break;
        case Conv::u32: convert_ints<std::uint32_t>(p, n, dst); break;
        case Conv::u16: convert_ints<std::uint16_t>(p, n, dst); break;
        case Conv::u8: convert_ints<std::uint8_t>(p, n, dst); break;
        case Conv::boolean:
            for (std::size_t i = 0; i < n; ++i) {
                if (p[i] > 1)
                    return error(Code::unsupported_tensor, tensor_label(t.name) + " (BOOL) element " +
                                                               std::to_string(i) + " is the byte " +
                                                               std::to_string(p[i]) + ", neither 0 nor 1");
                dst[i] = float(p[i]);
            }
            break;
        case Conv::none: break;  // refused by the caller
    }
    return Status::success();
}

// --- writing -----------------------------------------------------------------

constexpr int dtype_index(const char* name) {
    for (int i = 0; i < st_dtype_count; ++i) {
        const char* a = st_dtypes[i].name;
        const char* b = name;
        while (*a && *a == *b) ++a, ++b;
        if (*a == *b) return i;
    }
    return -1;
}
constexpr int st_f32 = dtype_index("F32"), st_f16 = dtype_index("F16"), st_bf16 = dtype_index("BF16"),
              st_i64 = dtype_index("I64");
static_assert(st_f32 >= 0 && st_f16 >= 0 && st_bf16 >= 0 && st_i64 >= 0, "dtype table");

bool is_num_batches_tracked(const std::string& name) {
    static const std::string key = "num_batches_tracked";
    if (name == key) return true;
    return name.size() > key.size() && name.compare(name.size() - key.size(), key.size(), key) == 0 &&
           name[name.size() - key.size() - 1] == '.';
}

struct Planned {
    const std::string* name;
    const Tensor* tensor;
    int dtype;  // index into st_dtypes
    std::uint64_t bytes = 0, begin = 0;
};

Status check_metadata(const Metadata& metadata) {
    if (metadata.size() > max_st_metadata)
        return error(Code::limit_exceeded, std::to_string(metadata.size()) + " metadata entries, over the cap of " +
                                               std::to_string(max_st_metadata));
    std::unordered_set<std::string_view> keys;
    for (const auto& [k, v] : metadata) {
        if (!valid_utf8(k)) return error(Code::bad_name, "metadata key " + quoted(k) + " is not valid UTF-8");
        if (!valid_utf8(v))
            return error(Code::bad_name, "the value of metadata key " + quoted(k) + " is not valid UTF-8");
        if (!keys.insert(k).second) return error(Code::duplicate_name, "metadata key " + quoted(k) + " given twice");
    }
    return Status::success();
}

// I64 holds what llround gives; NaN, ±inf and values past ±2^63 have no I64 form.
Status check_integral(const Planned& t) {
    const float* x = t.tensor->data();
    for (std::size_t i = 0; i < t.tensor->size(); ++i)
        if (!(x[i] >= -9223372036854775808.0f && x[i] < 9223372036854775808.0f))
            return error(Code::invalid_argument, tensor_label(*t.name) + " element " + std::to_string(i) +
                                                     " is not a 64-bit integer, which I64 needs");
    return Status::success();
}

Status plan(const StateDict& tensors, int weight_dtype, std::vector<Planned>& out) {
    if (tensors.size() > max_st_tensors)
        return error(Code::limit_exceeded,
                     std::to_string(tensors.size()) + " tensors, over the cap of " + std::to_string(max_st_tensors));
    std::unordered_set<std::string_view> names;
    out.reserve(tensors.size());
    for (const auto& [name, t] : tensors) {
        if (name.empty() || name.size() > max_name_bytes || !valid_utf8(name))
            return error(Code::bad_name, tensor_label(name) + ": names must be 1 to " + std::to_string(max_name_bytes) +
                                             " bytes of UTF-8");
        if (name == "__metadata__") return error(Code::bad_name, "a tensor cannot be named __metadata__");
        if (!names.insert(name).second) return error(Code::duplicate_name, tensor_label(name) + " given twice");
        std::uint64_t numel;
        MK_TRY(checked_numel(shape_of(t), numel, tensor_label(name)));
        Planned p{&name, &t, t.dimension() >= 2 ? weight_dtype : st_f32};
        if (is_num_batches_tracked(name)) {
            p.dtype = st_i64;
            MK_TRY(check_integral(p));
        }
        p.bytes = numel * (st_dtypes[p.dtype].bits / 8);
        out.push_back(p);
    }
    // The reference order: descending dtype, then name byte-wise.
    std::sort(out.begin(), out.end(), [](const Planned& a, const Planned& b) {
        if (a.dtype != b.dtype) return a.dtype > b.dtype;
        return *a.name < *b.name;
    });
    std::uint64_t at = 0;
    for (Planned& p : out) {
        p.begin = at;
        at += p.bytes;
    }
    return Status::success();
}

std::string header_json(const std::vector<Planned>& planned, const Metadata& metadata) {
    std::string h = "{";
    if (!metadata.empty()) {
        h += "\"__metadata__\":{";
        for (std::size_t i = 0; i < metadata.size(); ++i) {
            if (i) h += ',';
            json::append_string(h, metadata[i].first);
            h += ':';
            json::append_string(h, metadata[i].second);
        }
        h += '}';
    }
    for (const Planned& p : planned) {
        if (h.size() > 1) h += ',';
        json::append_string(h, *p.name);
        h += ":{\"dtype\":\"";
        h += st_dtypes[p.dtype].name;
        h += "\",\"shape\":[";
        for (std::size_t i = 0; i < p.tensor->dimension(); ++i) {
            if (i) h += ',';
            h += std::to_string(p.tensor->shape()[i]);
        }
        h += "],\"data_offsets\":[" + std::to_string(p.begin) + "," + std::to_string(p.begin + p.bytes) + "]}";
    }
    h += '}';
    h.append((8 - h.size() % 8) % 8, ' ');
    return h;
}

void fill(const Planned& p, std::uint8_t* dst) {
    const float* x = p.tensor->data();
    const std::size_t n = p.tensor->size();
    if (p.dtype == st_f32) {
        if (n) std::memcpy(dst, x, n * 4);
    } else if (p.dtype == st_f16 || p.dtype == st_bf16) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint16_t h = p.dtype == st_f16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
            dst[2 * i] = std::uint8_t(h);
            dst[2 * i + 1] = std::uint8_t(h >> 8);
        }
    } else {  // I64, checked integral by plan()
        for (std::size_t i = 0; i < n; ++i) {
            const std::int64_t v = std::llround(x[i]);
            std::memcpy(dst + 8 * i, &v, 8);
        }
    }
}

}  // namespace

Status read_safetensors_info(const std::uint8_t* data, std::size_t size, SafetensorsInfo& info) {
    if (!data && size) return error(Code::truncated, "no data");
    return read_safetensors_info(MemorySource(data, size), info);
}

Status read_safetensors_info(const ByteSource& source, SafetensorsInfo& info) {
    const std::uint64_t size = source.size();
    if (size < 8)
        return error(Code::truncated,
                     "the file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    std::uint8_t length[8];
    source.read(0, length, 8);
    const std::uint64_t n = load<std::uint64_t>(length);
    if (n > max_safetensors_header)
        return error(Code::header_too_large, "the header length is " + std::to_string(n) + " bytes, over the cap of " +
                                                 std::to_string(max_safetensors_header));
    if (n > size - 8)
        return error(Code::truncated, "the header is " + std::to_string(n) + " bytes but the file has only " +
                                          std::to_string(size - 8) + " after the length");
    std::string header(std::size_t(n), '\0');
    source.read(8, &header[0], header.size());
    if (!valid_utf8(header)) return error(Code::bad_header_json, "the header is not valid UTF-8");
    SafetensorsInfo out;
    out.data_start = 8 + n;
    MK_TRY(parse_header(header, out));
    std::uint64_t last_end = 0;
    MK_TRY(check_tiling(out.tensors, last_end));
    const std::uint64_t data_bytes = size - out.data_start;
    if (data_bytes < last_end)
        return error(Code::truncated, "the tensors' data ends at " + std::to_string(last_end) + " but only " +
                                          std::to_string(data_bytes) + " bytes follow the header");
    if (data_bytes > last_end)
        return error(Code::trailing_bytes, std::to_string(data_bytes - last_end) +
                                               " bytes after the last tensor (which ends at " +
                                               std::to_string(last_end) + ")");
    info = std::move(out);
    return Status::success();
}

Status read_safetensors(const std::uint8_t* data, std::size_t size, StateDict& tensors, Metadata* metadata) {
    if (!data && size) return error(Code::truncated, "no data");
    return read_safetensors(MemorySource(data, size), tensors, metadata);
}

Status read_safetensors(const ByteSource& source, StateDict& tensors, Metadata* metadata) {
    SafetensorsInfo info;
    MK_TRY(read_safetensors_info(source, info));
    MK_TRY(read_safetensors(source, info, tensors));
    if (metadata) *metadata = std::move(info.metadata);
    return Status::success();
}

Status read_safetensors(const ByteSource& source, const SafetensorsInfo& info, StateDict& tensors) {
    std::vector<Conv> convs;
    convs.reserve(info.tensors.size());
    for (const SafetensorsTensor& t : info.tensors) {
        const Conv c = st_dtypes[find_dtype(t.dtype)].conv;
        if (c == Conv::none)
            return error(Code::unsupported_tensor, tensor_label(t.name) + " has dtype " + t.dtype +
                                                       ", which modelkeep does not convert (it reads F64, F32, "
                                                       "F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL)");
        convs.push_back(c);
    }
    // Tensor by tensor: F32 straight from the source into the tensor, other
    // dtypes through a buffer of that one tensor's bytes.
    StateDict out;
    out.reserve(info.tensors.size());
    std::vector<std::uint8_t> buffer;
    for (std::size_t i = 0; i < info.tensors.size(); ++i) {
        const SafetensorsTensor& t = info.tensors[i];
        const std::uint64_t at = info.data_start + t.begin;
        const std::size_t bytes = std::size_t(t.end - t.begin);
        Tensor values;
        if (convs[i] == Conv::f32 && !source.data()) {
            values = Tensor(t.shape);
            source.read(at, values.data(), bytes);
        } else {
            MK_TRY(convert(source_range(source, at, bytes, buffer), t, convs[i], values));
        }
        out.emplace_back(t.name, std::move(values));
    }
    tensors = std::move(out);
    return Status::success();
}

Status write_safetensors(const StateDict& tensors, const Metadata& metadata, DType dtype,
                         std::vector<std::uint8_t>& out) {
    int weight_dtype;
    switch (dtype) {
        case DType::f32: weight_dtype = st_f32; break;
        case DType::f16: weight_dtype = st_f16; break;
        case DType::bf16: weight_dtype = st_bf16; break;
        default:
            return error(Code::invalid_argument, std::string("safetensors has no ") + dtype_name(dtype) +
                                                     " form (row-scaled int8): write f32, f16 or bf16");
    }
    MK_TRY(check_metadata(metadata));
    std::vector<Planned> planned;
    MK_TRY(plan(tensors, weight_dtype, planned));
    const std::string header = header_json(planned, metadata);
    if (header.size() > max_safetensors_header)
        return error(Code::header_too_large, "the header would be " + std::to_string(header.size()) +
                                                 " bytes, over the cap of " + std::to_string(max_safetensors_header));
    const std::uint64_t data_bytes = planned.empty() ? 0 : planned.back().begin + planned.back().bytes;
    const std::uint64_t total = 8 + header.size() + data_bytes;
    if (total > SIZE_MAX) return error(Code::size_overflow, "the file would not fit in memory");
    std::vector<std::uint8_t> file(static_cast<std::size_t>(total));
    const std::uint64_t n = header.size();
    std::memcpy(file.data(), &n, 8);
    std::memcpy(file.data() + 8, header.data(), header.size());
    std::uint8_t* base = file.data() + 8 + header.size();
    for (const Planned& p : planned) fill(p, base + p.begin);
    out = std::move(file);
    return Status::success();
}

}  // namespace modelkeep
