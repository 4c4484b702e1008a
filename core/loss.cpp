#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace modelkeep {

namespace {

// Shapes as xtensor holds them: a small vector stored inline up to rank 4, so the checks
// and the warm path allocate nothing.
using Dims = Tensor::shape_type;

Shape to_shape(const Dims& d) { return Shape(d.begin(), d.end()); }

bool same_dims(const Dims& a, const Dims& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Must allocate only when the shape changes: a warm call reuses the caller's tensors.
void ensure_shape(Tensor& t, const Dims& shape) {
    if (same_dims(t.shape(), shape)) return;
    t.resize(shape);
    std::fill(t.begin(), t.end(), 0.0f);
}

Status check_same_shape(const Tensor& input, const Tensor& target, const char* loss) {
    if (!same_dims(input.shape(), target.shape()))
        return error(Code::shape_mismatch, std::string(loss) + ": target is " +
                                               shape_to_string(to_shape(target.shape())) + " but input is " +
                                               shape_to_string(to_shape(input.shape())) + " (they must be the same)");
    return Status::success();
}

// Accumulates the terms of a reduced loss: in double, rounded once (PyTorch: a float32 cascade).
struct Reducer {
    Reduction reduction;
    float* out;  // the none loss, else nullptr
    double sum = 0.0;
    void put(std::size_t i, float term) {
        if (reduction == Reduction::none)
            out[i] = term;
        else
            sum += double(term);
    }
    // PyTorch's mean is the float32 sum divided by the count, in float32.
    float result(std::size_t count) const {
        const float s = float(sum);
        return reduction == Reduction::mean ? s / float(count) : s;
    }
};

// The loss tensor for `reduction` over element shape `shape`; a Reducer writing into it.
Reducer start_loss(Reduction reduction, const Dims& shape, Tensor& loss) {
    ensure_shape(loss, reduction == Reduction::none ? shape : Dims{});
    return Reducer{reduction, reduction == Reduction::none ? loss.data() : nullptr};
}

void finish_loss(const Reducer& r, std::size_t count, Tensor& loss) {
    if (r.reduction != Reduction::none) loss.data()[0] = r.result(count);
}

// Where element i of `shape` reads a tensor broadcast to it (numpy rules, trailing dims).
struct Broadcast {
    std::size_t rank = 0;
    std::size_t dims[max_rank] = {};
    std::size_t strides[max_rank] = {};  // 0 along a broadcast dim
    std::size_t at(std::size_t i) const {
        std::size_t off = 0;
        for (std::size_t d = rank; d-- > 0;) {
            off += (i % dims[d]) * strides[d];
            i /= dims[d];
        }
        return off;
    }
};

Status make_broadcast(const Tensor& small, const Dims& shape, const char* loss, const char* what, Broadcast& out) {
    const Dims& s = small.shape();
    bool ok = s.size() <= shape.size();
    out.rank = shape.size();
    std::size_t stride = 1;
    for (std::size_t j = 0; ok && j < shape.size(); ++j) {
        const std::size_t d = shape.size() - 1 - j;
        out.dims[d] = shape[d];
        if (j >= s.size()) {
            out.strides[d] = 0;
            continue;
        }
        const std::size_t sd = s[s.size() - 1 - j];
        if (sd != 1 && sd != shape[d]) ok = false;
        out.strides[d] = sd == 1 ? 0 : stride;
        stride *= sd;
    }
    if (!ok)
        return error(Code::shape_mismatch, std::string(loss) + ": " + what + " is " + shape_to_string(to_shape(s)) +
                                               ", which does not broadcast to the input's " +
                                               shape_to_string(to_shape(shape)));
    return Status::success();
}

// The class losses' layout: input (N, C, inner...) or unbatched (C,).
struct ClassLayout {
    std::size_t n = 1, c = 0, inner = 1;
    Dims sample_shape;  // the none loss's shape
    std::size_t samples() const { return n * inner; }
    std::size_t at(std::size_t sample, std::size_t cls) const {
        const std::size_t b = sample / inner, k = sample % inner;
        return (b * c + cls) * inner + k;
    }
};

Status class_layout(const Tensor& input, const char* loss, ClassLayout& out) {
    const Dims& s = input.shape();
    if (s.empty())
        return error(Code::shape_mismatch,
                     std::string(loss) + ": input is a scalar; it must be (C,), (N, C) or (N, C, d1, ...)");
    if (s.size() == 1) {
        out.c = s[0];
    } else {
        out.n = s[0];
        out.c = s[1];
        out.sample_shape.push_back(s[0]);
        for (std::size_t d = 2; d < s.size(); ++d) {
            out.inner *= s[d];
            out.sample_shape.push_back(s[d]);
        }
    }
    return Status::success();
}

Status check_class_weight(const ClassLossOptions& o, const ClassLayout& l, const char* loss) {
    if (o.weight && !same_dims(o.weight->shape(), Dims{l.c}))
        return error(Code::shape_mismatch, std::string(loss) + ": weight is " +
                                               shape_to_string(to_shape(o.weight->shape())) + " but the input has " +
                                               std::to_string(l.c) + " classes: it must be (" + std::to_string(l.c) +
                                               ")");
    return Status::success();
}

Status check_targets(const std::vector<std::int64_t>& target, const ClassLayout& l, std::int64_t ignore_index,
                     const char* loss) {
    if (target.size() != l.samples())
        return error(Code::shape_mismatch, std::string(loss) + ": " + std::to_string(target.size()) +
                                               " targets for an input of " + std::to_string(l.samples()) +
                                               " samples (target shape must be " +
                                               shape_to_string(to_shape(l.sample_shape)) + ")");
    for (std::size_t i = 0; i < target.size(); ++i) {
        const std::int64_t t = target[i];
        if (t != ignore_index && (t < 0 || std::uint64_t(t) >= l.c))
            return error(Code::target_out_of_range, std::string(loss) + ": target " + std::to_string(t) +
                                                        " of sample " + std::to_string(i) + " is out of bounds for " +
                                                        std::to_string(l.c) + " classes");
    }
    return Status::success();
}

// log_softmax over the class dim of x into ls, per sample: (x - max) - log(sum exp(x - max)).
void log_softmax(const float* x, const ClassLayout& l, float* ls) {
    for (std::size_t s = 0; s < l.samples(); ++s) {
        float m = -std::numeric_limits<float>::infinity();
        for (std::size_t j = 0; j < l.c; ++j) m = std::max(m, x[l.at(s, j)]);
        double sum = 0.0;
        for (std::size_t j = 0; j < l.c; ++j) sum += double(std::exp(x[l.at(s, j)] - m));
        const float lse = std::log(float(sum));
        for (std::size_t j = 0; j < l.c; ++j) ls[l.at(s, j)] = (x[l.at(s, j)] - m) - lse;
    }
}

Status check_reduction_option(double value, const char* name, const char* loss, bool allow_zero) {
    if (!(allow_zero ? value >= 0.0 : value > 0.0) || !std::isfinite(value))
        return error(Code::invalid_hyperparameter, std::string(loss) + ": " + name + " is " + std::to_string(value) +
                                                       (allow_zero ? "; it must be >= 0" : "; it must be > 0"));
    return Status::success();
}

// NLL over log-probabilities lp: the loss, and (when g is not null) its gradient with
// respect to lp written into g (zeros elsewhere), scaled by `scale` (label smoothing's 1 - ε).
void nll_core(const float* lp, const std::vector<std::int64_t>& target, const ClassLossOptions& o, const ClassLayout& l,
              float scale, float* none_out, float& reduced, float* g, float& total_weight) {
    const float* w = o.weight ? o.weight->data() : nullptr;
    double acc = 0.0, tw = 0.0;
    for (std::size_t s = 0; s < l.samples(); ++s) {
        const std::int64_t t = target[s];
        if (t == o.ignore_index) {
            if (none_out) none_out[s] = 0.0f;
            continue;
        }
        const float wt = w ? w[t] : 1.0f;
        const float term = -lp[l.at(s, std::size_t(t))] * wt;
        if (none_out) none_out[s] = term;
        acc += double(term);
        tw += double(wt);
    }
    total_weight = float(tw);
    const float sum = float(acc);
    reduced = o.reduction == Reduction::mean ? sum / total_weight : sum;
    if (!g) return;
    // PyTorch: grad = -(mean ? grad_output / total_weight : grad_output); weight[t] * grad.
    const float gr = -(o.reduction == Reduction::mean ? scale / total_weight : scale);
    for (std::size_t s = 0; s < l.samples(); ++s) {
        const std::int64_t t = target[s];
        if (t == o.ignore_index) continue;
        g[l.at(s, std::size_t(t))] = w ? w[t] * gr : gr;
    }
}

}  // namespace

const char* reduction_name(Reduction reduction) {
    switch (reduction) {
#define MODELKEEP_X(name) \
    case Reduction::name: return #name;
        MODELKEEP_REDUCTIONS(MODELKEEP_X)
#undef MODELKEEP_X
    }
    return "unknown";
}

Status parse_reduction(const std::string& name, Reduction& out) {
#define MODELKEEP_X(r)            \
    if (name == #r) {             \
        out = Reduction::r;       \
        return Status::success(); \
    }
    MODELKEEP_REDUCTIONS(MODELKEEP_X)
#undef MODELKEEP_X
    return error(Code::invalid_hyperparameter, "'" + name + "' is not a valid value for reduction (none, mean, sum)");
}

Status mse_loss(const Tensor& input, const Tensor& target, Reduction reduction, Tensor& loss, Tensor& grad) {
    MK_TRY(check_same_shape(input, target, "mse_loss"));
    const Dims shape = input.shape();
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    // mse_backward: norm · (x - y) · grad_output, norm = 2/numel (mean) or 2, a float scalar.
    const float norm = float(reduction == Reduction::mean ? 2.0 / double(n) : 2.0);
    for (std::size_t i = 0; i < n; ++i) {
        const float d = x[i] - y[i];
        r.put(i, d * d);
        g[i] = norm * d;
    }
    finish_loss(r, n, loss);
    return Status::success();
}

Status l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, Tensor& loss, Tensor& grad) {
    MK_TRY(check_same_shape(input, target, "l1_loss"));
    const Dims shape = input.shape();
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    // l1_loss is |x - y| then the reduction; autograd: mean's 1/numel (a float32 division)
    // times sgn(x - y).
    const float go = reduction == Reduction::mean ? 1.0f / float(n) : 1.0f;
    for (std::size_t i = 0; i < n; ++i) {
        const float d = x[i] - y[i];
        r.put(i, std::fabs(d));
        const float sgn = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
        g[i] = go * sgn;
    }
    finish_loss(r, n, loss);
    return Status::success();
}

Status smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta, Tensor& loss,
                      Tensor& grad) {
    MK_TRY(check_reduction_option(beta, "beta", "smooth_l1_loss", true));
    MK_TRY(check_same_shape(input, target, "smooth_l1_loss"));
    const Dims shape = input.shape();
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    const float b = float(beta);
    const float norm = float(reduction == Reduction::mean ? 1.0 / double(n) : 1.0);
    for (std::size_t i = 0; i < n; ++i) {
        const float d = x[i] - y[i];
        const float z = std::fabs(d);
        r.put(i, z < b ? 0.5f * z * z / b : z - 0.5f * b);
        g[i] = d <= -b ? -norm : (d >= b ? norm : norm * d / b);
    }
    finish_loss(r, n, loss);
    return Status::success();
}

Status huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta, Tensor& loss,
                  Tensor& grad) {
    MK_TRY(check_reduction_option(delta, "delta", "huber_loss", false));
    MK_TRY(check_same_shape(input, target, "huber_loss"));
    const Dims shape = input.shape();
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    const float dl = float(delta);
    const float norm = float(reduction == Reduction::mean ? 1.0 / double(n) : 1.0);
    for (std::size_t i = 0; i < n; ++i) {
        const float d = x[i] - y[i];
        const float z = std::fabs(d);
        r.put(i, z < dl ? 0.5f * z * z : dl * (z - 0.5f * dl));
        g[i] = d <= -dl ? -norm * dl : (d >= dl ? norm * dl : norm * d);
    }
    finish_loss(r, n, loss);
    return Status::success();
}

Status nll_loss(const Tensor& input, const std::vector<std::int64_t>& target, const ClassLossOptions& options,
                Tensor& loss, Tensor& grad) {
    ClassLayout l;
    MK_TRY(class_layout(input, "nll_loss", l));
    MK_TRY(check_class_weight(options, l, "nll_loss"));
    MK_TRY(check_targets(target, l, options.ignore_index, "nll_loss"));
    ensure_shape(loss, options.reduction == Reduction::none ? l.sample_shape : Dims{});
    ensure_shape(grad, input.shape());
    std::fill(grad.begin(), grad.end(), 0.0f);
    float reduced = 0.0f, total_weight = 0.0f;
    nll_core(input.data(), target, options, l, 1.0f, options.reduction == Reduction::none ? loss.data() : nullptr,
             reduced, grad.data(), total_weight);
    if (options.reduction != Reduction::none) loss.data()[0] = reduced;
    return Status::success();
}

Status cross_entropy_loss(const Tensor& input, const std::vector<std::int64_t>& target, const ClassLossOptions& options,
                          Tensor& loss, Tensor& grad) {
    const char* name = "cross_entropy_loss";
    ClassLayout l;
    MK_TRY(class_layout(input, name, l));
    MK_TRY(check_class_weight(options, l, name));
    if (!(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0))
        return error(Code::invalid_hyperparameter, std::string(name) + ": label_smoothing is " +
                                                       std::to_string(options.label_smoothing) +
                                                       "; it must be in [0, 1]");
    MK_TRY(check_targets(target, l, options.ignore_index, name));
    const Reduction red = options.reduction;
    ensure_shape(loss, red == Reduction::none ? l.sample_shape : Dims{});
    ensure_shape(grad, input.shape());
    float* g = grad.data();
    // grad holds the log-softmax until the backward below rewrites it, sample by sample:
    // no scratch beyond the caller's tensors.
    log_softmax(input.data(), l, g);
    const bool smoothing = options.label_smoothing > 0.0;
    float* none_out = red == Reduction::none ? loss.data() : nullptr;
    float nll_reduced = 0.0f, total_weight = 0.0f;
    nll_core(g, target, options, l, 1.0f, none_out, nll_reduced, nullptr, total_weight);
    // Label smoothing (PyTorch's cross_entropy_loss_label_smoothing): smooth_i = -Σ_j w_j ls_ij
    // over the samples not ignored; mean divides its sum by the targets' summed weights (the
    // count, unweighted); loss = (1 - ε) nll + smooth · (ε / C).
    const float* w = options.weight ? options.weight->data() : nullptr;
    const float a = float(1.0 - options.label_smoothing);
    const float b = float(options.label_smoothing / double(l.c));
    double smooth_sum = 0.0;
    if (smoothing) {
        for (std::size_t s = 0; s < l.samples(); ++s) {
            float sm = 0.0f;
            if (target[s] != options.ignore_index) {
                double acc = 0.0;
                for (std::size_t j = 0; j < l.c; ++j) acc += double(w ? g[l.at(s, j)] * w[j] : g[l.at(s, j)]);
                sm = -float(acc);
            }
            if (none_out) none_out[s] = a * none_out[s] + sm * b;
            smooth_sum += double(sm);
        }
    }
    if (red != Reduction::none) {
        float value = nll_reduced;
        if (smoothing) {
            const float ss = float(smooth_sum);
            const float ret = red == Reduction::mean ? ss / total_weight : ss;
            value = a * nll_reduced + ret * b;
        }
        loss.data()[0] = value;
    }
    // The gradient with respect to the log-softmax, then through it. The log-softmax values
    // are needed by its backward: g holds them until each sample's column is rewritten.
    const float nll_scale = smoothing ? a : 1.0f;
    const float gr = -(red == Reduction::mean ? nll_scale / total_weight : nll_scale);
    const float sg = smoothing ? -(red == Reduction::mean ? b / total_weight : b) : 0.0f;
    // d loss / d log_softmax of class j at sample s: the smoothing term -(ε/C)/denominator · w_j
    // on every class, plus NLL's w_t · gr on the target (autograd adds the two branches).
    auto upstream = [&](std::size_t s, std::size_t j) {
        const std::int64_t t = target[s];
        if (t == options.ignore_index) return 0.0f;
        const float from_smooth = w ? sg * w[j] : sg;
        if (std::int64_t(j) != t) return from_smooth;
        const float from_nll = w ? w[t] * gr : gr;
        return smoothing ? from_nll + from_smooth : from_nll;
    };
    for (std::size_t s = 0; s < l.samples(); ++s) {
        double sum = 0.0;
        for (std::size_t j = 0; j < l.c; ++j) sum += double(upstream(s, j));
        const float sf = float(sum);
        for (std::size_t j = 0; j < l.c; ++j) {
            const std::size_t i = l.at(s, j);
            g[i] = upstream(s, j) - std::exp(g[i]) * sf;  // log_softmax backward: g - exp(ls) · Σ g
        }
    }
    return Status::success();
}

Status cross_entropy_loss_probs(const Tensor& input, const Tensor& target, const ClassLossOptions& options,
                                Tensor& loss, Tensor& grad) {
    const char* name = "cross_entropy_loss";
    ClassLayout l;
    MK_TRY(class_layout(input, name, l));
    MK_TRY(check_class_weight(options, l, name));
    MK_TRY(check_same_shape(input, target, name));
    if (!(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0))
        return error(Code::invalid_hyperparameter, std::string(name) + ": label_smoothing is " +
                                                       std::to_string(options.label_smoothing) +
                                                       "; it must be in [0, 1]");
    const Reduction red = options.reduction;
    ensure_shape(loss, red == Reduction::none ? l.sample_shape : Dims{});
    ensure_shape(grad, input.shape());
    float* g = grad.data();
    const float* p = target.data();
    const float* w = options.weight ? options.weight->data() : nullptr;
    log_softmax(input.data(), l, g);
    const bool smoothing = options.label_smoothing > 0.0;
    const float a = float(1.0 - options.label_smoothing);
    const float b = float(options.label_smoothing / double(l.c));
    // target' = target · (1 - ε) + ε / C; terms -(ls · target' · w).
    auto smoothed = [&](std::size_t i) { return smoothing ? p[i] * a + b : p[i]; };
    double total = 0.0;
    for (std::size_t s = 0; s < l.samples(); ++s) {
        double acc = 0.0;
        for (std::size_t j = 0; j < l.c; ++j) {
            const std::size_t i = l.at(s, j);
            const float lt = g[i] * smoothed(i);
            acc += double(-(w ? lt * w[j] : lt));
        }
        if (red == Reduction::none) loss.data()[s] = float(acc);
        total += acc;
    }
    // Mean divides by numel / C, the number of samples.
    const float count = float(l.samples());
    if (red != Reduction::none) loss.data()[0] = red == Reduction::mean ? float(total) / count : float(total);
    const float c = red == Reduction::mean ? 1.0f / count : 1.0f;
    for (std::size_t s = 0; s < l.samples(); ++s) {
        double sum = 0.0;
        for (std::size_t j = 0; j < l.c; ++j) {
            const std::size_t i = l.at(s, j);
            sum += double(w ? (-c * w[j]) * smoothed(i) : -c * smoothed(i));
        }
        const float sf = float(sum);
        for (std::size_t j = 0; j < l.c; ++j) {
            const std::size_t i = l.at(s, j);
            const float go = w ? (-c * w[j]) * smoothed(i) : -c * smoothed(i);
            g[i] = go - std::exp(g[i]) * sf;
        }
    }
    return Status::success();
}

Status bce_with_logits_loss(const Tensor& input, const Tensor& target, const Tensor* weight, const Tensor* pos_weight,
                            Reduction reduction, Tensor& loss, Tensor& grad) {
    const char* name = "binary_cross_entropy_with_logits";
    MK_TRY(check_same_shape(input, target, name));
    const Dims shape = input.shape();
    Broadcast wb, pb;
    if (weight) MK_TRY(make_broadcast(*weight, shape, name, "weight", wb));
    if (pos_weight) MK_TRY(make_broadcast(*pos_weight, shape, name, "pos_weight", pb));
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    for (std::size_t i = 0; i < n; ++i) {
        // PyTorch 1.13: max_val = (-x).clamp_min(0); the log-sum-exp of (0, -x) shifted by it.
        const float xi = x[i], yi = y[i];
        const float mv = std::max(-xi, 0.0f);
        const float lse = std::log(std::exp(-mv) + std::exp(-xi - mv));
        float term;
        const float sig = 1.0f / (1.0f + std::exp(-xi));
        float gi;
        if (pos_weight) {
            const float pw = pos_weight->data()[pb.at(i)];
            const float lw = (pw - 1.0f) * yi + 1.0f;
            term = (1.0f - yi) * xi + lw * (lse + mv);
            const float t = pw * yi;
            gi = ((t + 1.0f) - yi) * sig - t;
        } else {
            term = ((1.0f - yi) * xi + mv) + lse;
            gi = sig - yi;
        }
        if (weight) {
            const float wi = weight->data()[wb.at(i)];
            term = term * wi;
            gi = gi * wi;
        }
        if (reduction == Reduction::mean) gi = gi / float(n);
        r.put(i, term);
        g[i] = gi;
    }
    finish_loss(r, n, loss);
    return Status::success();
}

Status bce_loss(const Tensor& input, const Tensor& target, const Tensor* weight, Reduction reduction, Tensor& loss,
                Tensor& grad) {
    const char* name = "binary_cross_entropy";
    MK_TRY(check_same_shape(input, target, name));
    const Dims shape = input.shape();
    Broadcast wb;
    if (weight) MK_TRY(make_broadcast(*weight, shape, name, "weight", wb));
    const std::size_t n = input.size();
    const float* x = input.data();
    const float* y = target.data();
    for (std::size_t i = 0; i < n; ++i)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            return error(Code::target_out_of_range, std::string(name) + ": input " + std::to_string(i) + " is " +
                                                        std::to_string(x[i]) +
                                                        "; all elements of input should be between 0 and 1");
    Reducer r = start_loss(reduction, shape, loss);
    ensure_shape(grad, shape);
    float* g = grad.data();
    constexpr float eps = 1e-12f;
    for (std::size_t i = 0; i < n; ++i) {
        const float xi = x[i], yi = y[i];
        float term = (yi - 1.0f) * std::max(std::log(1.0f - xi), -100.0f) - yi * std::max(std::log(xi), -100.0f);
        float gi = (xi - yi) / std::max((1.0f - xi) * xi, eps);
        if (weight) {
            const float wi = weight->data()[wb.at(i)];
            term = term * wi;
            gi = gi * wi;
        }
        if (reduction == Reduction::mean) gi = gi / float(n);
        r.put(i, term);
        g[i] = gi;
    }
    finish_loss(r, n, loss);
    return Status::success();
}

}  // namespace modelkeep
