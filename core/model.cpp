#include "model.hpp"

#include <unordered_map>
#include <unordered_set>

namespace modelkeep {

Status validate_specs(const std::vector<LayerSpec>& specs) {
    if (specs.size() > max_layers)
        return error(Code::limit_exceeded, std::to_string(specs.size()) + " layers, over the cap of " +
                                               std::to_string(max_layers));
    std::unordered_set<std::string> names;
    for (const LayerSpec& s : specs) {
        MK_TRY(validate_layer(s));
        if (!names.insert(s.name).second)
            return error(Code::duplicate_name, "two layers are named '" + s.name + "'");
    }
    // A layer cannot also be the parent module of another: torch could not hold both.
    for (const LayerSpec& s : specs)
        for (std::size_t dot = s.name.find('.'); dot != std::string::npos; dot = s.name.find('.', dot + 1))
            if (names.count(s.name.substr(0, dot)))
                return error(Code::bad_name, "layer '" + s.name.substr(0, dot) +
                                                 "' cannot also be the parent of '" + s.name + "'");
    return Status::success();
}

Status Sequential::create(const std::vector<LayerSpec>& specs, std::uint64_t seed, Sequential& out) {
    MK_TRY(validate_specs(specs));
    Rng rng(seed);
    Sequential model;
    for (const LayerSpec& s : specs) model.layers_.push_back(make_layer(s, rng));
    out = std::move(model);
    return Status::success();
}

Sequential Sequential::from_parts(const std::vector<LayerSpec>& specs, std::vector<Tensor>&& tensors,
                                  std::vector<CompactWeight>&& compact) {
    Sequential model;
    std::size_t next = 0;
    for (std::size_t li = 0; li < specs.size(); ++li) {
        Layer layer{specs[li], {}, {}};
        for (std::size_t i = layer_params(specs[li]).size(); i > 0; --i) layer.params.push_back(std::move(tensors[next++]));
        if (li < compact.size() && compact[li].active()) layer.compact = std::move(compact[li]);
        model.layers_.push_back(std::move(layer));
    }
    return model;
}

std::vector<LayerSpec> Sequential::specs() const {
    std::vector<LayerSpec> out;
    for (const Layer& l : layers_) out.push_back(l.spec);
    return out;
}

StateDict Sequential::state_dict() const {
    StateDict sd;
    for_each_tensor([&](const std::string& key, const Tensor& t) { sd.emplace_back(key, t); });
    return sd;
}

std::vector<std::pair<std::string, Shape>> Sequential::state_dict_shapes() const {
    std::vector<std::pair<std::string, Shape>> out;
    for (const Layer& layer : layers_)
        for (const ParamInfo& p : layer_params(layer.spec)) out.emplace_back(layer.spec.name + "." + p.name, p.shape);
    return out;
}

static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

Status Sequential::load_state_dict(const StateDict& sd, bool strict, LoadReport& report) {
    report = LoadReport{};
    std::unordered_map<std::string, std::pair<std::size_t, std::size_t>> where;  // key → (layer, param)
    for (std::size_t li = 0; li < layers_.size(); ++li) {
        const auto infos = layer_params(layers_[li].spec);
        for (std::size_t pi = 0; pi < infos.size(); ++pi)
            where[layers_[li].spec.name + "." + infos[pi].name] = {li, pi};
    }
    std::unordered_set<std::string> seen;
    std::vector<std::string> mismatches;
    for (const auto& [key, t] : sd) {
        auto it = where.find(key);
        if (it == where.end()) {
            report.unexpected_keys.push_back(key);
            continue;
        }
        seen.insert(key);
        const Shape mine = layer_params(layers_[it->second.first].spec)[it->second.second].shape;
        if (mine != shape_of(t))
            mismatches.push_back(key + ": file has " + shape_to_string(shape_of(t)) + ", model has " +
                                 shape_to_string(mine));
    }
    for (const auto& [key, shape] : state_dict_shapes())
        if (!seen.count(key)) report.missing_keys.push_back(key);
    if (!mismatches.empty())
        return error(Code::shape_mismatch, "size mismatch for " + join(mismatches));
    if (strict && !report.missing_keys.empty())
        return error(Code::missing_key, "missing keys: " + join(report.missing_keys));
    if (strict && !report.unexpected_keys.empty())
        return error(Code::unexpected_key, "unexpected keys: " + join(report.unexpected_keys));
    for (const auto& [key, t] : sd) {
        auto it = where.find(key);
        if (it == where.end()) continue;
        Layer& layer = layers_[it->second.first];
        if (it->second.second == 0 && layer.compact.active()) {
            // A new weight for a compact layer: held in the same dtype again if it can be.
            const DType dtype = layer.compact.dtype;
            layer.compact = CompactWeight{};
            layer.params[0] = t;
            (void)modelkeep::set_weight_dtype(layer, dtype);
        } else {
            layer.params[it->second.second] = t;
        }
    }
    return Status::success();
}

Status Sequential::from_state_dict(const std::vector<LayerSpec>& specs, StateDict&& sd, Sequential& out) {
    MK_TRY(validate_specs(specs));
    std::unordered_map<std::string, std::size_t> index;  // key → position in sd
    for (std::size_t i = 0; i < sd.size(); ++i)
        if (!index.emplace(sd[i].first, i).second) return error(Code::duplicate_name, "tensor '" + sd[i].first + "' twice");
    std::vector<std::string> missing, mismatches;
    std::unordered_set<std::string> used;
    for (const LayerSpec& s : specs)
        for (const ParamInfo& p : layer_params(s)) {
            const std::string key = s.name + "." + p.name;
            const auto it = index.find(key);
            if (it == index.end()) {
                missing.push_back(key);
                continue;
            }
            used.insert(key);
            const Shape have = shape_of(sd[it->second].second);
            if (have != p.shape)
                mismatches.push_back(key + ": file has " + shape_to_string(have) + ", model has " + shape_to_string(p.shape));
        }
    std::vector<std::string> unexpected;
    for (const auto& kv : sd)
        if (!used.count(kv.first)) unexpected.push_back(kv.first);
    if (!mismatches.empty()) return error(Code::shape_mismatch, "size mismatch for " + join(mismatches));
    if (!missing.empty()) return error(Code::missing_key, "missing keys: " + join(missing));
    if (!unexpected.empty()) return error(Code::unexpected_key, "unexpected keys: " + join(unexpected));
    Sequential model;
    for (const LayerSpec& s : specs) {
        Layer layer{s, {}, {}};
        for (const ParamInfo& p : layer_params(s))
            layer.params.push_back(std::move(sd[index.at(s.name + "." + p.name)].second));
        model.layers_.push_back(std::move(layer));
    }
    sd.clear();
    out = std::move(model);
    return Status::success();
}

Status Sequential::forward(const Tensor& x, Tensor& y, ForwardBuffers& buffers) const {
    if (&y == &x) {  // the layers would overwrite their own input
        Tensor out;
        MK_TRY(forward(x, out, buffers));
        y = std::move(out);
        return Status::success();
    }
    const std::size_t n = layers_.size();
    if (buffers.out.size() != n) buffers.out.resize(n);
    // The last layer that writes a new tensor writes y; element-wise layers
    // after it run in place on y.
    Activation act;
    std::size_t last = n;
    for (std::size_t i = 0; i < n; ++i)
        if (!activation_of(layers_[i].spec, act)) last = i;
    Tensor* cur = nullptr;  // the last output; null while it is still x (never written)
    for (std::size_t i = 0; i < n; ++i) {
        const Layer& layer = layers_[i];
        Tensor& out = last == n || i >= last ? y : buffers.out[i];
        if (activation_of(layer.spec, act)) {
            // In place on the previous output (from x into out if there is none yet).
            MK_TRY(cur ? layer_forward(layer, *cur, *cur) : layer_forward(layer, x, out));
            if (!cur) cur = &out;
            continue;
        }
        // A Linear applies the element-wise layer that follows it in its
        // kernel's epilogue, while the outputs are in registers or L1.
        Activation then;
        const bool fuse = layer.spec.kind == LayerKind::linear && i + 1 < n && activation_of(layers_[i + 1].spec, then);
        MK_TRY(layer_forward(layer, cur ? *cur : x, out, then));
        cur = &out;
        if (fuse) ++i;
    }
    if (!cur) activate(x, Activation{}, y);  // no layers: y is x (the identity)
    return Status::success();
}

Status Sequential::forward(const Tensor& x, Tensor& y) const {
    ForwardBuffers buffers;
    return forward(x, y, buffers);
}

std::uint64_t Sequential::param_count() const {
    std::uint64_t n = 0;
    for (const Layer& layer : layers_)
        for (const ParamInfo& p : layer_params(layer.spec))
            if (!p.buffer) {
                std::uint64_t e = 1;
                for (std::size_t d : p.shape) e *= d;
                n += e;
            }
    return n;
}

void Sequential::set_weight_dtype(DType dtype, std::vector<std::string>* unchanged) {
    for (Layer& layer : layers_)
        if (!modelkeep::set_weight_dtype(layer, dtype) && unchanged) unchanged->push_back(layer.spec.name);
}

DType Sequential::weight_dtype() const {
    for (const Layer& layer : layers_)
        if (layer.compact.active()) return layer.compact.dtype;
    return DType::f32;
}

std::uint64_t Sequential::memory_bytes() const {
    std::uint64_t n = 0;
    for (const Layer& layer : layers_) n += layer_bytes(layer);
    return n;
}

}  // namespace modelkeep
