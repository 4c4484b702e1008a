// source.hpp — random-access bytes that need not be in this memory: a file
// held by JavaScript (the wasm build copies only the ranges a reader asks
// for, straight into their final place), or bytes in memory (native, tests).
// Readers that take a ByteSource read their small structures (a zip's
// directory, a pickle, a safetensors header) into buffers of their own and
// each tensor's bytes once, so an import holds the tensors, not the file twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace modelkeep {

class ByteSource {
public:
    virtual ~ByteSource() = default;
    virtual std::uint64_t size() const = 0;
    /// Copies [offset, offset + n) to dst. Callers check the range first.
    virtual void read(std::uint64_t offset, void* dst, std::size_t n) const = 0;
    /// The bytes themselves when they are in this memory (no copy needed), else nullptr.
    virtual const std::uint8_t* data() const { return nullptr; }
};

class MemorySource final : public ByteSource {
public:
    MemorySource(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::uint64_t size() const override { return size_; }
    void read(std::uint64_t offset, void* dst, std::size_t n) const override {
        if (n) std::memcpy(dst, data_ + offset, n);
    }
    const std::uint8_t* data() const override { return data_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
};

/// [offset, offset + n) of `source`: a pointer into it when it is in memory,
/// else a copy in `buffer`. The range must have been checked against size().
inline const std::uint8_t* source_range(const ByteSource& source, std::uint64_t offset, std::size_t n,
                                        std::vector<std::uint8_t>& buffer) {
    if (const std::uint8_t* p = source.data()) return p + offset;
    buffer.resize(n);
    source.read(offset, buffer.data(), n);
    return buffer.data();
}

}  // namespace modelkeep
