// One negative test per format error code, each from hand-written bytes, plus
// the positive edge cases the spec decides (optional sections, empty files).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "fixtures.hpp"
#include "format_paths.hpp"

using namespace modelkeep;
using mkt::Bytes;
using mkt::FileSpec;
using mkt::Writer;

namespace {

Status info_of(const Bytes& b, bool check_data = true) {
    FileInfo info;
    return mkt::read_info_both(b, check_data, info);
}

// A valid state dict file holding one f32 tensor "w" of shape dims with the given data bytes.
FileSpec state_dict_file(const std::vector<std::uint64_t>& dims, std::uint8_t dtype = 1) {
    FileSpec f;
    f.kind = 2;
    f.sections = Writer().section(3, mkt::one_tensor("w", dtype, dims)).b;
    return f;
}

// Pads the data area so that data starts at the 16-byte boundary after the header.
Bytes padded(const FileSpec& f, const Bytes& payload) {
    const std::size_t header = 20 + f.sections.size();
    Bytes d(((header + 15) & ~std::size_t(15)) - header, 0);
    d.insert(d.end(), payload.begin(), payload.end());
    return d;
}

Bytes floats(std::initializer_list<float> v) {
    Writer w;
    for (float x : v) w.f32(x);
    return w.b;
}

#define EXPECT_CODE(bytes, code_)                              \
    do {                                                       \
        const Status st_ = info_of(bytes);                     \
        EXPECT_EQ(st_.code(), Code::code_) << st_.to_string(); \
        EXPECT_FALSE(st_.message().empty());                   \
    } while (0)

}  // namespace

TEST(FormatErrors, ValidHandWrittenStateDictReads) {
    FileSpec f = state_dict_file({2});
    f.data = padded(f, floats({1.5f, -2.0f}));
    const Bytes b = mkt::build_file(f);
    LoadedFile loaded;
    ASSERT_TRUE(mkt::read_file_both(b, loaded).ok());
    ASSERT_EQ(loaded.tensors.size(), 1u);
    EXPECT_EQ(loaded.tensors[0].first, "w");
    EXPECT_EQ(loaded.tensors[0].second(1), -2.0f);
}

TEST(FormatErrors, BadMagic) {
    Bytes b = mkt::build_file(state_dict_file({0}));
    b[1] = 'X';
    EXPECT_CODE(b, bad_magic);
    EXPECT_CODE(Bytes({'P', 'K', 3, 4}), bad_magic);
    // safetensors / torch files are recognised as "not ours", not as truncated
    EXPECT_CODE(Bytes({0x10, 0, 0, 0, 0, 0, 0, 0, '{'}), bad_magic);
}

TEST(FormatErrors, UnsupportedVersionNamesBoth) {
    FileSpec f = state_dict_file({0});
    f.major = 2;
    const Status st = info_of(mkt::build_file(f));
    EXPECT_EQ(st.code(), Code::unsupported_version);
    EXPECT_NE(st.message().find("2.0"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("upgrade"), std::string::npos) << st.message();
}

TEST(FormatErrors, NewerMinorIsRead) {
    FileSpec f = state_dict_file({0});
    f.minor = 7;
    EXPECT_TRUE(info_of(mkt::build_file(f)).ok());
}

TEST(FormatErrors, Truncated) {
    EXPECT_CODE(Bytes({0x89, 'M', 'K'}), truncated);
    EXPECT_CODE(Bytes(), truncated);
    FileSpec f = state_dict_file({3});
    f.data = padded(f, floats({1, 2}));  // 8 of 12 bytes
    EXPECT_CODE(mkt::build_file(f), truncated);
    FileSpec g = state_dict_file({0});
    g.header_len_override = 200;  // header says longer than the file
    EXPECT_CODE(mkt::build_file(g), truncated);
}

TEST(FormatErrors, TrailingBytes) {
    FileSpec f = state_dict_file({1});
    f.data = padded(f, floats({1, 2}));
    EXPECT_CODE(mkt::build_file(f), trailing_bytes);
    FileSpec g = state_dict_file({0});
    g.data = {0};  // even one byte after a file with no data
    EXPECT_CODE(mkt::build_file(g), trailing_bytes);
}

TEST(FormatErrors, ChecksumMismatchHeaderAndData) {
    FileSpec f = state_dict_file({1});
    f.data = padded(f, floats({1}));
    f.fix_header_crc = false;
    Status st = info_of(mkt::build_file(f));
    EXPECT_EQ(st.code(), Code::checksum_mismatch);
    EXPECT_NE(st.message().find("header"), std::string::npos);
    f.fix_header_crc = true;
    f.fix_data_crc = false;
    st = info_of(mkt::build_file(f));
    EXPECT_EQ(st.code(), Code::checksum_mismatch);
    EXPECT_NE(st.message().find("data"), std::string::npos);
    // Without the data check, the listing still works.
    EXPECT_TRUE(info_of(mkt::build_file(f), false).ok());
}

TEST(FormatErrors, HeaderTooLarge) {
    FileSpec f = state_dict_file({0});
    f.header_len_override = std::int64_t(max_header_bytes) + 1;
    EXPECT_CODE(mkt::build_file(f), header_too_large);
}

TEST(FormatErrors, BadVarint) {
    FileSpec f;
    f.kind = 2;
    // count 1 written overlong as 0x81 0x00
    f.sections = Writer().section(3, Writer().u8(0x81).u8(0x00).str("w").u8(1).u8(0).b).b;
    EXPECT_CODE(mkt::build_file(f), bad_varint);
    FileSpec g;
    g.kind = 2;
    Writer big;
    for (int i = 0; i < 9; ++i) big.u8(0xFF);
    big.u8(0x02);  // 2^64 and more
    g.sections = Writer().section(3, big.b).b;
    EXPECT_CODE(mkt::build_file(g), bad_varint);
}

TEST(FormatErrors, BadSection) {
    const Bytes tensors = Writer().section(3, mkt::one_tensor("w", 1, {0})).b;
    FileSpec out_of_order;
    out_of_order.kind = 2;
    out_of_order.sections = Writer().raw(tensors).section(1, Writer().varint(0).b).b;
    EXPECT_CODE(mkt::build_file(out_of_order), bad_section);

    FileSpec repeated;
    repeated.kind = 2;
    repeated.sections = Writer().raw(tensors).raw(tensors).b;
    EXPECT_CODE(mkt::build_file(repeated), bad_section);

    FileSpec overrun;  // declares 9 bytes, has 4
    overrun.kind = 2;
    overrun.sections = Writer().u8(3).varint(9).raw(mkt::one_tensor("w", 1, {})).b;
    EXPECT_CODE(mkt::build_file(overrun), bad_section);

    FileSpec missing;
    missing.kind = 2;
    EXPECT_CODE(mkt::build_file(missing), bad_section);

    FileSpec model_without_layers;
    model_without_layers.kind = 1;
    model_without_layers.sections = tensors;
    EXPECT_CODE(mkt::build_file(model_without_layers), bad_section);

    FileSpec state_dict_with_layers;
    state_dict_with_layers.kind = 2;
    state_dict_with_layers.sections = Writer().section(2, Writer().varint(0).b).raw(tensors).b;
    EXPECT_CODE(mkt::build_file(state_dict_with_layers), bad_section);

    FileSpec unread;  // a valid TENSORS payload followed by a stray byte inside the section
    unread.kind = 2;
    Bytes payload = mkt::one_tensor("w", 1, {0});
    payload.push_back(0);
    unread.sections = Writer().section(3, payload).b;
    EXPECT_CODE(mkt::build_file(unread), bad_section);
}

TEST(FormatErrors, UnknownRequiredSectionButOptionalSkipped) {
    const Bytes tensors = Writer().section(3, mkt::one_tensor("w", 1, {0})).b;
    FileSpec required;
    required.kind = 2;
    required.sections = Writer().raw(tensors).section(9, {1, 2, 3}).b;
    EXPECT_CODE(mkt::build_file(required), unknown_section);

    FileSpec optional;
    optional.kind = 2;
    optional.minor = 3;
    optional.sections = Writer().raw(tensors).section(150, {1, 2, 3}).b;
    EXPECT_TRUE(info_of(mkt::build_file(optional)).ok());
}

namespace {

// A state dict holding "w" = [1.5, -2] and, when `data` is given, an unknown optional section
// with data (tag 200, §4.7): payload = varint data_bytes + `extra`, then `data` after the
// tensor's, aligned to 16 (or `pad` bytes of padding as given).
Bytes with_section_data(const Bytes& data, std::uint64_t data_bytes, const Bytes& extra = {},
                        const Bytes* pad = nullptr) {
    FileSpec f;
    f.kind = 2;
    Writer payload;
    payload.varint(data_bytes).raw(extra);
    f.sections = Writer().section(3, mkt::one_tensor("w", 1, {2})).section(200, payload.b).b;
    f.data = padded(f, floats({1.5f, -2.0f}));
    const std::size_t end = 20 + f.sections.size() + f.data.size();
    if (pad)
        f.data.insert(f.data.end(), pad->begin(), pad->end());
    else if (data_bytes)
        f.data.resize(f.data.size() + (((end + 15) & ~std::size_t(15)) - end), 0);
    f.data.insert(f.data.end(), data.begin(), data.end());
    return mkt::build_file(f);
}

}  // namespace

// 1.2: a reader skips an optional section with data it does not know — its payload and its
// data region after the tensors — and checks that region like the rest: padding, CRC, size.
TEST(FormatErrors, UnknownSectionWithDataIsSkippedAndChecked) {
    const Bytes data = {9, 8, 7, 6, 5};
    const Bytes ok = with_section_data(data, 5, {42, 43});
    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(ok, true, info).ok());
    ASSERT_EQ(info.section_data.size(), 1u);
    EXPECT_EQ(info.section_data[0].tag, 200);
    EXPECT_EQ(info.section_data[0].bytes, 5u);
    EXPECT_EQ(info.section_data[0].offset % 16, 0u);
    EXPECT_EQ(info.section_data[0].offset + 5, ok.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), ok.end() - 5));
    LoadedFile loaded;
    ASSERT_TRUE(mkt::read_file_both(ok, loaded).ok());
    ASSERT_EQ(loaded.tensors.size(), 1u);
    EXPECT_EQ(loaded.tensors[0].second(1), -2.0f);

    EXPECT_TRUE(info_of(with_section_data({}, 0)).ok());         // no data: no padding either
    EXPECT_CODE(with_section_data({9, 8, 7, 6}, 5), truncated);  // a byte short
    EXPECT_CODE(with_section_data({9, 8, 7, 6, 5, 4}, 5), trailing_bytes);
    EXPECT_CODE(with_section_data({}, std::uint64_t(1) << 63), truncated);  // no overflow
    const Bytes bad_pad = {0, 0, 1, 0, 0, 0, 0, 0};
    EXPECT_CODE(with_section_data(data, 5, {}, &bad_pad), bad_padding);
    Bytes flipped = ok;
    flipped.back() ^= 1;
    EXPECT_CODE(flipped, checksum_mismatch);  // the data CRC covers the section's data

    FileSpec empty_payload;  // the payload must at least hold data_bytes
    empty_payload.kind = 2;
    empty_payload.sections = Writer().section(3, mkt::one_tensor("w", 1, {0})).section(200, {}).b;
    EXPECT_CODE(mkt::build_file(empty_payload), bad_section);
}

TEST(FormatErrors, UnknownKindAndBadAlignment) {
    FileSpec f = state_dict_file({0});
    f.kind = 3;
    EXPECT_CODE(mkt::build_file(f), unknown_kind);
    FileSpec g = state_dict_file({0});
    g.align_log2 = 13;
    EXPECT_CODE(mkt::build_file(g), bad_alignment);
    g.align_log2 = 1;
    EXPECT_CODE(mkt::build_file(g), bad_alignment);
}

TEST(FormatErrors, LimitExceeded) {
    EXPECT_CODE(mkt::build_file(state_dict_file({1, 1, 1, 1, 1, 1, 1, 1, 1})), limit_exceeded);  // rank 9
    FileSpec many;
    many.kind = 2;
    many.sections = Writer().section(3, Writer().varint(max_tensors + 1).b).b;
    EXPECT_CODE(mkt::build_file(many), limit_exceeded);
    FileSpec long_name;
    long_name.kind = 2;
    long_name.sections = Writer().section(3, mkt::one_tensor(std::string(max_name_bytes + 1, 'a'), 1, {0})).b;
    EXPECT_CODE(mkt::build_file(long_name), limit_exceeded);
}

TEST(FormatErrors, CountLargerThanTheBytesLeftIsRefusedBeforeAllocating) {
    FileSpec f;
    f.kind = 2;
    f.sections = Writer().section(3, Writer().varint(60000).b).b;  // under the cap, but no records follow
    EXPECT_CODE(mkt::build_file(f), bad_section);
}

TEST(FormatErrors, BadName) {
    FileSpec utf8;
    utf8.kind = 2;
    utf8.sections = Writer().section(3, mkt::one_tensor("w\xff", 1, {0})).b;
    EXPECT_CODE(mkt::build_file(utf8), bad_name);
    FileSpec empty;
    empty.kind = 2;
    empty.sections = Writer().section(3, mkt::one_tensor("", 1, {0})).b;
    EXPECT_CODE(mkt::build_file(empty), bad_name);
    FileSpec layer;  // "a..b" is not a layer name
    layer.sections = Writer().section(2, Writer().varint(1).str("a..b").u8(2).b).section(3, Writer().varint(0).b).b;
    EXPECT_CODE(mkt::build_file(layer), bad_name);
}

// §1.6: no control character in a tensor name or metadata key (C0, DEL, C1);
// metadata values may hold newline and tab, nothing else of the kind.
FileSpec named_tensor(const std::string& name) {
    FileSpec f;
    f.kind = 2;
    f.sections = Writer().section(3, mkt::one_tensor(name, 1, {0})).b;
    return f;
}

FileSpec one_metadata(const std::string& key, const std::string& value) {
    FileSpec f = named_tensor("w");
    f.sections = Writer().section(1, Writer().varint(1).str(key).str(value).b).raw(f.sections).b;
    return f;
}

TEST(FormatErrors, TensorNameWithC0ControlIsBadName) {
    EXPECT_CODE(mkt::build_file(named_tensor("w\x1b[31m")), bad_name);
    EXPECT_CODE(mkt::build_file(named_tensor(std::string("w\0x", 3))), bad_name);
    EXPECT_CODE(mkt::build_file(named_tensor("w\n")), bad_name);
    const Status st = info_of(mkt::build_file(named_tensor("w\x1b[31m")));
    EXPECT_EQ(st.message().find('\x1b'), std::string::npos) << "the message escapes the name";
    EXPECT_NE(st.message().find("w\\x1b[31m"), std::string::npos) << st.message();
}

TEST(FormatErrors, TensorNameWithDelIsBadName) { EXPECT_CODE(mkt::build_file(named_tensor("w\x7f")), bad_name); }

TEST(FormatErrors, TensorNameWithC1ControlIsBadName) {
    EXPECT_CODE(mkt::build_file(named_tensor("w\xc2\x9b"
                                             "31m")),
                bad_name);                                              // U+009B CSI
    EXPECT_CODE(mkt::build_file(named_tensor("w\xc2\x80")), bad_name);  // U+0080
    // U+00A0 and U+202E are not control characters: valid names (escaped when printed)
    EXPECT_TRUE(info_of(mkt::build_file(named_tensor("w\xc2\xa0\xe2\x80\xae"))).ok());
}

TEST(FormatErrors, MetadataKeyWithControlIsBadName) {
    EXPECT_CODE(mkt::build_file(one_metadata("k\x1b", "v")), bad_name);
    EXPECT_CODE(mkt::build_file(one_metadata("k\n", "v")), bad_name);  // a key is a name: no newline
    EXPECT_CODE(mkt::build_file(one_metadata("k\xc2\x85", "v")), bad_name);
}

TEST(FormatErrors, MetadataValueWithControlOtherThanNewlineOrTabIsBadName) {
    EXPECT_CODE(mkt::build_file(one_metadata("k", "v\x1b[2J")), bad_name);
    EXPECT_CODE(mkt::build_file(one_metadata("k", "v\r")), bad_name);
    EXPECT_CODE(mkt::build_file(one_metadata("k", "v\x7f")), bad_name);
    EXPECT_CODE(mkt::build_file(one_metadata("k", "v\xc2\x9b")), bad_name);
    FileInfo info;
    ASSERT_TRUE(mkt::read_info_both(mkt::build_file(one_metadata("k", "line 1\n\tline 2")), true, info).ok());
    ASSERT_EQ(info.metadata.size(), 1u);
    EXPECT_EQ(info.metadata[0].second, "line 1\n\tline 2");
}

TEST(FormatErrors, DuplicateName) {
    FileSpec f;
    f.kind = 2;
    f.sections =
        Writer().section(3, Writer().varint(2).str("w").u8(1).u8(1).varint(0).str("w").u8(1).u8(1).varint(0).b).b;
    EXPECT_CODE(mkt::build_file(f), duplicate_name);
    FileSpec meta;
    meta.kind = 2;
    meta.sections = Writer()
                        .section(1, Writer().varint(2).str("k").str("1").str("k").str("2").b)
                        .section(3, Writer().varint(0).b)
                        .b;
    EXPECT_CODE(mkt::build_file(meta), duplicate_name);
    FileSpec layers;
    layers.sections =
        Writer().section(2, Writer().varint(2).str("a").u8(2).str("a").u8(2).b).section(3, Writer().varint(0).b).b;
    EXPECT_CODE(mkt::build_file(layers), duplicate_name);
}

TEST(FormatErrors, UnknownDtypeAndLayer) {
    EXPECT_CODE(mkt::build_file(state_dict_file({0}, 9)), unknown_dtype);
    EXPECT_CODE(mkt::build_file(state_dict_file({0}, 0)), unknown_dtype);
    FileSpec f;
    f.sections = Writer().section(2, Writer().varint(1).str("0").u8(99).b).section(3, Writer().varint(0).b).b;
    EXPECT_CODE(mkt::build_file(f), unknown_layer);
}

TEST(FormatErrors, InvalidLayerArguments) {
    auto model_with_layer = [](const Bytes& record) {
        FileSpec f;
        f.sections = Writer().section(2, Writer().varint(1).raw(record).b).section(3, Writer().varint(0).b).b;
        return mkt::build_file(f);
    };
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(1).varint(0).varint(5).u8(1).b), invalid_argument);  // in = 0
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(1).varint(3).varint(5).u8(4).b), invalid_argument);  // flag bit 2
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(11).f32(1.5f).b), invalid_argument);  // Dropout p > 1
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(13).varint(4).f32(0.0f).u8(3).b), invalid_argument);  // eps 0
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(6).u8(2).b), invalid_argument);     // GELU approx 2
    EXPECT_CODE(model_with_layer(Writer().str("0").u8(3).f32(NAN).b), invalid_argument);  // LeakyReLU NaN
}

TEST(FormatErrors, SizeOverflow) {
    EXPECT_CODE(mkt::build_file(state_dict_file({std::uint64_t(1) << 40, std::uint64_t(1) << 40})), size_overflow);
    EXPECT_CODE(mkt::build_file(state_dict_file({1u << 20, 1u << 20})), size_overflow);
    // A Linear whose weight would be over the cap is refused before anything is allocated.
    FileSpec f;
    f.sections = Writer()
                     .section(2, Writer().varint(1).str("0").u8(1).varint(1u << 20).varint(1u << 20).u8(0).b)
                     .section(3, Writer().varint(0).b)
                     .b;
    EXPECT_CODE(mkt::build_file(f), size_overflow);
}

TEST(FormatErrors, BadPadding) {
    FileSpec f = state_dict_file({1});
    Bytes d = padded(f, floats({1}));
    ASSERT_GT(d.size(), 4u);
    d[0] = 7;  // a padding byte
    f.data = d;
    EXPECT_CODE(mkt::build_file(f), bad_padding);
}

TEST(FormatErrors, BadScale) {
    FileSpec f = state_dict_file({2, 2}, 4);  // int8, 2 rows: 2 scales then 4 bytes
    Writer payload;
    payload.f32(0.5f).f32(-1.0f).u8(1).u8(2).u8(3).u8(4);
    f.data = padded(f, payload.b);
    EXPECT_CODE(mkt::build_file(f), bad_scale);
    FileSpec g = state_dict_file({2, 2}, 4);
    Writer ok;
    ok.f32(0.5f).f32(1.0f).u8(1).u8(0xFF).u8(3).u8(4);
    g.data = padded(g, ok.b);
    const Bytes b = mkt::build_file(g);
    LoadedFile loaded;
    ASSERT_TRUE(mkt::read_file_both(b, loaded).ok());
    EXPECT_FLOAT_EQ(loaded.tensors[0].second(0, 1), -0.5f);  // q = -1, scale 0.5
    EXPECT_FLOAT_EQ(loaded.tensors[0].second(1, 1), 4.0f);
}

TEST(FormatErrors, ArchMismatchNamesTheCulprit) {
    auto model = [](const Bytes& tensors_payload, const Bytes& data) {
        FileSpec f;
        f.sections = Writer()
                         .section(2, Writer().varint(1).str("fc").u8(1).varint(2).varint(1).u8(0).b)
                         .section(3, tensors_payload)
                         .b;
        const std::size_t header = 20 + f.sections.size();
        f.data = Bytes(((header + 15) & ~std::size_t(15)) - header, 0);
        f.data.insert(f.data.end(), data.begin(), data.end());
        return mkt::build_file(f);
    };
    const Bytes two = floats({1, 2});
    EXPECT_TRUE(info_of(model(mkt::one_tensor("fc.weight", 1, {1, 2}), two)).ok());
    Status st = info_of(model(mkt::one_tensor("fc.weight", 1, {2, 1}), two));
    EXPECT_EQ(st.code(), Code::arch_mismatch);
    EXPECT_NE(st.message().find("(2, 1)"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("(1, 2)"), std::string::npos) << st.message();
    EXPECT_CODE(model(mkt::one_tensor("fc.wait", 1, {1, 2}), two), arch_mismatch);
    EXPECT_CODE(model(Writer().varint(0).b, {}), arch_mismatch);
}

TEST(FormatErrors, ReadModelOfAStateDictSaysWhatToDo) {
    const Bytes b = mkt::write_state_dict_bytes(mkt::tutorial_model());
    Sequential m;
    const Status st = mkt::read_model_both(b, m);
    EXPECT_EQ(st.code(), Code::wrong_kind);
    EXPECT_NE(st.message().find("load_state_dict"), std::string::npos);
}

TEST(FormatErrors, EveryCodeHasADistinctName) {
    std::set<std::string> names;
    for (int c = 0; c <= int(last_code); ++c) {
        const std::string n = code_name(Code(c));
        EXPECT_NE(n, "unknown");
        EXPECT_TRUE(names.insert(n).second) << n;
    }
}

// Sections with data the writer emits (1.2), read by a caller that knows the tag: every
// truncation is an error, a flipped data byte is checksum_mismatch, a non-zero padding
// byte (CRCs fixed) bad_padding, a payload without data_bytes bad_section — and the
// caller's section is never filled on failure.
TEST(FormatErrors, KnownSectionWithDataTruncationAndCorruption) {
    const Sequential m = mkt::make_model("fc=Linear(2,3)");  // 36 bytes of tensor data: padding follows
    const std::vector<std::uint8_t> data = {1, 2, 3, 4, 5, 6, 7};
    WriteOptions opt;
    opt.sections.push_back({200, {42}, {{data.data(), data.size()}}});
    Bytes file;
    ASSERT_TRUE(write_model(m, opt, file).ok());
    auto read = [](const Bytes& b, std::vector<SectionContent>& want) {
        want.assign(1, SectionContent{});
        want[0].tag = 200;
        Sequential back;
        const Bytes exact(b);
        return read_model(MemorySource(exact.data(), exact.size()), back, nullptr, nullptr, &want);
    };
    std::vector<SectionContent> want;
    ASSERT_TRUE(read(file, want).ok());
    ASSERT_TRUE(want[0].present);
    EXPECT_EQ(want[0].data, data);
    for (std::size_t n = 0; n < file.size(); ++n) {
        const Status st = read(Bytes(file.begin(), file.begin() + n), want);
        EXPECT_FALSE(st.ok()) << n;
        EXPECT_FALSE(want[0].present) << n;
    }
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), false, info).ok());
    const std::uint64_t at = info.section_data[0].offset;
    ASSERT_GT(at, info.tensors.back().offset + info.tensors.back().bytes) << "the test needs padding";
    Bytes flipped = file;
    flipped[at + 3] ^= 0x40;
    EXPECT_EQ(read(flipped, want).code(), Code::checksum_mismatch);
    EXPECT_FALSE(want[0].present);
    Bytes bad_pad = file;
    bad_pad[at - 1] = 1;
    const std::uint32_t crc = crc32(bad_pad.data() + info.header_bytes, bad_pad.size() - info.header_bytes);
    for (int i = 0; i < 4; ++i) bad_pad[16 + i] = std::uint8_t(crc >> (8 * i));
    const std::uint32_t hcrc = crc32_update(crc32(bad_pad.data(), 8), bad_pad.data() + 12, info.header_bytes - 12);
    for (int i = 0; i < 4; ++i) bad_pad[8 + i] = std::uint8_t(hcrc >> (8 * i));
    EXPECT_EQ(read(bad_pad, want).code(), Code::bad_padding);
    EXPECT_FALSE(want[0].present);
}
