// The CLI's JSON helper: the strict nested-array parser (shapes, number
// grammar, every rejection, robustness on random bytes) and the writers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli/json.hpp"

using namespace modelkeep;

namespace {

struct Parsed {
    Status status;
    Shape shape;
    std::vector<float> data;
};

Parsed parse(const std::string& text, std::uint64_t max_numbers = max_tensor_elements) {
    Parsed p;
    p.status = json::parse_array(text, p.shape, p.data, max_numbers);
    return p;
}

// Expects an invalid_input error whose message contains `needle`.
void expect_rejected(const std::string& text, const std::string& needle) {
    const Parsed p = parse(text);
    EXPECT_EQ(p.status.code(), Code::invalid_input) << "input: " << text;
    EXPECT_NE(p.status.message().find(needle), std::string::npos)
        << "input: " << text << "\nmessage: " << p.status.message() << "\nexpected to contain: " << needle;
}

std::uint32_t bits(float v) {
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    return b;
}

}  // namespace

TEST(Json, ParsesShapesInRowMajorOrder) {
    Parsed p = parse("[[1, 2, 3], [4, 5, 6]]");
    ASSERT_TRUE(p.status.ok()) << p.status.to_string();
    EXPECT_EQ(p.shape, (Shape{2, 3}));
    EXPECT_EQ(p.data, (std::vector<float>{1, 2, 3, 4, 5, 6}));

    p = parse("[7]");
    ASSERT_TRUE(p.status.ok());
    EXPECT_EQ(p.shape, (Shape{1}));
    EXPECT_EQ(p.data, (std::vector<float>{7}));

    p = parse(" \t\r\n[ [ [1] , [2] ] ,\n [ [3] , [4] ] ]\n ");
    ASSERT_TRUE(p.status.ok()) << p.status.to_string();
    EXPECT_EQ(p.shape, (Shape{2, 2, 1}));
    EXPECT_EQ(p.data, (std::vector<float>{1, 2, 3, 4}));
}

TEST(Json, AcceptsRankEightAndRejectsRankNine) {
    const std::string eight = std::string(8, '[') + "1.5" + std::string(8, ']');
    const Parsed p = parse(eight);
    ASSERT_TRUE(p.status.ok()) << p.status.to_string();
    EXPECT_EQ(p.shape, Shape(8, 1));
    expect_rejected(std::string(9, '[') + "1" + std::string(9, ']'), "deeper than 8");
    // Very deep nesting fails fast instead of recursing.
    expect_rejected(std::string(1000000, '['), "deeper than 8");
}

TEST(Json, NumberGrammar) {
    const std::pair<const char*, float> cases[] = {
        {"0", 0.0f},        {"-0", -0.0f},
        {"1", 1.0f},        {"-12", -12.0f},
        {"0.5", 0.5f},      {"-0.25", -0.25f},
        {"1e3", 1000.0f},   {"1E+3", 1000.0f},
        {"25e-1", 2.5f},    {"0.1", 0.1f},
        {"1.5E-2", 0.015f}, {"3.4028235e38", 3.4028235e38f},
        {"1e-45", 1e-45f},  {"123456789", 123456789.0f},
    };
    for (const auto& [text, want] : cases) {
        const Parsed p = parse(std::string("[") + text + "]");
        ASSERT_TRUE(p.status.ok()) << text << ": " << p.status.to_string();
        ASSERT_EQ(p.data.size(), 1u);
        EXPECT_EQ(bits(p.data[0]), bits(want)) << text;
    }
    // Far below the smallest float32: rounds to (signed) zero, like any other rounding.
    Parsed p = parse("[1e-50, -1e-99999999999999999999, 0e999999999]");
    ASSERT_TRUE(p.status.ok()) << p.status.to_string();
    EXPECT_EQ(bits(p.data[0]), bits(0.0f));
    EXPECT_EQ(bits(p.data[1]), bits(-0.0f));
    EXPECT_EQ(bits(p.data[2]), bits(0.0f));
    // A long mantissa is rounded correctly.
    p = parse("[0.1000000000000000000000000000000000000000000001]");
    ASSERT_TRUE(p.status.ok());
    EXPECT_EQ(p.data[0], 0.1f);
}

TEST(Json, RejectsNonNumbers) {
    expect_rejected("[NaN]", "'NaN' is not a JSON number");
    expect_rejected("[Infinity]", "'Infinity' is not a JSON number");
    expect_rejected("[-Infinity]", "'Infinity' is not a JSON number");
    expect_rejected("[inf]", "'inf' is not a JSON number");
    expect_rejected("[true]", "found 'true'");
    expect_rejected("[null]", "found 'null'");
    expect_rejected("[\"1\"]", "found a string");
    expect_rejected("[{}]", "found '{'");
    expect_rejected("[1, \x01]", "byte 0x01");
}

TEST(Json, RejectsBadNumbers) {
    expect_rejected("[01]", "leading zeros");
    expect_rejected("[-01]", "leading zeros");
    expect_rejected("[1.]", "digit after '.'");
    expect_rejected("[.5]", "found '.'");
    expect_rejected("[+1]", "found '+'");
    expect_rejected("[-]", "a digit after '-'");
    expect_rejected("[1e]", "digit in the exponent");
    expect_rejected("[1e+]", "digit in the exponent");
    expect_rejected("[0x10]", "expected ',' or ']'");
    expect_rejected("[1.5.2]", "expected ',' or ']'");
    expect_rejected("[3.5e38]", "outside the float32 range");
    expect_rejected("[-1e39]", "outside the float32 range");
    expect_rejected("[1e99999999999999999999999]", "outside the float32 range");
}

TEST(Json, RejectsBadStructure) {
    expect_rejected("", "empty input");
    expect_rejected(" \n\t ", "empty input");
    expect_rejected("1", "single number");
    expect_rejected("-2.5", "single number");
    expect_rejected("{\"a\": 1}", "expected '['");
    expect_rejected("[]", "empty array");
    expect_rejected("[[]]", "empty array");
    expect_rejected("[[1], []]", "empty array");
    expect_rejected("[", "not closed");
    expect_rejected("[[1, 2]", "not closed");
    expect_rejected("[1, 2", "not closed");
    expect_rejected("[1,]", "trailing ','");
    expect_rejected("[,1]", "found ','");
    expect_rejected("[1,,2]", "found ','");
    expect_rejected("[1 2]", "expected ',' or ']'");
    expect_rejected("[1]]", "after the closing ']'");
    expect_rejected("[1] [2]", "after the closing ']'");
    expect_rejected("[1]x", "after the closing ']'");
    expect_rejected(std::string("[1]\0", 4), "after the closing ']'");
}

TEST(Json, RejectsRaggedArrays) {
    expect_rejected("[[1, 2], [3]]", "ragged");
    expect_rejected("[[1], [2, 3]]", "ragged");
    expect_rejected("[[1], 2]", "ragged");
    expect_rejected("[1, [2]]", "ragged");
    expect_rejected("[[[1, 2]], [[3, 4], [5, 6]]]", "ragged");
    expect_rejected("[[[1], [2]], [[3]]]", "ragged");
    expect_rejected("[[1, 2], [[3], [4]]]", "ragged");
}

TEST(Json, ErrorsNameLineAndColumn) {
    const Parsed p = parse("[[1, 2],\n [3, x]]");
    EXPECT_EQ(p.status.code(), Code::invalid_input);
    EXPECT_NE(p.status.message().find("line 2, column 6"), std::string::npos) << p.status.message();
}

TEST(Json, CapsTheNumberCount) {
    Parsed p = parse("[[1, 2], [3, 4]]", 4);
    ASSERT_TRUE(p.status.ok());
    p = parse("[[1, 2], [3, 4], [5, 6]]", 4);
    EXPECT_EQ(p.status.code(), Code::invalid_input);
    EXPECT_NE(p.status.message().find("more than 4 numbers"), std::string::npos) << p.status.message();
}

TEST(Json, FailureLeavesOutputsUntouched) {
    Shape shape{9};
    std::vector<float> data{1.0f};
    EXPECT_FALSE(json::parse_array("[[1], [2, 3]]", shape, data).ok());
    EXPECT_EQ(shape, Shape{9});
    EXPECT_EQ(data, std::vector<float>{1.0f});
}

TEST(Json, NeverCrashesOnRandomInput) {
    std::mt19937 rng(12345);
    const std::string alphabet = "[]],,  0123456789-+.eE\nNaI\"{x";
    const std::string seeds[] = {"[[1, 2.5], [-3e2, 4]]", "[[[0.1]], [[2]]]", "[1e-5, -0, 7]"};
    for (int iter = 0; iter < 30000; ++iter) {
        std::string text;
        if (iter % 3 == 0) {
            // Random bytes, biased towards JSON punctuation.
            const std::size_t n = rng() % 40;
            for (std::size_t i = 0; i < n; ++i)
                text += rng() % 4 ? alphabet[rng() % alphabet.size()] : char(rng() % 256);
        } else {
            // A valid array with a few bytes changed, inserted or removed.
            text = seeds[rng() % 3];
            for (int k = 1 + int(rng() % 3); k > 0 && !text.empty(); --k) {
                const std::size_t at = rng() % text.size();
                switch (rng() % 3) {
                    case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
                    case 1: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
                    default: text.erase(at, 1);
                }
            }
        }
        const Parsed p = parse(text);
        if (p.status.ok()) {
            // Any success is a consistent rectangular tensor of finite values.
            std::uint64_t numel = 1;
            for (std::size_t d : p.shape) numel *= d;
            EXPECT_GE(p.shape.size(), 1u) << text;
            EXPECT_LE(p.shape.size(), max_rank) << text;
            EXPECT_EQ(numel, p.data.size()) << text;
            for (float v : p.data) EXPECT_TRUE(std::isfinite(v)) << text;
        } else {
            EXPECT_EQ(p.status.code(), Code::invalid_input) << text;
            EXPECT_FALSE(p.status.message().empty());
        }
    }
}

TEST(Json, NumbersRoundTrip) {
    std::mt19937 rng(7);
    std::vector<float> values = {0.0f,          -0.0f,          1.0f,   -1.0f,           0.1f,        1e-5f,
                                 3.4028235e38f, -3.4028235e38f, 1e-45f, 1.17549435e-38f, 16777217.0f, 123.456f};
    for (int i = 0; i < 20000; ++i) {
        std::uint32_t b = std::uint32_t(rng());
        float v;
        std::memcpy(&v, &b, 4);
        if (std::isfinite(v)) values.push_back(v);
    }
    std::string text = "[";
    for (std::size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + json::number(values[i]);
    text += "]";
    const Parsed p = parse(text);
    ASSERT_TRUE(p.status.ok()) << p.status.to_string();
    ASSERT_EQ(p.data.size(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i)
        EXPECT_EQ(bits(p.data[i]), bits(values[i])) << json::number(values[i]);
    // Shortest form.
    EXPECT_EQ(json::number(0.1f), "0.1");
    EXPECT_EQ(json::number(2.0f), "2");
    EXPECT_EQ(json::number(-0.0f), "-0");
}

TEST(Json, NonFiniteNumbersBecomeNull) {
    EXPECT_EQ(json::number(std::numeric_limits<float>::quiet_NaN()), "null");
    EXPECT_EQ(json::number(std::numeric_limits<float>::infinity()), "null");
    EXPECT_EQ(json::number(-std::numeric_limits<float>::infinity()), "null");
}

TEST(Json, StringsAreEscaped) {
    EXPECT_EQ(json::quote(""), "\"\"");
    EXPECT_EQ(json::quote("fc1.weight"), "\"fc1.weight\"");
    EXPECT_EQ(json::quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(json::quote("l1\nl2\tx\r\b\f"), "\"l1\\nl2\\tx\\r\\b\\f\"");
    EXPECT_EQ(json::quote(std::string("\x01\x1f\0", 3)), "\"\\u0001\\u001f\\u0000\"");
    // DEL and the C1 controls too: no raw control byte reaches a terminal
    EXPECT_EQ(json::quote("esc\x1b[31m del\x7f"), "\"esc\\u001b[31m del\\u007f\"");
    EXPECT_EQ(json::quote("c1\xc2\x80\xc2\x9b\xc2\x9f nbsp\xc2\xa0"), "\"c1\\u0080\\u009b\\u009f nbsp\xc2\xa0\"");
    EXPECT_EQ(json::quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    // Invalid UTF-8 (stray continuation, overlong, surrogate, truncated) becomes U+FFFD.
    EXPECT_EQ(json::quote("a\x80z"), "\"a\\ufffdz\"");
    EXPECT_EQ(json::quote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    EXPECT_EQ(json::quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    EXPECT_EQ(json::quote("\xe2\x82"), "\"\\ufffd\\ufffd\"");
    std::string out = "x=";
    json::append_string(out, "y");
    EXPECT_EQ(out, "x=\"y\"");
}
