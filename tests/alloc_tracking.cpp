// alloc_tracking.cpp — the replaced global operator new / delete behind
// alloc_tracking.hpp: each block carries its size in a header, so that the
// live bytes of a thread can be followed through frees.
#include "alloc_tracking.hpp"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

std::atomic<long> g_news{0};
struct Counters {
    long news = 0;
    std::uint64_t bytes = 0, live = 0, peak = 0;
};
thread_local Counters t_counters;
constexpr std::size_t header = alignof(std::max_align_t);

void* allocate(std::size_t n) {
    ++g_news;
    Counters& c = t_counters;
    ++c.news;
    c.bytes += n;
    c.live += n;
    if (c.live > c.peak) c.peak = c.live;
    auto* p = static_cast<unsigned char*>(std::malloc(n + header));
    if (!p) throw std::bad_alloc();
    *reinterpret_cast<std::size_t*>(p) = n;
    return p + header;
}

void release(void* q) noexcept {
    if (!q) return;
    auto* p = static_cast<unsigned char*>(q) - header;
    const std::size_t n = *reinterpret_cast<std::size_t*>(p);
    Counters& c = t_counters;
    c.live = c.live >= n ? c.live - n : 0;  // freed on another thread than it was allocated on
    std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }

namespace mkt {

long news_everywhere() { return g_news; }

AllocScope::AllocScope()
    : news_(t_counters.news), bytes_(t_counters.bytes), live_(t_counters.live), saved_peak_(t_counters.peak) {
    t_counters.peak = t_counters.live;
}

long AllocScope::news() const { return t_counters.news - news_; }
std::uint64_t AllocScope::bytes() const { return t_counters.bytes - bytes_; }
std::uint64_t AllocScope::peak() const { return t_counters.peak - live_; }

}  // namespace mkt
