// gemm.cpp — see gemm.hpp; layouts and instruction counts per 16 weights in
// docs/KERNELS.md. Two fast paths beside the reference loop:
//   a few rows (batch 1-3): each output is a dot product streamed over one
//     weight row (GEMV: the weights are read once per input row, in order,
//     no packing);
//   more rows: B packed into K-blocks of 8-column panels, a 4×8 register-
//     blocked micro-kernel (GEMM).
// Both use WebAssembly SIMD128 intrinsics when built with -msimd128 and plain
// loops the compiler vectorises otherwise.
#include "gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "compact.hpp"
#include "parallel.hpp"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace modelkeep {

static Kernel g_kernel = Kernel::blocked;

void matmul_nt_ref(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                   std::size_t K, Activation act) {
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            float acc = 0.0f;
            for (std::size_t k = 0; k < K; ++k) acc += A[i * K + k] * B[j * K + k];
            C[i * N + j] = bias ? acc + bias[j] : acc;
            act.apply(C + i * N + j, 1);
        }
}

namespace {

// Scratch a kernel needs for one call, kept per thread and grown, never
// shrunk: once it has seen the largest K, a forward allocates nothing.
template <class T>
T* scratch(std::vector<T>& buffer, std::size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

constexpr std::size_t NR = 8;    // columns of C per panel: two SSE vectors (measured best of 8/16 × 4/6)
constexpr std::size_t MR = 4;    // rows of C per micro-kernel
constexpr std::size_t KC = 256;  // K block: an 8 × 256 panel (8 KiB) stays in L1

// The tile c (mr × NR, row stride ldc) += A rows [i, i+mr) × packed panel P
// (kc × NR), k in [0, kc): the tile is loaded into registers, accumulated
// there for the whole K block and stored back, as a plain register-blocked
// sgemm does (tests/bench/ref_kernels.c). A is (M, K) with row stride lda,
// already offset to the block's first column.
template <std::size_t mr>
inline void micro_kernel(const float* A, std::size_t lda, const float* P, std::size_t kc, float* c, std::size_t ldc) {
#if defined(__wasm_simd128__)
    // Two f32x4 accumulators per row (NR = 8): 8 live vectors at mr = 4.
    v128_t c0[mr], c1[mr];
    const float* a[mr];
    for (std::size_t r = 0; r < mr; ++r) {
        c0[r] = wasm_v128_load(c + r * ldc);
        c1[r] = wasm_v128_load(c + r * ldc + 4);
        a[r] = A + r * lda;
    }
    for (std::size_t k = 0; k < kc; ++k) {
        const v128_t p0 = wasm_v128_load(P + k * NR), p1 = wasm_v128_load(P + k * NR + 4);
        for (std::size_t r = 0; r < mr; ++r) {
            const v128_t x = wasm_v128_load32_splat(a[r] + k);
            c0[r] = wasm_f32x4_add(c0[r], wasm_f32x4_mul(x, p0));
            c1[r] = wasm_f32x4_add(c1[r], wasm_f32x4_mul(x, p1));
        }
    }
    for (std::size_t r = 0; r < mr; ++r) {
        wasm_v128_store(c + r * ldc, c0[r]);
        wasm_v128_store(c + r * ldc + 4, c1[r]);
    }
#else
    // The same sums in the same order as the SIMD128 path (the tile starts from C), so that the
    // native build and wasm give the same bits (tests/js/compact.test.mjs checks it).
    float t[mr][NR];
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t j = 0; j < NR; ++j) t[r][j] = c[r * ldc + j];
    for (std::size_t k = 0; k < kc; ++k) {
        const float* p = P + k * NR;
        for (std::size_t r = 0; r < mr; ++r) {
            const float x = A[r * lda + k];
            for (std::size_t j = 0; j < NR; ++j) t[r][j] += x * p[j];
        }
    }
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t j = 0; j < NR; ++j) c[r * ldc + j] = t[r][j];
#endif
}

// A weight row as the GEMV reads it, decoded to float32 — four lanes at k
// (SIMD128) or one value at k. float32 rows are loaded as they are; f16 and
// bf16 rows are decoded in registers (never expanded in memory).
struct F32Row {
    const float* p;
#if defined(__wasm_simd128__)
    v128_t vec(std::size_t k) const { return wasm_v128_load(p + k); }
#endif
    float at(std::size_t k) const { return p[k]; }
};

// f16 → f32 without branches for every value but inf/NaN (which CompactWeight
// never holds): sign-extend, shift the 5-bit exponent and 10-bit mantissa into
// float32's fields, keep the sign, and rebias by multiplying with 2^112 —
// exact, subnormals included, and equal to f16_to_f32.
constexpr std::uint32_t f16_field_mask = 0x8FFFE000u;
constexpr float f16_rebias = 5.192296858534828e33f;  // 2^112

// SIMD128 operations per 16 f16 weights in the GEMV (dot2 over F16Row<false>;
// docs/KERNELS.md): 4 widening loads (i32x4.load16x4_s), 4 shifts, 4 masks —
// 12 to decode — then 4 input loads shared by four rows (1), 4 multiplies, 4
// adds: 21, against 13 for float32 (packed panels) and 17 for bf16 (widening
// load + shift). No exact decode in fewer was found: a 32-bit lane holding two
// halves gives the odd one in 2 operations (shr_s 3, mask) but the even one
// needs 3 (shl 16 first), so 8 weights cost 1 load + 5 against 2 loads + 4
// here. Without SIMD128 half-float conversion or FMA, f16 is bound by this
// decoder.
// Rebias = false gives w · 2^-112 (the fields alone): the caller multiplies
// the input by 2^112 instead, once per row rather than once per weight. Both
// scalings are exact (no overflow for |x| < 2^16), so every product, and so
// every sum, is the same float as with the decoded weight.
template <bool Rebias>
struct F16Row {
    const std::uint16_t* p;
    static float fields(std::uint16_t h) {
        const std::uint32_t u = (std::uint32_t(std::int32_t(std::int16_t(h))) << 13) & f16_field_mask;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
#if defined(__wasm_simd128__)
    v128_t vec(std::size_t k) const {
        const v128_t u = wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_load16x4(p + k), 13),
                                       wasm_i32x4_splat(std::int32_t(f16_field_mask)));
        return Rebias ? wasm_f32x4_mul(u, wasm_f32x4_splat(f16_rebias)) : u;
    }
#endif
    float at(std::size_t k) const { return Rebias ? fields(p[k]) * f16_rebias : fields(p[k]); }
};

struct BF16Row {
    const std::uint16_t* p;
#if defined(__wasm_simd128__)
    v128_t vec(std::size_t k) const { return wasm_i32x4_shl(wasm_u32x4_load16x4(p + k), 16); }
#endif
    float at(std::size_t k) const { return bf16_to_f32(p[k]); }
};

// Σ_k a[k] · w[k] over one weight row: four 4-lane partial sums s0..s3 over
// k ≡ 0-3, 4-7, 8-11, 12-15 (mod 16), then (s0 + s1) + (s2 + s3) summed across
// lanes 0, 1, 2, 3 in order, then the last K % 16 products one by one. One row
// at a time keeps the weights a single sequential stream (measured faster,
// memory-bound, than four rows at once sharing the input loads), and four
// independent sums keep the adders busy. The order is fixed whatever the
// build and the row type, so native and wasm agree bit for bit, and a bf16 or
// f16 row gives exactly what its float32 expansion gives (f16 subnormals held
// apart are added after, by gemv_f16).
template <class Row>
inline float dot(const float* a, const Row& w, std::size_t K) {
    std::size_t k = 0;
    float out;
#if defined(__wasm_simd128__)
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (; k + 16 <= K; k += 16) {
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + k), w.vec(k)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + k + 4), w.vec(k + 4)));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(a + k + 8), w.vec(k + 8)));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(a + k + 12), w.vec(k + 12)));
    }
    const v128_t v = wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3));
    out = wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
          wasm_f32x4_extract_lane(v, 3);
#else
    float s[16] = {};  // s[4q + l]: lane l of partial sum q
    for (; k + 16 <= K; k += 16)
        for (std::size_t l = 0; l < 16; ++l) s[l] += a[k + l] * w.at(k + l);
    float v[4];
    for (int l = 0; l < 4; ++l) v[l] = (s[l] + s[4 + l]) + (s[8 + l] + s[12 + l]);
    out = v[0] + v[1] + v[2] + v[3];
#endif
    for (; k < K; ++k) out += a[k] * w.at(k);
    return out;
}

// dot() over two weight rows at once, each with its own four partial sums in
// exactly dot()'s order (so the same floats), the input loads shared: per 16
// weights of a row 2 input loads instead of 4. Natively: dot() twice.
template <class Row>
inline void dot2(const float* a, const Row& w0, const Row& w1, std::size_t K, float out[2]) {
#if defined(__wasm_simd128__)
    std::size_t k = 0;
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    for (; k + 16 <= K; k += 16) {
        const v128_t a0 = wasm_v128_load(a + k), a1 = wasm_v128_load(a + k + 4);
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(a0, w0.vec(k)));
        t0 = wasm_f32x4_add(t0, wasm_f32x4_mul(a0, w1.vec(k)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(a1, w0.vec(k + 4)));
        t1 = wasm_f32x4_add(t1, wasm_f32x4_mul(a1, w1.vec(k + 4)));
        const v128_t a2 = wasm_v128_load(a + k + 8), a3 = wasm_v128_load(a + k + 12);
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(a2, w0.vec(k + 8)));
        t2 = wasm_f32x4_add(t2, wasm_f32x4_mul(a2, w1.vec(k + 8)));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(a3, w0.vec(k + 12)));
        t3 = wasm_f32x4_add(t3, wasm_f32x4_mul(a3, w1.vec(k + 12)));
    }
    const v128_t v = wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3));
    const v128_t u = wasm_f32x4_add(wasm_f32x4_add(t0, t1), wasm_f32x4_add(t2, t3));
    float o0 = wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
               wasm_f32x4_extract_lane(v, 3);
    float o1 = wasm_f32x4_extract_lane(u, 0) + wasm_f32x4_extract_lane(u, 1) + wasm_f32x4_extract_lane(u, 2) +
               wasm_f32x4_extract_lane(u, 3);
    for (; k < K; ++k) {
        o0 += a[k] * w0.at(k);
        o1 += a[k] * w1.at(k);
    }
    out[0] = o0;
    out[1] = o1;
#else
    out[0] = dot(a, w0, K);
    out[1] = dot(a, w1, K);
#endif
}

// The same over four rows: 1 input load per 16 weights of a row. Its 16
// accumulators exceed x64's vector registers (V8 spills some to the stack, an
// L1 round trip), yet measured 1.07-1.24x faster than dot2 on the 100 MB MLP
// at batch 1 (docs/KERNELS.md): four weight streams in flight instead of two.
template <class Row>
inline void dot4(const float* a, const Row* w, std::size_t K, float out[4]) {
#if defined(__wasm_simd128__)
    std::size_t k = 0;
    v128_t s[4][4];
    for (auto& r : s)
        for (auto& v : r) v = wasm_f32x4_splat(0.0f);
    for (; k + 16 <= K; k += 16)
        for (std::size_t q = 0; q < 4; ++q) {
            const v128_t x = wasm_v128_load(a + k + 4 * q);
            for (std::size_t r = 0; r < 4; ++r)
                s[r][q] = wasm_f32x4_add(s[r][q], wasm_f32x4_mul(x, w[r].vec(k + 4 * q)));
        }
    for (std::size_t r = 0; r < 4; ++r) {
        const v128_t v = wasm_f32x4_add(wasm_f32x4_add(s[r][0], s[r][1]), wasm_f32x4_add(s[r][2], s[r][3]));
        float o = wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
                  wasm_f32x4_extract_lane(v, 3);
        for (std::size_t t = k; t < K; ++t) o += a[t] * w[r].at(t);
        out[r] = o;
    }
#else
    for (std::size_t r = 0; r < 4; ++r) out[r] = dot(a, w[r], K);
#endif
}

// c[j] = act(a · W[j] + bias[j]) for j in [j0, j1): one input row against
// weight rows of type T read through Row, four rows per pass (dot4, then dot2
// and dot for the rest: the same floats whichever); the
// epilogue runs on the range as soon as it is complete (in L1).
template <class Row, class T>
void gemv_range(const float* a, const T* B, const float* bias, float* c, std::size_t j0, std::size_t j1, std::size_t K,
                Activation act) {
    std::size_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        float y[4];
        const Row w[4] = {Row{B + j * K}, Row{B + (j + 1) * K}, Row{B + (j + 2) * K}, Row{B + (j + 3) * K}};
        dot4(a, w, K, y);
        for (std::size_t r = 0; r < 4; ++r) c[j + r] = bias ? y[r] + bias[j + r] : y[r];
    }
    for (; j + 2 <= j1; j += 2) {
        float y[2];
        dot2(a, Row{B + j * K}, Row{B + (j + 1) * K}, K, y);
        c[j] = bias ? y[0] + bias[j] : y[0];
        c[j + 1] = bias ? y[1] + bias[j + 1] : y[1];
    }
    for (; j < j1; ++j) {
        const float y = dot(a, Row{B + j * K}, K);
        c[j] = bias ? y + bias[j] : y;
    }
    act.apply(c + j0, j1 - j0);
}

// C = act(A · Wᵀ + bias) for a few rows of A, the output columns split over
// the threads (parallel.hpp).
template <class Row, class T>
void gemv(const float* A, const T* B, const float* bias, float* C, std::size_t M, std::size_t N, std::size_t K,
          Activation act) {
    parallel_for(N, M * N * K, 1, [&](std::size_t j0, std::size_t j1) {
        for (std::size_t i = 0; i < M; ++i) gemv_range<Row>(A + i * K, B, bias, C + i * N, j0, j1, K, act);
    });
}

}  // namespace

void matmul_nt_gemv(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                    std::size_t K, Activation act) {
    gemv<F32Row>(A, B, bias, C, M, N, K, act);
}

namespace {

// Panels [j_begin, j_end) of C (columns, multiples of NR but the end).
template <class Pack>
void blocked_panels(const float* A, const Pack& pack, const float* bias, float* C, std::size_t M, std::size_t N,
                    std::size_t K, Activation act, std::size_t j_begin, std::size_t j_end) {
    alignas(16) float panel[KC * NR];  // 8 KiB: on the stack, not the heap
    alignas(16) float edge[MR * NR];   // a narrow panel's tile (nr < NR columns of C)
    for (std::size_t j0 = j_begin; j0 < j_end; j0 += NR) {
        const std::size_t nr = std::min(NR, N - j0);
        for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < nr; ++j) C[i * N + j0 + j] = bias ? bias[j0 + j] : 0.0f;
            if (K == 0) act.apply(C + i * N + j0, nr);
        }
        for (std::size_t k0 = 0; k0 < K; k0 += KC) {
            const std::size_t kc = std::min(KC, K - k0);
            const bool last = k0 + kc == K;
            const float* P = pack(j0, nr, k0, kc, panel);  // panel, or the weight's own pre-packed one
            for (std::size_t i = 0; i < M; i += MR) {
                const std::size_t mr = std::min(MR, M - i);
                const float* a = A + i * K + k0;
                // A full panel accumulates in C itself; a narrow one in `edge`, copied in and out.
                float* c = C + i * N + j0;
                std::size_t ldc = N;
                if (nr < NR) {
                    for (std::size_t r = 0; r < mr; ++r)
                        for (std::size_t j = 0; j < NR; ++j) edge[r * NR + j] = j < nr ? c[r * N + j] : 0.0f;
                    c = edge;
                    ldc = NR;
                }
                switch (mr) {
                    case 4: micro_kernel<4>(a, K, P, kc, c, ldc); break;
                    case 3: micro_kernel<3>(a, K, P, kc, c, ldc); break;
                    case 2: micro_kernel<2>(a, K, P, kc, c, ldc); break;
                    default: micro_kernel<1>(a, K, P, kc, c, ldc); break;
                }
                for (std::size_t r = 0; r < mr; ++r) {
                    float* out = C + (i + r) * N + j0;
                    if (nr < NR)
                        for (std::size_t j = 0; j < nr; ++j) out[j] = edge[r * NR + j];
                    if (last) act.apply(out, nr);
                }
            }
        }
    }
}

// C = act(A · Bᵀ + bias) through packed panels: pack(j0, nr, k0, kc, panel)
// returns B[j0 : j0+nr, k0 : k0+kc] transposed (kc × NR, zero-padded): written
// into panel, or where a pre-packed weight already holds it.
// The last K block adds its tile into C and applies act to it there. The
// panels are split over the threads (parallel.hpp), each with its own scratch.
template <class Pack>
void blocked(const float* A, const Pack& pack, const float* bias, float* C, std::size_t M, std::size_t N, std::size_t K,
             Activation act) {
    parallel_for((N + NR - 1) / NR, M * N * K, 1, [&](std::size_t p0, std::size_t p1) {
        blocked_panels(A, pack, bias, C, M, N, K, act, p0 * NR, std::min(N, p1 * NR));
    });
}

// A compact weight's rows [j0, j0 + nr), columns [k0, k0 + kc), decoded
// exactly as expand_weight decodes them into the panel (kc × NR, columns nr..NR
// zero): never more than one panel at a time. With SIMD128, four columns of
// four rows at a time: each row's four values decoded in a register (f16: 4
// operations, bf16: 2, int8: 5), the 4 × 4 block transposed in registers (8
// shuffles) and stored as four panel rows — no scalar scatter.
struct CompactPack {
    const CompactWeight& w;

#if defined(__wasm_simd128__)
    // Four decoded values of weight row r at column k (k + 4 <= cols).
    template <DType D>
    v128_t quad(std::size_t r, std::size_t k) const {
        const std::size_t at = r * w.cols + k;
        if (D == DType::f16) return F16Row<true>{w.half.data() + at}.vec(0);
        if (D == DType::bf16) return BF16Row{w.half.data() + at}.vec(0);
        const v128_t b = wasm_v128_load32_zero(w.q.data() + at);
        const v128_t i = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(b));
        return wasm_f32x4_mul(wasm_f32x4_convert_i32x4(i), wasm_f32x4_splat(w.scale[r]));
    }
#endif

    float at(std::size_t r, std::size_t k) const {
        const std::size_t i = r * w.cols + k;
        switch (w.dtype) {
            case DType::f16: return F16Row<true>::fields(w.half[i]) * f16_rebias;
            case DType::bf16: return bf16_to_f32(w.half[i]);
            case DType::int8: return float(w.q[i]) * w.scale[r];
            case DType::f32: break;
        }
        return 0.0f;
    }

    // Columns [0, kc & ~3) of the panel (SIMD128; nothing natively): returns
    // the first column left.
    template <DType D>
    std::size_t quads(std::size_t j0, std::size_t nr, std::size_t k0, std::size_t kc, float* panel) const {
        std::size_t k = 0;
#if defined(__wasm_simd128__)
        for (; k + 4 <= kc; k += 4)
            for (std::size_t g = 0; g < NR; g += 4) {
                v128_t v[4];
                for (std::size_t r = 0; r < 4; ++r)
                    v[r] = g + r < nr ? quad<D>(j0 + g + r, k0 + k) : wasm_f32x4_splat(0.0f);
                const v128_t t0 = wasm_i32x4_shuffle(v[0], v[1], 0, 4, 1, 5);
                const v128_t t1 = wasm_i32x4_shuffle(v[2], v[3], 0, 4, 1, 5);
                const v128_t t2 = wasm_i32x4_shuffle(v[0], v[1], 2, 6, 3, 7);
                const v128_t t3 = wasm_i32x4_shuffle(v[2], v[3], 2, 6, 3, 7);
                float* p = panel + k * NR + g;
                wasm_v128_store(p, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
                wasm_v128_store(p + NR, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
                wasm_v128_store(p + 2 * NR, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
                wasm_v128_store(p + 3 * NR, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
            }
#else
        (void)j0, (void)nr, (void)k0, (void)kc, (void)panel;
#endif
        return k;
    }

    const float* operator()(std::size_t j0, std::size_t nr, std::size_t k0, std::size_t kc, float* panel) const {
        std::size_t k = 0;
        switch (w.dtype) {
            case DType::f16: k = quads<DType::f16>(j0, nr, k0, kc, panel); break;
            case DType::bf16: k = quads<DType::bf16>(j0, nr, k0, kc, panel); break;
            case DType::int8: k = quads<DType::int8>(j0, nr, k0, kc, panel); break;
            case DType::f32: break;
        }
        for (; k < kc; ++k)
            for (std::size_t j = 0; j < NR; ++j) panel[k * NR + j] = j < nr ? at(j0 + j, k0 + k) : 0.0f;
        if (!w.sub_start.empty())  // f16 subnormals, where `half` holds ±0
            for (std::size_t j = 0; j < nr; ++j)
                for (std::uint32_t i = w.sub_start[j0 + j]; i < w.sub_start[j0 + j + 1]; ++i)
                    if (w.sub_col[i] >= k0 && w.sub_col[i] < k0 + kc)
                        panel[(w.sub_col[i] - k0) * NR + j] = f16_to_f32(w.sub_half[i]);
        return panel;
    }
};

// f16 GEMV: each input row scaled by 2^112 when that is exact (|x| < 2^16,
// or not finite — inf and NaN stay what they are), so the weights need no
// rebias; then the subnormal weights (held apart, compact.hpp) are added in.
void gemv_f16(const float* A, const CompactWeight& w, const float* bias, float* C, std::size_t M, Activation act) {
    const std::size_t N = w.rows, K = w.cols;
    thread_local std::vector<float> scaled_buffer;
    float* scaled = scratch(scaled_buffer, K);
    for (std::size_t i = 0; i < M; ++i) {
        const float* a = A + i * K;
        float* c = C + i * N;
        bool fits = true;
        for (std::size_t k = 0; k < K && fits; ++k) fits = std::fabs(a[k]) < 65536.0f || !std::isfinite(a[k]);
        if (fits)
            for (std::size_t k = 0; k < K; ++k) scaled[k] = a[k] * f16_rebias;
        parallel_for(N, N * K, 1, [&](std::size_t j0, std::size_t j1) {
            if (fits)
                gemv_range<F16Row<false>>(scaled, w.half.data(), bias, c, j0, j1, K, {});
            else
                gemv_range<F16Row<true>>(a, w.half.data(), bias, c, j0, j1, K, {});
            if (!w.sub_start.empty())
                for (std::size_t j = j0; j < j1; ++j)
                    for (std::uint32_t s = w.sub_start[j]; s < w.sub_start[j + 1]; ++s)
                        c[j] += a[w.sub_col[s]] * f16_to_f32(w.sub_half[s]);
            act.apply(c + j0, j1 - j0);  // after the subnormals: the outputs are complete only now
        });
    }
}

// int8 GEMV. Each row a of A is quantised to int16 (symmetric: s_a = max|a| /
// 32767, qa = round(a / s_a)); the products qa·q are summed exactly in int32
// over blocks of int8_block columns (512 · 127 · 32767 < 2^31, so no block can
// overflow), and the blocks in float32:
//   C[i][j] = (Σ_blocks float(Σ_k qa[k] · q[j][k])) · scale[j] · s_a + bias[j].
// Integer sums do not depend on their order, so native and wasm agree bit for
// bit. A row holding NaN or inf cannot be quantised: it gets the reference's
// float sums instead (NaN in, NaN out, as in float32).
constexpr std::size_t int8_block = 512;

// qa of one row; false if the row is not finite.
bool quantize_row_i16(const float* a, std::size_t K, std::int16_t* qa, float& s_a) {
    float amax = 0.0f;
    for (std::size_t k = 0; k < K; ++k) {
        if (!std::isfinite(a[k])) return false;
        amax = std::fmax(amax, std::fabs(a[k]));
    }
    s_a = amax / 32767.0f;
    for (std::size_t k = 0; k < K; ++k) {
        long v = s_a > 0.0f ? std::lround(a[k] / s_a) : 0;
        qa[k] = std::int16_t(std::clamp(v, -32767L, 32767L));
    }
    return true;
}

// Σ_k qa[k] · q[k] over [k0, k1) for four rows (exact int32). SIMD128
// operations per 16 int8 weights of a row (docs/KERNELS.md): 1 load, 2
// sign-extensions to int16 (i16x8.extend_low/high_i8x16_s: weights k..k+7
// and k+8..k+15, the input's own order), 2 i32x4.dot_i16x8_s, 2 adds: 7, plus
// the two int16 input vectors loaded once for the four rows: 7.5 in all,
// against 16 for float32.
inline void int8_block4(const std::int16_t* qa, const std::int8_t* const q[4], std::size_t k0, std::size_t k1,
                        std::int32_t out[4]) {
    std::size_t k = k0;
    for (int r = 0; r < 4; ++r) out[r] = 0;
#if defined(__wasm_simd128__)
    v128_t s[4];
    for (auto& v : s) v = wasm_i32x4_splat(0);
    for (; k + 16 <= k1; k += 16) {
        const v128_t xl = wasm_v128_load(qa + k), xh = wasm_v128_load(qa + k + 8);
        for (int r = 0; r < 4; ++r) {
            const v128_t w = wasm_v128_load(q[r] + k);
            const v128_t lo = wasm_i16x8_extend_low_i8x16(w), hi = wasm_i16x8_extend_high_i8x16(w);
            s[r] = wasm_i32x4_add(s[r], wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo, xl), wasm_i32x4_dot_i16x8(hi, xh)));
        }
    }
    for (int r = 0; r < 4; ++r)
        out[r] = wasm_i32x4_extract_lane(s[r], 0) + wasm_i32x4_extract_lane(s[r], 1) +
                 wasm_i32x4_extract_lane(s[r], 2) + wasm_i32x4_extract_lane(s[r], 3);
#endif
    for (; k < k1; ++k)
        for (int r = 0; r < 4; ++r) out[r] += std::int32_t(qa[k]) * std::int32_t(q[r][k]);
}

// c[j] = act(s_a · scale[j] · Σ_blocks float(qa · q[j]) + bias[j]) for j in
// [j_begin, j_end), four weight rows at a time (j_begin a multiple of 4).
void int8_rows(const std::int16_t* qa, float s_a, const CompactWeight& w, const float* bias, float* c,
               std::size_t j_begin, std::size_t j_end, Activation act) {
    const std::size_t K = w.cols;
    for (std::size_t j = j_begin; j < j_end; j += 4) {
        const std::size_t n = std::min<std::size_t>(4, j_end - j);
        const std::int8_t* q[4];
        for (std::size_t r = 0; r < 4; ++r) q[r] = w.q.data() + (j + std::min(r, n - 1)) * K;
        float acc[4] = {0, 0, 0, 0};
        for (std::size_t k0 = 0; k0 < K; k0 += int8_block) {
            std::int32_t part[4];
            int8_block4(qa, q, k0, std::min(K, k0 + int8_block), part);
            for (int r = 0; r < 4; ++r) acc[r] += float(part[r]);
        }
        for (std::size_t r = 0; r < n; ++r) {
            const float y = acc[r] * w.scale[j + r] * s_a;
            c[j + r] = bias ? y + bias[j + r] : y;
        }
    }
    act.apply(c + j_begin, j_end - j_begin);
}

void gemv_int8(const float* A, const CompactWeight& w, const float* bias, float* C, std::size_t M, Activation act) {
    const std::size_t N = w.rows, K = w.cols;
    thread_local std::vector<std::int16_t> qa_buffer;
    std::int16_t* qa = scratch(qa_buffer, K);
    for (std::size_t i = 0; i < M; ++i) {
        float* c = C + i * N;
        float s_a;
        if (!quantize_row_i16(A + i * K, K, qa, s_a)) {
            // The reference's sums, decoding one weight at a time.
            for (std::size_t j = 0; j < N; ++j) {
                float acc = 0.0f;
                for (std::size_t k = 0; k < K; ++k) acc += A[i * K + k] * (float(w.q[j * K + k]) * w.scale[j]);
                c[j] = bias ? acc + bias[j] : acc;
            }
            act.apply(c, N);
            continue;
        }
        parallel_for(N, N * K, 4, [&](std::size_t j0, std::size_t j1) { int8_rows(qa, s_a, w, bias, c, j0, j1, act); });
    }
}

}  // namespace

void matmul_nt_blocked(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N,
                       std::size_t K, Activation act) {
    const auto pack = [&](std::size_t j0, std::size_t nr, std::size_t k0, std::size_t kc, float* panel) {
        for (std::size_t k = 0; k < kc; ++k)
            for (std::size_t j = 0; j < NR; ++j) panel[k * NR + j] = j < nr ? B[(j0 + j) * K + k0 + k] : 0.0f;
        return static_cast<const float*>(panel);
    };
    blocked(A, pack, bias, C, M, N, K, act);
}

namespace {

// One input row against the pre-packed panel P (K, 8) of a float32 weight
// (packed.hpp): out[j] = Σ_k a[k] · P[k][j]. The weights are one sequential
// stream and each pass makes eight outputs, with no horizontal sums: per 16
// weights (two k) 2 input splats, 4 weight loads, 4 multiplies, 4 adds — 14
// SIMD128 operations where the row-wise dot product needs 16. Four k in flight
// (eight accumulators) keep the adders busy.
inline void panel_dot(const float* a, const float* P, std::size_t K, float* out) {
    std::size_t k = 0;
#if defined(__wasm_simd128__)
    v128_t s[8];
    for (auto& v : s) v = wasm_f32x4_splat(0.0f);
    for (; k + 4 <= K; k += 4)
        for (std::size_t u = 0; u < 4; ++u) {
            const v128_t x = wasm_v128_load32_splat(a + k + u);
            s[2 * u] = wasm_f32x4_add(s[2 * u], wasm_f32x4_mul(x, wasm_v128_load(P + (k + u) * NR)));
            s[2 * u + 1] = wasm_f32x4_add(s[2 * u + 1], wasm_f32x4_mul(x, wasm_v128_load(P + (k + u) * NR + 4)));
        }
    v128_t c0 = wasm_f32x4_add(wasm_f32x4_add(s[0], s[2]), wasm_f32x4_add(s[4], s[6]));
    v128_t c1 = wasm_f32x4_add(wasm_f32x4_add(s[1], s[3]), wasm_f32x4_add(s[5], s[7]));
    for (; k < K; ++k) {
        const v128_t x = wasm_f32x4_splat(a[k]);
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(x, wasm_v128_load(P + k * NR)));
        c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(x, wasm_v128_load(P + k * NR + 4)));
    }
    wasm_v128_store(out, c0);
    wasm_v128_store(out + 4, c1);
#else
    float s[4][NR] = {};
    for (; k + 4 <= K; k += 4)
        for (std::size_t u = 0; u < 4; ++u)
            for (std::size_t j = 0; j < NR; ++j) s[u][j] += a[k + u] * P[(k + u) * NR + j];
    for (std::size_t j = 0; j < NR; ++j) out[j] = (s[0][j] + s[1][j]) + (s[2][j] + s[3][j]);
    for (; k < K; ++k)
        for (std::size_t j = 0; j < NR; ++j) out[j] += a[k] * P[k * NR + j];
#endif
}

// panel_dot over two adjacent full panels P0, P1 (16 outputs) at once: each
// input value splatted once for both, so per 16 weights 1 splat, 4 loads, 4
// multiplies, 4 adds — 13 operations; two k in flight (eight accumulators).
// out[j] = (Σ over even k + Σ over odd k) + the last odd k; natively the same order.
inline void panel_dot2(const float* a, const float* P0, const float* P1, std::size_t K, float* out) {
    std::size_t k = 0;
#if defined(__wasm_simd128__)
    v128_t s[8];
    for (auto& v : s) v = wasm_f32x4_splat(0.0f);
    for (; k + 2 <= K; k += 2)
        for (std::size_t u = 0; u < 2; ++u) {
            const v128_t x = wasm_v128_load32_splat(a + k + u);
            const float* p0 = P0 + (k + u) * NR;
            const float* p1 = P1 + (k + u) * NR;
            s[4 * u] = wasm_f32x4_add(s[4 * u], wasm_f32x4_mul(x, wasm_v128_load(p0)));
            s[4 * u + 1] = wasm_f32x4_add(s[4 * u + 1], wasm_f32x4_mul(x, wasm_v128_load(p0 + 4)));
            s[4 * u + 2] = wasm_f32x4_add(s[4 * u + 2], wasm_f32x4_mul(x, wasm_v128_load(p1)));
            s[4 * u + 3] = wasm_f32x4_add(s[4 * u + 3], wasm_f32x4_mul(x, wasm_v128_load(p1 + 4)));
        }
    v128_t c[4];
    for (std::size_t q = 0; q < 4; ++q) c[q] = wasm_f32x4_add(s[q], s[4 + q]);
    if (k < K) {
        const v128_t x = wasm_f32x4_splat(a[k]);
        c[0] = wasm_f32x4_add(c[0], wasm_f32x4_mul(x, wasm_v128_load(P0 + k * NR)));
        c[1] = wasm_f32x4_add(c[1], wasm_f32x4_mul(x, wasm_v128_load(P0 + k * NR + 4)));
        c[2] = wasm_f32x4_add(c[2], wasm_f32x4_mul(x, wasm_v128_load(P1 + k * NR)));
        c[3] = wasm_f32x4_add(c[3], wasm_f32x4_mul(x, wasm_v128_load(P1 + k * NR + 4)));
    }
    for (std::size_t q = 0; q < 4; ++q) wasm_v128_store(out + 4 * q, c[q]);
#else
    float s[2][2 * NR] = {};
    for (; k + 2 <= K; k += 2)
        for (std::size_t u = 0; u < 2; ++u)
            for (std::size_t j = 0; j < NR; ++j) {
                s[u][j] += a[k + u] * P0[(k + u) * NR + j];
                s[u][NR + j] += a[k + u] * P1[(k + u) * NR + j];
            }
    for (std::size_t j = 0; j < 2 * NR; ++j) out[j] = s[0][j] + s[1][j];
    if (k < K)
        for (std::size_t j = 0; j < NR; ++j) {
            out[j] += a[k] * P0[k * NR + j];
            out[NR + j] += a[k] * P1[k * NR + j];
        }
#endif
}

// panel_dot over four adjacent full panels (32 outputs, four weight streams) at
// once: one k per step, eight accumulators; per 16 weights 0.5 splat, 4
// loads, 4 multiplies, 4 adds. out[j] = Σ_k in order (the reference loop's
// sums, bit for bit); natively the same. Measured 1.11-1.17x faster than two
// panels per pass on the 100 MB MLP at batch 1 (docs/KERNELS.md).
inline void panel_dot4(const float* a, const float* P, std::size_t K, float* out) {
    const std::size_t stride = K * NR;  // from one panel to the next
#if defined(__wasm_simd128__)
    v128_t s[8];
    for (auto& v : s) v = wasm_f32x4_splat(0.0f);
    for (std::size_t k = 0; k < K; ++k) {
        const v128_t x = wasm_v128_load32_splat(a + k);
        for (std::size_t q = 0; q < 4; ++q) {
            const float* p = P + q * stride + k * NR;
            s[2 * q] = wasm_f32x4_add(s[2 * q], wasm_f32x4_mul(x, wasm_v128_load(p)));
            s[2 * q + 1] = wasm_f32x4_add(s[2 * q + 1], wasm_f32x4_mul(x, wasm_v128_load(p + 4)));
        }
    }
    for (std::size_t q = 0; q < 8; ++q) wasm_v128_store(out + 4 * q, s[q]);
#else
    // Natively panel by panel (panel_dot: four partial sums, which the compiler vectorises);
    // the wasm path's single in-order sum per output ran 2x slower here. Natively the f32
    // GEMV's sums are therefore ordered like panel_dot's, not like the wasm build's.
    for (std::size_t q = 0; q < 4; ++q) panel_dot(a, P + q * stride, K, out + q * NR);
#endif
}

// C = act(A · Wᵀ + bias) for a few rows of A, W pre-packed: panel by panel,
// each panel read once for all the rows; the last, narrower block (N % 8
// rows, packed (K, nr)) by a plain loop.
void gemv_packed(const float* A, const float* W, const float* bias, float* C, std::size_t M, std::size_t N,
                 std::size_t K, Activation act) {
    parallel_for((N + NR - 1) / NR, M * N * K, 1, [&](std::size_t p0, std::size_t p1) {
        const std::size_t j_begin = p0 * NR, j_end = std::min(N, p1 * NR);
        std::size_t j0 = j_begin;
        for (; j0 + 4 * NR <= j_end; j0 += 4 * NR)  // four full panels per pass
            for (std::size_t i = 0; i < M; ++i) {
                alignas(16) float out[4 * NR];
                panel_dot4(A + i * K, W + j0 * K, K, out);
                float* c = C + i * N + j0;
                for (std::size_t j = 0; j < 4 * NR; ++j) c[j] = bias ? out[j] + bias[j0 + j] : out[j];
            }
        for (; j0 + 2 * NR <= j_end; j0 += 2 * NR)  // two full panels per pass
            for (std::size_t i = 0; i < M; ++i) {
                alignas(16) float out[2 * NR];
                panel_dot2(A + i * K, W + j0 * K, W + (j0 + NR) * K, K, out);
                float* c = C + i * N + j0;
                for (std::size_t j = 0; j < 2 * NR; ++j) c[j] = bias ? out[j] + bias[j0 + j] : out[j];
            }
        for (; j0 < j_end; j0 += NR) {
            const std::size_t nr = std::min(NR, N - j0);
            const float* P = W + j0 * K;
            for (std::size_t i = 0; i < M; ++i) {
                const float* a = A + i * K;
                float* c = C + i * N + j0;
                alignas(16) float out[NR];
                if (nr == NR) {
                    panel_dot(a, P, K, out);
                } else {
                    for (std::size_t j = 0; j < nr; ++j) out[j] = 0.0f;
                    for (std::size_t k = 0; k < K; ++k)
                        for (std::size_t j = 0; j < nr; ++j) out[j] += a[k] * P[k * nr + j];
                }
                for (std::size_t j = 0; j < nr; ++j) c[j] = bias ? out[j] + bias[j0 + j] : out[j];
            }
        }
        for (std::size_t i = 0; i < M; ++i) act.apply(C + i * N + j_begin, j_end - j_begin);
    });
}

}  // namespace

void matmul_nt_packed(const float* A, const float* W, const float* bias, float* C, std::size_t M, std::size_t N,
                      std::size_t K, Activation act) {
    if (g_kernel == Kernel::reference) {
        // The plain loop, reading the packed layout (packed.hpp) element by element.
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < N; ++j) {
                const std::size_t b = j / NR * NR, nr = std::min(NR, N - b);
                float acc = 0.0f;
                for (std::size_t k = 0; k < K; ++k) acc += A[i * K + k] * W[b * K + k * nr + (j - b)];
                C[i * N + j] = bias ? acc + bias[j] : acc;
                act.apply(C + i * N + j, 1);
            }
    } else if (M < gemv_max_rows) {
        gemv_packed(A, W, bias, C, M, N, K, act);
    } else {
        // Full panels are read where they are; only the last, narrower block is
        // copied (zero-padded) into the stack panel.
        const auto pack = [&](std::size_t j0, std::size_t nr, std::size_t k0, std::size_t kc, float* panel) {
            if (nr == NR) return W + j0 * K + k0 * NR;
            for (std::size_t k = 0; k < kc; ++k)
                for (std::size_t j = 0; j < NR; ++j) panel[k * NR + j] = j < nr ? W[j0 * K + (k0 + k) * nr + j] : 0.0f;
            return static_cast<const float*>(panel);
        };
        blocked(A, pack, bias, C, M, N, K, act);
    }
}

void matmul_nt_compact_ref(const float* A, const CompactWeight& W, const float* bias, float* C, std::size_t M,
                           Activation act) {
    const Tensor B = expand_weight(W);
    matmul_nt_ref(A, B.data(), bias, C, M, W.rows, W.cols, act);
}

void matmul_nt_compact(const float* A, const CompactWeight& W, const float* bias, float* C, std::size_t M,
                       Activation act) {
    const std::size_t N = W.rows, K = W.cols;
    if (g_kernel == Kernel::reference)
        matmul_nt_compact_ref(A, W, bias, C, M, act);
    else if (M >= gemv_max_rows)
        blocked(A, CompactPack{W}, bias, C, M, N, K, act);
    else if (W.dtype == DType::f16)
        gemv_f16(A, W, bias, C, M, act);
    else if (W.dtype == DType::bf16)
        gemv<BF16Row>(A, W.half.data(), bias, C, M, N, K, act);
    else
        gemv_int8(A, W, bias, C, M, act);
}

std::uint64_t matmul_scratch_bytes(std::size_t M, std::size_t K, DType dtype) {
    if (M == 0 || M >= gemv_max_rows) return 0;  // the GEMM's panel and accumulators are on the stack
    switch (dtype) {
        case DType::f32:
        case DType::bf16: return 0;
        case DType::f16: return std::uint64_t(K) * sizeof(float);          // gemv_f16: scaled
        case DType::int8: return std::uint64_t(K) * sizeof(std::int16_t);  // gemv_int8: qa
    }
    return 0;
}

void set_kernel(Kernel kernel) { g_kernel = kernel; }
Kernel current_kernel() { return g_kernel; }

void matmul_nt(const float* A, const float* B, const float* bias, float* C, std::size_t M, std::size_t N, std::size_t K,
               Activation act) {
    if (g_kernel == Kernel::reference)
        matmul_nt_ref(A, B, bias, C, M, N, K, act);
    else if (M < gemv_max_rows)
        matmul_nt_gemv(A, B, bias, C, M, N, K, act);
    else
        matmul_nt_blocked(A, B, bias, C, M, N, K, act);
}

}  // namespace modelkeep
