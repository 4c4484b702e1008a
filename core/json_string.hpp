// json_string.hpp — a string as a quoted JSON string: the one escaper of the
// CLI's JSON output and the safetensors header writer. Kept apart from the
// CLI's JSON parser (core/cli/json.cpp), which the wasm build cannot link: its
// number parser needs float std::from_chars, absent from Emscripten 3.1.6.
#pragma once

#include <string>

namespace modelkeep {
namespace json {

/// Appends s as a quoted JSON string; control characters (C0, DEL and C1:
/// U+0000–U+001F, U+007F–U+009F, as \uNNNN or \n, \t, ...) and invalid UTF-8
/// bytes (written as \ufffd) are escaped, so the result is always valid JSON
/// and holds no raw control byte.
void append_string(std::string& out, const std::string& s);

}  // namespace json
}  // namespace modelkeep
