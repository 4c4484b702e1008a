// Training (train.hpp, backward.hpp): gradients against real PyTorch
// (tests/golden/grad/*.txt, written by tests/golden/make_grad_golden.py, whose
// header documents the format), against finite differences, and the rest
// natively: dropout's masks and generator, the fast Linear products against the
// reference loops, allocation-free warm steps, the inference path unchanged, and
// compact weights refused (needs_f32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc_tracking.hpp"
#include "backward.hpp"
#include "fixtures.hpp"
#include "gemm.hpp"
#include "model.hpp"
#include "packed.hpp"
#include "spec.hpp"
#include "train.hpp"

using namespace modelkeep;

namespace {

// |ours − torch| ≤ grad_tolerance · max(|torch|, m), m = max |torch| over the
// tensor. The reductions run in another order than PyTorch's (the GEMM's
// blocks, sums over the batch in double for the norms), and a gradient is a
// difference of such sums: across the fixtures the worst seen is 2.9e-6 of the
// tensor's scale (a Linear weight before BatchNorm1d, whose backward subtracts
// means), most are under 3e-7 (each test prints its worst; MK_GRAD_VERBOSE=1
// prints every tensor's). 1e-5 leaves room for other compilers and kernels while
// still failing on any wrong term, which is off by O(1).
constexpr double grad_tolerance = 1e-5;

std::string grad_dir() { return std::string(MODELKEEP_GOLDEN_DIR) + "/grad"; }

struct Named {
    std::string key;
    Shape shape;
    std::vector<float> values;
};

struct GradCase {
    std::string name, spec, mode;
    float momentum = 0.1f;
    int steps = 1;
    std::vector<Named> params, grads, state;
    Named input, grad_output, output, grad_input;
};

bool read_tensor(std::istream& in, std::istringstream& header, bool keyed, Named& t, std::string& err) {
    if (keyed) header >> t.key;
    std::size_t rank = 0;
    if (!(header >> rank) || rank > max_rank) {
        err = "bad rank";
        return false;
    }
    t.shape.assign(rank, 0);
    std::size_t numel = 1;
    for (std::size_t& d : t.shape) {
        if (!(header >> d)) {
            err = "bad dims";
            return false;
        }
        numel *= d;
    }
    t.values.clear();
    std::string line;
    while (t.values.size() < numel && std::getline(in, line)) {
        std::istringstream tokens(line);
        std::string tok;
        while (tokens >> tok) {
            char* end = nullptr;
            const float v = std::strtof(tok.c_str(), &end);
            if (*end != '\0' || t.values.size() == numel) {
                err = "bad value '" + tok + "'";
                return false;
            }
            t.values.push_back(v);
        }
    }
    if (t.values.size() != numel) err = "short tensor";
    return t.values.size() == numel;
}

bool load_grad_case(const std::string& name, GradCase& c, std::string& err) {
    std::ifstream in(grad_dir() + "/" + name + ".txt");
    if (!in) {
        err = "cannot open " + name;
        return false;
    }
    std::string line;
    bool ended = false, have_gi = false;
    while (!ended && std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream h(line);
        std::string word;
        h >> word;
        bool ok = true;
        if (word == "case") {
            h >> c.name;
        } else if (word == "spec") {
            c.spec = line.substr(5);
        } else if (word == "mode") {
            h >> c.mode;
        } else if (word == "momentum") {
            std::string v;
            h >> v;
            c.momentum = v == "none" ? NAN : std::strtof(v.c_str(), nullptr);
        } else if (word == "steps") {
            h >> c.steps;
        } else if (word == "param" || word == "grad" || word == "state") {
            Named t;
            ok = read_tensor(in, h, true, t, err);
            (word == "param" ? c.params : word == "grad" ? c.grads : c.state).push_back(std::move(t));
        } else if (word == "input") {
            ok = read_tensor(in, h, false, c.input, err);
        } else if (word == "grad_output") {
            ok = read_tensor(in, h, false, c.grad_output, err);
        } else if (word == "output") {
            ok = read_tensor(in, h, false, c.output, err);
        } else if (word == "grad_input") {
            ok = have_gi = read_tensor(in, h, false, c.grad_input, err);
        } else if (word == "end") {
            ended = true;
        } else {
            err = "unknown record '" + line + "'";
            return false;
        }
        if (!ok) {
            err = word + ": " + err;
            return false;
        }
    }
    if (c.name != name || c.spec.empty() || (c.mode != "train" && c.mode != "eval") || !have_gi || !ended) {
        err = name + ": incomplete fixture";
        return false;
    }
    return true;
}

Tensor tensor_of(const Named& t) { return from_data(t.shape, t.values.data()); }

// The worst |ours − torch| / max(|torch|, m, floor) over a tensor (m its max |torch|).
double worst_error(const Tensor& ours, const std::vector<float>& torch, double floor = 0.0) {
    double m = floor, worst = 0.0;
    for (float t : torch) m = std::max(m, double(std::fabs(t)));
    for (std::size_t i = 0; i < torch.size(); ++i) {
        const double o = ours.data()[i], t = torch[i];
        if (std::isnan(o) || std::isnan(t)) return INFINITY;
        if (o == t) continue;
        const double scale = std::max(std::fabs(t), m);
        worst = std::max(worst, scale > 0 ? std::fabs(o - t) / scale : INFINITY);
    }
    return worst;
}

void expect_close(const Tensor& ours, const Named& torch, const std::string& what, double& worst, double floor = 0.0) {
    ASSERT_EQ(shape_of(ours), torch.shape) << what;
    const double e = worst_error(ours, torch.values, floor);
    worst = std::max(worst, e);
    EXPECT_LE(e, grad_tolerance) << what << ": " << e << " of the tensor's scale";
    if (getenv("MK_GRAD_VERBOSE")) std::printf("    %-32s %.3g\n", what.c_str(), e);
}

class KernelScope {
public:
    explicit KernelScope(Kernel k) : saved_(current_kernel()) { set_kernel(k); }
    ~KernelScope() { set_kernel(saved_); }

private:
    Kernel saved_;
};

void run_grad_case(const std::string& name, Kernel kernel) {
    KernelScope ks(kernel);
    GradCase c;
    std::string err;
    ASSERT_TRUE(load_grad_case(name, c, err)) << err;
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec(c.spec, specs).ok()) << c.spec;
    Sequential model;
    ASSERT_TRUE(Sequential::create(specs, 1, model).ok());
    StateDict sd;
    for (const Named& p : c.params) sd.emplace_back(p.key, tensor_of(p));
    LoadReport report;
    ASSERT_TRUE(model.load_state_dict(sd, true, report).ok());

    TrainBuffers t;
    t.training = c.mode == "train";
    t.momentum = c.momentum;
    t.seed(1);
    const Tensor x = tensor_of(c.input);
    Tensor y;
    for (int s = 0; s < c.steps; ++s) ASSERT_TRUE(train_forward(model, x, y, t).ok());
    Grads grads;
    const Status st = backward(model, tensor_of(c.grad_output), t, grads, true);
    ASSERT_TRUE(st.ok()) << st.to_string();

    double worst = 0.0;
    expect_close(y, c.output, "output", worst);
    ASSERT_EQ(grads.keys.size(), c.grads.size());
    // A gradient that is 0 in exact arithmetic (a bias right before BatchNorm1d's
    // batch statistics, which take any shift away) is rounding noise in both
    // (~1e-9 here, 6.6e-8 of the largest gradient in ours): each parameter's
    // gradient is compared on at least 1e-1 of the case's largest parameter
    // gradient (a wrong term is still off by O(1) of its own tensor's scale).
    double largest = 0.0;
    for (const Named& t : c.grads)
        for (float v : t.values) largest = std::max(largest, double(std::fabs(v)));
    for (std::size_t i = 0; i < c.grads.size(); ++i) {
        EXPECT_EQ(grads.keys[i], c.grads[i].key);
        expect_close(grads.values[i], c.grads[i], "grad " + c.grads[i].key, worst, 1e-1 * largest);
    }
    expect_close(grads.input, c.grad_input, "grad_input", worst);
    // The buffers after the forwards: running stats and num_batches_tracked.
    const StateDict after = model.state_dict();
    for (const Named& s : c.state) {
        const auto it =
            std::find_if(after.begin(), after.end(), [&](const NamedTensor& kv) { return kv.first == s.key; });
        ASSERT_NE(it, after.end()) << s.key;
        expect_close(it->second, s, "state " + s.key, worst);
    }
    std::printf("  %-28s worst %.3g of scale (%s kernels)\n", name.c_str(), worst,
                kernel == Kernel::reference ? "reference" : "fast");
}

#define GRAD_CASES(X)                                   \
    X(Linear, "linear")                                 \
    X(LinearNoBias3d, "linear_no_bias_3d")              \
    X(LinearWide, "linear_wide")                        \
    X(ReLU, "relu")                                     \
    X(LeakyReLU, "leaky_relu")                          \
    X(Sigmoid, "sigmoid")                               \
    X(Tanh, "tanh")                                     \
    X(GeluExact, "gelu_exact")                          \
    X(GeluTanh, "gelu_tanh")                            \
    X(SiLU, "silu")                                     \
    X(Identity, "identity")                             \
    X(Softmax, "softmax")                               \
    X(LogSoftmax, "log_softmax")                        \
    X(DropoutEval, "dropout_eval")                      \
    X(FlattenLinear, "flatten_linear")                  \
    X(LayerNormAffine, "layer_norm_affine")             \
    X(LayerNormNoAffine, "layer_norm_no_affine")        \
    X(BatchNormTrain, "batch_norm_train")               \
    X(BatchNormTrain3d, "batch_norm_train_3d")          \
    X(BatchNormCumulative, "batch_norm_cumulative")     \
    X(BatchNormNoAffine, "batch_norm_no_affine")        \
    X(BatchNormNoStats, "batch_norm_no_stats")          \
    X(BatchNormEval, "batch_norm_eval")                 \
    X(BatchNormNoStatsEval, "batch_norm_no_stats_eval") \
    X(Mlp, "mlp")                                       \
    X(MlpMixed, "mlp_mixed")                            \
    X(MlpEval, "mlp_eval")                              \
    X(Nested, "nested")

#define MK_GRAD_TEST(test, stem)                                      \
    TEST(TrainGolden, test) { run_grad_case(stem, Kernel::blocked); } \
    TEST(TrainGolden, test##Reference) { run_grad_case(stem, Kernel::reference); }
GRAD_CASES(MK_GRAD_TEST)
#undef MK_GRAD_TEST

#define MK_GRAD_STEM(test, stem) stem,
const char* const known_grad_cases[] = {GRAD_CASES(MK_GRAD_STEM)};
#undef MK_GRAD_STEM

}  // namespace

TEST(TrainGolden, EveryFixtureHasATest) {
    std::set<std::string> on_disk, known(std::begin(known_grad_cases), std::end(known_grad_cases));
    for (const auto& entry : std::filesystem::directory_iterator(grad_dir()))
        if (entry.path().extension() == ".txt") on_disk.insert(entry.path().stem().string());
    EXPECT_EQ(on_disk, known);
}

// Every kind has a PyTorch-checked gradient (Dropout in eval mode there; in
// training mode natively, below).
TEST(TrainGolden, CoversEveryLayerKind) {
    std::set<int> seen;
    for (const char* name : known_grad_cases) {
        GradCase c;
        std::string err;
        ASSERT_TRUE(load_grad_case(name, c, err)) << err;
        std::vector<LayerSpec> specs;
        ASSERT_TRUE(parse_spec(c.spec, specs).ok()) << c.spec;
        for (const LayerSpec& s : specs) seen.insert(int(s.kind));
    }
    for (int k = 1; k <= int(layer_kind_count); ++k)
        EXPECT_TRUE(seen.count(k)) << layer_kind_name(LayerKind(k)) << " has no gradient fixture";
}

// A fixture whose gradient is spoiled fails: the comparison can fail.
TEST(TrainGolden, ComparisonCanFail) {
    GradCase c;
    std::string err;
    ASSERT_TRUE(load_grad_case("mlp", c, err)) << err;
    Tensor ours = tensor_of(c.grads[0]);
    EXPECT_EQ(worst_error(ours, c.grads[0].values), 0.0);
    ours.data()[3] += 1e-4f * std::fabs(ours.data()[3]) + 1e-4f;
    EXPECT_GT(worst_error(ours, c.grads[0].values), grad_tolerance);
}

// ---- the Linear products: the GEMM path against the reference loops ----------------------

TEST(Train, LinearGradKernelsMatchReference) {
    const std::size_t shapes[][3] = {{1, 1, 1}, {3, 5, 4}, {9, 37, 40}, {17, 8, 33}, {64, 70, 3}, {2, 300, 129}};
    Rng rng(5);
    for (const auto& s : shapes) {
        const std::size_t rows = s[0], out = s[1], in = s[2];
        std::vector<float> x(rows * in), g(rows * out), w(out * in);
        for (float& v : x) v = rng.uniform(-1, 1);
        for (float& v : g) v = rng.uniform(-1, 1);
        for (float& v : w) v = rng.uniform(-1, 1);
        std::vector<float> gw_ref(out * in), gw(out * in), gx_ref(rows * in), gx(rows * in);
        linear_grad_weight_ref(x.data(), g.data(), gw_ref.data(), rows, out, in);
        linear_grad_input_ref(g.data(), w.data(), gx_ref.data(), rows, out, in);
        std::vector<float> scratch;
        linear_grad_weight(x.data(), g.data(), gw.data(), rows, out, in, scratch);
        linear_grad_input(g.data(), w.data(), gx.data(), rows, out, in, scratch);
        // Sums of `rows` (or `out`) products of values in [-1, 1]: float rounding only.
        for (std::size_t i = 0; i < gw.size(); ++i)
            ASSERT_NEAR(gw[i], gw_ref[i], 1e-6 * rows + 1e-6) << rows << "x" << out << "x" << in << " gw " << i;
        for (std::size_t i = 0; i < gx.size(); ++i)
            ASSERT_NEAR(gx[i], gx_ref[i], 1e-6 * out + 1e-6) << rows << "x" << out << "x" << in << " gx " << i;
        // And the reference against a double-precision sum.
        for (std::size_t o = 0; o < out; o += 7)
            for (std::size_t k = 0; k < in; k += 5) {
                double sum = 0;
                for (std::size_t r = 0; r < rows; ++r) sum += double(g[r * out + o]) * x[r * in + k];
                ASSERT_NEAR(gw_ref[o * in + k], sum, 1e-6 * rows + 1e-6);
            }
    }
}

// ---- finite differences -------------------------------------------------------------

namespace {

// loss = Σ y·g in double, for the model as it is, after seeding the dropout
// generator the same way each time (so the masks are fixed).
double loss_of(Sequential& m, const Tensor& x, const Tensor& g, TrainBuffers& t) {
    t.seed(99);
    Tensor y;
    const Status st = train_forward(m, x, y, t);
    if (!st.ok()) ADD_FAILURE() << st.to_string();
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += double(y.data()[i]) * g.data()[i];
    return s;
}

Tensor random_tensor(const Shape& shape, Rng& rng, float scale = 1.0f) {
    Tensor t = zeros(shape);
    for (float& v : t) v = rng.uniform(-scale, scale);
    return t;
}

}  // namespace

// Central differences of the loss against backward, for each parameter (and the
// input) of models covering every kind, in training and eval mode. The model's
// arithmetic is float32: with h = 1e-3 the difference quotient is good to about
// 1e-4 of the gradients' scale (the loss's float rounding over 2h, and h² of the
// third derivative), so 3e-3 of the scale passes every correct gradient and fails
// a wrong term. No ReLU or LeakyReLU here (their kink at 0 within ±h would spoil
// the quotient): the PyTorch fixtures check those.
TEST(Train, FiniteDifferences) {
    const struct {
        const char* spec;
        Shape x;
    } cases[] = {
        {"Linear(5,6),Tanh,Linear(6,4)", {6, 5}},
        {"Linear(4,7),BatchNorm1d(7),SiLU,Dropout(0.3),LayerNorm(7),GELU,Linear(7,3),LogSoftmax", {6, 4}},
        {"Flatten,Linear(6,5),Sigmoid,LayerNorm(5,elementwise_affine=false),GELU(tanh),Linear(5,4),Softmax", {6, 2, 3}},
        {"Linear(4,5,bias=false),BatchNorm1d(5,affine=false),Identity,Linear(5,3),"
         "BatchNorm1d(3,track_running_stats=false)",
         {6, 4}},
        {"BatchNorm1d(3,eps=0.001),Flatten,Linear(15,4)", {4, 3, 5}},                      // BatchNorm1d over (N, C, L)
        {"Flatten(0,1),Linear(5,4),LayerNorm(4,bias=false),Tanh,Linear(4,2)", {2, 3, 5}},  // no torch 1.13 fixture
    };
    for (const auto& c : cases)
        for (const bool training : {true, false}) {
            const char* spec = c.spec;
            Sequential m = mkt::make_model(spec, 3);
            Rng rng(11);
            Tensor x = random_tensor(c.x, rng, 2.0f);
            TrainBuffers t;
            t.training = training;
            t.momentum = 0.0f;  // running stats unchanged by the repeated forwards
            Tensor y;
            t.seed(99);
            ASSERT_TRUE(train_forward(m, x, y, t).ok()) << spec;
            const Tensor g = random_tensor(shape_of(y), rng);
            Grads grads;
            ASSERT_TRUE(backward(m, g, t, grads, true).ok());
            std::vector<Tensor> values;
            ASSERT_TRUE(parameters_of(m, values).ok());
            ASSERT_EQ(values.size(), grads.values.size());
            double overall = 0;  // the largest gradient of the model
            for (const Tensor& gv : grads.values)
                for (float a : gv) overall = std::max(overall, double(std::fabs(a)));
            const double h = 1e-3;
            for (std::size_t p = 0; p <= values.size(); ++p) {
                const bool input = p == values.size();
                Tensor& v = input ? x : values[p];
                const Tensor& an = input ? grads.input : grads.values[p];
                double scale = 0;  // the tensor's, at least a tenth of the model's (for gradients that are 0)
                for (float a : an) scale = std::max(scale, double(std::fabs(a)));
                scale = std::max(scale, 0.1 * overall);
                for (std::size_t i = 0; i < v.size(); ++i) {
                    const float saved = v.data()[i];
                    v.data()[i] = float(saved + h);
                    if (!input) ASSERT_TRUE(load_parameters(m, values).ok());
                    const double up = loss_of(m, x, g, t);
                    v.data()[i] = float(saved - h);
                    if (!input) ASSERT_TRUE(load_parameters(m, values).ok());
                    const double down = loss_of(m, x, g, t);
                    v.data()[i] = saved;
                    if (!input) ASSERT_TRUE(load_parameters(m, values).ok());
                    const double fd = (up - down) / (2 * h);
                    ASSERT_NEAR(an.data()[i], fd, 3e-3 * std::max(scale, 1e-2))
                        << spec << (training ? " train" : " eval") << ": "
                        << (input ? std::string("input") : grads.keys[p]) << "[" << i << "]";
                }
            }
        }
}

// ---- Dropout ----------------------------------------------------------------------------

TEST(Train, DropoutMasks) {
    for (const float p : {0.1f, 0.5f, 0.8f}) {
        char spec[64];
        std::snprintf(spec, sizeof spec, "Dropout(%g)", double(p));
        Sequential m = mkt::make_model(spec);
        const std::size_t n = 20000;
        Tensor x = zeros({40, 500});
        Rng rng(3);
        for (float& v : x) v = rng.uniform(0.5f, 2.0f);  // never 0: a zero output is a dropped value
        TrainBuffers t;
        t.seed(1234);
        Tensor y;
        ASSERT_TRUE(train_forward(m, x, y, t).ok());
        std::size_t dropped = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (y.data()[i] == 0.0f) {
                ++dropped;
            } else {  // kept values scaled by 1/(1 − p)
                ASSERT_FLOAT_EQ(y.data()[i], x.data()[i] * (1.0f / (1.0f - p)));
            }
        }
        // Binomial(n, p): within 5 standard deviations (a chance of ~6e-7 to fail by luck).
        const double sd = std::sqrt(n * p * (1 - p));
        EXPECT_NEAR(double(dropped), n * p, 5 * sd) << "p = " << p;
        // The backward uses the same mask.
        Tensor g = zeros({40, 500});
        for (float& v : g) v = rng.uniform(-1.0f, 1.0f);
        Grads grads;
        ASSERT_TRUE(backward(m, g, t, grads, true).ok());
        for (std::size_t i = 0; i < n; ++i)
            ASSERT_FLOAT_EQ(grads.input.data()[i], y.data()[i] == 0.0f ? 0.0f : g.data()[i] / (1.0f - p));
        // The same seed, the same masks; the next forward, other masks.
        TrainBuffers t2;
        t2.seed(1234);
        Tensor y2, y3;
        ASSERT_TRUE(train_forward(m, x, y2, t2).ok());
        EXPECT_TRUE(std::equal(y.begin(), y.end(), y2.begin()));
        ASSERT_TRUE(train_forward(m, x, y3, t2).ok());
        EXPECT_FALSE(std::equal(y.begin(), y.end(), y3.begin()));
        // Eval: the identity, and nothing drawn.
        const std::uint64_t before = t2.rng.state();
        t2.training = false;
        ASSERT_TRUE(train_forward(m, x, y3, t2).ok());
        EXPECT_TRUE(std::equal(x.begin(), x.end(), y3.begin()));
        EXPECT_EQ(t2.rng.state(), before);
    }
}

TEST(Train, DropoutGeneratorStateRoundTrips) {
    Sequential m = mkt::make_model("Linear(8,16),Dropout(0.4),Linear(16,4),Dropout(0.2)");
    Tensor x = zeros({5, 8});
    Rng rng(9);
    for (float& v : x) v = rng.uniform(-1, 1);
    TrainBuffers t;
    t.seed(77);
    Tensor y1, y2, y3;
    ASSERT_TRUE(train_forward(m, x, y1, t).ok());
    const std::uint64_t saved = t.rng.state();  // a checkpoint keeps this integer
    ASSERT_TRUE(train_forward(m, x, y2, t).ok());
    TrainBuffers restored;
    restored.rng.set_state(saved);
    ASSERT_TRUE(train_forward(m, x, y3, restored).ok());
    EXPECT_TRUE(std::equal(y2.begin(), y2.end(), y3.begin()));
    EXPECT_FALSE(std::equal(y1.begin(), y1.end(), y2.begin()));
    // Other seeds, other masks.
    TrainBuffers other;
    other.seed(78);
    ASSERT_TRUE(train_forward(m, x, y3, other).ok());
    EXPECT_FALSE(std::equal(y1.begin(), y1.end(), y3.begin()));
}

TEST(Train, DropoutEdgeProbabilities) {
    Tensor x = zeros({4, 50});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) + 1.0f;
    Tensor y;
    TrainBuffers t;
    Sequential keep = mkt::make_model("Dropout(0.0)");
    ASSERT_TRUE(train_forward(keep, x, y, t).ok());
    EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin()));
    Sequential drop = mkt::make_model("Dropout(1.0)");
    ASSERT_TRUE(train_forward(drop, x, y, t).ok());
    for (float v : y) ASSERT_EQ(v, 0.0f);
}

// ---- BatchNorm1d's running stats ---------------------------------------------------------

TEST(Train, BatchNormNeedsMoreThanOneValuePerChannel) {
    Sequential m = mkt::make_model("bn=BatchNorm1d(3)");
    TrainBuffers t;
    Tensor y, x = zeros({1, 3});
    const Status st = train_forward(m, x, y, t);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("layer 'bn'"), std::string::npos) << st.message();
    t.training = false;  // eval: the running stats, any batch
    EXPECT_TRUE(train_forward(m, x, y, t).ok());
    EXPECT_TRUE(train_forward(m, zeros({1, 3, 1}), y, t).ok());
}

// ---- errors ----------------------------------------------------------------------------

TEST(Train, CompactWeightsRefuseTraining) {
    for (const DType dtype : {DType::f16, DType::bf16, DType::int8}) {
        Sequential m = mkt::make_model("Linear(4,3),ReLU,head=Linear(3,2)");
        m.set_weight_dtype(dtype);
        ASSERT_EQ(m.weight_dtype(), dtype);
        TrainBuffers t;
        Tensor y, x = zeros({2, 4});
        Status st = train_forward(m, x, y, t);
        EXPECT_EQ(st.code(), Code::needs_f32) << dtype_name(dtype);
        EXPECT_NE(st.message().find("set_weight_dtype(DType::f32)"), std::string::npos) << st.message();
        EXPECT_NE(st.message().find("setWeightDtype('f32')"), std::string::npos) << st.message();
        EXPECT_NE(st.message().find(dtype_name(dtype)), std::string::npos) << st.message();
        Grads grads;
        EXPECT_EQ(backward(m, zeros({2, 2}), t, grads).code(), Code::needs_f32);
        std::vector<Tensor> values;
        EXPECT_EQ(parameters_of(m, values).code(), Code::needs_f32);
        EXPECT_EQ(load_parameters(m, values).code(), Code::needs_f32);
        // Back to float32: it trains.
        m.set_weight_dtype(DType::f32);
        EXPECT_TRUE(train_forward(m, x, y, t).ok());
        EXPECT_TRUE(backward(m, zeros({2, 2}), t, grads).ok());
    }
    EXPECT_STREQ(code_name(Code::needs_f32), "needs_f32");
}

TEST(Train, Errors) {
    Sequential m = mkt::make_model("fc=Linear(4,3),Softmax");
    TrainBuffers t;
    Grads grads;
    Tensor y;
    // No recorded forward yet.
    EXPECT_EQ(backward(m, zeros({2, 3}), t, grads).code(), Code::invalid_argument);
    // The input does not fit: the inference path's message.
    Tensor ybad;
    const Status st = train_forward(m, zeros({2, 5}), y, t);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_EQ(st.message(), m.forward(zeros({2, 5}), ybad).message());
    // and a failed forward leaves nothing to differentiate.
    EXPECT_EQ(backward(m, zeros({2, 3}), t, grads).code(), Code::invalid_argument);
    ASSERT_TRUE(train_forward(m, zeros({2, 4}), y, t).ok());
    EXPECT_EQ(backward(m, zeros({3, 3}), t, grads).code(), Code::shape_mismatch);
    EXPECT_EQ(backward(m, zeros({6}), t, grads).code(), Code::shape_mismatch);
    EXPECT_TRUE(backward(m, zeros({2, 3}), t, grads).ok());
    // load_parameters checks count and shapes before changing anything.
    std::vector<Tensor> values;
    ASSERT_TRUE(parameters_of(m, values).ok());
    const StateDict before = m.state_dict();
    std::vector<Tensor> wrong = values;
    wrong[1] = zeros({4});
    values[0].data()[0] += 1.0f;
    wrong[0] = values[0];
    EXPECT_EQ(load_parameters(m, wrong).code(), Code::shape_mismatch);
    wrong.pop_back();
    EXPECT_EQ(load_parameters(m, wrong).code(), Code::shape_mismatch);
    const StateDict after = m.state_dict();
    for (std::size_t i = 0; i < before.size(); ++i)
        EXPECT_TRUE(std::equal(before[i].second.begin(), before[i].second.end(), after[i].second.begin()));
}

// backward reads what train_forward recorded: another model, a mode flipped in
// between, an empty batch or non-finite values never read past a buffer.
TEST(Train, BackwardFollowsTheRecord) {
    Sequential a = mkt::make_model("Linear(4,6),Dropout(0.5),Linear(6,2)");
    Sequential b = mkt::make_model("Linear(4,6),ReLU,Linear(6,2)");
    Sequential c = mkt::make_model("Linear(4,5),Dropout(0.5),Linear(5,2)");
    Tensor x = zeros({3, 4}), y;
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) - 5.0f;
    TrainBuffers t;
    Grads grads;
    ASSERT_TRUE(train_forward(a, x, y, t).ok());
    EXPECT_EQ(backward(b, zeros({3, 2}), t, grads).code(), Code::invalid_argument);
    EXPECT_EQ(backward(c, zeros({3, 2}), t, grads).code(), Code::invalid_argument);
    // Recorded in eval mode (no mask drawn), differentiated after switching to training.
    t.training = false;
    ASSERT_TRUE(train_forward(a, x, y, t).ok());
    t.training = true;
    Tensor g = zeros({3, 2});
    g.fill(1.0f);
    ASSERT_TRUE(backward(a, g, t, grads, true).ok());
    Grads eval_grads;
    t.training = false;
    ASSERT_TRUE(train_forward(a, x, y, t).ok());
    ASSERT_TRUE(backward(a, g, t, eval_grads, true).ok());
    EXPECT_TRUE(std::equal(grads.input.begin(), grads.input.end(), eval_grads.input.begin()));
    // An empty batch, and NaN / infinity: values out, no crash.
    Sequential all = mkt::make_model("Linear(4,6),LayerNorm(6),GELU,Softmax,Linear(6,3),LogSoftmax");
    ASSERT_TRUE(train_forward(all, zeros({0, 4}), y, t).ok());
    EXPECT_EQ(shape_of(y), (Shape{0, 3}));
    ASSERT_TRUE(backward(all, zeros({0, 3}), t, grads, true).ok());
    EXPECT_EQ(shape_of(grads.input), (Shape{0, 4}));
    for (float v : grads.values[0]) EXPECT_EQ(v, 0.0f);
    x.data()[0] = NAN;
    x.data()[1] = INFINITY;
    ASSERT_TRUE(train_forward(all, x, y, t).ok());
    ASSERT_TRUE(backward(all, zeros({3, 3}), t, grads, true).ok());
}

// ---- parameters out and back in ---------------------------------------------------------

TEST(Train, ParametersRoundTripAndRepack) {
    Sequential m = mkt::make_model("a=Linear(13,11),b=BatchNorm1d(11),c=LayerNorm(11),d=Linear(11,9,bias=false)");
    std::vector<Tensor> values;
    ASSERT_TRUE(parameters_of(m, values).ok());
    // state_dict order, parameters only, PyTorch's (out, in) layout.
    const StateDict sd = m.state_dict();
    const char* keys[] = {"a.weight", "a.bias", "b.weight", "b.bias", "c.weight", "c.bias", "d.weight"};
    ASSERT_EQ(values.size(), 7u);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const auto it = std::find_if(sd.begin(), sd.end(), [&](const NamedTensor& kv) { return kv.first == keys[i]; });
        ASSERT_NE(it, sd.end());
        EXPECT_EQ(shape_of(values[i]), shape_of(it->second)) << keys[i];
        EXPECT_TRUE(std::equal(values[i].begin(), values[i].end(), it->second.begin())) << keys[i];
    }
    // An SGD step through load_parameters: the model, its state dict and its
    // (packed) forward all see the new values, as a model loaded from them does.
    Tensor x = zeros({6, 13});
    Rng rng(4);
    for (float& v : x) v = rng.uniform(-1, 1);
    TrainBuffers t;
    Tensor y;
    ASSERT_TRUE(train_forward(m, x, y, t).ok());
    Grads grads;
    ASSERT_TRUE(backward(m, y, t, grads).ok());  // loss = ½ Σ y²
    for (std::size_t i = 0; i < values.size(); ++i)
        for (std::size_t k = 0; k < values[i].size(); ++k) values[i].data()[k] -= 0.1f * grads.values[i].data()[k];
    ASSERT_TRUE(load_parameters(m, values).ok());
    EXPECT_TRUE(m.layers()[0].params[0].is_packed());
    StateDict fresh_sd = m.state_dict();
    for (std::size_t i = 0; i < values.size(); ++i) {
        const auto it =
            std::find_if(fresh_sd.begin(), fresh_sd.end(), [&](const NamedTensor& kv) { return kv.first == keys[i]; });
        EXPECT_TRUE(std::equal(values[i].begin(), values[i].end(), it->second.begin())) << keys[i];
    }
    Sequential fresh =
        mkt::make_model("a=Linear(13,11),b=BatchNorm1d(11),c=LayerNorm(11),d=Linear(11,9,bias=false)", 9);
    LoadReport report;
    ASSERT_TRUE(fresh.load_state_dict(fresh_sd, true, report).ok());
    Tensor y1, y2;
    ASSERT_TRUE(m.forward(x, y1).ok());
    ASSERT_TRUE(fresh.forward(x, y2).ok());
    EXPECT_TRUE(std::equal(y1.begin(), y1.end(), y2.begin()));
}

// A few steps of plain SGD on a small regression lower the loss: the pieces fit together.
TEST(Train, SgdLowersTheLoss) {
    Sequential m = mkt::make_model("Linear(3,16),BatchNorm1d(16),Tanh,Dropout(0.1),Linear(16,1)", 5);
    Tensor x = zeros({32, 3}), target = zeros({32, 1});
    Rng rng(6);
    for (std::size_t i = 0; i < 32; ++i) {
        float s = 0;
        for (std::size_t k = 0; k < 3; ++k) s += (x.data()[i * 3 + k] = rng.uniform(-1, 1)) * float(k + 1);
        target.data()[i] = std::sin(s);
    }
    TrainBuffers t;
    t.seed(3);
    Grads grads;
    std::vector<Tensor> values;
    ASSERT_TRUE(parameters_of(m, values).ok());
    Tensor y, g;
    const auto mse = [&](const Tensor& out) {
        double s = 0;
        for (std::size_t i = 0; i < 32; ++i) s += std::pow(out.data()[i] - target.data()[i], 2);
        return s / 32;
    };
    double first = 0, last = 0;
    for (int step = 0; step < 200; ++step) {
        ASSERT_TRUE(train_forward(m, x, y, t).ok());
        if (step == 0) first = mse(y);
        g = y;
        for (std::size_t i = 0; i < 32; ++i) g.data()[i] = 2.0f * (y.data()[i] - target.data()[i]) / 32.0f;
        ASSERT_TRUE(backward(m, g, t, grads).ok());
        for (std::size_t i = 0; i < values.size(); ++i)
            for (std::size_t k = 0; k < values[i].size(); ++k) values[i].data()[k] -= 0.1f * grads.values[i].data()[k];
        ASSERT_TRUE(load_parameters(m, values).ok());
    }
    Tensor out;
    ASSERT_TRUE(m.forward(x, out).ok());  // eval: running stats, no dropout
    last = mse(out);
    EXPECT_LT(last, first * 0.2) << first << " -> " << last;
    EXPECT_EQ(m.state_dict().back().first, "4.bias");
    EXPECT_EQ(m.state_dict()[6].first, "1.num_batches_tracked");
    EXPECT_EQ(m.state_dict()[6].second.data()[0], 200.0f);
}

// ---- memory ----------------------------------------------------------------------------

// A warm step (train_forward + backward on a shape seen before) allocates nothing.
TEST(Train, WarmStepAllocatesNothing) {
    const char* spec =
        "Flatten,Linear(12,20),BatchNorm1d(20),ReLU,Dropout(0.3),LayerNorm(20),GELU,Linear(20,20),"
        "LeakyReLU(0.1),Sigmoid,Tanh,SiLU,GELU(tanh),Identity,Linear(20,7,bias=false),BatchNorm1d(7),LogSoftmax,"
        "Softmax";
    Sequential m = mkt::make_model(spec);
    Tensor x = zeros({9, 3, 4}), g = zeros({9, 7});
    Rng rng(8);
    for (float& v : x) v = rng.uniform(-1, 1);
    for (float& v : g) v = rng.uniform(-1, 1);
    std::thread([&] {
        TrainBuffers t;
        t.seed(2);
        Grads grads;
        std::vector<Tensor> values;
        Tensor y;
        for (int cold = 0; cold < 2; ++cold) {
            ASSERT_TRUE(train_forward(m, x, y, t).ok());
            ASSERT_TRUE(backward(m, g, t, grads, true).ok());
            ASSERT_TRUE(parameters_of(m, values).ok());
        }
        for (const bool training : {true, false}) {
            t.training = training;
            const char* mode = training ? "train" : "eval";
            {
                const mkt::AllocScope scope;
                ASSERT_TRUE(train_forward(m, x, y, t).ok());
                EXPECT_EQ(scope.news(), 0) << "train_forward, " << mode;
            }
            {
                const mkt::AllocScope scope;
                ASSERT_TRUE(backward(m, g, t, grads, true).ok());
                ASSERT_TRUE(backward(m, g, t, grads, false).ok());
                EXPECT_EQ(scope.news(), 0) << "backward, " << mode;
            }
            {
                const mkt::AllocScope scope;
                ASSERT_TRUE(parameters_of(m, values).ok());
                EXPECT_EQ(scope.news(), 0) << "parameters_of, " << mode;
            }
        }
        // load_parameters: only the re-packing's transient block per Linear weight.
        const mkt::AllocScope scope;
        ASSERT_TRUE(load_parameters(m, values).ok());
        EXPECT_EQ(scope.news(), 3);
        EXPECT_LE(scope.peak(), pack_scratch_bytes(20, 20));
    }).join();
}

// train_bytes predicts the memory of a cold step (train_forward, then backward
// with the input's gradient) from empty buffers, for a binding that reserves first.
TEST(Train, TrainBytesBoundsAColdStep) {
    const struct {
        const char* spec;
        Shape x;
    } cases[] = {
        {"Linear(4,6),ReLU,Linear(6,3)", {5, 4}},
        {"Linear(30,40),BatchNorm1d(40),Dropout(0.2),LayerNorm(40),GELU,Linear(40,7,bias=false),LogSoftmax", {16, 30}},
        {"Flatten,Linear(12,20),BatchNorm1d(20),Tanh,Linear(20,20),BatchNorm1d(20),Softmax", {9, 3, 4}},
        {"BatchNorm1d(3,eps=0.001),Flatten,Linear(15,4)", {4, 3, 5}},
        {"Linear(300,200),SiLU,Linear(200,10)", {64, 300}},
        {"Linear(300,200),SiLU,Linear(200,10)", {1, 300}},
        {"Identity", {3, 4}},
    };
    for (const auto& c : cases)
        for (const bool training : {true, false}) {
            const Sequential m = mkt::make_model(c.spec);
            Sequential model = m;
            const Tensor x = zeros(c.x);
            const std::uint64_t predicted = train_bytes(model, c.x);
            std::uint64_t peak = 0, bytes = 0;
            std::thread([&] {
                TrainBuffers t;
                t.training = training;
                Grads grads;
                Tensor y, g;
                {
                    const mkt::AllocScope scope;
                    ASSERT_TRUE(train_forward(model, x, y, t).ok());
                    bytes = scope.peak();
                }
                g = y;
                const mkt::AllocScope scope;
                ASSERT_TRUE(train_forward(model, x, y, t).ok());  // warm: nothing more
                ASSERT_TRUE(backward(model, g, t, grads, true).ok());
                peak = bytes + scope.peak();
            }).join();
            const std::string where = std::string(c.spec) + (training ? " train" : " eval");
            EXPECT_LE(peak, predicted) << where;
            // Within a few bytes per tensor and the keys (and, in eval, the masks not drawn).
            EXPECT_GE(peak * 1.05 + 2048, double(predicted)) << where << ": " << peak << " of " << predicted;
        }
}

// ---- the inference path -------------------------------------------------------------------

// Sequential::forward gives the same output, bit for bit, before and after
// training calls that leave the weights as they are (eval mode, so that the
// running stats stay too); and the recorded forward in eval mode matches it.
TEST(Train, InferenceForwardUnchanged) {
    Sequential m = mkt::tiny_model();
    Tensor x = zeros({5, 4});
    Rng rng(12);
    for (float& v : x) v = rng.uniform(-2, 2);
    ForwardBuffers fb;
    Tensor before, after, recorded;
    ASSERT_TRUE(m.forward(x, before, fb).ok());
    TrainBuffers t;
    t.training = false;
    ASSERT_TRUE(train_forward(m, x, recorded, t).ok());
    Grads grads;
    ASSERT_TRUE(backward(m, recorded, t, grads, true).ok());
    ASSERT_TRUE(m.forward(x, after, fb).ok());
    EXPECT_TRUE(std::equal(before.begin(), before.end(), after.begin()));
    ASSERT_EQ(shape_of(recorded), shape_of(before));
    for (std::size_t i = 0; i < before.size(); ++i)
        EXPECT_NEAR(recorded.data()[i], before.data()[i], 1e-6 * std::max(1.0f, std::fabs(before.data()[i])));
    // Training mode changes the running stats, and the inference forward then uses them.
    t.training = true;
    ASSERT_TRUE(train_forward(m, x, recorded, t).ok());
    ASSERT_TRUE(m.forward(x, after, fb).ok());
    EXPECT_FALSE(std::equal(before.begin(), before.end(), after.begin()));
    // The weights are still packed for the kernels.
    EXPECT_TRUE(m.layers()[0].params[0].is_packed());
}
