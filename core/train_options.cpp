// The options as text (trainer.hpp's grammar), loss_name and validate_loss.
//
//   text  := name [ "(" [ arg { "," arg } ] ")" ]
//   arg   := key "=" value
//   value := number | word | "(" numbers ")" | "[" numbers "]"      numbers: comma-separated
//
// Spaces are allowed between tokens. Numbers are decimal.hpp's parse_double
// (what strtod reads, decimal only: no hex, inf or nan); booleans true / false
// (any case); words are the reductions. Text over max_option_text bytes and lists
// over max_option_list values are refused before anything is parsed.
#include <cctype>
#include <cmath>

#include "decimal.hpp"
#include "trainer.hpp"

namespace modelkeep {

namespace {

constexpr std::size_t max_option_text = 4096;
constexpr std::size_t max_option_list = 65536;

struct Arg {
    std::string key;   // lower case
    std::string text;  // the value as written (a number, a word)
    bool list = false;
    std::vector<std::string> items;  // a list's numbers, as written
};

struct Call {
    std::string name;  // lower case
    std::vector<Arg> args;
};

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Status bad(const std::string& what, const std::string& message) {
    return error(Code::invalid_hyperparameter, what + ": " + message);
}

bool word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '+';
}

class Lexer {
public:
    explicit Lexer(const std::string& s) : s_(s) {}
    void space() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    bool eat(char c) {
        space();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    std::string word() {
        space();
        const std::size_t b = i_;
        while (i_ < s_.size() && word_char(s_[i_])) ++i_;
        return s_.substr(b, i_ - b);
    }
    bool done() {
        space();
        return i_ == s_.size();
    }

private:
    const std::string& s_;
    std::size_t i_ = 0;
};

Status parse_call(const std::string& text, const char* what, Call& out) {
    if (text.size() > max_option_text)
        return bad(what,
                   "the text is " + std::to_string(text.size()) + " bytes, over " + std::to_string(max_option_text));
    Lexer lx(text);
    out.name = lower(lx.word());
    if (out.name.empty()) return bad(what, "no name in '" + text + "'");
    if (lx.eat('(')) {
        if (!lx.eat(')')) {
            do {
                Arg a;
                a.key = lower(lx.word());
                if (a.key.empty() || !lx.eat('=')) return bad(what, "expected key=value in '" + text + "'");
                for (const Arg& b : out.args)
                    if (b.key == a.key) return bad(what, "option " + a.key + " given twice");
                const char open = lx.eat('(') ? '(' : lx.eat('[') ? '[' : 0;
                if (open) {
                    const char close = open == '(' ? ')' : ']';
                    a.list = true;
                    if (!lx.eat(close)) {
                        do {
                            if (a.items.size() == max_option_list)
                                return bad(what, a.key + " has over " + std::to_string(max_option_list) + " values");
                            const std::string n = lx.word();
                            double v = 0.0;
                            if (!parse_double(n, v)) return bad(what, a.key + ": '" + n + "' is not a number");
                            a.items.push_back(n);
                        } while (lx.eat(','));
                        if (!lx.eat(close)) return bad(what, a.key + ": expected '" + std::string(1, close) + "'");
                    }
                } else {
                    a.text = lx.word();
                    if (a.text.empty()) return bad(what, "option " + a.key + " has no value");
                }
                out.args.push_back(std::move(a));
            } while (lx.eat(','));
            if (!lx.eat(')')) return bad(what, "expected ',' or ')' in '" + text + "'");
        }
    }
    if (!lx.done()) return bad(what, "unexpected text after the options in '" + text + "'");
    return Status::success();
}

// The accepted keys of one name, and readers of the values.
struct Keys {
    const char* what;  // "optimizer Adam"
    std::vector<const char*> keys;

    Status check(const Call& c) const {
        for (const Arg& a : c.args) {
            bool known = false;
            for (const char* k : keys) known = known || lower(k) == a.key;
            if (!known) {
                std::string list;
                for (const char* k : keys) list += std::string(list.empty() ? "" : ", ") + k;
                return bad(what, "unknown option '" + a.key + "' (accepted: " + list + ")");
            }
        }
        return Status::success();
    }
};

const Arg* find(const Call& c, const char* key) {
    const std::string k = lower(key);
    for (const Arg& a : c.args)
        if (a.key == k) return &a;
    return nullptr;
}

Status number(const Call& c, const char* key, double& out) {
    const Arg* a = find(c, key);
    if (a == nullptr) return Status::success();
    if (a->list || !parse_double(a->text, out)) return bad(key, "'" + a->text + "' is not a number");
    return Status::success();
}

Status integer(const Call& c, const char* key, std::int64_t& out) {
    const Arg* a = find(c, key);
    if (a == nullptr) return Status::success();
    double v = 0.0;
    if (a->list || !parse_double(a->text, v) || std::floor(v) != v || std::fabs(v) > 9.0e15)
        return bad(key, "'" + a->text + "' is not an integer");
    out = std::int64_t(v);
    return Status::success();
}

Status boolean(const Call& c, const char* key, bool& out) {
    const Arg* a = find(c, key);
    if (a == nullptr) return Status::success();
    const std::string v = lower(a->text);
    if (a->list || (v != "true" && v != "false")) return bad(key, "'" + a->text + "' is not true or false");
    out = v == "true";
    return Status::success();
}

Status floats(const Call& c, const char* key, std::vector<float>& out) {
    const Arg* a = find(c, key);
    if (a == nullptr) return Status::success();
    if (!a->list) return bad(key, "expected a list [w0, w1, ...]");
    out.resize(a->items.size());
    for (std::size_t i = 0; i < out.size(); ++i)
        if (!parse_float(a->items[i], out[i])) return bad(key, "'" + a->items[i] + "' is not a float32 number");
    return Status::success();
}

Status require(const Call& c, const char* key, const char* what) {
    if (find(c, key) == nullptr) return bad(what, std::string("the option ") + key + " is required");
    return Status::success();
}

// Matches a snake_case name or a PyTorch class name (lower-cased text).
bool named(const std::string& name, const char* snake, const char* torch) {
    return name == snake || name == lower(torch);
}

std::string num(double v) { return format_double(v); }
std::string flag(bool v) { return v ? "true" : "false"; }
std::string list(const std::vector<float>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_float(v[i]);
    return s + "]";
}

}  // namespace

const char* loss_name(LossKind kind) {
    switch (kind) {
#define MODELKEEP_X(name, torch_name) \
    case LossKind::name: return torch_name;
        MODELKEEP_LOSSES(MODELKEEP_X)
#undef MODELKEEP_X
    }
    return "unknown";
}

Status validate_loss(const LossOptions& o) {
    const LossOptions d;
    const LossKind k = o.kind;
    const std::string who = loss_name(k);
    auto foreign = [&](const char* option) {
        return error(Code::invalid_hyperparameter, std::string(option) + " is not an option of " + who);
    };
    if (k != LossKind::smooth_l1 && o.beta != d.beta) return foreign("beta");
    if (k != LossKind::huber && o.delta != d.delta) return foreign("delta");
    if (k != LossKind::cross_entropy && k != LossKind::nll && o.ignore_index != d.ignore_index)
        return foreign("ignore_index");
    if (k != LossKind::cross_entropy && o.label_smoothing != d.label_smoothing) return foreign("label_smoothing");
    if ((k == LossKind::mse || k == LossKind::l1 || k == LossKind::smooth_l1 || k == LossKind::huber) &&
        !o.weight.empty())
        return foreign("weight");
    if (k != LossKind::bce_with_logits && !o.pos_weight.empty()) return foreign("pos_weight");
    if (!(o.beta >= 0.0) || !std::isfinite(o.beta))
        return error(Code::invalid_hyperparameter, "beta must be >= 0 (SmoothL1Loss)");
    if (!(o.delta > 0.0) || !std::isfinite(o.delta))
        return error(Code::invalid_hyperparameter, "delta must be > 0 (HuberLoss)");
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
        return error(Code::invalid_hyperparameter, "label_smoothing must be in [0, 1]");
    if (o.weight.size() > max_option_list || o.pos_weight.size() > max_option_list)
        return error(Code::invalid_hyperparameter, "weight and pos_weight hold at most 65536 values");
    return Status::success();
}

Status parse_optimizer(const std::string& text, OptimizerOptions& out) {
    Call c;
    MK_TRY(parse_call(text, "optimizer", c));
    OptimizerOptions o;
    if (named(c.name, "sgd", "SGD")) {
        MK_TRY(
            (Keys{"optimizer SGD", {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"}}.check(c)));
        MK_TRY(require(c, "lr", "optimizer SGD"));
        o = sgd_options(0.0);
    } else if (named(c.name, "adam", "Adam") || named(c.name, "adamw", "AdamW")) {
        const bool w = c.name == "adamw";
        MK_TRY((Keys{w ? "optimizer AdamW" : "optimizer Adam",
                     {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"}}
                    .check(c)));
        o = w ? adamw_options() : adam_options();
    } else if (named(c.name, "rmsprop", "RMSprop")) {
        MK_TRY((
            Keys{"optimizer RMSprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"}}.check(
                c)));
        o = rmsprop_options();
    } else {
        return bad("optimizer", "unknown optimizer '" + c.name + "' (accepted: sgd, adam, adamw, rmsprop)");
    }
    MK_TRY(number(c, "lr", o.lr));
    MK_TRY(number(c, "momentum", o.momentum));
    MK_TRY(number(c, "dampening", o.dampening));
    MK_TRY(number(c, "weight_decay", o.weight_decay));
    MK_TRY(boolean(c, "nesterov", o.nesterov));
    MK_TRY(boolean(c, "maximize", o.maximize));
    MK_TRY(number(c, "eps", o.eps));
    MK_TRY(boolean(c, "amsgrad", o.amsgrad));
    MK_TRY(number(c, "alpha", o.alpha));
    MK_TRY(boolean(c, "centered", o.centered));
    if (const Arg* b = find(c, "betas")) {
        if (!b->list || b->items.size() != 2 || !parse_double(b->items[0], o.beta1) ||
            !parse_double(b->items[1], o.beta2))
            return bad("betas", "expected two numbers, (beta1, beta2)");
    }
    MK_TRY(validate_options(o));
    out = o;
    return Status::success();
}

Status parse_loss(const std::string& text, LossOptions& out) {
    Call c;
    MK_TRY(parse_call(text, "loss", c));
    LossOptions o;
    bool found = false;
#define MODELKEEP_X(id, torch_name)                 \
    if (!found && named(c.name, #id, torch_name)) { \
        o.kind = LossKind::id;                      \
        found = true;                               \
    }
    MODELKEEP_LOSSES(MODELKEEP_X)
#undef MODELKEEP_X
    if (!found)
        return bad("loss", "unknown loss '" + c.name +
                               "' (accepted: mse, l1, smooth_l1, huber, cross_entropy, nll, bce_with_logits, bce)");
    std::vector<const char*> keys = {"reduction"};
    switch (o.kind) {
        case LossKind::mse:
        case LossKind::l1: break;
        case LossKind::smooth_l1: keys.push_back("beta"); break;
        case LossKind::huber: keys.push_back("delta"); break;
        case LossKind::cross_entropy: keys.insert(keys.end(), {"weight", "ignore_index", "label_smoothing"}); break;
        case LossKind::nll: keys.insert(keys.end(), {"weight", "ignore_index"}); break;
        case LossKind::bce_with_logits: keys.insert(keys.end(), {"weight", "pos_weight"}); break;
        case LossKind::bce: keys.push_back("weight"); break;
    }
    const std::string what = std::string("loss ") + loss_name(o.kind);
    MK_TRY((Keys{what.c_str(), keys}.check(c)));
    if (const Arg* r = find(c, "reduction")) {
        if (r->list) return bad("reduction", "expected none, mean or sum");
        MK_TRY(parse_reduction(lower(r->text), o.reduction));
    }
    MK_TRY(number(c, "beta", o.beta));
    MK_TRY(number(c, "delta", o.delta));
    MK_TRY(integer(c, "ignore_index", o.ignore_index));
    MK_TRY(number(c, "label_smoothing", o.label_smoothing));
    MK_TRY(floats(c, "weight", o.weight));
    MK_TRY(floats(c, "pos_weight", o.pos_weight));
    MK_TRY(validate_loss(o));
    out = o;
    return Status::success();
}

Status parse_scheduler(const std::string& text, SchedulerOptions& out) {
    Call c;
    MK_TRY(parse_call(text, "scheduler", c));
    SchedulerOptions o;
    if (named(c.name, "step_lr", "StepLR")) {
        MK_TRY((Keys{"scheduler StepLR", {"step_size", "gamma"}}.check(c)));
        MK_TRY(require(c, "step_size", "scheduler StepLR"));
        o.kind = SchedulerKind::step_lr;
    } else if (named(c.name, "cosine_annealing_lr", "CosineAnnealingLR")) {
        MK_TRY((Keys{"scheduler CosineAnnealingLR", {"T_max", "eta_min"}}.check(c)));
        MK_TRY(require(c, "T_max", "scheduler CosineAnnealingLR"));
        o.kind = SchedulerKind::cosine_annealing_lr;
    } else if (named(c.name, "linear_lr", "LinearLR")) {
        MK_TRY((Keys{"scheduler LinearLR", {"start_factor", "end_factor", "total_iters"}}.check(c)));
        o.kind = SchedulerKind::linear_lr;
    } else {
        return bad("scheduler",
                   "unknown scheduler '" + c.name + "' (accepted: step_lr, cosine_annealing_lr, linear_lr)");
    }
    MK_TRY(integer(c, "step_size", o.step_size));
    MK_TRY(number(c, "gamma", o.gamma));
    MK_TRY(integer(c, "T_max", o.T_max));
    MK_TRY(number(c, "eta_min", o.eta_min));
    MK_TRY(number(c, "start_factor", o.start_factor));
    MK_TRY(number(c, "end_factor", o.end_factor));
    MK_TRY(integer(c, "total_iters", o.total_iters));
    LrScheduler check;
    MK_TRY(LrScheduler::create(o, 1.0, check));  // the schedule's own checks
    out = o;
    return Status::success();
}

std::string optimizer_text(const OptimizerOptions& o) {
    const std::string tail = ", weight_decay=" + num(o.weight_decay) + ", maximize=" + flag(o.maximize) + ")";
    switch (o.kind) {
        case OptimizerKind::sgd:
            return "sgd(lr=" + num(o.lr) + ", momentum=" + num(o.momentum) + ", dampening=" + num(o.dampening) +
                   ", nesterov=" + flag(o.nesterov) + tail;
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            return std::string(o.kind == OptimizerKind::adam ? "adam" : "adamw") + "(lr=" + num(o.lr) + ", betas=(" +
                   num(o.beta1) + ", " + num(o.beta2) + "), eps=" + num(o.eps) + ", amsgrad=" + flag(o.amsgrad) + tail;
        case OptimizerKind::rmsprop:
            return "rmsprop(lr=" + num(o.lr) + ", alpha=" + num(o.alpha) + ", eps=" + num(o.eps) +
                   ", momentum=" + num(o.momentum) + ", centered=" + flag(o.centered) + tail;
    }
    return "";
}

std::string loss_text(const LossOptions& o) {
    std::string s;
    switch (o.kind) {
#define MODELKEEP_X(name, torch_name) \
    case LossKind::name: s = #name; break;
        MODELKEEP_LOSSES(MODELKEEP_X)
#undef MODELKEEP_X
    }
    s += std::string("(reduction=") + reduction_name(o.reduction);
    switch (o.kind) {
        case LossKind::mse:
        case LossKind::l1: break;
        case LossKind::smooth_l1: s += ", beta=" + num(o.beta); break;
        case LossKind::huber: s += ", delta=" + num(o.delta); break;
        case LossKind::cross_entropy:
            s += ", ignore_index=" + std::to_string(o.ignore_index) + ", label_smoothing=" + num(o.label_smoothing) +
                 ", weight=" + list(o.weight);
            break;
        case LossKind::nll:
            s += ", ignore_index=" + std::to_string(o.ignore_index) + ", weight=" + list(o.weight);
            break;
        case LossKind::bce_with_logits: s += ", weight=" + list(o.weight) + ", pos_weight=" + list(o.pos_weight); break;
        case LossKind::bce: s += ", weight=" + list(o.weight); break;
    }
    return s + ")";
}

std::string scheduler_text(const SchedulerOptions& o) {
    switch (o.kind) {
        case SchedulerKind::step_lr:
            return "step_lr(step_size=" + std::to_string(o.step_size) + ", gamma=" + num(o.gamma) + ")";
        case SchedulerKind::cosine_annealing_lr:
            return "cosine_annealing_lr(T_max=" + std::to_string(o.T_max) + ", eta_min=" + num(o.eta_min) + ")";
        case SchedulerKind::linear_lr:
            return "linear_lr(start_factor=" + num(o.start_factor) + ", end_factor=" + num(o.end_factor) +
                   ", total_iters=" + std::to_string(o.total_iters) + ")";
    }
    return "";
}

}  // namespace modelkeep
