// rng.hpp — a small seedable generator (PCG32) with a portable float mapping,
// so the same seed gives bit-identical weights natively, in wasm and in Node
// (std::uniform_real_distribution differs between standard libraries).
#pragma once

#include <cstdint>

namespace modelkeep {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0x853c49e6748fea9bULL) {
        state_ = 0;
        next_u32();
        state_ += seed;
        next_u32();
    }

    std::uint32_t next_u32() {
        const std::uint64_t old = state_;
        state_ = old * 6364136223846793005ULL + inc;
        const std::uint32_t xorshifted = std::uint32_t(((old >> 18u) ^ old) >> 27u);
        const std::uint32_t rot = std::uint32_t(old >> 59u);
        return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
    }

    /// Uniform in [0, 1) with 24 random bits.
    float next_unit() { return float(next_u32() >> 8) * (1.0f / 16777216.0f); }

    /// Uniform in [lo, hi).
    float uniform(float lo, float hi) { return lo + (hi - lo) * next_unit(); }

private:
    static constexpr std::uint64_t inc = 1442695040888963407ULL;
    std::uint64_t state_;
};

}  // namespace modelkeep
