#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crc32.hpp"
#include "rng.hpp"

using namespace modelkeep;

TEST(Crc32, KnownVectors) {
    const std::string check = "123456789";
    EXPECT_EQ(crc32(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()), 0xCBF43926u);
    EXPECT_EQ(crc32(nullptr, 0), 0u);
    const std::string fox = "The quick brown fox jumps over the lazy dog";
    EXPECT_EQ(crc32(reinterpret_cast<const std::uint8_t*>(fox.data()), fox.size()), 0x414FA339u);
}

TEST(Crc32, SlicingMatchesBitwiseAtEveryLengthAndOffset) {
    Rng rng(5);
    std::vector<std::uint8_t> buf(300);
    for (auto& b : buf) b = std::uint8_t(rng.next_u32());
    for (std::size_t off = 0; off < 9; ++off)
        for (std::size_t n = 0; n + off <= buf.size(); n += 7)
            ASSERT_EQ(crc32(buf.data() + off, n), crc32_reference(buf.data() + off, n)) << off << " " << n;
}

TEST(Crc32, UpdateIsConcatenation) {
    std::vector<std::uint8_t> buf(100);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = std::uint8_t(i * 7);
    EXPECT_EQ(crc32_update(crc32(buf.data(), 37), buf.data() + 37, 63), crc32(buf.data(), 100));
}
