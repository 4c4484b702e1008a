#include "json_string.hpp"

#include <cstddef>
#include <cstdint>

namespace modelkeep {
namespace json {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
std::size_t utf8_length(const std::string& s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    std::size_t len = 0;
    std::uint32_t cp = 0, min = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf)
        len = 2, cp = b0 & 0x1f, min = 0x80;
    else if (b0 >= 0xe0 && b0 <= 0xef)
        len = 3, cp = b0 & 0x0f, min = 0x800;
    else if (b0 >= 0xf0 && b0 <= 0xf4)
        len = 4, cp = b0 & 0x07, min = 0x10000;
    else
        return 0;
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

}  // namespace

void append_string(std::string& out, const std::string& s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t len = utf8_length(s, i);
            if (len == 0) {
                out += "\\ufffd";
                ++i;
            } else if (len == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
                out += "\\u00";  // C1 control U+0080–U+009F
                out += hex[static_cast<unsigned char>(s[i + 1]) >> 4];
                out += hex[s[i + 1] & 15];
                i += len;
            } else {
                out.append(s, i, len);
                i += len;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
}

}  // namespace json
}  // namespace modelkeep
