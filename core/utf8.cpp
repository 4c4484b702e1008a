#include "utf8.hpp"

namespace modelkeep {

std::size_t utf8_next(const std::string& s, std::size_t i, std::uint32_t& cp) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    const unsigned char b = p[i];
    if (b < 0x80) {
        cp = b;
        return 1;
    }
    std::size_t len;
    std::uint32_t c;
    if ((b & 0xE0) == 0xC0)
        len = 2, c = b & 0x1F;
    else if ((b & 0xF0) == 0xE0)
        len = 3, c = b & 0x0F;
    else if ((b & 0xF8) == 0xF0)
        len = 4, c = b & 0x07;
    else
        return 0;
    if (i + len > n) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((p[i + k] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000)) return 0;
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    cp = c;
    return len;
}

bool valid_utf8(const std::string& s) {
    std::uint32_t cp;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = utf8_next(s, i, cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

long first_control(const std::string& s, bool allow_newline_tab) {
    std::uint32_t cp = 0;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = utf8_next(s, i, cp);
        if (len == 0) {
            ++i;
            continue;
        }
        if (is_control(cp) && !(allow_newline_tab && (cp == '\n' || cp == '\t'))) return long(cp);
        i += len;
    }
    return -1;
}

namespace {

// Invisible characters that reorder or break the text around them.
bool is_format_control(std::uint32_t cp) {
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string escape_text(const std::string& s) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    std::uint32_t cp = 0;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = utf8_next(s, i, cp);
        if (len == 0 || (len == 1 && is_control(cp))) {
            const unsigned char b = static_cast<unsigned char>(s[i]);
            out += "\\x";
            out += hex[b >> 4];
            out += hex[b & 15];
            ++i;
            continue;
        }
        if (is_control(cp) || is_format_control(cp)) {
            out += "\\u";
            for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 15];
        } else {
            out.append(s, i, len);
        }
        i += len;
    }
    return out;
}

}  // namespace modelkeep
