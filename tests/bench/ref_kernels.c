// ref_kernels.c — the two limits limits_bench.mjs measures modelkeep against, in the same page:
// a plain register-blocked SIMD128 sgemm (a 4×8 tile of f32x4 accumulators, multiply then add,
// no FMA: WebAssembly SIMD128 has none) on a B already packed into 8-column panels, and a
// streaming read (the sum of a large array, four accumulators). Built with emcc -O3 -msimd128
// as a standalone module with no imports; the page manages its memory. Not part of the package.
#include <wasm_simd128.h>

// C (M, N) = A (M, K) · B, B given as N/8 panels of K rows of 8 floats (panel j holds columns
// 8j..8j+7, row-major within the panel). M a multiple of 4, N of 8. Blocked as a plain GEMM is:
// K in blocks of 256 and N in blocks of 256, so that B's block (256 KiB) stays in L2 and is read
// from memory once, four rows of A's block (4 KiB) and one panel's block (8 KiB) in L1, while a
// 4×8 tile of C accumulates in registers (loaded back from C after the first K block).
void sgemm_4x8(const float* A, const float* Bp, float* C, int M, int N, int K) {
    for (int k0 = 0; k0 < K; k0 += 256) {
        const int k1 = k0 + 256 < K ? k0 + 256 : K;
        for (int j0 = 0; j0 < N; j0 += 256) {  // B's block: 256 × 256 floats (256 KiB, L2)
            const int j1 = j0 + 256 < N ? j0 + 256 : N;
            for (int i = 0; i < M; i += 4)
            for (int j = j0; j < j1; j += 8) {
                const float* panel = Bp + (long)j * K;
                const float* a0 = A + (long)i * K;
                const float* a1 = a0 + K;
                const float* a2 = a1 + K;
                const float* a3 = a2 + K;
                float* c = C + (long)i * N + j;
                v128_t c00, c01, c10, c11, c20, c21, c30, c31;
                if (k0 == 0) {
                    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0);
                } else {
                    c00 = wasm_v128_load(c), c01 = wasm_v128_load(c + 4);
                    c10 = wasm_v128_load(c + N), c11 = wasm_v128_load(c + N + 4);
                    c20 = wasm_v128_load(c + 2 * N), c21 = wasm_v128_load(c + 2 * N + 4);
                    c30 = wasm_v128_load(c + 3 * N), c31 = wasm_v128_load(c + 3 * N + 4);
                }
                for (int k = k0; k < k1; ++k) {
                    const v128_t b0 = wasm_v128_load(panel + 8 * k), b1 = wasm_v128_load(panel + 8 * k + 4);
                    const v128_t x0 = wasm_f32x4_splat(a0[k]), x1 = wasm_f32x4_splat(a1[k]);
                    const v128_t x2 = wasm_f32x4_splat(a2[k]), x3 = wasm_f32x4_splat(a3[k]);
                    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(x0, b0));
                    c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(x0, b1));
                    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(x1, b0));
                    c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(x1, b1));
                    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(x2, b0));
                    c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(x2, b1));
                    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(x3, b0));
                    c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(x3, b1));
                }
                wasm_v128_store(c, c00);
                wasm_v128_store(c + 4, c01);
                wasm_v128_store(c + N, c10);
                wasm_v128_store(c + N + 4, c11);
                wasm_v128_store(c + 2 * N, c20);
                wasm_v128_store(c + 2 * N + 4, c21);
                wasm_v128_store(c + 3 * N, c30);
                wasm_v128_store(c + 3 * N + 4, c31);
            }
        }
    }
}

// The sum of p[0..n) (n a multiple of 16), streaming: the memory-bandwidth limit of a batch-1
// forward, which must read every weight once.
float stream_sum(const float* p, int n) {
    v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a;
    for (int i = 0; i < n; i += 16) {
        a = wasm_f32x4_add(a, wasm_v128_load(p + i));
        b = wasm_f32x4_add(b, wasm_v128_load(p + i + 4));
        c = wasm_f32x4_add(c, wasm_v128_load(p + i + 8));
        d = wasm_f32x4_add(d, wasm_v128_load(p + i + 12));
    }
    const v128_t s = wasm_f32x4_add(wasm_f32x4_add(a, b), wasm_f32x4_add(c, d));
    return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
           wasm_f32x4_extract_lane(s, 3);
}
