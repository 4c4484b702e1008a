#include "model.hpp"

#include "spec.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "gemm.hpp"
#include "packed.hpp"

namespace modelkeep {

Status validate_specs(const std::vector<LayerSpec>& specs) {
    if (specs.size() > max_layers)
        return error(Code::limit_exceeded,
                     std::to_string(specs.size()) + " layers, over the cap of " + std::to_string(max_layers));
    std::unordered_set<std::string> names;
    for (const LayerSpec& s : specs) {
        MK_TRY(validate_layer(s));
        if (s.name.empty() && specs.size() > 1)
            return error(Code::bad_name,
                         "a layer without a name is the root: the model's only layer (keys without "
                         "a prefix, as a bare nn.Linear's), but this model has " +
                             std::to_string(specs.size()) + " layers");
        if (!names.insert(s.name).second) return error(Code::duplicate_name, "two layers are named '" + s.name + "'");
    }
    // A layer cannot also be the parent module of another: torch could not hold both.
    for (const LayerSpec& s : specs)
        for (std::size_t dot = s.name.find('.'); dot != std::string::npos; dot = s.name.find('.', dot + 1))
            if (names.count(s.name.substr(0, dot)))
                return error(Code::bad_name,
                             "layer '" + s.name.substr(0, dot) + "' cannot also be the parent of '" + s.name + "'");
    return Status::success();
}

Status Sequential::create(const std::vector<LayerSpec>& specs, std::uint64_t seed, Sequential& out) {
    MK_TRY(validate_specs(specs));
    Rng rng(seed);
    Sequential model;
    model.layers_.reserve(specs.size());
    for (const LayerSpec& s : specs) model.layers_.push_back(make_layer(s, rng));
    out = std::move(model);
    return Status::success();
}

Sequential Sequential::from_parts(const std::vector<LayerSpec>& specs, std::vector<Param>&& params) {
    Sequential model;
    std::size_t next = 0;
    for (const LayerSpec& spec : specs) {
        Layer layer{spec, {}};
        for (std::size_t i = layer_params(spec).size(); i > 0; --i) layer.params.push_back(std::move(params[next++]));
        if (spec.kind == LayerKind::linear) layer.params[0].pack();  // float32: laid out for the kernels (packed.hpp)
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
    sd.reserve(state_dict_shapes().size());
    for_each_tensor([&](const std::string& key, const Tensor& t) { sd.emplace_back(key, t); });
    return sd;
}

std::vector<std::pair<std::string, Shape>> Sequential::state_dict_shapes() const {
    std::vector<std::pair<std::string, Shape>> out;
    for (const Layer& layer : layers_)
        for (const ParamInfo& p : layer_params(layer.spec))
            out.emplace_back(param_key(layer.spec.name, p.name), p.shape);
    return out;
}

static std::string join(const std::vector<std::string>& v, std::size_t most = 20) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < most; ++i) s += (s.empty() ? "" : ", ") + v[i];
    if (v.size() > most) s += ", ... (" + std::to_string(v.size()) + " in all)";
    return s;
}

static bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The SPEC with each layer named as the file names it, when the file's tensors,
// grouped by layer in file order, match the model's layer by layer (parameter
// names and shapes): "" otherwise.
static std::string renamed_spec(const std::vector<LayerSpec>& specs, const StateDict& sd) {
    // The file's layers: a key's last component off, in order of first appearance.
    std::vector<std::string> groups;
    std::unordered_map<std::string, std::size_t> group_of;
    for (const auto& kv : sd) {
        const std::size_t dot = kv.first.rfind('.');
        const std::string g = dot == std::string::npos ? std::string() : kv.first.substr(0, dot);
        if (group_of.emplace(g, groups.size()).second) groups.push_back(g);
    }
    std::unordered_map<std::string, const Tensor*> tensors;
    for (const auto& kv : sd) tensors.emplace(kv.first, &kv.second);
    std::vector<LayerSpec> renamed = specs;
    std::size_t next = 0;
    for (LayerSpec& s : renamed) {
        const std::vector<ParamInfo> params = layer_params(s);
        if (params.empty()) continue;
        if (next == groups.size()) return "";
        const std::string& g = groups[next++];
        for (const ParamInfo& p : params) {
            const auto it = tensors.find(param_key(g, p.name));
            if (it == tensors.end() || shape_of(*it->second) != p.shape) return "";
        }
        s.name = g;
    }
    if (next != groups.size()) return "";
    return format_spec(renamed);
}

// What a strict load's key error adds: the model's keys and the file's side by
// side, each with its shape, and the likely fix — a prefix on the file's keys,
// one on the model's, or layers named otherwise.
static std::string key_advice(const std::vector<LayerSpec>& specs, const LoadReport& report, const StateDict& sd) {
    std::string fix;
    const std::string prefix = key_prefix(report);
    if (!prefix.empty()) {
        fix = "the file's keys carry the prefix '" + prefix +
              "' (DataParallel, Lightning, torch.compile...): load with that prefix (--prefix " + prefix +
              ", { prefix: '" + prefix + "' })";
    } else if (!report.missing_keys.empty() && !sd.empty()) {
        // The model's keys carry a prefix the file's lack: every missing key is P + a file key.
        std::unordered_map<std::string, bool> in_file;
        for (const auto& kv : sd) in_file.emplace(kv.first, true);
        const std::string& first = report.missing_keys[0];
        for (const auto& kv : sd) {
            if (first.size() <= kv.first.size() || !ends_with(first, kv.first)) continue;
            const std::string p = first.substr(0, first.size() - kv.first.size());
            if (p.back() != '.') continue;
            bool all = true;
            for (const std::string& k : report.missing_keys)
                all = all && k.compare(0, p.size(), p) == 0 && in_file.count(k.substr(p.size()));
            if (all) {
                fix =
                    "the model's layer names start with '" + p + "', which the file's keys lack: drop it from the SPEC";
                break;
            }
        }
    }
    if (fix.empty()) {
        const std::string spec = renamed_spec(specs, sd);
        if (!spec.empty())
            fix =
                "the file's tensors match the model's layer by layer under other names: name the layers as the file "
                "does: " +
                spec;
    }
    std::vector<std::string> model_keys, file_keys;
    for (const LayerSpec& s : specs)
        for (const ParamInfo& p : layer_params(s))
            model_keys.push_back(param_key(s.name, p.name) + " " + shape_to_string(p.shape));
    for (const auto& kv : sd) file_keys.push_back(kv.first + " " + shape_to_string(shape_of(kv.second)));
    return ". The model expects: " + join(model_keys) + ". The file has: " + join(file_keys) +
           (fix.empty() ? std::string() : ". Likely fix: " + fix);
}

std::uint64_t param_count(const std::vector<LayerSpec>& specs) {
    std::uint64_t n = 0;
    for (const LayerSpec& s : specs)
        for (const ParamInfo& p : layer_params(s))
            if (!p.buffer) n += numel(p.shape);
    return n;
}

std::uint64_t state_elements(const std::vector<LayerSpec>& specs) {
    std::uint64_t n = 0;
    for (const LayerSpec& s : specs)
        for (const ParamInfo& p : layer_params(s)) n += numel(p.shape);
    return n;
}

// Bookkeeping beside the values: a layer's slot and its parameter list, a
// tensor's slot, and names and shape lists made on the way.
constexpr std::uint64_t layer_overhead = sizeof(Layer) + 1024, tensor_overhead = sizeof(Param) + 256;

std::uint64_t model_bytes(const std::vector<LayerSpec>& specs) {
    std::uint64_t tensors = 0;
    for (const LayerSpec& s : specs) tensors += layer_params(s).size();
    // Packing a Linear weight (packed.hpp) holds one block of it twice, for a moment.
    std::uint64_t pack = 0;
    for (const LayerSpec& s : specs)
        if (s.kind == LayerKind::linear)
            pack = std::max(pack, pack_scratch_bytes(std::size_t(s.out_features), std::size_t(s.in_features)));
    return state_elements(specs) * sizeof(float) + specs.size() * layer_overhead + tensors * tensor_overhead + pack;
}

Status match_state_dict(const std::vector<LayerSpec>& specs, const StateDict& sd, bool strict, LoadReport& report,
                        std::vector<std::size_t>& where) {
    report = LoadReport{};
    where.clear();
    std::unordered_map<std::string, std::size_t> index;  // key → position in sd
    for (std::size_t i = 0; i < sd.size(); ++i)
        if (!index.emplace(sd[i].first, i).second)
            return error(Code::duplicate_name, "tensor '" + sd[i].first + "' twice");
    std::vector<std::string> mismatches;
    std::vector<bool> used(sd.size(), false);
    for (const LayerSpec& s : specs)
        for (const ParamInfo& p : layer_params(s)) {
            const std::string key = param_key(s.name, p.name);
            const auto it = index.find(key);
            if (it == index.end()) {
                report.missing_keys.push_back(key);
                where.push_back(no_tensor);
                continue;
            }
            used[it->second] = true;
            where.push_back(it->second);
            const Shape have = shape_of(sd[it->second].second);
            if (have != p.shape)
                mismatches.push_back(key + ": file has " + shape_to_string(have) + ", model has " +
                                     shape_to_string(p.shape));
        }
    for (std::size_t i = 0; i < sd.size(); ++i)
        if (!used[i]) report.unexpected_keys.push_back(sd[i].first);
    if (!mismatches.empty()) return error(Code::shape_mismatch, "size mismatch for " + join(mismatches));
    if (strict && !report.missing_keys.empty())
        return error(Code::missing_key, "missing keys: " + join(report.missing_keys) + key_advice(specs, report, sd));
    if (strict && !report.unexpected_keys.empty())
        return error(Code::unexpected_key,
                     "unexpected keys: " + join(report.unexpected_keys) + key_advice(specs, report, sd));
    return Status::success();
}

Status take_prefix(StateDict& sd, const std::string& prefix) {
    if (prefix.empty()) return Status::success();
    StateDict under;
    for (auto& [key, t] : sd)
        if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0)
            under.emplace_back(key.substr(prefix.size()), std::move(t));
    if (under.empty()) return error(Code::missing_key, "no key of the file starts with the prefix '" + prefix + "'");
    sd = std::move(under);
    return Status::success();
}

std::string key_prefix(const LoadReport& report) {
    // Every missing key must be some unexpected key with the same prefix before it.
    if (report.missing_keys.empty() || report.unexpected_keys.empty()) return "";
    const std::string& m = report.missing_keys[0];
    std::unordered_set<std::string> unexpected(report.unexpected_keys.begin(), report.unexpected_keys.end());
    for (const std::string& u : report.unexpected_keys) {
        if (u.size() <= m.size() || u.compare(u.size() - m.size(), m.size(), m) != 0) continue;
        const std::string prefix = u.substr(0, u.size() - m.size());
        if (prefix.back() != '.') continue;
        bool all = true;
        for (const std::string& k : report.missing_keys) all = all && unexpected.count(prefix + k);
        if (all) return prefix;
    }
    return "";
}

Status Sequential::load_state_dict(const StateDict& sd, bool strict, LoadReport& report) {
    std::vector<std::size_t> where;
    MK_TRY(match_state_dict(specs(), sd, strict, report, where));
    std::size_t k = 0;
    for (Layer& layer : layers_)
        for (Param& p : layer.params) {
            const std::size_t i = where[k++];
            if (i != no_tensor) p.assign(sd[i].second);  // a compact weight is held in its dtype again if it can be
        }
    return Status::success();
}

Status Sequential::from_state_dict(const std::vector<LayerSpec>& specs, StateDict&& sd, Sequential& out) {
    MK_TRY(validate_specs(specs));
    LoadReport report;
    std::vector<std::size_t> where;
    MK_TRY(match_state_dict(specs, sd, true, report, where));
    std::vector<Param> params;
    params.reserve(where.size());
    for (const std::size_t i : where) params.emplace_back(std::move(sd[i].second));
    sd.clear();
    out = from_parts(specs, std::move(params));
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

std::uint64_t Sequential::forward_bytes(const Shape& x) const {
    // The walk forward makes: a layer that cannot run in place writes a new
    // tensor (a slot of ForwardBuffers, or y), and so does an element-wise
    // layer that comes first (from x into its own output).
    std::uint64_t outputs = 0, scratch = 0;
    Shape cur = x, next;
    bool written = false;
    Activation act;
    for (const Layer& layer : layers_) {
        if (!layer_output_shape(layer.spec, cur, next)) break;
        if (!written || !activation_of(layer.spec, act)) outputs += numel(next) * sizeof(float);
        if (layer.spec.kind == LayerKind::linear && !cur.empty()) {
            const std::uint64_t in = cur.back(), rows = in ? numel(cur) / in : 0;
            scratch =
                std::max(scratch, matmul_scratch_bytes(std::size_t(rows), std::size_t(in), layer.params[0].dtype()));
        }
        written = true;
        cur.swap(next);
    }
    if (layers_.empty()) outputs = numel(x) * sizeof(float);  // y is a copy of x
    // ForwardBuffers' slots (an empty tensor holds one value), the outputs,
    // and the scratch, which grows: the old beside the new, at most twice the largest.
    return layers_.size() * (sizeof(Tensor) + sizeof(float)) + outputs + 2 * scratch;
}

Status Sequential::forward(const Tensor& x, Tensor& y) const {
    ForwardBuffers buffers;
    return forward(x, y, buffers);
}

std::uint64_t Sequential::param_count() const { return modelkeep::param_count(specs()); }

void Sequential::set_weight_dtype(DType dtype, std::vector<std::string>* unchanged) {
    for (Layer& layer : layers_)
        if (!modelkeep::set_weight_dtype(layer, dtype) && unchanged) unchanged->push_back(layer.spec.name);
}

std::uint64_t Sequential::state_dict_bytes() const {
    // The values; per tensor its slot and key; per layer its parameter list, made on the way.
    std::uint64_t bytes = layers_.size() * 1024, rows = 0;
    for (const auto& [key, shape] : state_dict_shapes())
        bytes += numel(shape) * sizeof(float) + sizeof(NamedTensor) + key.size() + 64;
    // A packed or compact weight's rows are made in a scratch, one weight at a time (for_each_tensor).
    for (const Layer& layer : layers_)
        for (const Param& p : layer.params)
            if (p.is_packed() || p.is_compact()) rows = std::max(rows, numel(p.shape()) * sizeof(float));
    return bytes + rows;
}

std::uint64_t Sequential::set_weight_dtype_bytes(DType dtype) const {
    std::uint64_t most = 0;
    for (const Layer& layer : layers_)
        if (layer.spec.kind == LayerKind::linear) most = std::max(most, layer.params[0].set_dtype_bytes(dtype));
    return most;
}

DType Sequential::weight_dtype() const {
    for (const Layer& layer : layers_)
        for (const Param& p : layer.params)
            if (p.is_compact()) return p.dtype();
    return DType::f32;
}

std::uint64_t Sequential::memory_bytes() const {
    std::uint64_t n = 0;
    for (const Layer& layer : layers_) n += layer_bytes(layer);
    return n;
}

}  // namespace modelkeep
