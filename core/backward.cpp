#include "backward.hpp"

#include <cmath>

#include "gemm.hpp"
#include "norm.hpp"

namespace modelkeep {

namespace {

// dst (cols, rows) = srcᵀ, src (rows, cols) row-major.
void transpose_into(const float* src, std::size_t rows, std::size_t cols, float* dst) {
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

// scratch holding at least n floats (only grown, so a warm call allocates
// nothing; to n exactly: resize alone may double the capacity).
float* at_least(std::vector<float>& scratch, std::size_t n) {
    if (scratch.size() < n) {
        scratch.reserve(n);
        scratch.resize(n);
    }
    return scratch.data();
}

float sigmoid1(float v) {
    if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
    const float e = std::exp(v);
    return e / (1.0f + e);
}

}  // namespace

// ---- Linear -------------------------------------------------------------------------

void linear_grad_weight_ref(const float* x, const float* g, float* gw, std::size_t rows, std::size_t out,
                            std::size_t in) {
    for (std::size_t o = 0; o < out; ++o)
        for (std::size_t k = 0; k < in; ++k) {
            float s = 0.0f;
            for (std::size_t r = 0; r < rows; ++r) s += g[r * out + o] * x[r * in + k];
            gw[o * in + k] = s;
        }
}

void linear_grad_input_ref(const float* g, const float* w, float* gx, std::size_t rows, std::size_t out,
                           std::size_t in) {
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t k = 0; k < in; ++k) {
            float s = 0.0f;
            for (std::size_t o = 0; o < out; ++o) s += g[r * out + o] * w[o * in + k];
            gx[r * in + k] = s;
        }
}

void linear_grad_bias(const float* g, float* gb, std::size_t rows, std::size_t out) {
    for (std::size_t o = 0; o < out; ++o) gb[o] = 0.0f;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t o = 0; o < out; ++o) gb[o] += g[r * out + o];
}

void linear_grad_weight(const float* x, const float* g, float* gw, std::size_t rows, std::size_t out, std::size_t in,
                        std::vector<float>& scratch) {
    if (rows == 0) {
        for (std::size_t i = 0; i < out * in; ++i) gw[i] = 0.0f;
        return;
    }
    float* gt = at_least(scratch, (out + in) * rows);
    float* xt = gt + out * rows;
    transpose_into(g, rows, out, gt);  // (out, rows)
    transpose_into(x, rows, in, xt);   // (in, rows)
    // gw (out, in) = gt (out, rows) · xtᵀ, xt held (in, rows): matmul_nt's B layout.
    matmul_nt(gt, xt, nullptr, gw, out, in, rows);
}

void linear_grad_input(const float* g, const float* w, float* gx, std::size_t rows, std::size_t out, std::size_t in,
                       std::vector<float>& scratch) {
    float* wt = at_least(scratch, in * out);
    transpose_into(w, out, in, wt);  // (in, out)
    // gx (rows, in) = g (rows, out) · wtᵀ, wt held (in, out).
    matmul_nt(g, wt, nullptr, gx, rows, in, out);
}

// ---- element-wise activations ---------------------------------------------------------

void activation_backward(const Activation& act, const float* x, const float* y, const float* g, float* gx,
                         std::size_t n) {
    using K = Activation::Kind;
    switch (act.kind) {
        case K::none:
            for (std::size_t i = 0; i < n; ++i) gx[i] = g[i];
            break;
        case K::relu:  // threshold_backward: 0 where x <= 0
            for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > 0.0f ? g[i] : 0.0f;
            break;
        case K::leaky_relu: {
            const float s = act.slope;
            for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > 0.0f ? g[i] : g[i] * s;
            break;
        }
        case K::sigmoid:
            for (std::size_t i = 0; i < n; ++i) gx[i] = g[i] * (1.0f - y[i]) * y[i];
            break;
        case K::tanh:
            for (std::size_t i = 0; i < n; ++i) gx[i] = g[i] * (1.0f - y[i] * y[i]);
            break;
        case K::gelu: {
            // Φ(x) + x·φ(x)
            const float r = 0.7071067811865476f;     // 1/√2
            const float beta = 0.3989422804014327f;  // 1/√(2π)
            for (std::size_t i = 0; i < n; ++i) {
                const float v = x[i];
                const float cdf = 0.5f * (1.0f + std::erf(v * r));
                const float pdf = std::exp(-0.5f * v * v) * beta;
                gx[i] = g[i] * (cdf + v * pdf);
            }
            break;
        }
        case K::gelu_tanh: {
            const float beta = 0.7978845608028654f;  // √(2/π)
            const float kappa = 0.044715f;
            for (std::size_t i = 0; i < n; ++i) {
                const float v = x[i];
                const float inner = beta * (v + kappa * v * v * v);
                const float t = std::tanh(inner);
                const float left = 0.5f * v, right = 1.0f + t;
                const float d_left = 0.5f * right;
                const float d_right = left * (1.0f - t * t) * beta * (1.0f + 3.0f * kappa * v * v);
                gx[i] = g[i] * (d_left + d_right);
            }
            break;
        }
        case K::silu:
            for (std::size_t i = 0; i < n; ++i) {
                const float s = sigmoid1(x[i]);
                gx[i] = g[i] * s * (1.0f + x[i] * (1.0f - s));
            }
            break;
    }
}

void softmax_backward(const float* y, const float* g, float* gx, std::size_t rows, std::size_t n, bool log_out) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float* yr = y + r * n;
        const float* gr = g + r * n;
        float* o = gx + r * n;
        if (log_out) {
            float sum = 0.0f;
            for (std::size_t j = 0; j < n; ++j) sum += gr[j];
            for (std::size_t j = 0; j < n; ++j) o[j] = gr[j] - std::exp(yr[j]) * sum;
        } else {
            float dot = 0.0f;
            for (std::size_t j = 0; j < n; ++j) dot += gr[j] * yr[j];
            for (std::size_t j = 0; j < n; ++j) o[j] = yr[j] * (gr[j] - dot);
        }
    }
}

// ---- Dropout ----------------------------------------------------------------------------

namespace {
constexpr std::uint64_t pcg_mult = 6364136223846793005ULL;
constexpr std::uint64_t pcg_inc = 1442695040888963407ULL;
}  // namespace

void DropoutRng::seed(std::uint64_t seed) {
    state_ = 0;
    (void)next_u32();
    state_ += seed;
    (void)next_u32();
}

std::uint32_t DropoutRng::next_u32() {
    const std::uint64_t old = state_;
    state_ = old * pcg_mult + pcg_inc;
    const std::uint32_t xorshifted = std::uint32_t(((old >> 18u) ^ old) >> 27u);
    const std::uint32_t rot = std::uint32_t(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

void dropout_forward(const float* x, float* y, float* mask, std::size_t n, float p, DropoutRng& rng) {
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (std::size_t i = 0; i < n; ++i) {
        // Kept with probability 1 − p: a uniform u in [0, 1) at or above p.
        mask[i] = rng.next_unit() >= p ? scale : 0.0f;
        y[i] = x[i] * mask[i];
    }
}

void dropout_backward(const float* g, const float* mask, float* gx, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) gx[i] = g[i] * mask[i];
}

// ---- LayerNorm ----------------------------------------------------------------------------

void layer_norm_train(const float* x, std::size_t rows, std::size_t n, float eps, const float* weight,
                      const float* bias, float* y, float* xhat, float* rstd) {
    if (n == 0) return;
    for (std::size_t r = 0; r < rows; ++r) {
        const float* in = x + r * n;
        float mean = 0.0f, inv = 0.0f;
        layer_norm_row_stats(in, n, eps, mean, inv);  // norm.cpp's: the same outputs as layer_norm
        rstd[r] = inv;
        for (std::size_t j = 0; j < n; ++j) {
            const float h = (in[j] - mean) * inv;
            xhat[r * n + j] = h;
            float v = h;
            if (weight) v *= weight[j];
            if (bias) v += bias[j];
            y[r * n + j] = v;
        }
    }
}

void layer_norm_backward(const float* g, const float* xhat, const float* rstd, const float* weight, std::size_t rows,
                         std::size_t n, float* gx, float* gw, float* gb) {
    if (gw)
        for (std::size_t j = 0; j < n; ++j) gw[j] = 0.0f;
    if (gb)
        for (std::size_t j = 0; j < n; ++j) gb[j] = 0.0f;
    for (std::size_t r = 0; r < rows; ++r) {
        const float* gr = g + r * n;
        const float* h = xhat + r * n;
        if (gw)
            for (std::size_t j = 0; j < n; ++j) gw[j] += gr[j] * h[j];
        if (gb)
            for (std::size_t j = 0; j < n; ++j) gb[j] += gr[j];
        if (!gx) continue;
        // gx = 1/σ · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂)), ĝ = g · weight.
        double s1 = 0.0, s2 = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
            const double gh = double(gr[j]) * (weight ? weight[j] : 1.0f);
            s1 += gh;
            s2 += gh * h[j];
        }
        const float m1 = float(s1 / double(n)), m2 = float(s2 / double(n));
        float* o = gx + r * n;
        for (std::size_t j = 0; j < n; ++j) {
            const float gh = gr[j] * (weight ? weight[j] : 1.0f);
            o[j] = rstd[r] * (gh - m1 - h[j] * m2);
        }
    }
}

// ---- BatchNorm1d ----------------------------------------------------------------------------

void batch_norm_train(const float* x, std::size_t N, std::size_t C, std::size_t L, float eps, const float* weight,
                      const float* bias, float* y, float* xhat, float* rstd, float* mean, float* var_unbiased) {
    const std::size_t count = N * L;
    for (std::size_t c = 0; c < C; ++c) {
        // As PyTorch's CPU kernel: mean and variance accumulated in double.
        double s = 0.0;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) s += x[(i * C + c) * L + l];
        const double m = count ? s / double(count) : 0.0;
        double ss = 0.0;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const double d = x[(i * C + c) * L + l] - m;
                ss += d * d;
            }
        const double var = count ? ss / double(count) : 0.0;
        const float inv = float(1.0 / std::sqrt(var + double(eps)));
        rstd[c] = inv;
        mean[c] = float(m);
        var_unbiased[c] = count > 1 ? float(ss / double(count - 1)) : 0.0f;
        // y = x·alpha + beta, PyTorch's form of (x − mean)/σ·w + b.
        const float alpha = inv * (weight ? weight[c] : 1.0f);
        const float beta = (bias ? bias[c] : 0.0f) - float(m) * alpha;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t at = (i * C + c) * L + l;
                xhat[at] = (x[at] - float(m)) * inv;
                y[at] = x[at] * alpha + beta;
            }
    }
}

void batch_norm_eval(const float* x, std::size_t N, std::size_t C, std::size_t L, float eps, const float* weight,
                     const float* bias, const float* running_mean, const float* running_var, float* y, float* xhat,
                     float* rstd) {
    for (std::size_t c = 0; c < C; ++c) {
        // norm.cpp's batch_norm1d with running stats.
        const float mean = running_mean[c];
        const float inv = 1.0f / std::sqrt(running_var[c] + eps);
        const float alpha = inv * (weight ? weight[c] : 1.0f);
        const float beta = (bias ? bias[c] : 0.0f) - mean * alpha;
        rstd[c] = inv;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t at = (i * C + c) * L + l;
                xhat[at] = (x[at] - mean) * inv;
                y[at] = x[at] * alpha + beta;
            }
    }
}

void batch_norm_backward(const float* g, const float* xhat, const float* rstd, const float* weight, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats, float* gx, float* gw, float* gb) {
    const std::size_t count = N * L;
    for (std::size_t c = 0; c < C; ++c) {
        const float w = weight ? weight[c] : 1.0f;
        double sg = 0.0, sgh = 0.0;  // Σ g, Σ g·x̂
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t at = (i * C + c) * L + l;
                sg += g[at];
                sgh += double(g[at]) * xhat[at];
            }
        if (gw) gw[c] = float(sgh);
        if (gb) gb[c] = float(sg);
        if (!gx) continue;
        const float k = rstd[c] * w;
        // Batch stats: gx = w/σ · (g − mean(g) − x̂ · mean(g·x̂)); running stats: gx = w/σ · g.
        const float m1 = batch_stats && count ? float(sg / double(count)) : 0.0f;
        const float m2 = batch_stats && count ? float(sgh / double(count)) : 0.0f;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t at = (i * C + c) * L + l;
                gx[at] = k * (g[at] - m1 - xhat[at] * m2);
            }
    }
}

void batch_norm_update_stats(const float* mean, const float* var_unbiased, std::size_t C, float momentum,
                             float* running_mean, float* running_var, float* num_batches_tracked) {
    double f = double(momentum);
    if (num_batches_tracked) {
        *num_batches_tracked += 1.0f;
        if (std::isnan(momentum)) f = 1.0 / double(*num_batches_tracked);
    }
    if (std::isnan(f)) f = 0.0;  // momentum=None without num_batches_tracked: PyTorch uses 0.0
    // PyTorch's CPU kernel updates in double, then stores float.
    for (std::size_t c = 0; c < C; ++c) {
        running_mean[c] = float(f * double(mean[c]) + (1.0 - f) * double(running_mean[c]));
        running_var[c] = float(f * double(var_unbiased[c]) + (1.0 - f) * double(running_var[c]));
    }
}

}  // namespace modelkeep
