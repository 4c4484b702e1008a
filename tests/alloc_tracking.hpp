// alloc_tracking.hpp — every operator new of the test binary is counted
// (alloc_tracking.cpp replaces the global operator new and delete), so that a
// test can see how many allocations a call makes, and how many bytes: the
// sizes the core's memory functions predict (forward_bytes, import_bytes, ...).
#pragma once

#include <cstdint>

namespace mkt {

/// operator new calls so far, on every thread.
long news_everywhere();

/// What this thread allocates from construction on: calls, bytes asked for
/// in all, and the peak of its live bytes above the level at construction.
class AllocScope {
public:
    AllocScope();
    long news() const;
    std::uint64_t bytes() const;
    std::uint64_t peak() const;

private:
    long news_;
    std::uint64_t bytes_, live_, saved_peak_;
};

}  // namespace mkt
