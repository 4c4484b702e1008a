// json.hpp — the little JSON the CLI needs: a strict parser for a nested array
// of numbers (the `predict --input` tensor) and writers for strings and floats.
// The parser reports every bad input as an invalid_input Status and never
// throws on it (only running out of memory can still throw std::bad_alloc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "json_string.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {
namespace json {

/// Parses a rectangular nested JSON array of numbers of rank 1..max_rank,
/// e.g. "[[1, 2.5, -3e-2]]" → shape (1, 3), data in row-major order.
/// Only JSON numbers are accepted (no NaN / Infinity / strings / null); each is
/// rounded to the nearest float32, and one beyond the float32 range is an error.
/// Empty arrays, ragged arrays, more than max_numbers numbers, a scalar at the
/// top level and anything after the closing bracket are errors too. On error
/// shape and data are left unchanged.
Status parse_array(const std::string& text, Shape& shape, std::vector<float>& data,
                   std::uint64_t max_numbers = max_tensor_elements);

/// One member of an object parse_object read: its key and its array.
struct NamedArray {
    std::string key;
    Shape shape;
    std::vector<float> data;
};

/// Parses a JSON object whose every member is a nested array of numbers as
/// parse_array reads one, e.g. {"x": [[1, 2], [3, 4]], "y": [0, 1]}; the
/// members in file order. Keys are plain ASCII words in double quotes (no
/// escapes), each at most once. max_numbers bounds all the arrays together.
Status parse_object(const std::string& text, std::vector<NamedArray>& out,
                    std::uint64_t max_numbers = max_tensor_elements);

/// append_string (json_string.hpp) into a new string.
std::string quote(const std::string& s);

/// The shortest decimal that reads back as the same float32 ("0.1", "-2.5e-08");
/// NaN and ±inf, which JSON cannot hold, are written as null (as JSON.stringify does).
std::string number(float v);

}  // namespace json
}  // namespace modelkeep
