// utf8.hpp: validation, control characters, escape_text's contract.
#include <gtest/gtest.h>

#include <string>

#include "utf8.hpp"

using namespace modelkeep;

TEST(Utf8, Valid) {
    EXPECT_TRUE(valid_utf8(""));
    EXPECT_TRUE(valid_utf8("a\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xff"));
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(valid_utf8("\xe2\x9c"));          // truncated
}

TEST(Utf8, FirstControl) {
    EXPECT_EQ(first_control("plain name.weight"), -1);
    EXPECT_EQ(first_control("a\x1b"), 0x1b);
    EXPECT_EQ(first_control(std::string("a\0", 2)), 0);
    EXPECT_EQ(first_control("a\x7f"), 0x7f);
    EXPECT_EQ(first_control("a\xc2\x9b"), 0x9b);
    EXPECT_EQ(first_control("a\xc2\xa0"), -1);  // no-break space is not a control
    EXPECT_EQ(first_control("a\n\tb"), '\n');
    EXPECT_EQ(first_control("a\n\tb", true), -1);
    EXPECT_EQ(first_control("a\n\r", true), '\r');
    EXPECT_EQ(first_control("\xff"), -1);  // invalid bytes are valid_utf8's business
}

TEST(Utf8, EscapeTextContract) {
    EXPECT_EQ(escape_text(""), "");
    EXPECT_EQ(escape_text("fc1.weight"), "fc1.weight");
    EXPECT_EQ(escape_text("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    EXPECT_EQ(escape_text("a\x1b[31mb"), "a\\x1b[31mb");
    EXPECT_EQ(escape_text("line\nnext\ttab\r"), "line\\x0anext\\x09tab\\x0d");
    EXPECT_EQ(escape_text(std::string("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(escape_text("del\x7f"), "del\\x7f");
    EXPECT_EQ(escape_text("bad\xff\xc3"), "bad\\xff\\xc3");
    EXPECT_EQ(escape_text("\xc0\xaf"), "\\xc0\\xaf");
    EXPECT_EQ(escape_text("csi\xc2\x9b"), "csi\\u009b");
    EXPECT_EQ(escape_text("rlo\xe2\x80\xae|lri\xe2\x81\xa6|ls\xe2\x80\xa8|alm\xd8\x9c"),
              "rlo\\u202e|lri\\u2066|ls\\u2028|alm\\u061c");
    EXPECT_EQ(escape_text("back\\slash"), "back\\slash");
}

TEST(Utf8, EscapeTextIsIdempotentAndSafeForEveryByte) {
    std::string all;
    for (int b = 0; b < 256; ++b) all += char(b);
    all += "\xc2\x85\xe2\x80\xae\xe2\x9c\x93";
    const std::string once = escape_text(all);
    EXPECT_TRUE(valid_utf8(once));
    EXPECT_EQ(first_control(once), -1);
    EXPECT_EQ(escape_text(once), once);
    for (char c : once) EXPECT_NE(c, '\x1b');
}
