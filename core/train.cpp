#include "train.hpp"

#include <algorithm>
#include <cmath>

#include "gemm.hpp"
#include "packed.hpp"

namespace modelkeep {

namespace {

std::string layer_label(const LayerSpec& s) {
    return s.name.empty() ? std::string("the root layer") : "layer '" + s.name + "'";
}

// How many of layer_params(s) are parameters (the rest are buffers), without
// building the list (no allocation).
std::size_t parameter_count(const LayerSpec& s) {
    switch (s.kind) {
        case LayerKind::linear: return s.bias ? 2 : 1;
        case LayerKind::layer_norm: return s.affine ? (s.bias ? 2 : 1) : 0;
        case LayerKind::batch_norm1d: return s.affine ? 2 : 0;
        case LayerKind::relu:
        case LayerKind::leaky_relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::gelu:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity:
        case LayerKind::dropout:
        case LayerKind::flatten: return 0;
    }
    return 0;
}

void set_shape(Shape& s, const Tensor& t) { s.assign(t.shape().begin(), t.shape().end()); }

// t resized to `shape` (its storage reused when it holds as many values).
void fit(Tensor& t, const Shape& shape) {
    if (t.dimension() != shape.size() || !std::equal(shape.begin(), shape.end(), t.shape().begin())) t.resize(shape);
}

// t resized to src's shape.
void fit_like(Tensor& t, const Tensor& src) {
    if (t.dimension() != src.dimension() || !std::equal(src.shape().begin(), src.shape().end(), t.shape().begin()))
        t.resize(src.shape());
}

void fit1(Tensor& t, std::size_t n) {
    if (t.dimension() != 1 || t.shape()[0] != n) t.resize({n});
}

void copy_values(const Tensor& from, Tensor& to) { std::copy(from.data(), from.data() + from.size(), to.data()); }

// The error Sequential::forward gives for an input the layer does not take.
Status misfit(const Layer& layer, const Tensor& x) {
    Tensor scratch;
    Status st = layer_forward(layer, x, scratch);
    if (!st.ok()) return st;
    return error(Code::shape_mismatch,
                 layer_label(layer.spec) + " does not take input " + shape_to_string(shape_of(x)));
}

// BatchNorm1d's (N, C, L) for x (N, C) or (N, C, L), shape-checked by layer_output_shape.
void bn_dims(const Tensor& x, std::size_t& N, std::size_t& C, std::size_t& L) {
    N = x.shape()[0];
    C = x.shape()[1];
    L = x.dimension() == 3 ? x.shape()[2] : 1;
}

// The float32 (out, in) rows of a Linear weight: the param's own values, or
// the rows train_forward unpacked into `rows`.
const Tensor& weight_rows(const Param& w, const Tensor& rows) { return w.is_packed() ? rows : w.values(); }

}  // namespace

Status check_trainable(const Sequential& model) {
    for (const Layer& layer : model.layers())
        for (const Param& p : layer.params)
            if (p.is_compact())
                return error(Code::needs_f32, layer_label(layer.spec) + " holds its weight in " +
                                                  dtype_name(p.dtype()) +
                                                  ", which is for inference: training needs float32 weights; "
                                                  "convert the model first with set_weight_dtype(DType::f32) "
                                                  "(JS: model.setWeightDtype('f32'))");
    return Status::success();
}

Status train_forward(Sequential& model, const Tensor& x, Tensor& y, TrainBuffers& b) {
    b.recorded = false;
    MK_TRY(check_trainable(model));
    std::vector<Layer>& layers = model.mutable_layers();
    const std::size_t n = layers.size();
    if (b.out.size() != n) {
        b.out.resize(n);
        b.saved.resize(n);
        b.rstd.resize(n);
        b.weight.resize(n);
        b.kinds.resize(n);
        b.batch_mode.resize(n);
        b.grad.resize(n);
    }
    set_shape(b.shape_in, x);
    fit(b.input, b.shape_in);
    copy_values(x, b.input);
    for (std::size_t i = 0; i < n; ++i) {
        Layer& layer = layers[i];
        const LayerSpec& s = layer.spec;
        const Tensor& in = i == 0 ? b.input : b.out[i - 1];
        set_shape(b.shape_in, in);
        if (!layer_output_shape(s, b.shape_in, b.shape_out)) return misfit(layer, in);
        Tensor& out = b.out[i];
        fit(out, b.shape_out);
        b.kinds[i] = s.kind;
        b.batch_mode[i] = 0;
        const std::size_t last = b.shape_in.empty() ? 0 : b.shape_in.back();
        const std::size_t rows = last ? in.size() / last : 0;
        Activation act;
        switch (s.kind) {
            case LayerKind::relu:
            case LayerKind::leaky_relu:
            case LayerKind::sigmoid:
            case LayerKind::tanh:
            case LayerKind::gelu:
            case LayerKind::silu:
            case LayerKind::identity:
                (void)activation_of(s, act);
                copy_values(in, out);
                act.apply(out.data(), out.size());
                break;
            case LayerKind::dropout:
                b.batch_mode[i] = b.training;
                if (b.training) {
                    fit(b.saved[i], b.shape_out);
                    dropout_forward(in.data(), out.data(), b.saved[i].data(), in.size(), s.p, b.rng);
                } else {
                    copy_values(in, out);
                }
                break;
            case LayerKind::linear: {
                const Param& w = layer.params[0];
                const Tensor& rows_w = w.is_packed() ? w.f32(b.weight[i]) : w.values();
                const float* bias = s.bias ? layer.params[1].values().data() : nullptr;
                matmul_nt(in.data(), rows_w.data(), bias, out.data(), rows, std::size_t(s.out_features),
                          std::size_t(s.in_features));
                break;
            }
            case LayerKind::softmax: MK_TRY(softmax(in, out)); break;
            case LayerKind::log_softmax: MK_TRY(log_softmax(in, out)); break;
            case LayerKind::flatten: copy_values(in, out); break;
            case LayerKind::layer_norm: {
                fit(b.saved[i], b.shape_out);
                fit1(b.rstd[i], rows);
                const float* w = s.affine ? layer.params[0].values().data() : nullptr;
                const float* bias = s.affine && s.bias ? layer.params[1].values().data() : nullptr;
                layer_norm_train(in.data(), rows, last, s.eps, w, bias, out.data(), b.saved[i].data(),
                                 b.rstd[i].data());
                break;
            }
            case LayerKind::batch_norm1d: {
                std::size_t N, C, L;
                bn_dims(in, N, C, L);
                fit(b.saved[i], b.shape_out);
                fit1(b.rstd[i], C);
                const float* w = s.affine ? layer.params[0].values().data() : nullptr;
                const float* bias = s.affine ? layer.params[1].values().data() : nullptr;
                const std::size_t stats = s.affine ? 2 : 0;  // running_mean, running_var, num_batches_tracked
                const bool batch = b.training || !s.track_running_stats;
                b.batch_mode[i] = batch;
                if (batch) {
                    if (N * L <= 1)
                        return error(Code::shape_mismatch,
                                     layer_label(s) +
                                         " (BatchNorm1d) normalises with the batch's statistics, which needs more "
                                         "than 1 value per channel; got input " +
                                         shape_to_string(b.shape_in));
                    if (b.scratch.size() < 2 * C) {  // grown to 2C exactly (resize alone may double)
                        b.scratch.reserve(2 * C);
                        b.scratch.resize(2 * C);
                    }
                    float* mean = b.scratch.data();
                    float* var = mean + C;
                    batch_norm_train(in.data(), N, C, L, s.eps, w, bias, out.data(), b.saved[i].data(),
                                     b.rstd[i].data(), mean, var);
                    if (b.training && s.track_running_stats)
                        batch_norm_update_stats(mean, var, C, b.momentum, layer.params[stats].values().data(),
                                                layer.params[stats + 1].values().data(),
                                                layer.params[stats + 2].values().data());
                } else {
                    batch_norm_eval(in.data(), N, C, L, s.eps, w, bias, layer.params[stats].values().data(),
                                    layer.params[stats + 1].values().data(), out.data(), b.saved[i].data(),
                                    b.rstd[i].data());
                }
                break;
            }
        }
    }
    const Tensor& last = n ? b.out[n - 1] : b.input;
    set_shape(b.shape_out, last);
    if (&y != &x) {
        fit(y, b.shape_out);
        copy_values(last, y);
    } else {
        y = last;
    }
    b.recorded = true;
    return Status::success();
}

Status backward(const Sequential& model, const Tensor& grad_y, TrainBuffers& b, Grads& grads, bool input_grad) {
    MK_TRY(check_trainable(model));
    const std::vector<Layer>& layers = model.layers();
    const std::size_t n = layers.size();
    if (!b.recorded || b.out.size() != n)
        return error(Code::invalid_argument, "backward needs a train_forward of this model first");
    const Tensor& y = n ? b.out[n - 1] : b.input;
    if (grad_y.dimension() != y.dimension() || !std::equal(y.shape().begin(), y.shape().end(), grad_y.shape().begin()))
        return error(Code::shape_mismatch, "the output's gradient is " + shape_to_string(shape_of(grad_y)) +
                                               " but the output is " + shape_to_string(shape_of(y)));
    // The gradients' keys and shapes: built once per model.
    std::size_t total = 0;
    for (const Layer& layer : layers) total += parameter_count(layer.spec);
    if (grads.keys.size() != total || grads.values.size() != total) {
        grads.keys.clear();
        grads.values.assign(total, Tensor());
        for (const Layer& layer : layers) {
            const auto infos = layer_params(layer.spec);
            for (std::size_t k = 0; k < parameter_count(layer.spec); ++k)
                grads.keys.push_back(param_key(layer.spec.name, infos[k].name));
        }
    }
    std::size_t next = total;  // one past the parameters of layer i, walking backwards
    const Tensor* g = &grad_y;
    for (std::size_t i = n; i-- > 0;) {
        const Layer& layer = layers[i];
        const LayerSpec& s = layer.spec;
        const std::size_t np = parameter_count(s);
        next -= np;
        Tensor* pg = np ? &grads.values[next] : nullptr;  // this layer's parameter gradients
        for (std::size_t k = 0; k < np; ++k) {
            const Tensor& p = layer.params[k].values();
            if (p.dimension() == 2) {  // a Linear weight: (out, in) as the param's own shape
                if (pg[k].dimension() != 2 || pg[k].shape()[0] != p.shape()[0] || pg[k].shape()[1] != p.shape()[1])
                    pg[k].resize({p.shape()[0], p.shape()[1]});
            } else {
                fit1(pg[k], p.size());
            }
        }
        const Tensor& in = i == 0 ? b.input : b.out[i - 1];
        const Tensor& out = b.out[i];
        // Must: the model train_forward ran (what it saved is read by these shapes).
        set_shape(b.shape_in, in);
        if (b.kinds[i] != s.kind || !layer_output_shape(s, b.shape_in, b.shape_out) ||
            b.shape_out.size() != out.dimension() ||
            !std::equal(b.shape_out.begin(), b.shape_out.end(), out.shape().begin()))
            return error(Code::invalid_argument,
                         layer_label(s) + " is not the layer train_forward ran: backward needs the same model");
        const bool need_gx = i > 0 || input_grad;
        Tensor& gx = i == 0 ? grads.input : b.grad[i];  // never *g: that is grad[i + 1] or grad_y
        if (need_gx) {
            set_shape(b.shape_in, in);
            fit(gx, b.shape_in);
        }
        const std::size_t last = in.dimension() ? in.shape()[in.dimension() - 1] : 0;
        const std::size_t rows = last ? in.size() / last : 0;
        Activation act;
        switch (s.kind) {
            case LayerKind::relu:
            case LayerKind::leaky_relu:
            case LayerKind::sigmoid:
            case LayerKind::tanh:
            case LayerKind::gelu:
            case LayerKind::silu:
            case LayerKind::identity:
                (void)activation_of(s, act);
                if (need_gx) activation_backward(act, in.data(), out.data(), g->data(), gx.data(), in.size());
                break;
            case LayerKind::dropout:
                if (!need_gx) break;
                if (b.batch_mode[i])
                    dropout_backward(g->data(), b.saved[i].data(), gx.data(), in.size());
                else
                    copy_values(*g, gx);
                break;
            case LayerKind::linear: {
                const std::size_t o = std::size_t(s.out_features), k = std::size_t(s.in_features);
                linear_grad_weight(in.data(), g->data(), pg[0].data(), rows, o, k, b.scratch);
                if (s.bias) linear_grad_bias(g->data(), pg[1].data(), rows, o);
                if (need_gx)
                    linear_grad_input(g->data(), weight_rows(layer.params[0], b.weight[i]).data(), gx.data(), rows, o,
                                      k, b.scratch);
                break;
            }
            case LayerKind::softmax:
            case LayerKind::log_softmax:
                if (need_gx)
                    softmax_backward(out.data(), g->data(), gx.data(), rows, last, s.kind == LayerKind::log_softmax);
                break;
            case LayerKind::flatten:
                if (need_gx) copy_values(*g, gx);
                break;
            case LayerKind::layer_norm:
                layer_norm_backward(g->data(), b.saved[i].data(), b.rstd[i].data(),
                                    s.affine ? layer.params[0].values().data() : nullptr, rows, last,
                                    need_gx ? gx.data() : nullptr, s.affine ? pg[0].data() : nullptr,
                                    s.affine && s.bias ? pg[1].data() : nullptr);
                break;
            case LayerKind::batch_norm1d: {
                std::size_t N, C, L;
                bn_dims(in, N, C, L);
                batch_norm_backward(g->data(), b.saved[i].data(), b.rstd[i].data(),
                                    s.affine ? layer.params[0].values().data() : nullptr, N, C, L, b.batch_mode[i] != 0,
                                    need_gx ? gx.data() : nullptr, s.affine ? pg[0].data() : nullptr,
                                    s.affine ? pg[1].data() : nullptr);
                break;
            }
        }
        g = &gx;
    }
    if (n == 0 && input_grad) {
        set_shape(b.shape_in, grad_y);
        fit(grads.input, b.shape_in);
        copy_values(grad_y, grads.input);
    }
    return Status::success();
}

std::uint64_t train_bytes(const Sequential& model, const Shape& x) {
    constexpr std::uint64_t f = sizeof(float);
    const std::vector<Layer>& layers = model.layers();
    const std::uint64_t n = layers.size();
    // The per-layer slots (out, saved, rstd, weight, grad; kinds, modes), each empty
    // tensor holding one value; the input's copy; the two shape vectors.
    std::uint64_t bytes =
        n * (5 * (sizeof(Tensor) + f) + sizeof(LayerKind) + 1) + numel(x) * f + 2 * max_rank * sizeof(std::size_t);
    // The grow-only scratch, in floats: its sizes asked for, in the order asked
    // (BatchNorm1d's in the forward, layer by layer; the Linear products' in the backward, last layer first).
    std::vector<std::uint64_t> forward_asks, backward_asks;
    Shape cur = x, next;
    bool first = true;
    for (const Layer& layer : layers) {
        const LayerSpec& s = layer.spec;
        if (!layer_output_shape(s, cur, next)) break;
        const std::uint64_t out = numel(next) * f;
        const std::uint64_t last = cur.empty() ? 0 : cur.back();
        const std::uint64_t rows = last ? numel(cur) / last : 0;
        bytes += out + numel(cur) * f;  // the output; the input's gradient (layer 0's: Grads::input)
        // The parameters' gradients, each with its key and slot (an empty tensor's value first).
        for (std::size_t k = 0; k < parameter_count(s); ++k)
            bytes += numel(layer.params[k].shape()) * f + sizeof(Tensor) + f + sizeof(std::string) + s.name.size() + 32;
        switch (s.kind) {
            case LayerKind::dropout: bytes += out; break;  // the mask (training mode)
            case LayerKind::layer_norm: bytes += out + rows * f; break;
            case LayerKind::batch_norm1d: {
                const std::uint64_t C = s.in_features;
                bytes += out + C * f;
                forward_asks.push_back(2 * C);
                break;
            }
            case LayerKind::linear: {
                const std::uint64_t o = s.out_features, k = s.in_features;
                if (layer.params[0].is_packed()) bytes += o * k * f;  // the weight's rows
                backward_asks.push_back(k * o);                       // the input's gradient, asked second
                backward_asks.push_back((o + k) * rows);              // the weight's, asked first
                break;
            }
            case LayerKind::relu:
            case LayerKind::leaky_relu:
            case LayerKind::sigmoid:
            case LayerKind::tanh:
            case LayerKind::gelu:
            case LayerKind::silu:
            case LayerKind::softmax:
            case LayerKind::log_softmax:
            case LayerKind::identity:
            case LayerKind::flatten: break;
        }
        cur.swap(next);
        first = false;
    }
    if (first) bytes += numel(x) * f;  // no layer ran: Grads::input is x's shape all the same
    // The key list grows by doubling (the old beside the new), and each layer's
    // layer_params (names, shapes) is held for a moment while its keys are made.
    std::uint64_t params = 0;
    for (const Layer& layer : layers) params += parameter_count(layer.spec);
    bytes += params * sizeof(std::string) + 512;
    // The scratch at its peak: when it grows, the old storage beside the new.
    std::uint64_t held = 0, scratch = 0;
    const auto ask = [&](std::uint64_t want) {
        if (want > held) scratch = std::max(scratch, held + want), held = want;
    };
    for (const std::uint64_t want : forward_asks) ask(want);
    for (std::size_t i = backward_asks.size(); i-- > 0;) ask(backward_asks[i]);
    return bytes + numel(cur) * f + scratch * f;  // y, and the scratch
}

Status parameters_of(const Sequential& model, std::vector<Tensor>& values) {
    MK_TRY(check_trainable(model));
    std::size_t total = 0;
    for (const Layer& layer : model.layers()) total += parameter_count(layer.spec);
    if (values.size() != total) values.assign(total, Tensor());
    std::size_t at = 0;
    for (const Layer& layer : model.layers())
        for (std::size_t k = 0; k < parameter_count(layer.spec); ++k, ++at) {
            const Param& p = layer.params[k];
            if (p.is_packed()) {
                (void)p.f32(values[at]);  // unpacked into values[at], resized in place
            } else {
                fit_like(values[at], p.values());
                copy_values(p.values(), values[at]);
            }
        }
    return Status::success();
}

namespace {

// rows (rows, cols) row-major → packed (packed.hpp's layout), out of place: the
// inverse of unpack_weight_rows over every row.
void pack_rows_into(const float* in, std::size_t rows, std::size_t cols, float* packed) {
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t b = r / panel_rows * panel_rows, nr = std::min(panel_rows, rows - b), j = r - b;
        float* p = packed + b * cols + j;
        const float* row = in + r * cols;
        for (std::size_t k = 0; k < cols; ++k) p[k * nr] = row[k];
    }
}

Status load_parameters_impl(Sequential& model, const std::vector<Tensor>& values, bool direct) {
    MK_TRY(check_trainable(model));
    std::size_t total = 0;
    for (const Layer& layer : model.layers()) total += parameter_count(layer.spec);
    if (values.size() != total)
        return error(Code::shape_mismatch, std::to_string(values.size()) + " tensors for the model's " +
                                               std::to_string(total) + " parameters");
    std::size_t at = 0;
    for (const Layer& layer : model.layers())
        for (std::size_t k = 0; k < parameter_count(layer.spec); ++k, ++at) {
            const Tensor& have = layer.params[k].values();  // (out, in) even when packed
            if (values[at].dimension() != have.dimension() ||
                !std::equal(have.shape().begin(), have.shape().end(), values[at].shape().begin()))
                return error(Code::shape_mismatch, param_key(layer.spec.name, layer_params(layer.spec)[k].name) +
                                                       " is " + shape_to_string(shape_of(have)) +
                                                       " but the new value is " +
                                                       shape_to_string(shape_of(values[at])));
        }
    at = 0;
    for (Layer& layer : model.mutable_layers())
        for (std::size_t k = 0; k < parameter_count(layer.spec); ++k, ++at) {
            Param& p = layer.params[k];
            if (p.is_packed() && direct) {
                const Tensor& w = p.values();
                pack_rows_into(values[at].data(), w.shape()[0], w.shape()[1], p.values().data());
            } else if (p.is_packed()) {
                // The old storage takes the new rows, then goes back in to be packed in place.
                Tensor storage = std::move(p.values());
                copy_values(values[at], storage);
                p.assign(std::move(storage));
            } else {
                copy_values(values[at], p.values());
            }
        }
    return Status::success();
}

}  // namespace

Status load_parameters(Sequential& model, const std::vector<Tensor>& values) {
    return load_parameters_impl(model, values, false);
}

Status store_parameters(Sequential& model, const std::vector<Tensor>& values) {
    return load_parameters_impl(model, values, true);
}

}  // namespace modelkeep
