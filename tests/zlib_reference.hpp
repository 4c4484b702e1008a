// zlib_reference.hpp — the system zlib as the reference compressor of the
// inflate and zip tests (tests only: the core never links zlib).
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <vector>

/// Raw deflate (no zlib header) of `data` with zlib's own encoder.
inline std::vector<std::uint8_t> zlib_deflate(const std::vector<std::uint8_t>& data, int level,
                                              int strategy = Z_DEFAULT_STRATEGY, int mem_level = 8,
                                              int window_bits = 15) {
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, -window_bits, mem_level, strategy), Z_OK);
    std::vector<std::uint8_t> out(deflateBound(&z, uLong(data.size())) + 16);
    z.next_in = const_cast<std::uint8_t*>(data.data());
    z.avail_in = uInt(data.size());
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}
