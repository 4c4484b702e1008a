#include "json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <system_error>

#include "spec.hpp"

namespace modelkeep {
namespace json {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
std::string elements(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " element" : " elements"); }

// Parses one nested array; each method returns false after setting err_.
class Parser {
public:
    Parser(const std::string& text, std::uint64_t max_numbers) : s_(text), max_numbers_(max_numbers) {}

    Status run(Shape& shape, std::vector<float>& data) {
        if (!parse()) return error(Code::invalid_input, "input JSON at " + err_);
        shape.assign(dims_.begin(), dims_.end());
        data = std::move(data_);
        return Status::success();
    }

    /// A JSON object whose every member is a nested array (parse_object).
    Status run_object(std::vector<NamedArray>& out) {
        std::vector<NamedArray> members;
        if (!parse_object(members)) return error(Code::invalid_input, "input JSON at " + err_);
        out = std::move(members);
        return Status::success();
    }

private:
    const std::string& s_;
    const std::uint64_t max_numbers_;
    std::size_t pos_ = 0;
    std::string err_;
    bool rank_known_ = false;
    std::vector<std::uint64_t> dims_;   // per depth: length of the first array closed there (0: none yet)
    std::vector<std::uint64_t> count_;  // per open array: elements so far
    std::vector<float> data_;
    std::uint64_t earlier_ = 0;  // numbers in the object's earlier members (parse_object)

    bool at_end() const { return pos_ >= s_.size(); }
    void skip_space() {
        while (!at_end() && is_space(s_[pos_])) ++pos_;
    }

    // "line 1, column 7" of byte offset `at` (only computed on error).
    std::string where(std::size_t at) const {
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i < at && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        return "line " + std::to_string(line) + ", column " + std::to_string(col);
    }

    bool fail(const std::string& what, std::size_t at) {
        err_ = where(at) + ": " + what;
        return false;
    }

    // A short description of what starts at pos_, for "expected X, found Y".
    std::string found() const {
        if (at_end()) return "the end of the input";
        const char c = s_[pos_];
        if (is_alpha(c)) {
            std::size_t e = pos_;
            while (e < s_.size() && e - pos_ < 16 && is_alpha(s_[e])) ++e;
            return "'" + s_.substr(pos_, e - pos_) + "'";
        }
        if (c == '"') return "a string";
        const unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
        static const char hex[] = "0123456789abcdef";
        return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
    }

    // A value where a number or '[' may start but something else does.
    bool fail_value(const char* expected) {
        if (!at_end() && is_alpha(s_[pos_])) {
            const std::string word = found();
            if (word == "'NaN'" || word == "'nan'" || word == "'Infinity'" || word == "'inf'" || word == "'infinity'" ||
                word == "'Inf'")
                return fail(word + " is not a JSON number (only finite numbers are accepted)", pos_);
        }
        return fail(std::string("expected ") + expected + ", found " + found(), pos_);
    }

    bool parse() {
        skip_space();
        if (at_end()) return fail("empty input: expected a nested array of numbers such as [[1, 2, 3]]", pos_);
        if (s_[pos_] != '[') {
            if (is_digit(s_[pos_]) || s_[pos_] == '-')
                return fail("expected an array (rank 1 to " + std::to_string(max_rank) +
                                "), found a single number; write [x] for a rank-1 input",
                            pos_);
            return fail_value("'['");
        }
        if (!parse_array()) return false;
        skip_space();
        if (!at_end()) return fail("unexpected " + found() + " after the closing ']'", pos_);
        return true;
    }

    // {"key": [...], ...}: each member's array parsed as parse() parses one,
    // the numbers of all of them counted against max_numbers_ together.
    bool parse_object(std::vector<NamedArray>& out) {
        skip_space();
        if (at_end() || s_[pos_] != '{') return fail_value("'{'");
        ++pos_;
        for (;;) {
            skip_space();
            if (!at_end() && s_[pos_] == '}' && out.empty())
                return fail("empty object: expected \"x\" and \"y\"", pos_);
            NamedArray m;
            if (!key(m.key)) return false;
            for (const NamedArray& o : out)
                if (o.key == m.key) return fail("key \"" + m.key + "\" appears twice", pos_);
            skip_space();
            if (at_end() || s_[pos_] != ':') return fail("expected ':', found " + found(), pos_);
            ++pos_;
            skip_space();
            if (at_end() || s_[pos_] != '[') return fail_value("an array of numbers");
            rank_known_ = false;
            dims_.clear();
            count_.clear();
            data_.clear();
            if (!parse_array()) return false;
            earlier_ += data_.size();
            m.shape.assign(dims_.begin(), dims_.end());
            m.data = std::move(data_);
            data_ = {};
            out.push_back(std::move(m));
            skip_space();
            if (!at_end() && s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (at_end() || s_[pos_] != '}') return fail("expected ',' or '}', found " + found(), pos_);
            ++pos_;
            skip_space();
            if (!at_end()) return fail("unexpected " + found() + " after the closing '}'", pos_);
            return true;
        }
    }

    // A member name: a JSON string of printable ASCII without escapes (the
    // keys this parser is for are plain words).
    bool key(std::string& out) {
        if (at_end() || s_[pos_] != '"') return fail("expected a key in double quotes, found " + found(), pos_);
        const std::size_t start = ++pos_;
        while (!at_end() && s_[pos_] != '"') {
            const unsigned char c = static_cast<unsigned char>(s_[pos_]);
            if (c == '\\' || c < 0x20 || c >= 0x7f) return fail("keys are plain ASCII words without escapes", pos_);
            if (pos_ - start >= 64) return fail("a key longer than 64 characters", start);
            ++pos_;
        }
        if (at_end()) return fail("unexpected end of input inside a key", start);
        out = s_.substr(start, pos_ - start);
        ++pos_;
        return true;
    }

    // The top-level array; nesting is tracked in count_, not on the C++ stack.
    bool parse_array() {
        if (!open_array()) return false;
        while (!count_.empty()) {
            skip_space();
            if (at_end())
                return fail("unexpected end of input: " + std::to_string(count_.size()) + " array(s) not closed", pos_);
            const char c = s_[pos_];
            if (c == ']') {
                if (!close_array()) return false;
            } else if (c == ',') {
                if (count_.back() == 0) return fail("expected a number or '[', found ','", pos_);
                ++pos_;
                skip_space();
                if (!parse_element()) return false;
            } else if (count_.back() == 0) {
                if (!parse_element()) return false;
            } else {
                return fail("expected ',' or ']', found " + found(), pos_);
            }
        }
        return true;
    }

    // One element of the innermost open array: a number or a nested '['.
    bool parse_element() {
        if (at_end()) return fail("unexpected end of input: expected a number or '['", pos_);
        const char c = s_[pos_];
        if (c == '[') return open_array();
        if (c == ']' && count_.back() > 0) return fail("trailing ',' before ']'", pos_);
        if (c == '-' || is_digit(c)) return number_element();
        return fail_value("a number or '['");
    }

    bool open_array() {
        const std::size_t depth = count_.size();
        if (rank_known_ && depth >= dims_.size())
            return fail("ragged array: '[' where a number is expected (the first number is nested " +
                            std::to_string(dims_.size()) + " deep)",
                        pos_);
        if (depth >= max_rank) return fail("arrays nested deeper than " + std::to_string(max_rank) + " levels", pos_);
        count_.push_back(0);
        ++pos_;
        skip_space();
        if (!at_end() && s_[pos_] == ']') return fail("empty array: every dimension must be at least 1", pos_);
        return true;
    }

    bool close_array() {
        const std::size_t depth = count_.size() - 1;
        const std::uint64_t n = count_.back();
        if (dims_[depth] == 0) {
            dims_[depth] = n;
        } else if (n != dims_[depth]) {
            return fail("ragged array: " + elements(n) + " at depth " + std::to_string(depth + 1) +
                            ", but the first array there has " + std::to_string(dims_[depth]),
                        pos_);
        }
        count_.pop_back();
        ++pos_;
        if (!count_.empty()) return count_element();
        return true;
    }

    // Counts a finished element of the innermost open array, checking it
    // against the length of the first array at that depth.
    bool count_element() {
        const std::size_t depth = count_.size() - 1;
        const std::uint64_t n = ++count_.back();
        if (dims_[depth] != 0 && n > dims_[depth])
            return fail("ragged array: more than " + elements(dims_[depth]) + " at depth " + std::to_string(depth + 1) +
                            ", unlike the first array there",
                        pos_);
        return true;
    }

    bool number_element() {
        const std::size_t depth = count_.size();
        if (!rank_known_) {
            rank_known_ = true;
            dims_.assign(depth, 0);
        } else if (depth != dims_.size()) {
            return fail("ragged array: a number nested " + std::to_string(depth) +
                            " deep, but the first number is nested " + std::to_string(dims_.size()) + " deep",
                        pos_);
        }
        if (earlier_ + data_.size() >= max_numbers_)
            return fail("more than " + std::to_string(max_numbers_) + " numbers", pos_);
        float v = 0;
        if (!number(v)) return false;
        data_.push_back(v);
        return count_element();
    }

    // Strict JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    bool number(float& out) {
        const std::size_t start = pos_;
        const std::size_t n = s_.size();
        if (s_[pos_] == '-') ++pos_;
        if (pos_ >= n || !is_digit(s_[pos_])) return fail_value("a digit after '-'");
        // Decimal exponent of the leading significant digit, to tell overflow from underflow.
        long long magnitude = 0;
        bool seen_nonzero = false;
        if (s_[pos_] == '0') {
            ++pos_;
            if (pos_ < n && is_digit(s_[pos_])) return fail("leading zeros are not allowed in JSON numbers", start);
        } else {
            long long int_digits = 0;
            while (pos_ < n && is_digit(s_[pos_])) {
                ++pos_;
                if (int_digits < (1LL << 40)) ++int_digits;
            }
            magnitude = int_digits - 1;
            seen_nonzero = true;
        }
        if (pos_ < n && s_[pos_] == '.') {
            ++pos_;
            if (pos_ >= n || !is_digit(s_[pos_])) return fail("expected a digit after '.'", pos_);
            long long frac = 0;
            while (pos_ < n && is_digit(s_[pos_])) {
                if (frac < (1LL << 40)) ++frac;
                if (!seen_nonzero && s_[pos_] != '0') {
                    seen_nonzero = true;
                    magnitude = -frac;
                }
                ++pos_;
            }
        }
        if (pos_ < n && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            bool neg = false;
            if (pos_ < n && (s_[pos_] == '+' || s_[pos_] == '-')) neg = s_[pos_++] == '-';
            if (pos_ >= n || !is_digit(s_[pos_])) return fail("expected a digit in the exponent", pos_);
            long long e = 0;
            while (pos_ < n && is_digit(s_[pos_])) {
                if (e < (1LL << 40)) e = e * 10 + (s_[pos_] - '0');
                ++pos_;
            }
            magnitude += neg ? -e : e;
        }
        float v = 0;
        const char* first = s_.data() + start;
        const char* last = s_.data() + pos_;
        const std::from_chars_result r = std::from_chars(first, last, v);
        if (r.ec == std::errc::result_out_of_range) {
            if (seen_nonzero && magnitude >= 0)
                return fail("number " + s_.substr(start, std::min<std::size_t>(pos_ - start, 40)) +
                                " is outside the float32 range",
                            start);
            v = s_[start] == '-' ? -0.0f : 0.0f;  // underflow: rounds to zero
        } else if (r.ec != std::errc() || r.ptr != last) {
            return fail("invalid number", start);
        }
        if (!std::isfinite(v)) return fail("number is outside the float32 range", start);
        out = v;
        return true;
    }
};

}  // namespace

Status parse_array(const std::string& text, Shape& shape, std::vector<float>& data, std::uint64_t max_numbers) {
    return Parser(text, max_numbers).run(shape, data);
}

Status parse_object(const std::string& text, std::vector<NamedArray>& out, std::uint64_t max_numbers) {
    return Parser(text, max_numbers).run_object(out);
}

std::string quote(const std::string& s) {
    std::string out;
    append_string(out, s);
    return out;
}

std::string number(float v) {
    if (!std::isfinite(v)) return "null";
    return format_float(v);
}

}  // namespace json
}  // namespace modelkeep
