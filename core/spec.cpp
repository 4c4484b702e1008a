#include "spec.hpp"

#include <cmath>
#include <cstdlib>
#include <unordered_set>

namespace modelkeep {

namespace {

std::string trim(const std::string& s) {
    std::size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) --e;
    return s.substr(b, e - b);
}

// Splits on commas outside parentheses; false on unbalanced parentheses.
bool split_top(const std::string& s, std::vector<std::string>& parts) {
    int depth = 0;
    std::string cur;
    for (char ch : s) {
        if (ch == '(') ++depth;
        if (ch == ')' && --depth < 0) return false;
        if (ch == ',' && depth == 0) {
            parts.push_back(trim(cur));
            cur.clear();
        } else {
            cur += ch;
        }
    }
    if (depth != 0) return false;
    parts.push_back(trim(cur));
    return true;
}

struct Arg {
    std::string key;  // empty for positional
    std::string value;
};

Status spec_error(const std::string& layer, const std::string& what) {
    return error(Code::invalid_spec, "in '" + layer + "': " + what);
}

bool parse_u64(const std::string& v, std::uint64_t& out) {
    if (v.empty() || v.size() > 19) return false;
    std::uint64_t n = 0;
    for (char ch : v) {
        if (ch < '0' || ch > '9') return false;
        n = n * 10 + std::uint64_t(ch - '0');
    }
    out = n;
    return true;
}

bool parse_int(const std::string& v, std::int32_t& out) {
    const bool neg = !v.empty() && v[0] == '-';
    std::uint64_t n;
    if (!parse_u64(neg ? v.substr(1) : v, n) || n > 1000) return false;
    out = neg ? -std::int32_t(n) : std::int32_t(n);
    return true;
}

bool parse_bool(const std::string& v, bool& out) {
    if (v == "true" || v == "True" || v == "1")
        out = true;
    else if (v == "false" || v == "False" || v == "0")
        out = false;
    else
        return false;
    return true;
}

std::string unquote(const std::string& v) {
    if (v.size() >= 2 && (v[0] == '\'' || v[0] == '"') && v.back() == v[0]) return v.substr(1, v.size() - 2);
    return v;
}

// Binds args to the kind's parameters: positional in `order`, then keywords.
Status bind_args(const std::string& text, const std::vector<Arg>& args, const std::vector<std::string>& order,
                 std::vector<std::pair<std::string, std::string>>& bound) {
    std::size_t pos = 0;
    bool seen_keyword = false;
    for (const Arg& a : args) {
        std::string key = a.key;
        if (key.empty()) {
            if (seen_keyword) return spec_error(text, "positional argument after a keyword argument");
            if (pos >= order.size())
                return spec_error(text, "too many arguments (at most " + std::to_string(order.size()) + ")");
            key = order[pos++];
        } else {
            seen_keyword = true;
            bool known = false;
            for (const auto& o : order) known = known || o == key;
            if (!known) return spec_error(text, "unknown argument '" + key + "'");
        }
        for (const auto& b : bound)
            if (b.first == key) return spec_error(text, "argument '" + key + "' given twice");
        bound.emplace_back(key, unquote(a.value));
    }
    return Status::success();
}

Status parse_layer(const std::string& text, std::size_t index, LayerSpec& spec) {
    std::string body = text;
    spec = LayerSpec{};
    spec.name = std::to_string(index);
    const std::size_t paren = body.find('(');
    const std::size_t eq = body.find('=');
    if (eq != std::string::npos && (paren == std::string::npos || eq < paren)) {
        spec.name = trim(body.substr(0, eq));
        body = trim(body.substr(eq + 1));
        if (!spec.name.empty() && !valid_layer_name(spec.name))  // "=Linear(1,1)": the root
            return error(Code::bad_name, "in '" + text + "': layer name '" + spec.name +
                                             "' is not segments of [A-Za-z0-9_] joined by '.'");
    }
    std::string kind_name = body;
    std::vector<Arg> args;
    const std::size_t open = body.find('(');
    if (open != std::string::npos) {
        if (body.back() != ')') return spec_error(text, "expected ')' at the end");
        kind_name = trim(body.substr(0, open));
        const std::string inner = trim(body.substr(open + 1, body.size() - open - 2));
        if (!inner.empty()) {
            std::vector<std::string> parts;
            if (!split_top(inner, parts)) return spec_error(text, "unbalanced parentheses");
            for (const std::string& p : parts) {
                if (p.empty()) return spec_error(text, "empty argument");
                const std::size_t e = p.find('=');
                if (e == std::string::npos)
                    args.push_back({"", p});
                else
                    args.push_back({trim(p.substr(0, e)), trim(p.substr(e + 1))});
            }
        }
    }
    if (!parse_layer_kind(kind_name, spec.kind))
        return error(Code::unknown_layer,
                     "in '" + text + "': unknown layer kind '" + kind_name + "' (known: " + known_layer_kinds() + ")");

    std::vector<std::string> order;
    switch (spec.kind) {
        case LayerKind::linear: order = {"in_features", "out_features", "bias"}; break;
        case LayerKind::leaky_relu: order = {"negative_slope"}; break;
        case LayerKind::gelu: order = {"approximate"}; break;
        case LayerKind::softmax:
        case LayerKind::log_softmax: order = {"dim"}; break;
        case LayerKind::dropout: order = {"p"}; break;
        case LayerKind::flatten: order = {"start_dim", "end_dim"}; break;
        case LayerKind::layer_norm: order = {"normalized_shape", "eps", "elementwise_affine", "bias"}; break;
        case LayerKind::batch_norm1d: order = {"num_features", "eps", "affine", "track_running_stats"}; break;
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::silu:
        case LayerKind::identity: break;  // no arguments
    }
    std::vector<std::pair<std::string, std::string>> bound;
    MK_TRY(bind_args(text, args, order, bound));
    bool have_in = false, have_out = false;
    for (const auto& [key, v] : bound) {
        bool ok = true;
        if (key == "in_features" || key == "normalized_shape" || key == "num_features") {
            ok = parse_u64(v, spec.in_features);
            have_in = true;
        } else if (key == "out_features") {
            ok = parse_u64(v, spec.out_features);
            have_out = true;
        } else if (key == "bias")
            ok = parse_bool(v, spec.bias);
        else if (key == "elementwise_affine" || key == "affine")
            ok = parse_bool(v, spec.affine);
        else if (key == "track_running_stats")
            ok = parse_bool(v, spec.track_running_stats);
        else if (key == "negative_slope")
            ok = parse_float(v, spec.slope);
        else if (key == "p")
            ok = parse_float(v, spec.p);
        else if (key == "eps")
            ok = parse_float(v, spec.eps);
        else if (key == "start_dim")
            ok = parse_int(v, spec.start_dim);
        else if (key == "end_dim")
            ok = parse_int(v, spec.end_dim);
        else if (key == "approximate") {
            if (v == "tanh")
                spec.tanh_approx = true;
            else if (v == "none")
                spec.tanh_approx = false;
            else
                ok = false;
        } else if (key == "dim") {
            std::int32_t d = 0;
            ok = parse_int(v, d);
            if (ok && d != -1) return spec_error(text, "only dim=-1 (the last dim) is supported");
        }
        if (!ok) return spec_error(text, "bad value '" + v + "' for " + key);
    }
    if (spec.kind == LayerKind::linear && !(have_in && have_out))
        return spec_error(text, "Linear needs in_features and out_features");
    if ((spec.kind == LayerKind::layer_norm || spec.kind == LayerKind::batch_norm1d) && !have_in)
        return spec_error(text, std::string(layer_kind_name(spec.kind)) + " needs its feature count");
    return validate_layer(spec);
}

}  // namespace

Status parse_spec(const std::string& text, std::vector<LayerSpec>& out) {
    if (text.size() > max_spec_bytes)
        return error(Code::limit_exceeded, "SPEC is " + std::to_string(text.size()) + " bytes, over the cap of " +
                                               std::to_string(max_spec_bytes));
    std::vector<std::string> parts;
    if (!split_top(text, parts)) return error(Code::invalid_spec, "unbalanced parentheses in SPEC");
    std::vector<LayerSpec> specs;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (parts[i].empty()) return error(Code::invalid_spec, "empty layer at position " + std::to_string(i));
        LayerSpec spec;
        MK_TRY(parse_layer(parts[i], i, spec));
        specs.push_back(std::move(spec));
    }
    out = std::move(specs);
    return Status::success();
}

std::string suggest_spec(const std::vector<std::pair<std::string, Shape>>& tensors) {
    std::unordered_set<std::string> names;  // a set: the hint must stay cheap on 65,536 tensors
    for (const auto& kv : tensors) names.insert(kv.first);
    std::string hint;
    for (const auto& [key, s] : tensors) {
        const std::size_t dot = key.rfind('.');
        const bool root = key == "weight";  // a bare module's state dict: the root layer
        if (!root && (dot == std::string::npos || key.compare(dot, std::string::npos, ".weight") != 0)) continue;
        const std::string layer = root ? std::string() : key.substr(0, dot);
        const bool bias = names.count(param_key(layer, "bias")) > 0;
        const bool stats = names.count(param_key(layer, "running_mean")) > 0;
        std::string one;
        if (s.size() == 2)
            one = layer + "=Linear(" + std::to_string(s[1]) + "," + std::to_string(s[0]) + (bias ? "" : ",bias=false") +
                  ")";
        else if (s.size() == 1)
            one = layer + (stats ? "=BatchNorm1d(" : "=LayerNorm(") + std::to_string(s[0]) + ")";
        if (one.empty()) continue;
        if (hint.size() > 300) {
            hint += ",...";
            break;
        }
        hint += (hint.empty() ? "" : ",") + one;
    }
    return hint;
}

std::string architecture_advice(const std::vector<std::pair<std::string, Shape>>& tensors) {
    const std::string hint = suggest_spec(tensors);
    return "Pass an architecture (SPEC)" +
           (hint.empty() ? std::string() : ", e.g. \"" + hint + "\" with the activations in between");
}

std::string format_layer(const LayerSpec& s) {
    const LayerSpec d;  // defaults
    std::vector<std::string> args;
    switch (s.kind) {
        case LayerKind::linear:
            args = {std::to_string(s.in_features), std::to_string(s.out_features)};
            if (!s.bias) args.push_back("bias=false");
            break;
        case LayerKind::leaky_relu:
            if (s.slope != d.slope) args.push_back(format_float(s.slope));
            break;
        case LayerKind::gelu:
            if (s.tanh_approx) args.push_back("tanh");
            break;
        case LayerKind::dropout:
            if (s.p != d.p) args.push_back(format_float(s.p));
            break;
        case LayerKind::flatten:
            if (s.start_dim != d.start_dim || s.end_dim != d.end_dim)
                args = {std::to_string(s.start_dim), std::to_string(s.end_dim)};
            break;
        case LayerKind::layer_norm:
        case LayerKind::batch_norm1d: {
            const bool ln = s.kind == LayerKind::layer_norm;
            args.push_back(std::to_string(s.in_features));
            if (s.eps != d.eps) args.push_back("eps=" + format_float(s.eps));
            if (!s.affine) args.push_back(ln ? "elementwise_affine=false" : "affine=false");
            if (ln && s.affine && !s.bias) args.push_back("bias=false");
            if (!ln && !s.track_running_stats) args.push_back("track_running_stats=false");
            break;
        }
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity: break;  // no arguments
    }
    std::string out = s.name + "=" + layer_kind_name(s.kind);
    if (!args.empty()) {
        out += "(";
        for (std::size_t i = 0; i < args.size(); ++i) out += (i ? "," : "") + args[i];
        out += ")";
    }
    return out;
}

std::string format_spec(const std::vector<LayerSpec>& specs) {
    std::string out;
    for (std::size_t i = 0; i < specs.size(); ++i) out += (i ? "," : "") + format_layer(specs[i]);
    return out;
}

}  // namespace modelkeep
