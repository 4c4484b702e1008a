// decimal.hpp against the C library, the plain reference: formatting is the
// shortest %.*g that strtof / strtod read back, parsing is strtof / strtod,
// on every kind of value (random bits, subnormals, powers of two and ten,
// halfway cases, long and odd texts) — bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "decimal.hpp"

using namespace modelkeep;

namespace {

std::string libc_shortest_float(float v) {
    char buf[64];
    for (int p = 1; p <= 9; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, double(v));
        if (std::strtof(buf, nullptr) == v) break;
    }
    return buf;
}

std::string libc_shortest_double(double v) {
    char buf[64];
    for (int p = 1; p <= 17; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

double from_bits64(std::uint64_t u) {
    double d;
    std::memcpy(&d, &u, 8);
    return d;
}

template <class T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

void expect_parse_float(const std::string& text) {
    float ours = 0;
    char* end = nullptr;
    const float ref = std::strtof(text.c_str(), &end);
    const bool ok = parse_float(text, ours);
    if (!std::isfinite(ref)) {
        EXPECT_FALSE(ok) << text;
        return;
    }
    ASSERT_TRUE(ok) << text;
    EXPECT_TRUE(same_bits(ours, ref)) << text << ": ours " << ours << ", strtof " << ref;
}

void expect_parse_double(const std::string& text) {
    double ours = 0;
    const double ref = std::strtod(text.c_str(), nullptr);
    const bool ok = parse_double(text, ours);
    if (!std::isfinite(ref)) {
        EXPECT_FALSE(ok) << text;
        return;
    }
    ASSERT_TRUE(ok) << text;
    EXPECT_TRUE(same_bits(ours, ref)) << text;
}

}  // namespace

TEST(Decimal, FormatFloatIsTheShortestPrintfThatReadsBack) {
    // Every exponent, random mantissas, and the edges.
    std::mt19937 rng(1);
    for (int i = 0; i < 60000; ++i) {
        const float v = from_bits(std::uint32_t(rng()));
        if (!std::isfinite(v)) continue;
        ASSERT_EQ(format_float(v), libc_shortest_float(v)) << std::hexfloat << v;
    }
    for (float v : {0.1f, 1e-5f, 0.3f, 1.0f, 100.0f, 123456792.0f, 1e10f, 0.01f, 65504.0f, -2.5f, 3.4028235e38f,
                    1.17549435e-38f, 1.4e-45f, 0.5f, 1e-4f, 9.999999e-5f, 1e16f, 33554432.0f})
        EXPECT_EQ(format_float(v), libc_shortest_float(v)) << v;
    for (std::uint32_t u = 1; u < 4096; ++u) EXPECT_EQ(format_float(from_bits(u)), libc_shortest_float(from_bits(u)));
    EXPECT_EQ(format_float(0.0f), "0");
    EXPECT_EQ(format_float(-0.0f), "-0");
    EXPECT_EQ(format_float(std::numeric_limits<float>::infinity()), "inf");
    EXPECT_EQ(format_float(-std::numeric_limits<float>::infinity()), "-inf");
    EXPECT_EQ(format_float(std::nanf("")), "nan");
    EXPECT_EQ(format_float(1e-5f), "1e-05");
    EXPECT_EQ(format_float(0.1f), "0.1");
}

TEST(Decimal, FormatDoubleIsTheShortestPrintfThatReadsBack) {
    std::mt19937_64 rng(2);
    for (int i = 0; i < 15000; ++i) {
        const double v = from_bits64(rng());
        if (!std::isfinite(v)) continue;
        ASSERT_EQ(format_double(v), libc_shortest_double(v)) << std::hexfloat << v;
    }
    for (double v : {0.1, 0.25, 1e-300, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 123456789012345678.0,
                     1.0 / 3, 1e22, 1e23})
        EXPECT_EQ(format_double(v), libc_shortest_double(v)) << v;
    EXPECT_EQ(format_double(0.1), "0.1");
}

TEST(Decimal, ParseIsStrtofAndStrtod) {
    std::mt19937_64 rng(3);
    // Texts of every length and exponent, with the digits of a random value
    // and random digits beyond (halfway cases included below).
    for (int i = 0; i < 50000; ++i) {
        std::string t = (rng() & 1) ? "-" : "";
        const int digits = 1 + int(rng() % 30);
        for (int d = 0; d < digits; ++d) t += char('0' + rng() % 10);
        if (rng() & 1) t.insert(t.size() - std::size_t(rng() % digits), ".");
        if (rng() & 1) t += "e" + std::to_string(int(rng() % 100) - 60);
        expect_parse_float(t);
        expect_parse_double(t);
    }
    // Every float printed at every precision, and the midpoints between neighbours.
    for (int i = 0; i < 20000; ++i) {
        const float v = std::fabs(from_bits(std::uint32_t(rng())));
        if (!std::isfinite(v) || v == 0) continue;
        char buf[80];
        for (int p : {1, 6, 9, 12, 17, 25}) {
            std::snprintf(buf, sizeof buf, "%.*g", p, double(v));
            expect_parse_float(buf);
        }
        const double mid = (double(v) + double(std::nextafter(v, INFINITY))) / 2;  // exact in double
        std::snprintf(buf, sizeof buf, "%.60g", mid);
        expect_parse_float(buf);
    }
    for (const char* t : {"0",
                          "-0",
                          "0.0",
                          ".5",
                          "5.",
                          "+1",
                          "1e38",
                          "3.4028235e38",
                          "3.4028236e38",
                          "3.5e38",
                          "1e-45",
                          "7e-46",
                          "7.1e-46",
                          "1e-46",
                          "1.4e-45",
                          "1.17549435e-38",
                          "1e400",
                          "1e-400",
                          "0.000001",
                          "123456789",
                          "16777217",
                          "33554433",
                          "1E5",
                          "1e+5",
                          "2.5e-3"})
        expect_parse_float(t);
    // Not numbers: refused whole (strtof would take a prefix or words).
    float f;
    for (const char* t : {"", "-", ".", "e5", "1e", "1e+", "1.2.3", " 1", "1 ", "inf", "nan", "0x1p3", "1,5", "--1"})
        EXPECT_FALSE(parse_float(t, f)) << t;
    EXPECT_FALSE(parse_float(std::string(1025, '1'), f));
    ASSERT_TRUE(parse_float("-0", f));
    EXPECT_TRUE(std::signbit(f));
}
