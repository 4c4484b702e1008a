#include "parallel.hpp"

#include <algorithm>
#include <cstdint>

#if defined(MODELKEEP_THREADS)
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#endif

namespace modelkeep {

namespace {

#if defined(MODELKEEP_THREADS)

// Below this many multiply-adds a call stays on the caller's thread: waking
// a worker costs microseconds, a 64K-MAC product about ten.
constexpr std::size_t min_parallel_work = std::size_t(1) << 16;

// Workers wait for a job: `parts` contiguous parts of [0, n), `align` items
// at a time. Everyone, the caller included, takes the next part until none is
// left; the caller returns when every part has finished.
class Pool {
public:
    explicit Pool(std::size_t workers) {
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        wake_.notify_all();
        for (std::thread& t : threads_) t.join();
    }

    // One job at a time: callers on other threads wait for the pool.
    void run(std::size_t n, std::size_t align, std::size_t parts, PartRef part) {
        std::lock_guard<std::mutex> one_job(busy_);
        std::unique_lock<std::mutex> lock(m_);
        part_ = part;
        n_ = n;
        align_ = align;
        units_ = (n + align - 1) / align;
        parts_ = parts;
        next_ = 0;
        done_ = 0;
        ++generation_;
        wake_.notify_all();
        take(lock);
        finished_.wait(lock, [this] { return done_ == parts_; });
    }

private:
    // Runs parts until none is left (m_ held on entry and exit). Part p is
    // units [p·units/parts, (p+1)·units/parts), in items.
    void take(std::unique_lock<std::mutex>& lock) {
        while (next_ < parts_) {
            const std::size_t p = next_++;
            const std::size_t b = p * units_ / parts_ * align_;
            const std::size_t e = std::min(n_, (p + 1) * units_ / parts_ * align_);
            const PartRef part = part_;
            lock.unlock();
            part.call(part.self, b, e);
            lock.lock();
            if (++done_ == parts_) finished_.notify_all();
        }
    }
    void work() {
        std::unique_lock<std::mutex> lock(m_);
        std::uint64_t seen = 0;  // the pool's first generation: a worker that starts late still joins the first job
        for (;;) {
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            take(lock);
        }
    }

    std::mutex busy_, m_;
    std::condition_variable wake_, finished_;
    std::vector<std::thread> threads_;
    PartRef part_{};
    std::size_t n_ = 0, align_ = 1, units_ = 0, parts_ = 0, next_ = 0, done_ = 0;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
};

#if defined(__EMSCRIPTEN__)
std::size_t g_threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, max_threads);
#else
std::size_t g_threads = 1;
#endif
std::unique_ptr<Pool> g_pool;  // g_threads - 1 workers, made on first use

#endif

}  // namespace

#if defined(MODELKEEP_THREADS)

std::size_t thread_count() { return g_threads; }

void set_thread_count(std::size_t n) {
#if defined(__EMSCRIPTEN__)
    // No more than the workers Emscripten prestarted (wasm/CMakeLists.txt): a
    // thread beyond them would start only once the main thread yields.
    static const std::size_t most = g_threads;
#else
    static const std::size_t most = max_threads;
#endif
    n = std::clamp<std::size_t>(n, 1, most);
    if (n == g_threads) return;
    g_pool.reset();
    g_threads = n;
}

void parallel_for(std::size_t n, std::size_t work, std::size_t align, PartRef part) {
    align = std::max<std::size_t>(align, 1);
    const std::size_t parts = std::min(g_threads, (n + align - 1) / align);
    if (parts <= 1 || work < min_parallel_work) {
        part.call(part.self, 0, n);
        return;
    }
    if (!g_pool) g_pool = std::make_unique<Pool>(g_threads - 1);
    g_pool->run(n, align, parts, part);
}

#else

std::size_t thread_count() { return 1; }
void set_thread_count(std::size_t) {}

#endif

}  // namespace modelkeep
