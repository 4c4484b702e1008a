// Native benchmarks (Google Benchmark), not tests: forward GFLOP/s with the
// reference and the blocked kernel, and .mkp write/read throughput for the
// ~100 MB MLP. Run: build/native/modelkeep_bench  (see README "Benchmarks").
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "format.hpp"
#include "gemm.hpp"
#include "import.hpp"
#include "model.hpp"
#include "packed.hpp"
#include "safetensors.hpp"
#include "spec.hpp"
#include "torch_file.hpp"

using namespace modelkeep;

namespace {

const char* const mnist = "Linear(784,512),ReLU,Linear(512,512),ReLU,Linear(512,10)";
const char* const big = "Linear(1024,4096),ReLU,Linear(4096,4096),ReLU,Linear(4096,1024)";

Sequential build(const char* spec) {
    std::vector<LayerSpec> specs;
    Sequential m;
    if (!parse_spec(spec, specs).ok() || !Sequential::create(specs, 1, m).ok()) std::abort();
    return m;
}

double flops_per_sample(const Sequential& m) {
    double f = 0;
    for (const Layer& l : m.layers())
        if (l.spec.kind == LayerKind::linear) f += 2.0 * double(l.spec.in_features) * double(l.spec.out_features);
    return f;
}

void forward(benchmark::State& state, const char* spec, Kernel kernel) {
    static Sequential cached_mnist = build(mnist), cached_big = build(big);
    const Sequential& m = spec == mnist ? cached_mnist : cached_big;
    const std::size_t batch = std::size_t(state.range(0));
    const std::size_t in = std::size_t(m.layers()[0].spec.in_features);
    Tensor x = zeros({batch, in});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i % 13) * 0.1f;
    set_kernel(kernel);
    Tensor y;
    for (auto _ : state) {
        if (!m.forward(x, y).ok()) state.SkipWithError("forward failed");
        benchmark::DoNotOptimize(y.data());
    }
    set_kernel(Kernel::blocked);
    state.counters["GFLOP/s"] = benchmark::Counter(
        flops_per_sample(m) * double(batch) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

// One Linear's product, the weight as rows (matmul_nt: the row GEMV, or the
// GEMM packing panels on every call) or pre-packed (matmul_nt_packed): the
// same shapes side by side, args (M, N, K, packed).
void kernel(benchmark::State& state) {
    const std::size_t M = std::size_t(state.range(0)), N = std::size_t(state.range(1)), K = std::size_t(state.range(2));
    const bool packed = state.range(3) != 0;
    std::vector<float> A(M * K), W(N * K), bias(N), C(M * N);
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = float(i % 13) * 0.1f;
    for (std::size_t i = 0; i < W.size(); ++i) W[i] = float(i % 7) * 0.01f;
    if (packed) pack_weight(W.data(), N, K);
    for (auto _ : state) {
        if (packed)
            matmul_nt_packed(A.data(), W.data(), bias.data(), C.data(), M, N, K);
        else
            matmul_nt(A.data(), W.data(), bias.data(), C.data(), M, N, K);
        benchmark::DoNotOptimize(C.data());
    }
    state.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * double(M * N * K) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
    state.SetLabel(packed ? "pre-packed" : "rows");
}

const Sequential& big_model() {
    static Sequential m = build(big);
    return m;
}

void write_file(benchmark::State& state) {
    WriteOptions opt;
    opt.dtype = DType(state.range(0));
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        if (!write_model(big_model(), opt, out).ok()) state.SkipWithError("write failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(out.size()));
    state.counters["file_MB"] = double(out.size()) / 1e6;
    state.SetLabel(dtype_name(opt.dtype));
}

void read_file_bench(benchmark::State& state) {
    WriteOptions opt;
    opt.dtype = DType(state.range(0));
    std::vector<std::uint8_t> bytes;
    if (!write_model(big_model(), opt, bytes).ok()) std::abort();
    for (auto _ : state) {
        Sequential m;
        if (!read_model(bytes.data(), bytes.size(), m).ok()) state.SkipWithError("read failed");
        benchmark::DoNotOptimize(&m);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes.size()));
    state.SetLabel(dtype_name(opt.dtype));
}

void read_info_bench(benchmark::State& state) {
    std::vector<std::uint8_t> bytes;
    if (!write_model(big_model(), WriteOptions{}, bytes).ok()) std::abort();
    const bool check = state.range(0) != 0;
    for (auto _ : state) {
        FileInfo info;
        if (!read_info(bytes.data(), bytes.size(), check, info).ok()) state.SkipWithError("read_info failed");
        benchmark::DoNotOptimize(&info);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes.size()));
    state.SetLabel(check ? "header+CRC of data" : "header only");
}

// The practical limit of write and read on this machine: a fresh buffer of the
// file's size filled with memcpy (write), and fresh tensors filled from a buffer
// (read). Fresh memory is what dominates here (page faults), for us and for it.
void copy_baseline(benchmark::State& state) {
    const StateDict sd = big_model().state_dict();
    std::size_t total = 0;
    for (const auto& [k, t] : sd) total += t.size() * 4;
    std::vector<std::uint8_t> src(total, 1);
    const bool to_tensors = state.range(0) != 0;
    for (auto _ : state) {
        if (to_tensors) {
            std::vector<Tensor> out;
            std::size_t at = 0;
            for (const auto& [k, t] : sd) {
                out.emplace_back(t.shape());
                std::memcpy(out.back().data(), src.data() + at, t.size() * 4);
                at += t.size() * 4;
            }
            benchmark::DoNotOptimize(out.data());
        } else {
            std::vector<std::uint8_t> out(total);
            std::size_t at = 0;
            for (const auto& [k, t] : sd) {
                std::memcpy(out.data() + at, t.data(), t.size() * 4);
                at += t.size() * 4;
            }
            benchmark::DoNotOptimize(out.data());
        }
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(total));
    state.SetLabel(to_tensors ? "bytes -> fresh tensors (read limit)" : "tensors -> fresh buffer (write limit)");
}

// Importing the ~100 MB MLP's state dict from a torch .pt (the stored zip torch
// writes: write_torch makes the same layout) and from safetensors, through the one
// entry point the CLI and the page use, into a runnable model (--arch given).
void import_bench(benchmark::State& state) {
    const bool torch = state.range(0) == 0;
    std::vector<std::uint8_t> bytes;
    const StateDict sd = big_model().state_dict();
    const Status written = torch ? write_torch(sd, DType::f32, bytes) : write_safetensors(sd, {}, DType::f32, bytes);
    if (!written.ok()) std::abort();
    ImportOptions options;
    options.architecture = big;
    for (auto _ : state) {
        Imported in;
        if (!import_file(bytes.data(), bytes.size(), options, true, in).ok()) state.SkipWithError("import failed");
        benchmark::DoNotOptimize(&in);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(bytes.size()));
    state.SetLabel(torch ? "torch .pt (zip, stored)" : "safetensors");
}

}  // namespace

BENCHMARK_CAPTURE(forward, mnist_reference, mnist, Kernel::reference)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, mnist_blocked, mnist, Kernel::blocked)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, big_reference, big, Kernel::reference)->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, big_blocked, big, Kernel::blocked)->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(kernel)
    ->ArgsProduct({{1}, {512}, {784}, {0, 1}})
    ->ArgsProduct({{64}, {512}, {784}, {0, 1}})
    ->ArgsProduct({{1}, {4096}, {4096}, {0, 1}})
    ->ArgsProduct({{32}, {4096}, {4096}, {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(write_file)->DenseRange(1, 4)->Unit(benchmark::kMillisecond);
BENCHMARK(read_file_bench)->DenseRange(1, 4)->Unit(benchmark::kMillisecond);
BENCHMARK(copy_baseline)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(import_bench)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(read_info_bench)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
