// safetensors.hpp: the writer's exact bytes and tensor order, round trips in
// every dtype, one hand-written file per reader rule and error code, hostile
// bytes (every truncation, byte flips, random mutations) and a cross-check by
// Python's own json + struct modules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "rng.hpp"
#include "safetensors.hpp"

using namespace modelkeep;

namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint32_t bits(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}

float from_bits(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

// Little-endian byte builder for hand-written data.
struct Data {
    Bytes b;
    Data& le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
        return *this;
    }
    Data& u8(std::uint8_t v) { return le(v, 1); }
    Data& u16(std::uint16_t v) { return le(v, 2); }
    Data& u32(std::uint32_t v) { return le(v, 4); }
    Data& u64(std::uint64_t v) { return le(v, 8); }
    Data& f32(float v) { return u32(bits(v)); }
    Data& f64(double v) {
        std::uint64_t u;
        std::memcpy(&u, &v, 8);
        return u64(u);
    }
};

// [u64 N][header][data]; N is the header's length unless given.
Bytes st_file(const std::string& header, const Bytes& data = {},
              std::uint64_t n = std::numeric_limits<std::uint64_t>::max()) {
    Data d;
    d.u64(n == std::numeric_limits<std::uint64_t>::max() ? header.size() : n);
    d.b.insert(d.b.end(), header.begin(), header.end());
    d.b.insert(d.b.end(), data.begin(), data.end());
    return d.b;
}

// "name":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::string object(const std::vector<std::string>& members) {
    std::string s = "{";
    for (std::size_t i = 0; i < members.size(); ++i) s += (i ? "," : "") + members[i];
    return s + "}";
}

Bytes zeros_of(std::size_t n) { return Bytes(n, 0); }

Tensor tensor(const Shape& shape, const std::vector<float>& values) {
    Tensor t(shape);
    EXPECT_EQ(t.size(), values.size());
    std::copy(values.begin(), values.end(), t.begin());
    return t;
}

Bytes write_st(const StateDict& sd, DType dtype = DType::f32, const Metadata& md = {}) {
    Bytes out;
    const Status st = write_safetensors(sd, md, dtype, out);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
}

std::string header_of(const Bytes& file) {
    std::uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= std::uint64_t(file[std::size_t(i)]) << (8 * i);
    return std::string(file.begin() + 8, file.begin() + 8 + std::ptrdiff_t(n));
}

const Tensor* lookup(const StateDict& sd, const std::string& name) {
    for (const auto& [k, t] : sd)
        if (k == name) return &t;
    return nullptr;
}

const SafetensorsTensor* lookup(const SafetensorsInfo& info, const std::string& name) {
    for (const auto& t : info.tensors)
        if (t.name == name) return &t;
    return nullptr;
}

// Both entry points refuse `b` with `code` and a message, leaving the output untouched.
::testing::AssertionResult refuses(const Bytes& b, Code code) {
    SafetensorsInfo info;
    const Status s1 = read_safetensors_info(b.data(), b.size(), info);
    if (s1.code() != code)
        return ::testing::AssertionFailure()
               << "read_safetensors_info gave " << (s1.ok() ? "ok" : s1.to_string()) << ", not " << code_name(code);
    if (s1.message().empty()) return ::testing::AssertionFailure() << code_name(code) << " without a message";
    StateDict sd(1, {"untouched", Tensor()});
    const Status s2 = read_safetensors(b.data(), b.size(), sd);
    if (s2.code() != code)
        return ::testing::AssertionFailure()
               << "read_safetensors gave " << (s2.ok() ? "ok" : s2.to_string()) << ", not " << code_name(code);
    if (sd.size() != 1 || sd[0].first != "untouched")
        return ::testing::AssertionFailure() << "read_safetensors changed its output on error";
    return ::testing::AssertionSuccess();
}

#define EXPECT_ST_CODE(bytes, code_) EXPECT_TRUE(refuses((bytes), Code::code_))
#define EXPECT_HEADER_CODE(header, code_) EXPECT_ST_CODE(st_file(header), code_)

Status read_into(const Bytes& b, StateDict& sd, Metadata* md = nullptr) {
    return read_safetensors(b.data(), b.size(), sd, md);
}

// Ten tensors, one per convertible dtype, at an odd data offset (N is odd).
Bytes all_dtypes_file() {
    const std::string header = object({
        entry("f64", "F64", "[3]", 0, 24),
        entry("f32", "F32", "[2]", 24, 32),
        entry("f16", "F16", "[2]", 32, 36),
        entry("bf16", "BF16", "[2]", 36, 40),
        entry("i64", "I64", "[2]", 40, 56),
        entry("i32", "I32", "[2]", 56, 64),
        entry("i16", "I16", "[2]", 64, 68),
        entry("i8", "I8", "[2]", 68, 70),
        entry("u8", "U8", "[2]", 70, 72),
        entry("bool", "BOOL", "[2]", 72, 74),
    });
    Data d;
    d.f64(0.1).f64(1e300).f64(-2.5);
    d.f32(1.5f).f32(-0.0f);
    d.u16(0x3C00).u16(0x7C00);
    d.u16(0x3F80).u16(0xC040);
    d.u64(std::uint64_t(-5)).u64((std::uint64_t(1) << 40) + 1);
    d.u32(0x80000000u).u32(16777217u);
    d.u16(0x8000).u16(0x7FFF);
    d.u8(0x80).u8(0x7F);
    d.u8(0).u8(255);
    d.u8(0).u8(1);
    return st_file(header.size() % 2 ? header : header + " ", d.b);
}

}  // namespace

// ----------------------------------------------------------------------------
// Writer
// ----------------------------------------------------------------------------

TEST(SafetensorsWrite, HeaderAndDataAreByteForByteTheReferenceLayout) {
    const StateDict sd = {{"w", tensor({2, 2}, {1, 2, 3, 4})}, {"b", tensor({2}, {0.5f, -1})}};
    const Bytes file = write_st(sd, DType::f32, {{"format", "pt"}});
    // serde_json's compact form, metadata first, tensors by name (all F32), padded to 144.
    const std::string expected =
        R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})"
        "   ";
    ASSERT_EQ(expected.size(), 144u);
    ASSERT_EQ(file.size(), 8u + 144u + 24u);
    EXPECT_EQ(Bytes(file.begin(), file.begin() + 8), Data().u64(144).b);
    EXPECT_EQ(header_of(file), expected);
    const Bytes data = Data().f32(0.5f).f32(-1).f32(1).f32(2).f32(3).f32(4).b;
    EXPECT_EQ(Bytes(file.begin() + 152, file.end()), data);
}

TEST(SafetensorsWrite, NumBatchesTrackedIsI64AndTensorsSortByDescendingDtype) {
    const StateDict sd = {{"0.weight", tensor({2, 2}, {1, -2, 0.5f, 65504})},
                          {"0.bias", tensor({2}, {0.25f, 3})},
                          {"1.num_batches_tracked", tensor({}, {3})}};
    const Bytes file = write_st(sd, DType::f16);
    const std::string expected = R"({"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                                 R"("0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                                 R"("0.weight":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}})"
                                 "    ";
    ASSERT_EQ(expected.size(), 200u);
    EXPECT_EQ(header_of(file), expected);
    const Bytes data = Data().u64(3).f32(0.25f).f32(3).u16(0x3C00).u16(0xC000).u16(0x3800).u16(0x7BFF).b;
    ASSERT_EQ(file.size(), 8u + 200u + data.size());
    EXPECT_EQ(Bytes(file.begin() + 208, file.end()), data);
}

TEST(SafetensorsWrite, EmptyStateDictAndMetadataOnly) {
    const Bytes empty = write_st({});
    EXPECT_EQ(empty, st_file("{}      "));
    StateDict sd;
    Metadata md;
    ASSERT_TRUE(read_into(empty, sd, &md).ok());
    EXPECT_TRUE(sd.empty());
    EXPECT_TRUE(md.empty());

    const Bytes meta_only = write_st({}, DType::f32, {{"k", "v"}});
    EXPECT_EQ(header_of(meta_only), std::string(R"({"__metadata__":{"k":"v"}})") + "      ");
    ASSERT_TRUE(read_into(meta_only, sd, &md).ok());
    EXPECT_EQ(md, (Metadata{{"k", "v"}}));
}

TEST(SafetensorsWrite, EveryTensorIsAlignedToItsElementSize) {
    // Odd element counts and name lengths, so nothing lines up by accident.
    Rng rng(5);
    StateDict sd;
    const std::vector<Shape> shapes = {{3, 1}, {1, 5}, {7}, {3}, {}, {5, 3, 1}, {1}, {2, 0}, {9, 1}};
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        Tensor t(shapes[i]);
        for (float& v : t) v = rng.uniform(-1, 1);
        sd.emplace_back(std::string(i + 1, char('a' + i)), t);
    }
    sd.emplace_back("bn.num_batches_tracked", tensor({}, {12}));
    for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
        for (const Metadata& md : {Metadata{}, Metadata{{"x", "yz"}}, Metadata{{"format", "pt"}, {"n", "12345"}}}) {
            const Bytes file = write_st(sd, dt, md);
            SafetensorsInfo info;
            ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
            EXPECT_EQ(info.data_start % 8, 0u);
            ASSERT_EQ(info.tensors.size(), sd.size());
            for (const auto& t : info.tensors) {
                const std::uint64_t item = t.dtype == "I64" ? 8 : t.dtype == "F32" ? 4 : 2;
                EXPECT_EQ((info.data_start + t.begin) % item, 0u)
                    << t.name << " (" << t.dtype << ") at " << info.data_start + t.begin;
            }
            // Header order is data order, and the dtypes descend: I64, F32, then F16/BF16.
            for (std::size_t i = 1; i < info.tensors.size(); ++i)
                EXPECT_EQ(info.tensors[i].begin, info.tensors[i - 1].end);
            EXPECT_EQ(info.tensors.front().dtype, "I64");
            EXPECT_EQ(info.tensors.back().dtype, dt == DType::f32 ? "F32" : dt == DType::f16 ? "F16" : "BF16");
        }
    }
}

TEST(SafetensorsWrite, NamesAndMetadataAreEscapedAndReadBack) {
    const std::vector<std::string> names = {
        "a\"b\\c", "tab\there", std::string("\x01") + "ctl", "new\nline", "\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80",
        "del\x7f", "sl/ash"};
    StateDict sd;
    for (const auto& n : names) sd.emplace_back(n, tensor({1}, {float(n.size())}));
    const Metadata md = {{"note", "line1\nline2"}, {"q\"", "\\/\x1f"}, {"", "empty key"}};
    const Bytes file = write_st(sd, DType::f32, md);
    const std::string h = header_of(file);
    for (const char* escaped : {R"("a\"b\\c")", R"("tab\there")", R"("\u0001ctl")", R"("new\nline")",
                                "\"\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80\"", R"("del\u007f")", R"("sl/ash")",
                                R"("note":"line1\nline2")", R"("q\"":"\\/\u001f")", R"("":"empty key")"})
        EXPECT_NE(h.find(escaped), std::string::npos) << escaped << " not in " << h;
    StateDict back;
    Metadata md_back;
    ASSERT_TRUE(read_into(file, back, &md_back).ok());
    EXPECT_EQ(md_back, md);
    ASSERT_EQ(back.size(), names.size());
    for (const auto& n : names) {
        const Tensor* t = lookup(back, n);
        ASSERT_NE(t, nullptr) << n;
        EXPECT_EQ((*t)(0), float(n.size()));
    }
}

TEST(SafetensorsWrite, F32RoundTripIsBitExact) {
    const float special[] = {0.0f,
                             -0.0f,
                             1e-45f,
                             -1.17549435e-38f,
                             3.4028235e38f,
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             from_bits(0x7FC01234u),
                             from_bits(0xFF800001u),
                             0.1f,
                             -123.456f,
                             1.0f};
    Rng rng(9);
    StateDict sd;
    sd.emplace_back("special", tensor({3, 4}, std::vector<float>(std::begin(special), std::end(special))));
    for (const Shape& s : std::vector<Shape>{{7}, {}, {0, 3}, {1, 1, 2, 1, 1, 1, 1, 2}, {33, 17}}) {
        Tensor t(s);
        for (float& v : t) v = from_bits(rng.next_u32());  // any bit pattern, NaNs included
        sd.emplace_back("t" + std::to_string(sd.size()), t);
    }
    const Bytes file = write_st(sd, DType::f32, {{"format", "pt"}});
    StateDict back;
    Metadata md;
    ASSERT_TRUE(read_into(file, back, &md).ok());
    EXPECT_EQ(md, (Metadata{{"format", "pt"}}));
    ASSERT_EQ(back.size(), sd.size());
    for (std::size_t i = 1; i < back.size(); ++i) EXPECT_LT(back[i - 1].first, back[i].first);  // header order
    for (const auto& [name, t] : sd) {
        const Tensor* r = lookup(back, name);
        ASSERT_NE(r, nullptr) << name;
        ASSERT_EQ(r->shape(), t.shape()) << name;
        for (std::size_t k = 0; k < t.size(); ++k)
            ASSERT_EQ(bits(r->data()[k]), bits(t.data()[k])) << name << "[" << k << "]";
    }
}

TEST(SafetensorsWrite, F16AndBF16RoundTripWithinTheirRounding) {
    Rng rng(3);
    for (DType dt : {DType::f16, DType::bf16}) {
        const bool half = dt == DType::f16;
        // Representable exactly in this dtype.
        const std::vector<float> exact =
            half ? std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, 5.9604644775390625e-8f, 6.103515625e-5f, 0.0f, -0.0f}
                 : std::vector<float>{1.0f,
                                      -3.0f,
                                      0.15625f,
                                      1.2676506e30f,
                                      from_bits(0x00010000u),
                                      0.0f,
                                      -0.0f,
                                      from_bits(0x7F7F0000u)};
        Tensor random(Shape{16, 24});
        for (float& v : random) v = rng.uniform(-4, 4) * (rng.next_unit() < 0.5f ? 1e-3f : 1.0f);
        const StateDict sd = {
            {"w.exact", tensor({2, 4}, exact)}, {"w.random", random}, {"b", tensor({3}, {0.1f, 0.2f, 0.3f})}};
        const Bytes file = write_st(sd, dt);
        SafetensorsInfo info;
        ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
        EXPECT_EQ(lookup(info, "w.exact")->dtype, half ? "F16" : "BF16");
        EXPECT_EQ(lookup(info, "w.random")->dtype, half ? "F16" : "BF16");
        EXPECT_EQ(lookup(info, "w.random")->end - lookup(info, "w.random")->begin, 16u * 24u * 2u);
        EXPECT_EQ(lookup(info, "b")->dtype, "F32");  // rank 1 stays F32
        StateDict back;
        ASSERT_TRUE(read_into(file, back).ok());
        const Tensor& e = *lookup(back, "w.exact");
        for (std::size_t k = 0; k < exact.size(); ++k) EXPECT_EQ(bits(e.data()[k]), bits(exact[k])) << k;
        const Tensor& b = *lookup(back, "b");
        for (std::size_t k = 0; k < 3; ++k) EXPECT_EQ(bits(b.data()[k]), bits(sd[2].second.data()[k]));
        const Tensor& r = *lookup(back, "w.random");
        for (std::size_t k = 0; k < random.size(); ++k) {
            const float x = random.data()[k], y = r.data()[k];
            const float bound =
                half ? (std::fabs(x) >= 6.103515625e-5f ? std::ldexp(std::fabs(x), -11) : std::ldexp(1.0f, -25))
                     : std::ldexp(std::fabs(x), -8);
            ASSERT_LE(std::fabs(x - y), bound) << dtype_name(dt) << " " << x << " -> " << y;
            EXPECT_EQ(y, half ? f16_to_f32(f32_to_f16(x)) : bf16_to_f32(f32_to_bf16(x)));
        }
    }
}

TEST(SafetensorsWrite, NumBatchesTrackedRoundsToI64) {
    const StateDict sd = {{"bn.num_batches_tracked", tensor({}, {2.6f})},
                          {"num_batches_tracked", tensor({2}, {-1.4f, 16777216.0f})},
                          {"mynum_batches_tracked", tensor({}, {2.6f})},
                          {"bn.num_batches_tracked.x", tensor({}, {2.6f})}};
    const Bytes file = write_st(sd, DType::bf16);
    SafetensorsInfo info;
    ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
    EXPECT_EQ(lookup(info, "bn.num_batches_tracked")->dtype, "I64");
    EXPECT_EQ(lookup(info, "num_batches_tracked")->dtype, "I64");
    EXPECT_EQ(lookup(info, "mynum_batches_tracked")->dtype, "F32");
    EXPECT_EQ(lookup(info, "bn.num_batches_tracked.x")->dtype, "F32");
    const SafetensorsTensor* t = lookup(info, "num_batches_tracked");
    std::int64_t v[2];
    std::memcpy(v, file.data() + info.data_start + t->begin, 16);
    EXPECT_EQ(v[0], -1);
    EXPECT_EQ(v[1], 16777216);
    StateDict back;
    ASSERT_TRUE(read_into(file, back).ok());
    EXPECT_EQ((*lookup(back, "bn.num_batches_tracked"))(), 3.0f);
    EXPECT_EQ((*lookup(back, "mynum_batches_tracked"))(), 2.6f);
}

TEST(SafetensorsWrite, RefusesWhatItCannotWrite) {
    auto code = [](const StateDict& sd, DType dt = DType::f32, const Metadata& md = {}) {
        Bytes out = {1, 2, 3};
        const Status st = write_safetensors(sd, md, dt, out);
        EXPECT_EQ(out, (Bytes{1, 2, 3})) << "output changed on " << st.to_string();
        EXPECT_FALSE(st.message().empty());
        return st.code();
    };
    const Tensor w = tensor({2, 2}, {1, 2, 3, 4});
    EXPECT_EQ(code({{"w", w}}, DType::int8), Code::invalid_argument);
    EXPECT_EQ(code({{"w", w}, {"w", w}}), Code::duplicate_name);
    EXPECT_EQ(code({{"", w}}), Code::bad_name);
    EXPECT_EQ(code({{std::string(1025, 'n'), w}}), Code::bad_name);
    EXPECT_EQ(code({{"bad\xff", w}}), Code::bad_name);
    EXPECT_EQ(code({{"__metadata__", w}}), Code::bad_name);
    EXPECT_EQ(code({{"w", w}}, DType::f32, {{"k", "1"}, {"k", "2"}}), Code::duplicate_name);
    EXPECT_EQ(code({{"w", w}}, DType::f32, {{"k", "\xc0\xaf"}}), Code::bad_name);
    EXPECT_EQ(code({{"bn.num_batches_tracked", tensor({}, {NAN})}}), Code::invalid_argument);
    EXPECT_EQ(code({{"num_batches_tracked", tensor({1}, {1e30f})}}), Code::invalid_argument);
    EXPECT_EQ(code({{"r9", Tensor(Shape(9, 1))}}), Code::limit_exceeded);
    Bytes ok;
    EXPECT_TRUE(write_safetensors({{std::string(1024, 'n'), w}}, {}, DType::f32, ok).ok());
}

// ----------------------------------------------------------------------------
// Reader: valid hand-written files
// ----------------------------------------------------------------------------

TEST(SafetensorsRead, HeaderOrderKeyOrderAndWhitespaceAreFree) {
    // Listed out of data order, keys shuffled, whitespace everywhere, metadata last.
    const std::string header =
        " \n\t{ \"b\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 8 , 16 ] , \"dtype\" : \"F32\" } ,\r\n"
        "  \"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[1,2]},"
        "  \"__metadata__\" : { \"z\" : \"1\" , \"a\" : \"2\" } }\n  ";
    const Bytes file = st_file(header, Data().f32(1).f32(2).f32(3).f32(4).b);
    SafetensorsInfo info;
    ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
    EXPECT_EQ(info.data_start, 8 + header.size());
    ASSERT_EQ(info.tensors.size(), 2u);
    EXPECT_EQ(info.tensors[0].name, "b");
    EXPECT_EQ(info.tensors[0].dtype, "F32");
    EXPECT_EQ(info.tensors[0].shape, Shape{2});
    EXPECT_EQ(info.tensors[0].begin, 8u);
    EXPECT_EQ(info.tensors[0].end, 16u);
    EXPECT_EQ(info.tensors[1].shape, (Shape{1, 2}));
    EXPECT_EQ(info.metadata, (Metadata{{"z", "1"}, {"a", "2"}}));
    StateDict sd;
    ASSERT_TRUE(read_into(file, sd).ok());
    ASSERT_EQ(sd.size(), 2u);
    EXPECT_EQ(sd[0].first, "b");
    EXPECT_EQ(sd[0].second(1), 4.0f);
    EXPECT_EQ(sd[1].first, "a");
    EXPECT_EQ(sd[1].second(0, 0), 1.0f);
}

TEST(SafetensorsRead, LeadingWhitespaceIsAccepted) {
    const Bytes file = st_file("    \n{" + entry("x", "F32", "[1]", 0, 4) + "}", Data().f32(7).b);
    StateDict sd;
    ASSERT_TRUE(read_into(file, sd).ok());
    EXPECT_EQ(sd[0].second(0), 7.0f);
}

TEST(SafetensorsRead, EveryConvertibleDtypeAtAnOddOffset) {
    const Bytes file = all_dtypes_file();
    SafetensorsInfo info;
    ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
    EXPECT_EQ(info.data_start % 2, 1u);  // every multi-byte value is misaligned
    StateDict sd;
    ASSERT_TRUE(read_into(file, sd).ok());
    ASSERT_EQ(sd.size(), 10u);
    auto v = [&](const char* name, std::size_t i) { return lookup(sd, name)->data()[i]; };
    EXPECT_EQ(bits(v("f64", 0)), bits(0.1f));  // rounded to nearest
    EXPECT_EQ(v("f64", 1), std::numeric_limits<float>::infinity());
    EXPECT_EQ(v("f64", 2), -2.5f);
    EXPECT_EQ(v("f32", 0), 1.5f);
    EXPECT_EQ(bits(v("f32", 1)), 0x80000000u);
    EXPECT_EQ(v("f16", 0), 1.0f);
    EXPECT_EQ(v("f16", 1), std::numeric_limits<float>::infinity());
    EXPECT_EQ(v("bf16", 0), 1.0f);
    EXPECT_EQ(v("bf16", 1), -3.0f);
    EXPECT_EQ(v("i64", 0), -5.0f);
    EXPECT_EQ(v("i64", 1), 1099511627776.0f);
    EXPECT_EQ(v("i32", 0), -2147483648.0f);
    EXPECT_EQ(v("i32", 1), 16777216.0f);
    EXPECT_EQ(v("i16", 0), -32768.0f);
    EXPECT_EQ(v("i16", 1), 32767.0f);
    EXPECT_EQ(v("i8", 0), -128.0f);
    EXPECT_EQ(v("i8", 1), 127.0f);
    EXPECT_EQ(v("u8", 0), 0.0f);
    EXPECT_EQ(v("u8", 1), 255.0f);
    EXPECT_EQ(v("bool", 0), 0.0f);
    EXPECT_EQ(v("bool", 1), 1.0f);
}

TEST(SafetensorsRead, UnalignedF32IsCopiedNotCast) {
    // 8 + N = 8 + odd: the F32 data starts at an odd file offset.
    std::string header = object({entry("w", "F32", "[2,2]", 0, 16)});
    if (header.size() % 2 == 0) header += ' ';
    const float values[] = {1.25f, -0.0f, from_bits(0x7FC00001u), 3e38f};
    Data d;
    for (float x : values) d.f32(x);
    const Bytes file = st_file(header, d.b);
    ASSERT_EQ((8 + header.size()) % 4, 1u);
    StateDict sd;
    ASSERT_TRUE(read_into(file, sd).ok());
    for (int i = 0; i < 4; ++i) EXPECT_EQ(bits(sd[0].second.data()[i]), bits(values[i]));
}

TEST(SafetensorsRead, EmptyTensorsScalarsAndEmptyFile) {
    const std::string header = object({entry("z", "F32", "[0,3]", 0, 0), entry("s", "F32", "[]", 0, 4),
                                       entry("z2", "BF16", "[4,0]", 4, 4), entry("z3", "F64", "[0]", 4, 4)});
    const Bytes file = st_file(header, Data().f32(-9).b);
    StateDict sd;
    ASSERT_TRUE(read_into(file, sd).ok());
    ASSERT_EQ(sd.size(), 4u);
    EXPECT_EQ(sd[0].second.size(), 0u);
    EXPECT_EQ(sd[0].second.dimension(), 2u);
    EXPECT_EQ(sd[1].second.dimension(), 0u);
    EXPECT_EQ(sd[1].second(), -9.0f);
    EXPECT_EQ(sd[2].second.size(), 0u);
    EXPECT_EQ(sd[3].second.size(), 0u);
    StateDict none;
    ASSERT_TRUE(read_into(st_file("{}"), none).ok());
    EXPECT_TRUE(none.empty());
    EXPECT_TRUE(read_into(st_file(R"({"__metadata__":{}})"), none).ok());
}

TEST(SafetensorsRead, MetadataMayBeNullOrAbsent) {
    const std::string e = entry("x", "U8", "[1]", 0, 1);
    for (const std::string& h :
         {object({e}), "{\"__metadata__\":null," + e + "}", "{" + e + ",\"__metadata__\" : null }"}) {
        StateDict sd;
        Metadata md = {{"stale", "entry"}};
        ASSERT_TRUE(read_into(st_file(h, {42}), sd, &md).ok()) << h;
        EXPECT_TRUE(md.empty());
        EXPECT_EQ(sd[0].second(0), 42.0f);
    }
}

TEST(SafetensorsRead, JsonEscapesInKeysAndValues) {
    const std::string header = R"({"__metadata__":{"k\u00e9":"\ud83d\ude00 \"\\\/\b\f\n\r\t\u0041"},)" +
                               entry(R"(na\u006De\ud834\udd1e)", "F32", "[]", 0, 4) + "}";
    StateDict sd;
    Metadata md;
    ASSERT_TRUE(read_into(st_file(header, Data().f32(1).b), sd, &md).ok());
    EXPECT_EQ(sd[0].first, "name\xF0\x9D\x84\x9E");
    ASSERT_EQ(md.size(), 1u);
    EXPECT_EQ(md[0].first, "k\xC3\xA9");
    EXPECT_EQ(md[0].second, "\xF0\x9F\x98\x80 \"\\/\b\f\n\r\tA");
}

TEST(SafetensorsRead, LargestIntegersParse) {
    // 2^64 - 1 is a valid number; the layout then fails, not the JSON.
    const std::string max = "18446744073709551615";
    EXPECT_HEADER_CODE(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[)" + max + "," + max + "]}}", bad_offsets);
    EXPECT_HEADER_CODE(R"({"x":{"dtype":"F32","shape":[)" + max + R"(],"data_offsets":[0,0]}})", size_overflow);
}

TEST(SafetensorsRead, UnsignedIntegersConvertAsTorchsFloat) {
    // U16, U32, U64 as float() would: exact up to 2^24, rounded to nearest beyond.
    const std::string header = object(
        {entry("u16", "U16", "[2]", 0, 4), entry("u32", "U32", "[2]", 4, 12), entry("u64", "U64", "[2]", 12, 28)});
    Data d;
    d.u16(0).u16(65535);
    d.u32(16777216u).u32(0xFFFFFFFFu);
    d.u64(3).u64(std::uint64_t(-1));
    StateDict sd;
    ASSERT_TRUE(read_into(st_file(header, d.b), sd).ok());
    ASSERT_EQ(sd.size(), 3u);
    EXPECT_EQ(sd[0].second(1), 65535.0f);
    EXPECT_EQ(sd[1].second(0), 16777216.0f);
    EXPECT_EQ(sd[1].second(1), 4294967296.0f);
    EXPECT_EQ(sd[2].second(0), 3.0f);
    EXPECT_EQ(sd[2].second(1), 18446744073709551616.0f);
}

TEST(SafetensorsRead, UnsupportedDtypesValidateButDoNotConvert) {
    const std::pair<const char*, int> types[] = {{"C64", 8},     {"F8_E5M2", 1},     {"F8_E4M3", 1},
                                                 {"F8_E8M0", 1}, {"F8_E4M3FNUZ", 1}, {"F8_E5M2FNUZ", 1}};
    for (const auto& [dtype, size] : types) {
        const Bytes file =
            st_file(object({entry("q", dtype, "[3]", 0, 3 * std::uint64_t(size))}), zeros_of(3 * std::size_t(size)));
        SafetensorsInfo info;
        ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok()) << dtype;
        EXPECT_EQ(info.tensors[0].dtype, dtype);
        StateDict sd;
        const Status st = read_into(file, sd);
        EXPECT_EQ(st.code(), Code::unsupported_tensor) << dtype;
        EXPECT_NE(st.message().find("'q'"), std::string::npos) << st.message();
        EXPECT_NE(st.message().find(dtype), std::string::npos) << st.message();
        // a wrong span is still caught for them
        EXPECT_ST_CODE(st_file(object({entry("q", dtype, "[3]", 0, 3 * std::uint64_t(size) + 1)}),
                               zeros_of(3 * std::size_t(size) + 1)),
                       storage_size_mismatch);
    }
}

TEST(SafetensorsRead, SubByteDtypesNeedWholeBytes) {
    SafetensorsInfo info;
    const Bytes f4 = st_file(object({entry("a", "F4", "[2,2]", 0, 2)}), zeros_of(2));
    EXPECT_TRUE(read_safetensors_info(f4.data(), f4.size(), info).ok());
    const Bytes f6 = st_file(object({entry("a", "F6_E2M3", "[4]", 0, 3)}), zeros_of(3));
    EXPECT_TRUE(read_safetensors_info(f6.data(), f6.size(), info).ok());
    StateDict sd;
    EXPECT_EQ(read_into(f6, sd).code(), Code::unsupported_tensor);
    EXPECT_ST_CODE(st_file(object({entry("a", "F4", "[3]", 0, 2)}), zeros_of(2)), storage_size_mismatch);
    EXPECT_ST_CODE(st_file(object({entry("a", "F6_E3M2", "[2]", 0, 2)}), zeros_of(2)), storage_size_mismatch);
}

TEST(SafetensorsRead, BoolBytesOtherThanZeroOrOneAreRefused) {
    const Bytes file = st_file(object({entry("mask", "BOOL", "[3]", 0, 3)}), {1, 0, 2});
    SafetensorsInfo info;
    EXPECT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());  // layout is fine
    StateDict sd;
    const Status st = read_into(file, sd);
    EXPECT_EQ(st.code(), Code::unsupported_tensor);
    EXPECT_NE(st.message().find("'mask'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("element 2"), std::string::npos) << st.message();
}

TEST(SafetensorsRead, ManyTensorsUpToTheCap) {
    // 65536 zero-size entries read; one more is over the cap.
    std::string h = "{";
    for (int i = 0; i < 65536; ++i) h += (i ? "," : "") + entry("t" + std::to_string(i), "F32", "[0]", 0, 0);
    SafetensorsInfo info;
    const Bytes ok = st_file(h + "}");
    ASSERT_TRUE(read_safetensors_info(ok.data(), ok.size(), info).ok());
    EXPECT_EQ(info.tensors.size(), 65536u);
    EXPECT_EQ(info.tensors[65535].name, "t65535");
    EXPECT_ST_CODE(st_file(h + "," + entry("one_more", "F32", "[0]", 0, 0) + "}"), limit_exceeded);
}

// ----------------------------------------------------------------------------
// Reader: one hand-written file per rule and error code
// ----------------------------------------------------------------------------

TEST(SafetensorsErrors, TooShortIsTruncated) {
    for (std::size_t n = 0; n < 8; ++n) EXPECT_ST_CODE(Bytes(n, 0), truncated);
    SafetensorsInfo info;
    EXPECT_EQ(read_safetensors_info(nullptr, 0, info).code(), Code::truncated);
    EXPECT_EQ(read_safetensors_info(nullptr, 100, info).code(), Code::truncated);
}

TEST(SafetensorsErrors, HeaderLengthPastEndOfFileIsTruncated) {
    EXPECT_ST_CODE(st_file("{}", {}, 100), truncated);
    EXPECT_ST_CODE(st_file("{}", {}, 3), truncated);
    EXPECT_ST_CODE(st_file("{}", {}, 1), bad_header_json);               // the header is "{", then one data byte
    EXPECT_ST_CODE(st_file("", {}, max_safetensors_header), truncated);  // at the cap: not too large
}

TEST(SafetensorsErrors, HugeHeaderLengthIsHeaderTooLarge) {
    EXPECT_ST_CODE(st_file("{}", {}, (std::uint64_t(1) << 63) + 5), header_too_large);
    EXPECT_ST_CODE(st_file("{}", {}, max_safetensors_header + 1), header_too_large);
    EXPECT_ST_CODE(st_file("{}", {}, std::numeric_limits<std::uint64_t>::max() - 1), header_too_large);
}

TEST(SafetensorsErrors, HeaderNotUtf8) {
    for (const char* bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"})
        EXPECT_ST_CODE(st_file(object({entry(std::string("x") + bad, "F32", "[0]", 0, 0)})), bad_header_json) << bad;
    // bad UTF-8 outside any string, too
    EXPECT_HEADER_CODE("{}\xff", bad_header_json);
}

TEST(SafetensorsErrors, HeaderNotAnObject) {
    for (const char* h : {"", "   ", "[]", "\"x\"", "1", "null", "true", "[{}]", "{", "}"})
        EXPECT_HEADER_CODE(h, bad_header_json) << "'" << h << "'";
}

TEST(SafetensorsErrors, AnythingButWhitespaceAfterTheObject) {
    for (const std::string& tail : {std::string("x"), std::string("{}"), std::string(","), std::string(1, '\0'),
                                    std::string(" 0"), std::string("\x0b"), std::string("\x0c")})
        EXPECT_HEADER_CODE("{}" + tail, bad_header_json) << int(tail.back());
    StateDict sd;
    EXPECT_TRUE(read_into(st_file("{} \t\r\n "), sd).ok());
}

TEST(SafetensorsErrors, JsonSyntax) {
    const std::string e = entry("x", "F32", "[0]", 0, 0);
    for (const std::string& h : std::vector<std::string>{
             R"({"x" {"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",  // no colon
             "{" + e + " " + entry("y", "F32", "[0]", 0, 0) + "}",         // no comma
             "{" + e + ",}",                                               // trailing comma
             "{," + e + "}",
             R"({"x":{"dtype":"F32","shape":[0,],"data_offsets":[0,0]}})",
             R"({"x":{"dtype":"F32","shape":[,0],"data_offsets":[0,0]}})",
             R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],}})",
             R"({"x":{"dtype":"F32","shape":[0] "data_offsets":[0,0]}})",
             R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})",             // unclosed
             R"({"x:{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",             // unterminated
             R"({'x':{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",            // single quotes
             R"({x:{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",              // bare key
             "{\"a\tb\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",  // raw control character
             "{\"a\x1f\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
             R"({"a\x41":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",    // invalid escape
             R"({"a\u12G4":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",  // bad hex
             R"({"a\u12":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
             R"({"a\ud83d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",        // lone high surrogate
             R"({"a\ude00":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",        // lone low surrogate
             R"({"a\ud83d\u0041":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",  // high + non-low
             R"({"a\ud83d\ud83d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
             R"({"a\":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
         })
        EXPECT_HEADER_CODE(h, bad_header_json) << h;
}

TEST(SafetensorsErrors, NumbersAreNonNegativeIntegersOnly) {
    for (const char* shape : {"[1.0]",
                              "[1e1]",
                              "[1E1]",
                              "[-1]",
                              "[01]",
                              "[00]",
                              "[+1]",
                              "[18446744073709551616]",
                              "[99999999999999999999999]",
                              "[0x10]",
                              "[\"2\"]",
                              "[null]",
                              "[true]",
                              "[[2]]",
                              "[Infinity]",
                              "[NaN]",
                              "2",
                              "null",
                              "\"[2]\"",
                              "{}"})
        EXPECT_HEADER_CODE(R"({"x":{"dtype":"F32","shape":)" + std::string(shape) + R"(,"data_offsets":[0,8]}})",
                           bad_header_json)
            << shape;
    for (const char* offsets : {"[0]", "[0,8,9]", "[]", "[0,8.0]", "[-0,8]", "[0,-8]", "\"0,8\"", "null", "[0,8e0]",
                                "[0,18446744073709551616]"})
        EXPECT_HEADER_CODE(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":)" + std::string(offsets) + "}}",
                           bad_header_json)
            << offsets;
    // whitespace inside arrays is fine
    StateDict sd;
    EXPECT_TRUE(
        read_into(st_file(R"({"x":{"dtype":"F32","shape":[ 2 ],"data_offsets":[ 0 , 8 ]}})", zeros_of(8)), sd).ok());
}

TEST(SafetensorsErrors, WrongValueTypes) {
    for (const char* dtype : {"32", "null", "[\"F32\"]", "true", "{}"})
        EXPECT_HEADER_CODE(R"({"x":{"dtype":)" + std::string(dtype) + R"(,"shape":[0],"data_offsets":[0,0]}})",
                           bad_header_json)
            << dtype;
    for (const char* value : {"null", "[]", "\"F32\"", "1", "true", "false"})
        EXPECT_HEADER_CODE(std::string(R"({"x":)") + value + "}", bad_header_json) << value;
}

TEST(SafetensorsErrors, MetadataMustBeStringToString) {
    for (const char* md : {R"({"a":1})", R"({"a":null})", R"({"a":{}})", R"({"a":["b"]})", R"({"a":true})",
                           R"(["a","b"])", R"("a")", "1", "true", "nul", R"({"a":"b",})", R"({"a" "b"})"})
        EXPECT_HEADER_CODE(std::string(R"({"__metadata__":)") + md + "}", bad_header_json) << md;
}

TEST(SafetensorsErrors, EntryKeysAreExactlyDtypeShapeOffsets) {
    for (const char* h : {R"({"x":{"shape":[0],"data_offsets":[0,0]}})",
                          R"({"x":{"dtype":"F32","data_offsets":[0,0]}})", R"({"x":{"dtype":"F32","shape":[0]}})",
                          R"({"x":{}})", R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"extra":1}})",
                          R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"Dtype":"F32"}})"})
        EXPECT_HEADER_CODE(h, bad_header_json) << h;
}

TEST(SafetensorsErrors, DuplicateKeys) {
    const std::string a = entry("a", "F32", "[1]", 0, 4);
    EXPECT_ST_CODE(st_file("{" + a + "," + entry("a", "F32", "[1]", 4, 8) + "}", zeros_of(8)), duplicate_name);
    EXPECT_ST_CODE(st_file("{" + a + "," + entry("\\u0061", "F32", "[1]", 4, 8) + "}", zeros_of(8)), duplicate_name);
    EXPECT_ST_CODE(st_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros_of(4)),
                   duplicate_name);
    EXPECT_ST_CODE(st_file(R"({"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}})", zeros_of(4)),
                   duplicate_name);
    EXPECT_ST_CODE(st_file(R"({"__metadata__":{},"__metadata__":{},)" + a + "}", zeros_of(4)), duplicate_name);
    EXPECT_ST_CODE(st_file(R"({"__metadata__":{"k":"1","k":"2"},)" + a + "}", zeros_of(4)), duplicate_name);
}

TEST(SafetensorsErrors, UnknownDtype) {
    for (const char* dtype : {"F33", "f32", "", "FLOAT", "F32 ", "Q4_0"})
        EXPECT_ST_CODE(st_file(object({entry("x", dtype, "[1]", 0, 4)}), zeros_of(4)), unknown_dtype) << dtype;
}

TEST(SafetensorsErrors, RankOverTheCap) {
    EXPECT_ST_CODE(st_file(object({entry("x", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4)}), zeros_of(4)), limit_exceeded);
    StateDict sd;
    EXPECT_TRUE(read_into(st_file(object({entry("x", "F32", "[1,1,1,1,1,1,1,1]", 0, 4)}), zeros_of(4)), sd).ok());
}

TEST(SafetensorsErrors, ShapeOverflow) {
    for (const char* shape : {"[4294967296,4294967296]", "[268435456,268435456,268435456]", "[16384,16385]",
                              "[268435457]", "[0,4294967296]", "[65536,65536,65536,65536]"})
        EXPECT_ST_CODE(st_file(object({entry("x", "F32", shape, 0, 4)}), zeros_of(4)), size_overflow) << shape;
    // exactly 2^28 elements is allowed: the span is then wrong, not the shape
    EXPECT_ST_CODE(st_file(object({entry("x", "F32", "[16384,16384]", 0, 4)}), zeros_of(4)), storage_size_mismatch);
}

TEST(SafetensorsErrors, OffsetsOverlapLeaveHolesOrRunBackwards) {
    const Bytes d8 = zeros_of(8), d12 = zeros_of(12);
    // overlap: [0,8) and [4,12)
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 4, 12)}), d12),
                   bad_offsets);
    // the same span twice (aliasing)
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 0, 8)}), d8), bad_offsets);
    // hole between: [0,4) and [8,12)
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[1]", 0, 4), entry("b", "F32", "[1]", 8, 12)}), d12),
                   bad_offsets);
    // hole at the start
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[1]", 4, 8)}), d8), bad_offsets);
    // backwards
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[0]", 8, 0)}), d8), bad_offsets);
    // an empty tensor past the end of the data
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[2]", 0, 8), entry("e", "F32", "[0]", 100, 100)}), d8),
                   bad_offsets);
    // empty tensors at shared boundaries are fine, in any header order
    StateDict sd;
    EXPECT_TRUE(read_into(st_file(object({entry("b", "F32", "[1]", 4, 8), entry("e1", "F32", "[0]", 4, 4),
                                          entry("e0", "F32", "[0,2]", 0, 0), entry("a", "F32", "[1]", 0, 4),
                                          entry("e2", "F32", "[0]", 8, 8), entry("e3", "F32", "[0]", 4, 4)}),
                                  d8),
                          sd)
                    .ok());
    EXPECT_EQ(sd.size(), 6u);
}

TEST(SafetensorsErrors, SpanSizeMismatch) {
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[2]", 0, 12)}), zeros_of(12)), storage_size_mismatch);
    EXPECT_ST_CODE(st_file(object({entry("a", "F16", "[2]", 0, 8)}), zeros_of(8)), storage_size_mismatch);
    EXPECT_ST_CODE(st_file(object({entry("a", "F32", "[0]", 0, 4)}), zeros_of(4)), storage_size_mismatch);
    EXPECT_ST_CODE(st_file(object({entry("a", "F64", "[]", 0, 4)}), zeros_of(4)), storage_size_mismatch);
}

TEST(SafetensorsErrors, DataTruncatedOrTrailing) {
    const std::string h = object({entry("a", "F32", "[2]", 0, 8)});
    EXPECT_ST_CODE(st_file(h, zeros_of(7)), truncated);
    EXPECT_ST_CODE(st_file(h, {}), truncated);
    EXPECT_ST_CODE(st_file(h, zeros_of(9)), trailing_bytes);
    EXPECT_ST_CODE(st_file("{}", {0}), trailing_bytes);
    EXPECT_ST_CODE(st_file(object({entry("e", "F32", "[0]", 0, 0)}), {0}), trailing_bytes);
}

TEST(SafetensorsErrors, BadNames) {
    EXPECT_ST_CODE(st_file(object({entry("", "F32", "[1]", 0, 4)}), zeros_of(4)), bad_name);
    EXPECT_ST_CODE(st_file(object({entry(std::string(1025, 'n'), "F32", "[1]", 0, 4)}), zeros_of(4)), bad_name);
    StateDict sd;
    EXPECT_TRUE(read_into(st_file(object({entry(std::string(1024, 'n'), "F32", "[1]", 0, 4)}), zeros_of(4)), sd).ok());
    // the message of a long name is cut, not the whole name
    SafetensorsInfo info;
    const Bytes long_name = st_file(object({entry(std::string(100000, 'n'), "F32", "[1]", 0, 4)}), zeros_of(4));
    const Status st = read_safetensors_info(long_name.data(), long_name.size(), info);
    EXPECT_EQ(st.code(), Code::bad_name);
    EXPECT_LT(st.message().size(), 300u);
}

TEST(SafetensorsErrors, DeepNestingIsRefusedWithoutRecursion) {
    const std::string deep(200000, '[');
    EXPECT_HEADER_CODE("{\"x\":" + deep, bad_header_json);
    EXPECT_HEADER_CODE("{\"x\":{\"shape\":" + deep, bad_header_json);
    EXPECT_HEADER_CODE("{\"__metadata__\":{\"k\":" + deep, bad_header_json);
    EXPECT_HEADER_CODE(std::string(200000, '{'), bad_header_json);
}

TEST(SafetensorsErrors, MessagesNameTheTensorAndNumbers) {
    SafetensorsInfo info;
    const Bytes f = st_file(object({entry("0.weight", "F32", "[5,3]", 0, 56)}), zeros_of(56));
    const Status st = read_safetensors_info(f.data(), f.size(), info);
    EXPECT_EQ(st.code(), Code::storage_size_mismatch);
    for (const char* part : {"'0.weight'", "60", "56", "(5, 3)"})
        EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
    const Bytes g = st_file(object({entry("a", "F32", "[1]", 0, 4), entry("b", "F32", "[1]", 2, 6)}), zeros_of(6));
    const Status st2 = read_safetensors_info(g.data(), g.size(), info);
    EXPECT_EQ(st2.code(), Code::bad_offsets);
    for (const char* part : {"'a'", "'b'", "2"})
        EXPECT_NE(st2.message().find(part), std::string::npos) << st2.message();
}

// ----------------------------------------------------------------------------
// Hostile bytes
// ----------------------------------------------------------------------------

namespace {

std::vector<std::pair<std::string, Bytes>> valid_files() {
    Rng rng(77);
    StateDict sd;
    for (const Shape& s : std::vector<Shape>{{3, 2}, {3}, {}, {2, 0}, {1, 2, 2}}) {
        Tensor t(s);
        for (float& v : t) v = rng.uniform(-2, 2);
        sd.emplace_back("layer." + std::to_string(sd.size()), t);
    }
    sd.emplace_back("bn.num_batches_tracked", tensor({}, {5}));
    std::vector<std::pair<std::string, Bytes>> files;
    for (DType d : {DType::f32, DType::f16, DType::bf16})
        files.emplace_back(std::string("written_") + dtype_name(d), write_st(sd, d, {{"format", "pt"}}));
    files.emplace_back("all_dtypes", all_dtypes_file());
    return files;
}

// Reads b into sd (loaded tells whether it did); a success must agree with
// read_safetensors_info. Returns what is wrong, or "" (no per-call messages:
// the byte-change test calls this half a million times).
std::string check_load(const Bytes& b, StateDict& sd, bool& loaded) {
    sd.clear();
    const Status st = read_safetensors(b.data(), b.size(), sd);
    loaded = st.ok();
    if (!loaded) return sd.empty() ? "" : "output changed on " + st.to_string();
    SafetensorsInfo info;
    const Status si = read_safetensors_info(b.data(), b.size(), info);
    if (!si.ok()) return "read_safetensors loaded but read_safetensors_info says " + si.to_string();
    if (sd.size() != info.tensors.size()) return "read_safetensors and read_safetensors_info disagree on the count";
    for (std::size_t i = 0; i < sd.size(); ++i) {
        if (sd[i].first != info.tensors[i].name) return "names disagree: " + sd[i].first;
        if (Shape(sd[i].second.shape().begin(), sd[i].second.shape().end()) != info.tensors[i].shape)
            return "shapes disagree for " + sd[i].first;
        if (info.data_start + info.tensors[i].end > b.size()) return "span past the end for " + sd[i].first;
    }
    return "";
}

}  // namespace

TEST(SafetensorsHostile, EveryTruncationIsAnError) {
    for (const auto& [name, file] : valid_files()) {
        StateDict sd;
        ASSERT_TRUE(read_into(file, sd).ok()) << name;
        for (std::size_t n = 0; n < file.size(); ++n) {
            const Bytes cut(file.begin(), file.begin() + std::ptrdiff_t(n));
            SafetensorsInfo info;
            ASSERT_FALSE(read_safetensors_info(cut.data(), cut.size(), info).ok()) << name << " cut to " << n;
            ASSERT_FALSE(read_into(cut, sd).ok()) << name << " cut to " << n;
        }
    }
}

TEST(SafetensorsHostile, EverySingleByteChangeIsAnErrorOrAConsistentResult) {
    // Every position, every one of the 255 other values.
    std::size_t loaded = 0, tried = 0;
    for (const auto& [name, file] : valid_files()) {
        SafetensorsInfo info;
        ASSERT_TRUE(read_safetensors_info(file.data(), file.size(), info).ok());
        StateDict original, sd;
        ASSERT_TRUE(read_into(file, original).ok());
        const bool float_file = name.rfind("written", 0) == 0;
        Bytes m = file;
        for (std::size_t i = 0; i < file.size(); ++i) {
            for (unsigned d = 1; d < 256; ++d) {
                m[i] = std::uint8_t(file[i] ^ d);
                bool ok = false;
                const std::string problem = check_load(m, sd, ok);
                ASSERT_EQ(problem, "") << name << " byte " << i << " ^ " << d;
                ++tried;
                if (i < info.data_start || !float_file) continue;
                // A data byte of a float/I64 file: always loads, exactly one value changes.
                ASSERT_TRUE(ok) << name << " byte " << i << " ^ " << d;
                std::size_t changed = 0;
                for (std::size_t t = 0; t < sd.size(); ++t)
                    for (std::size_t k = 0; k < sd[t].second.size(); ++k)
                        changed += bits(sd[t].second.data()[k]) != bits(original[t].second.data()[k]);
                ASSERT_EQ(changed, 1u) << name << " byte " << i << " ^ " << d;
                ++loaded;
            }
            m[i] = file[i];
        }
    }
    EXPECT_GT(loaded, 0u);
    RecordProperty("mutations", int(tried));
}

TEST(SafetensorsHostile, RandomMutationsAndGarbageNeverCrash) {
    Rng rng(2024);
    const auto files = valid_files();
    for (int round = 0; round < 20000; ++round) {
        Bytes b = files[std::size_t(round) % files.size()].second;
        const int edits = 1 + int(rng.next_u32() % 6);
        for (int e = 0; e < edits; ++e) {
            const std::uint32_t r = rng.next_u32();
            const std::size_t at = rng.next_u32() % b.size();
            switch (r % 4) {
                case 0: b[at] = std::uint8_t(rng.next_u32()); break;
                case 1: b.erase(b.begin() + std::ptrdiff_t(at)); break;
                case 2: b.insert(b.begin() + std::ptrdiff_t(at), std::uint8_t(rng.next_u32())); break;
                case 3: b[at] = "{}[],:\"\\0 -.eu"[rng.next_u32() % 15]; break;
            }
            if (b.empty()) b.push_back(0);
        }
        StateDict sd;
        bool ok = false;
        ASSERT_EQ(check_load(b, sd, ok), "") << "round " << round;
    }
    for (int round = 0; round < 2000; ++round) {
        Bytes b(rng.next_u32() % 200);
        for (auto& v : b) v = std::uint8_t(rng.next_u32());
        if (b.size() >= 8) {  // a plausible length half of the time, to reach the parser
            const std::uint64_t n = round % 2 ? rng.next_u32() % (b.size() - 7) : rng.next_u32();
            for (int i = 0; i < 8; ++i) b[std::size_t(i)] = std::uint8_t(n >> (8 * i));
        }
        StateDict sd;
        bool ok = false;
        ASSERT_EQ(check_load(b, sd, ok), "") << "garbage " << round;
        EXPECT_FALSE(ok && b.size() < 10);  // "{}" is the smallest header
    }
}

TEST(SafetensorsHostile, AppendedByteIsTrailing) {
    for (const auto& [name, file] : valid_files()) {
        Bytes longer = file;
        longer.push_back(0);
        EXPECT_ST_CODE(longer, trailing_bytes);
    }
}

// ----------------------------------------------------------------------------
// Interop: Python's standard library reads what we write
// ----------------------------------------------------------------------------

namespace {

const char* python_reader = R"PY(
import json, struct, sys
buf = open(sys.argv[1], 'rb').read()
n, = struct.unpack_from('<Q', buf, 0)
assert n % 8 == 0, 'header length %d not a multiple of 8' % n
raw = buf[8:8 + n].decode('utf-8')
assert raw.startswith('{') and raw.rstrip(' ').endswith('}'), raw
h = json.loads(raw)
meta = h.pop('__metadata__', {})
for k in sorted(meta):
    print('meta', k, meta[k])
end = 0
for name, e in sorted(h.items(), key=lambda kv: kv[1]['data_offsets']):
    assert sorted(e) == ['data_offsets', 'dtype', 'shape'], e
    b, en = e['data_offsets']
    assert b == end, (name, b, end)
    end = en
    item = {'F32': 4, 'F16': 2, 'BF16': 2, 'I64': 8}[e['dtype']]
    assert (8 + n + b) % item == 0, name
    count = 1
    for d in e['shape']:
        count *= d
    assert en - b == count * item, name
assert 8 + n + end == len(buf), 'file length'
for name in sorted(h):
    e = h[name]
    b, en = e['data_offsets']
    data = buf[8 + n + b:8 + n + en]
    dt = e['dtype']
    if dt == 'F32':
        vals = [struct.unpack_from('<I', data, 4 * i)[0] for i in range(len(data) // 4)]
    elif dt == 'F16':
        vals = [struct.unpack('<I', struct.pack('<f', struct.unpack_from('<e', data, 2 * i)[0]))[0]
                for i in range(len(data) // 2)]
    elif dt == 'BF16':
        vals = [struct.unpack_from('<H', data, 2 * i)[0] << 16 for i in range(len(data) // 2)]
    else:
        vals = [struct.unpack_from('<q', data, 8 * i)[0] for i in range(len(data) // 8)]
    print(name, dt, e['shape'], ' '.join(str(v) for v in vals))
print('ok')
)PY";

std::string run(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

bool write_file(const std::string& path, const void* data, std::size_t size) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return false;
    const bool ok = std::fwrite(data, 1, size, f) == size;
    return std::fclose(f) == 0 && ok;
}

std::string shape_list(const Tensor& t) {
    std::string s = "[";
    for (std::size_t i = 0; i < t.dimension(); ++i) s += (i ? ", " : "") + std::to_string(t.shape()[i]);
    return s + "]";
}

}  // namespace

TEST(SafetensorsPython, StandardLibraryReadsWhatWeWrite) {
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing";
    const std::string dir = ::testing::TempDir();
    const std::string script = dir + "modelkeep_st_reader.py";
    ASSERT_TRUE(write_file(script, python_reader, std::strlen(python_reader)));
    Rng rng(11);
    StateDict sd;
    for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{{"fc1.weight", {5, 3}},
                                                                                {"fc1.bias", {5}},
                                                                                {"scalar", {}},
                                                                                {"empty", {0, 4}},
                                                                                {"n\xC3\xA4me \"q\"", {2, 1}}}) {
        Tensor t(shape);
        for (float& v : t) v = rng.uniform(-3, 3);
        sd.emplace_back(name, t);
    }
    sd.emplace_back("bn.num_batches_tracked", tensor({}, {42}));
    for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
        const Bytes file = write_st(sd, dt, {{"format", "pt"}, {"by", "modelkeep"}});
        const std::string path = dir + "modelkeep_st_" + dtype_name(dt) + ".safetensors";
        ASSERT_TRUE(write_file(path, file.data(), file.size()));
        // What Python must print: metadata, then each tensor by name with its values' bits.
        std::string expected = "meta by modelkeep\nmeta format pt\n";
        std::map<std::string, const Tensor*> by_name;
        for (const auto& [name, t] : sd) by_name[name] = &t;
        for (const auto& [name, t] : by_name) {
            const bool i64 = name == "bn.num_batches_tracked";
            const bool narrow = t->dimension() >= 2 && dt != DType::f32;
            const std::string st_dtype = i64 ? "I64" : !narrow ? "F32" : dt == DType::f16 ? "F16" : "BF16";
            std::string vals;
            for (std::size_t k = 0; k < t->size(); ++k) {
                const float x = t->data()[k];
                const std::string v = i64 ? std::to_string(std::llround(x))
                                          : std::to_string(bits(!narrow            ? x
                                                                : dt == DType::f16 ? f16_to_f32(f32_to_f16(x))
                                                                                   : bf16_to_f32(f32_to_bf16(x))));
                vals += (k ? " " : "") + v;
            }
            expected += name + " " + st_dtype + " " + shape_list(*t) + " " + vals + "\n";
        }
        expected += "ok\n";
        EXPECT_EQ(run("PYTHONIOENCODING=utf-8 /usr/bin/python3 " + script + " " + path + " 2>&1"), expected)
            << dtype_name(dt);
        std::remove(path.c_str());
    }
    std::remove(script.c_str());
}
