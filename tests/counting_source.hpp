// counting_source.hpp — a ByteSource outside memory (data() is null, as a file
// held by JavaScript is), over bytes of a test, that records what readers ask
// of it: how many reads, how many bytes, the largest range, and how often each
// byte was read. A range past the end fails the calling test.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "source.hpp"

namespace mkt {

class CountingSource final : public modelkeep::ByteSource {
public:
    explicit CountingSource(const std::vector<std::uint8_t>& bytes) : bytes_(bytes), hits_(bytes.size(), 0) {}
    std::uint64_t size() const override { return bytes_.size(); }
    void read(std::uint64_t offset, void* dst, std::size_t n) const override {
        ++reads;
        total += n;
        largest = std::max(largest, n);
        if (offset > bytes_.size() || n > bytes_.size() - offset) {
            ADD_FAILURE() << "a read of " << n << " bytes at " << offset << " runs past the end of a " << bytes_.size()
                          << "-byte source";
            return;
        }
        for (std::size_t i = 0; i < n; ++i) hits_[std::size_t(offset) + i] += hits_[std::size_t(offset) + i] < 255;
        if (n) std::memcpy(dst, bytes_.data() + offset, n);
    }
    void reset() const {
        reads = total = largest = 0;
        std::fill(hits_.begin(), hits_.end(), 0);
    }
    /// The most times any one byte was read (since the last reset).
    unsigned most_reads_of_a_byte() const { return hits_.empty() ? 0 : *std::max_element(hits_.begin(), hits_.end()); }
    /// Bytes never read (since the last reset).
    std::size_t unread_bytes() const { return std::size_t(std::count(hits_.begin(), hits_.end(), 0)); }

    mutable std::size_t reads = 0, total = 0, largest = 0;

private:
    const std::vector<std::uint8_t>& bytes_;
    mutable std::vector<std::uint8_t> hits_;  // reads per byte, saturating at 255
};

}  // namespace mkt
