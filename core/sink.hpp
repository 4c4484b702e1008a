// sink.hpp — random-access output that need not be in this memory, the mirror
// of source.hpp's ByteSource: a file being built in JavaScript (the wasm build
// copies each range straight into the Uint8Array it returns), or a buffer in
// memory (native, tests). The format writer emits each byte once, in file
// order, except the 20-byte fixed header, which it writes last (it holds the
// data CRC), so a sink must accept any range inside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace modelkeep {

class ByteSink {
public:
    virtual ~ByteSink() = default;
    /// Copies n bytes from data to [offset, offset + n) of the output. The
    /// writer keeps every range inside the size it planned.
    virtual void write(std::uint64_t offset, const void* data, std::size_t n) = 0;
};

/// Output into memory the caller sized (for the writer: the planned file size).
class MemorySink final : public ByteSink {
public:
    explicit MemorySink(std::uint8_t* data) : data_(data) {}
    void write(std::uint64_t offset, const void* data, std::size_t n) override {
        if (n) std::memcpy(data_ + offset, data, n);
    }

private:
    std::uint8_t* data_;
};

}  // namespace modelkeep
