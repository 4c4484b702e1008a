// torch_checkpoint.cpp — see torch_checkpoint.hpp: the optimizer state of a
// general checkpoint mapped onto optim.hpp's options and ParamState, and back.
#include "torch_checkpoint.hpp"

#include <cmath>
#include <cstring>

#include "decimal.hpp"
#include "torch_file.hpp"
#include "train.hpp"

namespace modelkeep {

namespace {

using Kind = Value::Kind;

const char* const group_name = "optimizer_state_dict['param_groups'][0]";
constexpr std::size_t max_group_keys = 64;

Status unsupported(const std::string& message) { return error(Code::unsupported_optimizer, message); }

std::string kind_text(Kind k) {
    switch (k) {
        case Kind::none: return "None";
        case Kind::boolean: return "a bool";
        case Kind::integer: return "an int";
        case Kind::floating: return "a float";
        case Kind::string: return "a string";
        case Kind::bytes: return "bytes";
        case Kind::tuple: return "a tuple";
        case Kind::list: return "a list";
        case Kind::dict: return "a dict";
        case Kind::set: return "a set";
        case Kind::global: return "a global";
        case Kind::storage: return "a storage";
        case Kind::tensor: return "a tensor";
        case Kind::module: return "a module";
    }
    return "a value";
}

bool is_number(const Value& v) { return v.kind == Kind::integer || v.kind == Kind::floating; }
double number(const Value& v) { return v.kind == Kind::integer ? double(v.integer) : v.floating; }

// The optimizer's parameter group, parsed: which keys it has, their values.
struct Group {
    const Value* params = nullptr;
    std::vector<std::pair<std::string, const Value*>> keys;
    const Value* get(const char* key) const {
        for (const auto& k : keys)
            if (k.first == key) return k.second;
        return nullptr;
    }
};

Status get_number(const Group& g, const char* key, double& out) {
    const Value* v = g.get(key);
    if (!v) return unsupported(std::string(group_name) + " lacks '" + key + "'");
    if (v->kind == Kind::tensor)
        return unsupported(std::string(group_name) + "['" + key +
                           "'] is a tensor (torch 2.x's tensor hyper-parameters are not supported)");
    if (!is_number(*v))
        return error(Code::bad_pickle,
                     std::string(group_name) + "['" + key + "'] is " + kind_text(v->kind) + ", not a number");
    out = number(*v);
    return Status();
}

Status get_flag(const Group& g, const char* key, bool& out) {
    const Value* v = g.get(key);
    if (!v) return unsupported(std::string(group_name) + " lacks '" + key + "'");
    if (v->kind != Kind::boolean)
        return error(Code::bad_pickle,
                     std::string(group_name) + "['" + key + "'] is " + kind_text(v->kind) + ", not a bool");
    out = v->boolean;
    return Status();
}

// The keys every optimizer may carry besides its options, accepted only with a
// value that leaves the math as modelkeep's single-tensor implementation does.
Status harmless_key(const std::string& key, const Value& v, std::size_t n, TorchCheckpoint& out, bool& known) {
    known = true;
    const std::string where = std::string(group_name) + "['" + key + "']";
    if (key == "foreach") {  // the multi-tensor implementation: the same values
        if (v.kind != Kind::none && v.kind != Kind::boolean) return error(Code::bad_pickle, where + " is not a bool");
        return Status();
    }
    if (key == "capturable" || key == "differentiable") {
        if (v.kind != Kind::boolean) return error(Code::bad_pickle, where + " is not a bool");
        if (v.boolean) return unsupported(where + " is True: modelkeep continues only the default (False)");
        return Status();
    }
    if (key == "fused") {
        if (v.kind != Kind::none && v.kind != Kind::boolean) return error(Code::bad_pickle, where + " is not a bool");
        if (v.kind == Kind::boolean && v.boolean)
            return unsupported(where + " is True: modelkeep continues only the default (None or False)");
        return Status();
    }
    if (key == "initial_lr") {  // set by an lr scheduler
        if (!is_number(v)) return error(Code::bad_pickle, where + " is " + kind_text(v.kind) + ", not a number");
        out.has_initial_lr = true;
        out.initial_lr = number(v);
        return Status();
    }
    if (key == "param_names") {  // torch >= 2.6 with named parameters
        if (v.kind != Kind::list || v.items.size() != n)
            return error(Code::bad_pickle, where + " is not a list of " + std::to_string(n) + " names");
        for (const auto& it : v.items)
            if (it->kind != Kind::string) return error(Code::bad_pickle, where + " holds a name that is not a string");
        return Status();
    }
    known = false;
    return Status();
}

// param_groups[0] → options (rules 4 and 5).
Status read_group(const Group& g, std::size_t n, const OptimizerOptions* hint, TorchCheckpoint& out) {
    OptimizerOptions& o = out.optimizer;
    std::vector<const char*> own;  // the optimizer's option keys
    if (g.get("betas")) {
        if (!g.get("amsgrad"))
            return unsupported(std::string(group_name) +
                               " has 'betas' but no 'amsgrad': not Adam or AdamW (Adamax, NAdam, RAdam, ... "
                               "are not supported)");
        const Value* d = g.get("decoupled_weight_decay");
        if (d && d->kind != Kind::boolean)
            return error(Code::bad_pickle, std::string(group_name) + "['decoupled_weight_decay'] is not a bool");
        const bool hinted = hint && (hint->kind == OptimizerKind::adam || hint->kind == OptimizerKind::adamw);
        if (hint && !hinted)
            return error(Code::invalid_argument, std::string("the checkpoint holds an Adam or AdamW state, but ") +
                                                     optimizer_name(hint->kind) + " was named");
        if (d) {
            o.kind = d->boolean ? OptimizerKind::adamw : OptimizerKind::adam;
            if (hinted && hint->kind != o.kind)
                return error(Code::invalid_argument,
                             std::string("the checkpoint holds an ") + optimizer_name(o.kind) +
                                 " state (decoupled_weight_decay=" + (d->boolean ? "True" : "False") + "), but " +
                                 optimizer_name(hint->kind) + " was named");
        } else if (hinted) {
            o.kind = hint->kind;
        } else {
            return error(Code::invalid_argument,
                         "the checkpoint's optimizer is Adam or AdamW (their states have the same keys; the file does "
                         "not say which): name it (the CLI's --optimizer adamw, JavaScript's { optimizer: 'adamw' })");
        }
        own = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"};
        const Value* betas = g.get("betas");
        if ((betas->kind != Kind::tuple && betas->kind != Kind::list) || betas->items.size() != 2)
            return error(Code::bad_pickle, std::string(group_name) + "['betas'] is not a pair");
        for (const auto& b : betas->items)
            if (!is_number(*b))
                return b->kind == Kind::tensor ? unsupported(std::string(group_name) + "['betas'] holds a tensor")
                                               : error(Code::bad_pickle, std::string(group_name) + "['betas'] holds " +
                                                                             kind_text(b->kind) + ", not a number");
        o.beta1 = number(*betas->items[0]);
        o.beta2 = number(*betas->items[1]);
        MK_TRY(get_number(g, "lr", o.lr));
        MK_TRY(get_number(g, "eps", o.eps));
        MK_TRY(get_number(g, "weight_decay", o.weight_decay));
        MK_TRY(get_flag(g, "amsgrad", o.amsgrad));
        MK_TRY(get_flag(g, "maximize", o.maximize));
    } else if (g.get("alpha") || g.get("centered")) {
        o.kind = OptimizerKind::rmsprop;
        own = {"lr", "momentum", "alpha", "eps", "centered", "weight_decay", "maximize"};
        MK_TRY(get_number(g, "lr", o.lr));
        MK_TRY(get_number(g, "momentum", o.momentum));
        MK_TRY(get_number(g, "alpha", o.alpha));
        MK_TRY(get_number(g, "eps", o.eps));
        MK_TRY(get_flag(g, "centered", o.centered));
        MK_TRY(get_number(g, "weight_decay", o.weight_decay));
        MK_TRY(get_flag(g, "maximize", o.maximize));
    } else if (g.get("dampening") || g.get("nesterov")) {
        o.kind = OptimizerKind::sgd;
        own = {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"};
        MK_TRY(get_number(g, "lr", o.lr));
        MK_TRY(get_number(g, "momentum", o.momentum));
        MK_TRY(get_number(g, "dampening", o.dampening));
        MK_TRY(get_number(g, "weight_decay", o.weight_decay));
        MK_TRY(get_flag(g, "nesterov", o.nesterov));
        MK_TRY(get_flag(g, "maximize", o.maximize));
    } else {
        std::string keys;
        for (const auto& k : g.keys) keys += (keys.empty() ? "" : ", ") + k.first;
        return unsupported("the checkpoint's optimizer is not SGD, Adam, AdamW or RMSprop (its options: " + keys + ")");
    }
    if (hint && hint->kind != o.kind && o.kind != OptimizerKind::adam && o.kind != OptimizerKind::adamw)
        return error(Code::invalid_argument, std::string("the checkpoint holds a ") + optimizer_name(o.kind) +
                                                 " state, but " + optimizer_name(hint->kind) + " was named");
    for (const auto& k : g.keys) {
        bool mine = false;
        for (const char* name : own) mine = mine || k.first == name;
        if (mine) continue;
        bool known = false;
        MK_TRY(harmless_key(k.first, *k.second, n, out, known));
        if (!known)
            return unsupported(std::string(group_name) + " has '" + k.first + "', which " + optimizer_name(o.kind) +
                               " as modelkeep runs it does not have");
    }
    return validate_options(o);
}

// A state entry's key → where its value goes (rule 6); "" for a known key the
// options do not use.
struct StateSlot {
    std::size_t param;
    std::string key;
    std::size_t ref;  // index in the extra refs
};

struct Parsed {
    std::vector<StateSlot> slots;  // tensors to read, in refs order
    std::vector<bool> has_entry;   // per parameter
    bool loss_tensor = false;
    std::size_t loss_ref = 0;
    std::size_t first_ref = 0;  // where the extra refs start
};

Status whole_step(const std::string& where, double v, std::int64_t& out) {
    if (!(v >= 0.0) || v != std::floor(v) || v > 9007199254740992.0)
        return unsupported(where + " is " + format_double(v) + ", not a whole number >= 0");
    out = std::int64_t(v);
    return Status();
}

Status read_optimizer(const Value& root, const OptimizerOptions* hint, TensorRefs& refs, TorchCheckpoint& out,
                      Parsed& parsed) {
    parsed.first_ref = refs.size();
    if (root.kind != Kind::dict) return Status();  // a bare state dict: weights only
    // Python keeps a repeated key's last value, this reader's get() its first: refused.
    for (const char* key : {"epoch", "loss", "optimizer_state_dict"}) {
        int count = 0;
        for (const auto& e : root.entries) count += e.first->kind == Kind::string && e.first->text == key;
        if (count > 1) return error(Code::duplicate_name, std::string("the checkpoint has '") + key + "' twice");
    }
    if (const Value* epoch = root.get("epoch"); epoch && epoch->kind == Kind::integer) {
        out.has_epoch = true;
        out.epoch = epoch->integer;
    }
    const Value* loss = root.get("loss");
    if (loss && is_number(*loss)) {
        out.has_loss = true;
        out.loss = number(*loss);
    }
    if (loss && loss->kind == Kind::tensor) {  // torch.save(..., 'loss': loss) without .item(): one value
        std::uint64_t count = 1;
        for (std::uint64_t d : loss->shape) count = d == 0 || count > max_tensor_elements ? 0 : count * d;
        if (count == 1) {
            parsed.loss_tensor = true;
            parsed.loss_ref = refs.size();
            refs.emplace_back("checkpoint['loss']", loss);
        }
    }
    const Value* opt = root.get("optimizer_state_dict");
    if (!opt) return Status();
    out.has_optimizer = true;
    if (opt->kind != Kind::dict) return error(Code::bad_pickle, "optimizer_state_dict is " + kind_text(opt->kind));
    const Value* state = opt->get("state");
    const Value* groups = opt->get("param_groups");
    if (!state || !groups || opt->entries.size() != 2 || state->kind != Kind::dict || groups->kind != Kind::list)
        return error(Code::bad_pickle, "optimizer_state_dict is not {'state': dict, 'param_groups': list}");
    if (groups->items.size() != 1)
        return unsupported("optimizer_state_dict has " + std::to_string(groups->items.size()) +
                           " param groups; modelkeep continues one (one set of options for every parameter)");
    const Value& group = *groups->items[0];
    if (group.kind != Kind::dict) return error(Code::bad_pickle, std::string(group_name) + " is not a dict");
    // torch's groups have about a dozen keys: a cap keeps the repeat check below cheap.
    if (group.entries.size() > max_group_keys)
        return error(Code::limit_exceeded, std::string(group_name) + " has " + std::to_string(group.entries.size()) +
                                               " keys (at most " + std::to_string(max_group_keys) + ")");
    Group g;
    for (const auto& e : group.entries) {
        if (e.first->kind != Kind::string)
            return error(Code::bad_pickle, std::string(group_name) + " has a non-string key");
        if ((e.first->text == "params" && g.params) || g.get(e.first->text.c_str()))
            return error(Code::duplicate_name, std::string(group_name) + " has '" + e.first->text + "' twice");
        if (e.first->text == "params")
            g.params = e.second.get();
        else
            g.keys.emplace_back(e.first->text, e.second.get());
    }
    if (!g.params || g.params->kind != Kind::list)
        return error(Code::bad_pickle, std::string(group_name) + "['params'] is missing or not a list");
    const std::size_t n = g.params->items.size();
    if (n > max_tensors)
        return error(Code::limit_exceeded, "the optimizer has " + std::to_string(n) + " parameters (at most " +
                                               std::to_string(max_tensors) + ")");
    for (std::size_t i = 0; i < n; ++i) {
        const Value& id = *g.params->items[i];
        if (id.kind != Kind::integer || id.integer != std::int64_t(i))
            return error(Code::bad_pickle,
                         std::string(group_name) + "['params'][" + std::to_string(i) + "] is " +
                             (id.kind == Kind::integer ? std::to_string(id.integer) : kind_text(id.kind)) + ", not " +
                             std::to_string(i) + " (the ids must be 0, 1, ..., n-1)");
    }
    MK_TRY(read_group(g, n, hint, out));
    out.params.assign(n, ParamState());
    out.state_shapes.assign(n, Shape());
    parsed.has_entry.assign(n, false);
    const OptimizerOptions& o = out.optimizer;
    const std::vector<const char*> wanted = state_keys(o);
    for (const auto& e : state->entries) {
        if (e.first->kind != Kind::integer || e.first->integer < 0 || std::uint64_t(e.first->integer) >= n)
            return error(Code::bad_pickle, "optimizer_state_dict['state'] has key " +
                                               (e.first->kind == Kind::integer ? std::to_string(e.first->integer)
                                                                               : kind_text(e.first->kind)) +
                                               ", not a parameter id in [0, " + std::to_string(n) + ")");
        const std::size_t i = std::size_t(e.first->integer);
        if (parsed.has_entry[i])
            return error(Code::duplicate_name,
                         "optimizer_state_dict['state'] has parameter " + std::to_string(i) + " twice");
        parsed.has_entry[i] = true;
        const std::string where = "optimizer_state_dict['state'][" + std::to_string(i) + "]";
        const Value& entry = *e.second;
        if (entry.kind != Kind::dict) return error(Code::bad_pickle, where + " is " + kind_text(entry.kind));
        for (const char* key : wanted) {
            if (entry.get(key)) continue;
            // SGD's buffer may be absent (torch 2.x stores nothing with momentum 0).
            if (o.kind == OptimizerKind::sgd) continue;
            return unsupported(where + " lacks '" + key + "'");
        }
        for (std::size_t k = 0; k < entry.entries.size(); ++k) {
            const auto& kv = entry.entries[k];
            if (kv.first->kind != Kind::string) return error(Code::bad_pickle, where + " has a non-string key");
            const std::string& key = kv.first->text;
            const Value& v = *kv.second;
            bool used = false;
            for (const char* name : wanted) used = used || key == name;
            const bool unused_known =
                !used && (o.kind == OptimizerKind::adam || o.kind == OptimizerKind::adamw) && key == "max_exp_avg_sq";
            if (!used && !unused_known)
                return unsupported(where + " has '" + key + "', which " + optimizer_name(o.kind) +
                                   " with these options does not keep");
            // Known keys only get here (at most five distinct): a repeat is found within six.
            for (std::size_t j = 0; j < k; ++j)
                if (entry.entries[j].first->text == key)
                    return error(Code::duplicate_name, where + " has '" + key + "' twice");
            if (unused_known) continue;
            if (key == "step") {
                if (v.kind == Kind::integer || v.kind == Kind::floating) {
                    MK_TRY(whole_step(where + "['step']", number(v), out.params[i].step));
                    continue;
                }
                if (v.kind != Kind::tensor || !v.shape.empty())
                    return unsupported(where + "['step'] is " + kind_text(v.kind) + ", not an int or a 0-d tensor");
                parsed.slots.push_back({i, key, refs.size()});
                refs.emplace_back(where + "['step']", &v);
                continue;
            }
            if (o.kind == OptimizerKind::sgd && key == "momentum_buffer" && v.kind == Kind::none) {
                // None: no buffer yet (has_momentum_buffer stays false)
                continue;
            }
            if (v.kind != Kind::tensor)
                return error(Code::bad_pickle, where + "['" + key + "'] is " + kind_text(v.kind) + ", not a tensor");
            if (o.kind == OptimizerKind::sgd && o.momentum == 0.0) continue;  // not used by the math
            parsed.slots.push_back({i, key, refs.size()});
            refs.emplace_back(where + "['" + key + "']", &v);
        }
    }
    return Status();
}

// The tensors read (rule 7) into each ParamState.
Status fill_states(const TorchFile& file, const Parsed& parsed, TorchCheckpoint& out) {
    if (parsed.loss_tensor) {
        out.has_loss = true;
        out.loss = double(file.tensors[parsed.loss_ref].second.data()[0]);
    }
    if (!out.has_optimizer) return Status();
    std::vector<bool> shaped(out.params.size(), false);
    for (const StateSlot& s : parsed.slots) {
        const TorchTensorInfo& info = file.infos[s.ref];
        const Tensor& t = file.tensors[s.ref].second;
        ParamState& st = out.params[s.param];
        const std::string& where = file.tensors[s.ref].first;
        if (s.key == "step") {
            if (info.dtype != StorageType::f32 && info.dtype != StorageType::i64)
                return error(Code::unsupported_tensor,
                             where + " is " + storage_dtype_name(info.dtype) + " (float32 or int64 is read)");
            MK_TRY(whole_step(where, double(t.data()[0]), st.step));
            continue;
        }
        if (info.dtype != StorageType::f32)
            return error(Code::unsupported_tensor, where + " is " + storage_dtype_name(info.dtype) +
                                                       ", not float32: modelkeep continues float32 training only");
        if (!shaped[s.param]) {
            out.state_shapes[s.param] = info.shape;
            shaped[s.param] = true;
        } else if (out.state_shapes[s.param] != info.shape) {
            return error(Code::shape_mismatch, where + " is " + shape_to_string(info.shape) +
                                                   " but the parameter's other state is " +
                                                   shape_to_string(out.state_shapes[s.param]));
        }
        std::vector<float>* buf = state_buffer(st, s.key);
        if (!buf) return unsupported(where + ": a state modelkeep does not keep");  // not reached: keys checked
        buf->assign(t.data(), t.data() + t.size());
        if (s.key == "momentum_buffer") st.has_momentum_buffer = true;
    }
    for (std::size_t i = 0; i < out.params.size(); ++i) {
        ParamState& st = out.params[i];
        if (out.optimizer.kind == OptimizerKind::sgd && parsed.has_entry[i]) st.step = 1;
    }
    return Status();
}

std::string tensor_text(const Tensor& t) { return t.size() == 1 ? format_double(double(t.data()[0])) : ""; }

}  // namespace

Status read_torch_checkpoint(const ByteSource& source, const OptimizerOptions* kind_hint, TorchCheckpoint& out) {
    out = TorchCheckpoint();
    Parsed parsed;
    TorchFile file;
    const ExtraTensors extra = [&](const Value& root, TensorRefs& refs) {
        return read_optimizer(root, kind_hint, refs, out, parsed);
    };
    MK_TRY(read_torch(source, true, file, "", extra));
    MK_TRY(fill_states(file, parsed, out));
    out.source = file.source;
    out.globals = file.globals;
    for (const auto& kv : file.extras)
        if (kv.first != "epoch" || !out.has_epoch) out.metadata.push_back(kv);
    if (parsed.loss_tensor) out.metadata.emplace_back("loss", tensor_text(file.tensors[parsed.loss_ref].second));
    file.tensors.resize(file.model_tensors);
    out.model = std::move(file.tensors);
    return Status();
}

Status check_torch_optimizer_state(const TorchCheckpoint& c, const std::vector<Tensor>& params) {
    if (!c.has_optimizer) return Status();
    if (c.params.size() != params.size())
        return error(Code::shape_mismatch, "the checkpoint's optimizer has " + std::to_string(c.params.size()) +
                                               " parameters but the model has " + std::to_string(params.size()));
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (c.state_shapes[i].empty() && c.params[i].step == 0) continue;
        const Shape shape = shape_of(params[i]);
        if (!c.state_shapes[i].empty() && c.state_shapes[i] != shape)
            return error(Code::shape_mismatch, "the optimizer state of parameter " + std::to_string(i) + " is " +
                                                   shape_to_string(c.state_shapes[i]) + " but the parameter is " +
                                                   shape_to_string(shape));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
        ParamState& st = const_cast<ParamState&>(c.params[i]);  // state_buffer only reads here
        for (const char* key : state_keys(c.optimizer)) {
            const std::vector<float>* buf = state_buffer(st, key);
            if (buf && !buf->empty() && buf->size() != params[i].size())
                return error(Code::shape_mismatch, "the optimizer state of parameter " + std::to_string(i) + ": " +
                                                       key + " holds " + std::to_string(buf->size()) +
                                                       " values but the parameter has " +
                                                       std::to_string(params[i].size()));
        }
    }
    return Status();
}

Status torch_training_state(const TorchCheckpoint& c, const Sequential& model, TrainingState& state) {
    if (!c.has_optimizer) return error(Code::invalid_argument, "the checkpoint holds no optimizer_state_dict");
    std::vector<Tensor> params;
    MK_TRY(parameters_of(model, params));
    MK_TRY(check_torch_optimizer_state(c, params));
    state.options.optimizer = c.optimizer;
    state.params = c.params;
    if (c.has_epoch) state.epoch = c.epoch;
    state.metadata = c.metadata;
    return Status();
}

Status write_torch_checkpoint(const Sequential& model, const TrainingState& state, std::vector<std::uint8_t>& out) {
    const OptimizerOptions& o = state.options.optimizer;
    MK_TRY(validate_options(o));
    std::vector<Tensor> params;
    MK_TRY(parameters_of(model, params));
    if (state.params.size() != params.size())
        return error(Code::shape_mismatch, "the training state has " + std::to_string(state.params.size()) +
                                               " parameter states but the model has " + std::to_string(params.size()) +
                                               " parameters");
    const std::vector<const char*> keys = state_keys(o);
    for (std::size_t i = 0; i < params.size(); ++i) {
        const ParamState& st = state.params[i];
        if (st.step < 0) return error(Code::invalid_argument, "parameter " + std::to_string(i) + "'s step is negative");
        if (st.step == 0) continue;
        for (const char* key : keys) {
            const std::vector<float>* buf = state_buffer(const_cast<ParamState&>(st), key);
            if (!buf) continue;
            const bool optional = o.kind == OptimizerKind::sgd && (o.momentum == 0.0 || !st.has_momentum_buffer);
            if (optional) continue;
            if (buf->size() != params[i].size())
                return error(Code::shape_mismatch, "the optimizer state of parameter " + std::to_string(i) + ": " +
                                                       key + " holds " + std::to_string(buf->size()) +
                                                       " values but the parameter has " +
                                                       std::to_string(params[i].size()));
        }
    }
    bool has_loss = false;
    double loss = 0.0;
    for (const auto& kv : state.metadata)
        if (kv.first == "loss") {
            if (!parse_double(kv.second, loss))
                return error(Code::invalid_argument, "metadata loss '" + kv.second + "' is not a number");
            has_loss = true;
        }

    PickleWriter p;
    std::vector<std::vector<std::uint8_t>> storages;
    p.op(0x80);
    p.op(2);
    p.op('}');
    p.op('(');
    p.str("epoch");
    p.int64(state.epoch);
    p.str("model_state_dict");
    MK_TRY(pickle_state_dict(model.state_dict(), DType::f32, p, storages));
    p.str("optimizer_state_dict");
    p.op('}');
    p.op('(');
    p.str("state");
    p.op('}');
    bool any = false;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const ParamState& st = state.params[i];
        if (st.step == 0) continue;
        if (!any) p.op('(');
        any = true;
        p.integer(i);
        p.op('}');
        p.op('(');
        const Shape shape = shape_of(params[i]);
        const auto buffer = [&](const char* key, const std::vector<float>& v) {
            p.str(key);
            storages.emplace_back(v.size() * 4);
            if (!v.empty()) std::memcpy(storages.back().data(), v.data(), v.size() * 4);
            p.tensor("FloatStorage", std::to_string(storages.size() - 1), v.size(), shape);
        };
        for (const char* key : keys) {
            if (!std::strcmp(key, "step")) {
                p.str("step");
                if (o.kind == OptimizerKind::rmsprop) {
                    p.int64(st.step);
                } else {  // Adam, AdamW: a 0-d float32 tensor
                    const float f = float(st.step);
                    storages.emplace_back(4);
                    std::memcpy(storages.back().data(), &f, 4);
                    p.tensor("FloatStorage", std::to_string(storages.size() - 1), 1, Shape());
                }
                continue;
            }
            const std::vector<float>* buf = state_buffer(const_cast<ParamState&>(st), key);
            if (o.kind == OptimizerKind::sgd && (o.momentum == 0.0 || !st.has_momentum_buffer)) {
                p.str(key);
                p.none();
                continue;
            }
            buffer(key, *buf);
        }
        p.op('u');
    }
    if (any) p.op('u');
    p.str("param_groups");
    p.op(']');
    p.op('(');
    p.op('}');
    p.op('(');
    const bool scheduled = state.options.has_scheduler;
    const auto opt_number = [&](const char* key, double v) {  // PyTorch's int defaults stay ints
        p.str(key);
        if (v == 0.0 && !std::signbit(v))
            p.integer(0);
        else
            p.floating(v);
    };
    const auto real = [&](const char* key, double v) {
        p.str(key);
        p.floating(v);
    };
    const auto flag = [&](const char* key, bool v) {
        p.str(key);
        p.boolean(v);
    };
    const auto none = [&](const char* key) {
        p.str(key);
        p.none();
    };
    real("lr", scheduled ? state.scheduler.lr : o.lr);
    switch (o.kind) {
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            p.str("betas");
            p.op('(');
            p.floating(o.beta1);
            p.floating(o.beta2);
            p.op('t');
            real("eps", o.eps);
            if (o.kind == OptimizerKind::adam)
                opt_number("weight_decay", o.weight_decay);
            else
                real("weight_decay", o.weight_decay);
            flag("amsgrad", o.amsgrad);
            if (o.kind == OptimizerKind::adam) {
                flag("maximize", o.maximize);
                none("foreach");
                flag("capturable", false);
                flag("differentiable", false);
                flag("fused", false);
            } else {
                none("foreach");
                flag("maximize", o.maximize);
                flag("capturable", false);
            }
            break;
        case OptimizerKind::sgd:
            opt_number("momentum", o.momentum);
            opt_number("dampening", o.dampening);
            opt_number("weight_decay", o.weight_decay);
            flag("nesterov", o.nesterov);
            flag("maximize", o.maximize);
            none("foreach");
            flag("differentiable", false);
            break;
        case OptimizerKind::rmsprop:
            opt_number("momentum", o.momentum);
            real("alpha", o.alpha);
            real("eps", o.eps);
            flag("centered", o.centered);
            opt_number("weight_decay", o.weight_decay);
            none("foreach");
            flag("maximize", o.maximize);
            flag("differentiable", false);
            break;
    }
    if (scheduled) real("initial_lr", state.scheduler.base_lr);
    p.str("params");
    p.op(']');
    if (!params.empty()) {
        p.op('(');
        for (std::size_t i = 0; i < params.size(); ++i) p.integer(i);
        p.op('e');
    }
    p.op('u');  // the group
    p.op('e');  // the list of groups
    p.op('u');  // optimizer_state_dict
    if (has_loss) {
        p.str("loss");
        p.floating(loss);
    }
    p.op('u');
    p.op('.');
    write_torch_archive(p.out, storages, out);
    return Status();
}

}  // namespace modelkeep
