// parallel.hpp — the kernels' only concurrency: split a range of independent
// items (weight panels, output columns) over a small pool of threads.
//
// Threads exist only in builds with MODELKEEP_THREADS (natively, and the
// optional pthreads WebAssembly build for cross-origin-isolated pages; a
// public define of the core library); the default WebAssembly build runs
// everything on the caller's thread. The thread count starts at 1 natively
// and at min(hardware threads, 4) in the pthreads build. Every item is
// computed the same way whatever the split, so results do not depend on the
// thread count.
#pragma once

#include <cstddef>
#include <type_traits>

namespace modelkeep {

/// Most threads the kernels use.
constexpr std::size_t max_threads = 4;

/// Threads the kernels may use, the caller's included (≥ 1).
std::size_t thread_count();
/// Clamped to [1, max_threads] natively and, in the pthreads build, to the
/// count it started with (its workers are started with the module); always 1
/// in a build without threads.
void set_thread_count(std::size_t n);

/// A callable void(size_t begin, size_t end), by reference (no allocation).
struct PartRef {
    void* self;
    void (*call)(void* self, std::size_t begin, std::size_t end);
};

#if defined(MODELKEEP_THREADS)
void parallel_for(std::size_t n, std::size_t work, std::size_t align, PartRef part);
#endif

/// Calls part(begin, end) over contiguous parts covering [0, n) exactly once,
/// on up to thread_count() threads (the caller runs one part), and returns when
/// all are done. One part, on the caller's thread, when `work` (a rough count
/// of multiply-adds) is too small to repay waking the pool. `align` > 1 makes
/// every part but the last a multiple of it. Not reentrant: a part must not
/// call parallel_for; calls from several threads take the pool in turn. Allocates
/// nothing once the pool is running. set_thread_count must not run during a call.
template <class F>
void parallel_for(std::size_t n, std::size_t work, std::size_t align, F&& part) {
#if defined(MODELKEEP_THREADS)
    using Fn = std::remove_reference_t<F>;
    parallel_for(n, work, align,
                 PartRef{const_cast<void*>(static_cast<const void*>(&part)),
                         [](void* self, std::size_t b, std::size_t e) { (*static_cast<Fn*>(self))(b, e); }});
#else  // one part, inlined: the single-threaded build pays nothing
    (void)work;
    (void)align;
    part(std::size_t(0), n);
#endif
}

}  // namespace modelkeep
