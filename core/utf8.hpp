// utf8.hpp — UTF-8 validation, for every reader that takes names and strings
// from a file (the .mkp format, pickles, safetensors headers).
#pragma once

#include <string>

namespace modelkeep {

/// True for a valid UTF-8 sequence (no overlongs, no surrogates, ≤ U+10FFFF).
bool valid_utf8(const std::string& s);

}  // namespace modelkeep
