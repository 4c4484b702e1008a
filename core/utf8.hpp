// utf8.hpp — UTF-8 for every reader that takes names and strings from a file
// (the .mkp format, pickles, safetensors headers): validation, the control
// characters a name may not hold, and escaping for display.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace modelkeep {

/// True for a valid UTF-8 sequence (no overlongs, no surrogates, ≤ U+10FFFF).
bool valid_utf8(const std::string& s);

/// The length of the valid UTF-8 sequence at s[i] (1 for ASCII), its code
/// point in `cp`; 0 when s[i] starts no valid sequence (cp then unset).
/// Must be called with i < s.size().
std::size_t utf8_next(const std::string& s, std::size_t i, std::uint32_t& cp);

/// A control character: C0 (U+0000–U+001F), DEL (U+007F) or C1 (U+0080–U+009F).
constexpr bool is_control(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

/// The first control character (is_control) of s, or -1 if it has none; with
/// `allow_newline_tab`, \n and \t do not count (free text such as .mkp
/// metadata values). Invalid UTF-8 bytes are skipped, not counted.
long first_control(const std::string& s, bool allow_newline_tab = false);

/// s made safe to print on a terminal or in a log: the result is valid UTF-8
/// holding no control character and no invisible reordering character, so a
/// string from a file can never move the cursor, recolour the terminal, reorder
/// the text around it or forge a line of output. For every input, whatever its bytes:
///   - C0 and DEL bytes are written as \xNN (\x1b for ESC, \x0a for a newline);
///   - a byte that starts no valid UTF-8 sequence is written as \xNN (\xff);
///   - the C1 controls U+0080–U+009F and the invisible bidirectional and line
///     controls U+061C, U+200E–U+200F, U+2028–U+202E and U+2066–U+2069 are
///     written as \uNNNN (\u009b, \u202e);
///   - every other character, the backslash included, is copied as it is.
/// So it is idempotent — escape_text(escape_text(s)) == escape_text(s) — and a
/// message whose names were escaped where it was built may be escaped again
/// where it is printed; the price is that a name holding the text "\x1b" reads
/// the same as one holding ESC. Safe, not reversible: for messages and
/// listings. JSON output uses json::append_string instead.
std::string escape_text(const std::string& s);

}  // namespace modelkeep
