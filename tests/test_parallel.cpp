// parallel_for: every item exactly once, in aligned contiguous parts, on the
// caller's thread when the work is small; the kernels give the same bits on
// any number of threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "compact.hpp"
#include "gemm.hpp"
#include "parallel.hpp"
#include "rng.hpp"

using namespace modelkeep;

namespace {
// Restores the thread count a test changed.
struct Threads {
    explicit Threads(std::size_t n) { set_thread_count(n); }
    ~Threads() { set_thread_count(1); }
};
}  // namespace

TEST(Parallel, EveryItemOnceInAlignedParts) {
    for (std::size_t threads : {1, 2, 3, 4}) {
        Threads use(threads);
        EXPECT_EQ(thread_count(), threads);
        for (std::size_t n : {0, 1, 3, 4, 5, 17, 1000})
            for (std::size_t align : {1, 4}) {
                std::vector<std::atomic<int>> seen(n);
                std::mutex m;
                std::set<std::thread::id> ids;
                std::vector<std::pair<std::size_t, std::size_t>> parts;
                parallel_for(n, std::size_t(1) << 30, align, [&](std::size_t b, std::size_t e) {
                    for (std::size_t i = b; i < e; ++i) ++seen[i];
                    std::lock_guard<std::mutex> lock(m);
                    ids.insert(std::this_thread::get_id());
                    parts.emplace_back(b, e);
                });
                for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << n << " items, item " << i;
                const std::size_t units = (n + align - 1) / align;
                EXPECT_EQ(parts.size(), std::max<std::size_t>(1, std::min(threads, units)));
                for (const auto& [b, e] : parts) {
                    EXPECT_EQ(b % align, 0u);
                    EXPECT_TRUE(e == n || e % align == 0);
                }
                EXPECT_LE(ids.size(), threads);
            }
    }
    set_thread_count(99);
    EXPECT_EQ(thread_count(), max_threads);
    set_thread_count(0);
    EXPECT_EQ(thread_count(), 1u);
}

TEST(Parallel, SmallWorkStaysOnTheCallersThread) {
    Threads use(4);
    std::vector<std::thread::id> ids;
    parallel_for(100, 1000, 1, [&](std::size_t b, std::size_t e) {
        EXPECT_EQ(b, 0u);
        EXPECT_EQ(e, 100u);
        ids.push_back(std::this_thread::get_id());
    });
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0], std::this_thread::get_id());
}

TEST(Parallel, KernelsGiveTheSameBitsOnAnyThreadCount) {
    // Large enough to be split (≥ 64K multiply-adds), awkward in every size.
    Rng rng(41);
    const std::size_t K = 517;
    for (std::size_t M : {1, 3, 4, 9})
        for (std::size_t N : {37, 130, 259}) {
            std::vector<float> A(M * K), B(N * K), bias(N);
            for (auto& v : A) v = rng.uniform(-2, 2);
            for (auto& v : B) v = rng.uniform(-1, 1);
            for (auto& v : bias) v = rng.uniform(-1, 1);
            Tensor W(Shape{N, K});
            std::memcpy(W.data(), B.data(), B.size() * 4);
            const Activation relu{Activation::Kind::relu};
            std::vector<std::vector<float>> runs;
            for (std::size_t threads : {1, 2, 3, 4}) {
                Threads use(threads);
                std::vector<float> out;
                std::vector<float> C(M * N);
                matmul_nt(A.data(), B.data(), bias.data(), C.data(), M, N, K, relu);
                out.insert(out.end(), C.begin(), C.end());
                for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
                    CompactWeight w;
                    ASSERT_TRUE(compact_weight(W, dtype, w));
                    matmul_nt_compact(A.data(), w, bias.data(), C.data(), M, relu);
                    out.insert(out.end(), C.begin(), C.end());
                }
                runs.push_back(std::move(out));
            }
            for (std::size_t t = 1; t < runs.size(); ++t)
                EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[t].data(), runs[0].size() * 4))
                    << M << "x" << N << "x" << K << " on " << t + 1 << " threads";
        }
}

TEST(Parallel, CallersOnSeveralThreadsTakeThePoolInTurn) {
    Threads use(3);
    std::atomic<int> failures{0};
    const auto caller = [&](int salt) {
        for (int round = 0; round < 200; ++round) {
            const std::size_t n = 50 + std::size_t((round * 7 + salt) % 90);
            std::vector<int> seen(n, 0);
            parallel_for(n, std::size_t(1) << 30, 1, [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e; ++i) ++seen[i];
            });
            for (int v : seen) failures += v != 1;
        }
    };
    std::thread a(caller, 1), b(caller, 2);
    caller(3);
    a.join();
    b.join();
    EXPECT_EQ(failures, 0);
}
