// Golden tests: every case in tests/golden/*.txt was computed by real PyTorch
// (tests/golden/make_golden.py, whose header documents the format). For each
// case: the SPEC gives the same state_dict keys and shapes as torch, in order;
// torch's tensors load strictly; and the forward pass matches torch's output
// within 1e-6 of the output tensor's scale, with both GEMM kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "model.hpp"
#include "spec.hpp"

using namespace modelkeep;

namespace {

// |ours − torch| ≤ tolerance · max(|torch|, m), m = max |torch| over the output tensor.
constexpr double tolerance = 1e-6;

struct GoldenTensor {
    std::string key;  // state_dict key; empty for input / output
    Shape shape;
    std::vector<float> values;
};

struct GoldenCase {
    std::string name;
    std::string spec;
    std::vector<GoldenTensor> params;
    GoldenTensor input;
    GoldenTensor output;
};

std::string golden_path(const std::string& name) { return std::string(MODELKEEP_GOLDEN_DIR) + "/" + name + ".txt"; }

// Reads the values following a tensor header: exactly numel hex floats.
bool read_values(std::istream& in, std::size_t numel, std::vector<float>& out, std::string& err) {
    out.clear();
    out.reserve(numel);
    std::string line;
    while (out.size() < numel && std::getline(in, line)) {
        std::istringstream tokens(line);
        std::string tok;
        while (tokens >> tok) {
            if (out.size() == numel) {
                err = "more values than the shape holds: '" + line + "'";
                return false;
            }
            char* end = nullptr;
            const float v = std::strtof(tok.c_str(), &end);
            if (end != tok.c_str() + tok.size()) {
                err = "bad value '" + tok + "'";
                return false;
            }
            out.push_back(v);
        }
    }
    if (out.size() != numel) {
        err = "file ends after " + std::to_string(out.size()) + " of " + std::to_string(numel) + " values";
        return false;
    }
    return true;
}

// "<rank> <d0> ... <dn-1>" then the values on the following lines.
bool read_tensor(std::istream& in, std::istringstream& header, GoldenTensor& t, std::string& err) {
    std::size_t rank = 0;
    if (!(header >> rank) || rank > max_rank) {
        err = "bad rank";
        return false;
    }
    t.shape.assign(rank, 0);
    std::size_t numel = 1;
    for (std::size_t& d : t.shape) {
        if (!(header >> d)) {
            err = "missing dimension";
            return false;
        }
        numel *= d;
    }
    std::string extra;
    if (header >> extra) {
        err = "unexpected '" + extra + "' after the shape";
        return false;
    }
    return read_values(in, numel, t.values, err);
}

bool load_case(const std::string& name, GoldenCase& c, std::string& err) {
    std::ifstream in(golden_path(name));
    if (!in) {
        err = "cannot open " + golden_path(name);
        return false;
    }
    bool have_input = false, have_output = false, ended = false;
    std::string line;
    while (!ended && std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream header(line);
        std::string word;
        header >> word;
        if (word == "case") {
            header >> c.name;
        } else if (word == "spec") {
            c.spec = line.substr(5);
        } else if (word == "param") {
            GoldenTensor t;
            header >> t.key;
            if (!read_tensor(in, header, t, err)) {
                err = t.key + ": " + err;
                return false;
            }
            c.params.push_back(std::move(t));
        } else if (word == "input") {
            if (!read_tensor(in, header, c.input, err)) {
                err = "input: " + err;
                return false;
            }
            have_input = true;
        } else if (word == "output") {
            if (!read_tensor(in, header, c.output, err)) {
                err = "output: " + err;
                return false;
            }
            have_output = true;
        } else if (word == "end") {
            ended = true;
        } else {
            err = "unknown record '" + line + "'";
            return false;
        }
    }
    if (c.name != name || c.spec.empty() || !have_input || !have_output || !ended) {
        err = name + ": incomplete fixture (case, spec, input, output and end are required)";
        return false;
    }
    return true;
}

struct Comparison {
    double worst = 0.0;  // max over entries of |ours − torch| / max(|torch|, m)
    std::size_t at = 0;
    float ours = 0.0f;
    float torch = 0.0f;
    double elementwise = 0.0;  // max |ours − torch| / |torch| over normal torch values (reported only)
};

Comparison compare(const Tensor& ours, const std::vector<float>& torch) {
    Comparison c;
    double m = 0.0;
    for (float t : torch) m = std::max(m, double(std::fabs(t)));
    for (std::size_t i = 0; i < torch.size(); ++i) {
        const double o = ours.data()[i], t = torch[i];
        const double scale = std::max(std::fabs(t), m);
        double rel = 0.0;
        if (std::isnan(o) || std::isnan(t))
            rel = INFINITY;
        else if (o != t)
            rel = scale > 0.0 ? std::fabs(o - t) / scale : INFINITY;
        if (std::fabs(t) >= double(FLT_MIN)) {
            const double e = std::isnan(o) ? INFINITY : std::fabs(o - t) / std::fabs(t);
            c.elementwise = std::max(c.elementwise, e);
        }
        if (rel > c.worst || (i == 0 && rel == 0.0)) {
            c.worst = rel;
            c.at = i;
            c.ours = ours.data()[i];
            c.torch = torch[i];
        }
    }
    return c;
}

std::string fmt(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::string hexf(float v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", double(v));
    return buf;
}

class KernelScope {
public:
    explicit KernelScope(Kernel k) : saved_(current_kernel()) { set_kernel(k); }
    ~KernelScope() { set_kernel(saved_); }

private:
    Kernel saved_;
};

StateDict to_state_dict(const GoldenCase& c) {
    StateDict sd;
    for (const GoldenTensor& t : c.params) sd.emplace_back(t.key, from_data(t.shape, t.values.data()));
    return sd;
}

// Builds the case's model and loads torch's tensors; every step a fatal failure on error.
void build_loaded(const GoldenCase& c, Sequential& model) {
    std::vector<LayerSpec> specs;
    const Status parsed = parse_spec(c.spec, specs);
    ASSERT_TRUE(parsed.ok()) << c.spec << ": " << parsed.to_string();
    const Status created = Sequential::create(specs, 1, model);
    ASSERT_TRUE(created.ok()) << created.to_string();

    // Keys exactly equal torch's, in order; then the shapes.
    const auto shapes = model.state_dict_shapes();
    std::vector<std::string> ours, torch;
    for (const auto& ks : shapes) ours.push_back(ks.first);
    for (const GoldenTensor& t : c.params) torch.push_back(t.key);
    ASSERT_EQ(ours, torch) << "state_dict keys differ from PyTorch's";
    for (std::size_t i = 0; i < shapes.size(); ++i)
        EXPECT_EQ(shape_to_string(shapes[i].second), shape_to_string(c.params[i].shape))
            << "shape of " << shapes[i].first;

    LoadReport report;
    const Status loaded = model.load_state_dict(to_state_dict(c), /*strict=*/true, report);
    ASSERT_TRUE(loaded.ok()) << loaded.to_string();
    EXPECT_TRUE(report.missing_keys.empty());
    EXPECT_TRUE(report.unexpected_keys.empty());
}

Comparison forward_and_compare(const Sequential& model, const GoldenCase& c, Kernel kernel) {
    KernelScope scope(kernel);
    Tensor y;
    const Status st = model.forward(from_data(c.input.shape, c.input.values.data()), y);
    if (!st.ok()) {
        ADD_FAILURE() << "forward: " << st.to_string();
        return Comparison{INFINITY};
    }
    if (shape_of(y) != c.output.shape) {
        ADD_FAILURE() << "output shape " << shape_to_string(shape_of(y)) << ", PyTorch's is "
                      << shape_to_string(c.output.shape);
        return Comparison{INFINITY};
    }
    return compare(y, c.output.values);
}

void run_case(const std::string& name) {
    GoldenCase c;
    std::string err;
    ASSERT_TRUE(load_case(name, c, err)) << err;
    Sequential model;
    build_loaded(c, model);
    if (::testing::Test::HasFatalFailure()) return;

    // The loaded tensors read back bit for bit.
    const StateDict sd = model.state_dict();
    ASSERT_EQ(sd.size(), c.params.size());
    for (std::size_t i = 0; i < sd.size(); ++i)
        EXPECT_EQ(
            std::memcmp(sd[i].second.data(), c.params[i].values.data(), c.params[i].values.size() * sizeof(float)), 0)
            << sd[i].first << " changed on load";

    const Comparison blocked = forward_and_compare(model, c, Kernel::blocked);
    const Comparison reference = forward_and_compare(model, c, Kernel::reference);
    for (const Comparison* r : {&blocked, &reference})
        EXPECT_LE(r->worst, tolerance) << name << (r == &blocked ? " (blocked GEMM)" : " (reference GEMM)")
                                       << ": output[" << r->at << "] is " << hexf(r->ours) << " (" << r->ours
                                       << "), PyTorch's is " << hexf(r->torch) << " (" << r->torch << ")";
    ::testing::Test::RecordProperty("worst_rel_blocked", fmt(blocked.worst));
    ::testing::Test::RecordProperty("worst_rel_reference", fmt(reference.worst));
    std::cout << "[ golden   ] " << name << ": worst relative error " << fmt(blocked.worst) << " (blocked GEMM), "
              << fmt(reference.worst) << " (reference GEMM); element-wise "
              << fmt(std::max(blocked.elementwise, reference.elementwise)) << "\n";
}

}  // namespace

// Test name, fixture stem.
#define GOLDEN_CASES(X)                                   \
    X(TutorialFc1, "tutorial_fc1")                        \
    X(LinearNoBias, "linear_no_bias")                     \
    X(LinearWide, "linear_wide")                          \
    X(Linear3dInput, "linear_3d_input")                   \
    X(Relu, "relu")                                       \
    X(LeakyRelu, "leaky_relu")                            \
    X(Sigmoid, "sigmoid")                                 \
    X(Tanh, "tanh")                                       \
    X(GeluExact, "gelu_exact")                            \
    X(GeluTanh, "gelu_tanh")                              \
    X(Silu, "silu")                                       \
    X(Identity, "identity")                               \
    X(DropoutEval, "dropout_eval")                        \
    X(Softmax, "softmax")                                 \
    X(LogSoftmax, "log_softmax")                          \
    X(LinearSoftmax, "linear_softmax")                    \
    X(FlattenLinear, "flatten_linear")                    \
    X(LayerNormAffine, "layer_norm_affine")               \
    X(LayerNormNoAffine, "layer_norm_no_affine")          \
    X(BatchNorm2d, "batch_norm_2d")                       \
    X(BatchNorm3d, "batch_norm_3d")                       \
    X(BatchNormNoAffine, "batch_norm_no_affine")          \
    X(BatchNormBatchStats, "batch_norm_batch_stats")      \
    X(BatchNormBatchStats3d, "batch_norm_batch_stats_3d") \
    X(Mlp784, "mlp_784")                                  \
    X(MlpMixed, "mlp_mixed")                              \
    X(Nested, "nested")

#define MK_GOLDEN_TEST(test, stem) \
    TEST(Golden, test) { run_case(stem); }
GOLDEN_CASES(MK_GOLDEN_TEST)
#undef MK_GOLDEN_TEST

namespace {

#define MK_GOLDEN_STEM(test, stem) stem,
const char* const known_cases[] = {GOLDEN_CASES(MK_GOLDEN_STEM)};
#undef MK_GOLDEN_STEM

}  // namespace

// Every fixture on disk has a test above, and every test its fixture.
TEST(Golden, EveryFixtureHasATest) {
    std::set<std::string> on_disk, known(std::begin(known_cases), std::end(known_cases));
    for (const auto& entry : std::filesystem::directory_iterator(MODELKEEP_GOLDEN_DIR))
        if (entry.path().extension() == ".txt") on_disk.insert(entry.path().stem().string());
    EXPECT_EQ(on_disk, known);
}

// Together the fixtures exercise every layer kind modelkeep knows.
TEST(Golden, CoversEveryLayerKind) {
    std::set<int> seen;
    for (const char* name : known_cases) {
        GoldenCase c;
        std::string err;
        ASSERT_TRUE(load_case(name, c, err)) << err;
        std::vector<LayerSpec> specs;
        ASSERT_TRUE(parse_spec(c.spec, specs).ok()) << c.spec;
        for (const LayerSpec& s : specs) seen.insert(int(s.kind));
    }
    for (int k = 1; k <= int(layer_kind_count); ++k)
        EXPECT_TRUE(seen.count(k)) << layer_kind_name(LayerKind(k)) << " has no golden case";
}

// The comparison can fail: the largest value of one tensor nudged by 1e-3 (relative) moves
// the output past tolerance.
TEST(Golden, PerturbedWeightIsCaught) {
    const std::pair<const char*, const char*> targets[] = {
        {"tutorial_fc1", "fc1.weight"}, {"mlp_784", "2.bias"}, {"nested", "block.layers.0.weight"}};
    for (const auto& [name, key] : targets) {
        GoldenCase c;
        std::string err;
        ASSERT_TRUE(load_case(name, c, err)) << err;
        const auto param =
            std::find_if(c.params.begin(), c.params.end(), [&](const GoldenTensor& t) { return t.key == key; });
        ASSERT_NE(param, c.params.end()) << key;
        const auto biggest = std::max_element(param->values.begin(), param->values.end(),
                                              [](float a, float b) { return std::fabs(a) < std::fabs(b); });
        *biggest *= 1.0f + 1e-3f;
        Sequential model;
        build_loaded(c, model);
        if (HasFatalFailure()) return;
        const Comparison r = forward_and_compare(model, c, Kernel::blocked);
        EXPECT_GT(r.worst, tolerance) << name << " " << key;
        EXPECT_LT(r.worst, 1e-2) << name << " " << key;  // ... but only by about the nudge
        std::cout << "[ golden   ] " << name << " with " << key << " nudged: " << fmt(r.worst) << "\n";
    }
}

// So can the key check: the same layer without its bias has a different state_dict.
TEST(Golden, WrongSpecChangesKeys) {
    GoldenCase c;
    std::string err;
    ASSERT_TRUE(load_case("tutorial_fc1", c, err)) << err;
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("fc1=Linear(3,5,bias=false)", specs).ok());
    Sequential model;
    ASSERT_TRUE(Sequential::create(specs, 1, model).ok());
    EXPECT_NE(model.state_dict_shapes().size(), c.params.size());
    LoadReport report;
    EXPECT_EQ(model.load_state_dict(to_state_dict(c), true, report).code(), Code::unexpected_key);
    ASSERT_EQ(report.unexpected_keys.size(), 1u);
    EXPECT_EQ(report.unexpected_keys[0], "fc1.bias");
}
