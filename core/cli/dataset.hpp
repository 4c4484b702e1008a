// dataset.hpp — the training data of the CLI's `train --data FILE`, from text:
//
//   JSON  {"x": [[...], ...], "y": [...] or [[...], ...]}: x is (n, features) or
//         deeper (n, ...); y is (n) — class indices or one target each — or
//         (n, k). No other key.
//   CSV   comma-separated rows of numbers, one sample per row; a first row
//         holding any field that is not a number is the header (the column
//         names; "quoted" fields allowed there, with "" for a quote). The
//         target is the last column, or the column named by `target` (which
//         needs a header). Blank lines are skipped, CRLF is accepted.
//
// Every failure is invalid_input naming the line (and column or field); the
// element cap (max_tensor_elements for x and y together) is checked as the
// values are read, so an absurd file stops at the cap, not at the allocator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.hpp"
#include "tensor.hpp"

namespace modelkeep {

struct Dataset {
    Tensor x;                           // (n, features...)
    Tensor y;                           // (n) or (n, k)
    std::vector<std::string> features;  // CSV with a header: the names of x's columns
    std::string target;                 // CSV with a header: the target column's name
};

/// JSON as above.
Status read_dataset_json(const std::string& text, Dataset& out);

/// CSV as above; `target` = "" for the last column. At most max_values values
/// in all (x and y), checked row by row before a row is kept.
Status read_dataset_csv(const std::string& text, const std::string& target, Dataset& out,
                        std::uint64_t max_values = max_tensor_elements);

/// By the text's first non-blank character: '{' is JSON, anything else CSV.
Status read_dataset(const std::string& text, const std::string& target, Dataset& out);

}  // namespace modelkeep
