// Sequential: names, state_dict keys, load_state_dict semantics, forward shapes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "alloc_tracking.hpp"
#include "fixtures.hpp"
#include "packed.hpp"
#include "parallel.hpp"

using namespace modelkeep;

namespace {
std::vector<std::string> keys(const Sequential& m) {
    std::vector<std::string> k;
    for (const auto& [name, shape] : m.state_dict_shapes()) k.push_back(name);
    return k;
}
}  // namespace

TEST(Model, StateDictKeysFollowPyTorch) {
    const Sequential m = mkt::make_model("Linear(3,4),ReLU,BatchNorm1d(4),fc1=Linear(4,2,bias=false),LayerNorm(2)");
    EXPECT_EQ(keys(m),
              (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var",
                                        "2.num_batches_tracked", "fc1.weight", "4.weight", "4.bias"}));
    const auto shapes = m.state_dict_shapes();
    EXPECT_EQ(shapes[0].second, (Shape{4, 3}));
    EXPECT_EQ(shapes[6].second, Shape{});
}

TEST(Model, InitIsPyTorchsBoundAndSeeded) {
    const Sequential a = mkt::make_model("Linear(16,8)", 1), b = mkt::make_model("Linear(16,8)", 1),
                     c = mkt::make_model("Linear(16,8)", 2);
    const Tensor& w = a.layers()[0].params[0].values();
    float lo = 1, hi = -1;
    for (float v : w) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    EXPECT_GE(lo, -0.25f);  // 1/√16
    EXPECT_LT(hi, 0.25f);
    EXPECT_LT(lo, -0.15f);  // and actually spread over the range
    EXPECT_GT(hi, 0.15f);
    EXPECT_EQ(a.layers()[0].params[0].values(), b.layers()[0].params[0].values());
    EXPECT_NE(a.layers()[0].params[0].values(), c.layers()[0].params[0].values());
    const Sequential n = mkt::make_model("BatchNorm1d(3)");
    EXPECT_EQ(n.layers()[0].params[0].values()(0), 1.0f);  // weight
    EXPECT_EQ(n.layers()[0].params[3].values()(2), 1.0f);  // running_var
}

TEST(Model, CreateRefusesBadArchitectures) {
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("a=ReLU,a=Tanh", specs).ok());
    Sequential m;
    EXPECT_EQ(Sequential::create(specs, 0, m).code(), Code::duplicate_name);
    ASSERT_TRUE(parse_spec("a=Linear(2,2),a.b=Linear(2,2)", specs).ok());
    EXPECT_EQ(Sequential::create(specs, 0, m).code(), Code::bad_name);
}

TEST(Model, LoadStateDictStrictAndLoose) {
    Sequential m = mkt::make_model("fc1=Linear(3,5)", 1);
    const Sequential donor = mkt::make_model("fc1=Linear(3,5)", 2);
    LoadReport report;
    ASSERT_TRUE(m.load_state_dict(donor.state_dict(), true, report).ok());
    EXPECT_EQ(m.layers()[0].params[0].values(), donor.layers()[0].params[0].values());
    EXPECT_TRUE(report.missing_keys.empty());

    StateDict partial = {donor.state_dict()[0]};
    partial.emplace_back("fc2.weight", zeros({1}));
    const Sequential before = m;
    Status st = m.load_state_dict(partial, true, report);
    EXPECT_EQ(st.code(), Code::missing_key);
    EXPECT_NE(st.message().find("fc1.bias"), std::string::npos);
    EXPECT_EQ(report.missing_keys, std::vector<std::string>{"fc1.bias"});
    EXPECT_EQ(report.unexpected_keys, std::vector<std::string>{"fc2.weight"});

    StateDict only_extra = donor.state_dict();
    only_extra.emplace_back("extra", zeros({1}));
    EXPECT_EQ(m.load_state_dict(only_extra, true, report).code(), Code::unexpected_key);

    Sequential fresh = mkt::make_model("fc1=Linear(3,5)", 3);
    ASSERT_TRUE(fresh.load_state_dict(partial, false, report).ok());
    EXPECT_EQ(fresh.layers()[0].params[0].values(), donor.layers()[0].params[0].values());
    EXPECT_EQ(report.missing_keys.size(), 1u);
}

TEST(Model, ShapeMismatchNamesEveryOneAndChangesNothing) {
    Sequential m = mkt::make_model("Linear(3,5),ReLU,Linear(5,2)", 1);
    const StateDict before = m.state_dict();
    StateDict wrong = mkt::make_model("Linear(4,5),ReLU,Linear(5,3)", 2).state_dict();
    LoadReport report;
    const Status st = m.load_state_dict(wrong, false, report);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("0.weight"), std::string::npos);
    EXPECT_NE(st.message().find("2.weight"), std::string::npos);
    EXPECT_NE(st.message().find("2.bias"), std::string::npos);
    EXPECT_NE(st.message().find("(5, 4)"), std::string::npos);
    const StateDict after = m.state_dict();
    for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].second, before[i].second);
}

TEST(Model, ForwardShapesAndErrors) {
    const Sequential m = mkt::make_model("Linear(3,5),ReLU,Linear(5,2),Softmax");
    Tensor y;
    ASSERT_TRUE(m.forward(zeros({4, 3}), y).ok());
    EXPECT_EQ(shape_of(y), (Shape{4, 2}));
    for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(y(i, 0) + y(i, 1), 1.0f, 1e-6f);
    ASSERT_TRUE(m.forward(zeros({3}), y).ok());  // (*, in) as in PyTorch
    EXPECT_EQ(shape_of(y), (Shape{2}));
    const Status st = m.forward(zeros({4, 7}), y);
    EXPECT_EQ(st.code(), Code::shape_mismatch);
    EXPECT_NE(st.message().find("layer '0'"), std::string::npos);
    EXPECT_NE(st.message().find("(4, 7)"), std::string::npos);
    EXPECT_EQ(mkt::make_model("BatchNorm1d(3)").forward(zeros({2, 4}), y).code(), Code::shape_mismatch);
    EXPECT_EQ(mkt::make_model("LayerNorm(3)").forward(zeros({2, 4}), y).code(), Code::shape_mismatch);
    EXPECT_EQ(mkt::make_model("Flatten(2,3)").forward(zeros({2, 4}), y).code(), Code::shape_mismatch);
    EXPECT_EQ(mkt::make_model("Softmax").forward(zeros({}), y).code(), Code::shape_mismatch);
    ASSERT_TRUE(mkt::make_model("Flatten").forward(zeros({2, 3, 4}), y).ok());
    EXPECT_EQ(shape_of(y), (Shape{2, 12}));
    ASSERT_TRUE(m.forward(zeros({0, 3}), y).ok());  // an empty batch
    EXPECT_EQ(shape_of(y), (Shape{0, 2}));
}

TEST(Model, ActivationsRunInPlaceWithoutTouchingTheInput) {
    // Sequential::forward applies element-wise layers to the previous output in
    // place: the result must equal running each layer into a fresh tensor, and
    // the caller's input must stay as it was (here the first layer is one).
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("a=ReLU,b=Linear(6,5),c=GELU,d=Dropout(p=0.5),e=Linear(5,4),f=SiLU,g=Tanh,"
                           "h=LeakyReLU(negative_slope=0.2),i=Sigmoid,j=Identity",
                           specs)
                    .ok());
    Sequential m;
    ASSERT_TRUE(Sequential::create(specs, 4, m).ok());
    Tensor x(Shape{3, 6});
    Rng rng(5);
    for (float& v : x) v = rng.uniform(-2, 2);
    const Tensor before = x;
    Tensor y;
    ASSERT_TRUE(m.forward(x, y).ok());
    EXPECT_EQ(x, before);
    Tensor cur = x;
    for (const Layer& layer : m.layers()) {
        Tensor next;
        ASSERT_TRUE(layer_forward(layer, cur, next).ok());
        cur = next;
    }
    ASSERT_EQ(shape_of(y), shape_of(cur));
    EXPECT_EQ(0, std::memcmp(y.data(), cur.data(), y.size() * 4));
}

TEST(Model, ForwardAllocatesNothingOnceWarm) {
    // With its ForwardBuffers kept, a model that has run on an input shape
    // runs on it again without a single allocation: no per-layer tensors, no
    // kernel scratch, no shape vectors. Every layer kind that writes a new
    // tensor is here, compact weights too, on both kernel paths (batch 1:
    // GEMV, batch 8: GEMM).
    Sequential m = mkt::make_model(
        "Flatten,a=Linear(12,300),ReLU,LayerNorm(300),b=Linear(300,40),GELU,Dropout(p=0.1),"
        "BatchNorm1d(40),c=Linear(40,33),Tanh,d=Linear(33,6),Softmax",
        3);
    std::vector<std::string> unchanged;
    m.set_weight_dtype(DType::f16, &unchanged);
    ASSERT_TRUE(unchanged.empty());
    ForwardBuffers buffers;
    Tensor y;
    for (const std::size_t threads : {1, 3})  // parallel.hpp: the pool allocates nothing once running
        for (const std::size_t batch : {1, 8}) {
            set_thread_count(threads);
            for (DType dtype : {DType::f16, DType::int8, DType::f32}) {
                m.set_weight_dtype(dtype);
                Tensor x(Shape{batch, 3, 4});
                Rng rng(batch);
                for (float& v : x) v = rng.uniform(-1, 1);
                long news[3];
                for (long& count : news) {
                    const long before = mkt::news_everywhere();
                    const Status st = m.forward(x, y, buffers);
                    count = mkt::news_everywhere() - before;
                    ASSERT_TRUE(st.ok()) << st.to_string();
                }
                EXPECT_EQ(news[1], 0) << "batch " << batch << ", " << dtype_name(dtype) << ", " << threads
                                      << " threads";
                EXPECT_EQ(news[2], 0) << "batch " << batch << ", " << dtype_name(dtype) << ", " << threads
                                      << " threads";
                Tensor expect;
                ASSERT_TRUE(m.forward(x, expect).ok());  // fresh buffers: the same result
                EXPECT_EQ(y, expect);
            }
        }
    set_thread_count(1);
    // The counter does see the tensors a cold forward makes.
    ForwardBuffers cold;
    Tensor fresh;
    const long before = mkt::news_everywhere();
    ASSERT_TRUE(m.forward(zeros({2, 3, 4}), fresh, cold).ok());
    EXPECT_GE(mkt::news_everywhere() - before, 5);
}

TEST(Model, ForwardEdgeCases) {
    Tensor x(Shape{2, 3});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = float(i) - 2.5f;
    Tensor y;
    // No layers: y is a copy of x.
    ASSERT_TRUE(Sequential().forward(x, y).ok());
    EXPECT_EQ(y, x);
    // Only element-wise layers: the first writes y from x, the next in place on y.
    ASSERT_TRUE(mkt::make_model("ReLU,Identity,LeakyReLU(negative_slope=0.5)").forward(x, y).ok());
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y.data()[i], std::max(x.data()[i], 0.0f));
    // y may be the input itself.
    const Sequential m = mkt::make_model("Linear(3,4),ReLU,Linear(4,2)");
    Tensor expect, io = x;
    ASSERT_TRUE(m.forward(x, expect).ok());
    ASSERT_TRUE(m.forward(io, io).ok());
    EXPECT_EQ(io, expect);
    // A layer_forward given the next activation applies it after any kind.
    const Sequential norm = mkt::make_model("LayerNorm(3)");
    Tensor plain, fused;
    ASSERT_TRUE(layer_forward(norm.layers()[0], x, plain).ok());
    ASSERT_TRUE(layer_forward(norm.layers()[0], x, fused, {Activation::Kind::relu}).ok());
    Activation{Activation::Kind::relu}.apply(plain.data(), plain.size());
    EXPECT_EQ(plain, fused);
}

// The memory functions the wasm bindings reserve by (model.hpp) against what
// the calls really allocate, counted by alloc_tracking.
TEST(Model, ForwardBytesIsWhatAColdForwardAllocates) {
    struct Case {
        const char* spec;
        Shape x;
    };
    const Case cases[] = {
        {"Linear(3,5),ReLU,Linear(5,2)", {1, 3}},
        {"Linear(3,5),ReLU,Linear(5,2)", {7, 3}},
        {"ReLU,Linear(4,6),Softmax", {2, 4}},                                       // element-wise first
        {"Flatten,a=Linear(12,30),LayerNorm(30),BatchNorm1d(30),Tanh", {5, 3, 4}},  // flatten, norms
        {"Linear(6,4),LogSoftmax", {2, 3, 6}},                                      // rank 3 through a Linear
        {"BatchNorm1d(3),Flatten,Linear(12,2)", {2, 3, 4}},                         // (N, C, L)
        {"Sigmoid,GELU", {4, 4}},                                                   // element-wise only
        {"Linear(3,5),Linear(5,2)", {1, 4}},                                        // does not fit: stops at layer 0
    };
    for (const Case& c : cases)
        for (DType dtype : {DType::f32, DType::f16, DType::int8}) {
            Sequential m = mkt::make_model(c.spec, 7);
            m.set_weight_dtype(dtype);
            Tensor x = zeros(c.x);
            const std::uint64_t predicted = m.forward_bytes(c.x);
            std::uint64_t peak = 0;
            bool ok = false;
            // On a thread of its own, so that the kernels' per-thread scratch starts empty.
            std::thread([&] {
                ForwardBuffers buffers;
                Tensor y;
                const mkt::AllocScope scope;
                ok = m.forward(x, y, buffers).ok();
                peak = scope.peak();
            }).join();
            const std::string where = std::string(c.spec) + " on " + shape_to_string(c.x) + ", " + dtype_name(dtype);
            if (!ok) {  // the error's message is all it holds beyond the outputs so far
                EXPECT_LE(peak, predicted + 512) << where;
                continue;
            }
            // Exact but for the empty slots' one value each (freed as a slot
            // gets its output) and the scratch's growth (bounded by twice the
            // largest: K ≤ 12 here, 4 bytes a value).
            const std::uint64_t scratch = 4 * m.layers().size() + (dtype != DType::f32 ? 2 * 12 * 4 : 0);
            EXPECT_LE(peak, predicted) << where;
            EXPECT_GE(peak + scratch, predicted) << where;
        }
    // No layers: y is a copy of x.
    EXPECT_EQ(Sequential().forward_bytes({3, 4}), 48u);
    // A big model's cold forward, to the byte: the outputs dominate.
    const Sequential big = mkt::make_model("Linear(500,800),ReLU,Linear(800,300),LayerNorm(300)", 2);
    Tensor x = zeros({9, 500});
    std::uint64_t peak = 0;
    std::thread([&] {
        ForwardBuffers buffers;
        Tensor y;
        const mkt::AllocScope scope;
        ASSERT_TRUE(big.forward(x, y, buffers).ok());
        peak = scope.peak();
    }).join();
    EXPECT_LE(peak, big.forward_bytes({9, 500}));
    EXPECT_GE(peak + 4 * big.layers().size(), big.forward_bytes({9, 500}));
}

TEST(Model, MemoryOfCreateStateDictAndDtypeChanges) {
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("Linear(30,40),BatchNorm1d(40),Linear(40,7,bias=false),LayerNorm(7)", specs).ok());
    Sequential m;
    {
        const mkt::AllocScope scope;
        ASSERT_TRUE(Sequential::create(specs, 1, m).ok());
        // The tensors (7 KB) and their bookkeeping, all told.
        EXPECT_LE(scope.peak(), model_bytes(specs));
        EXPECT_GE(scope.peak() * 2, model_bytes(specs));
    }
    // A big model: the values, nearly to the byte.
    ASSERT_TRUE(parse_spec("Linear(300,400),ReLU,Linear(400,500)", specs).ok());
    {
        const mkt::AllocScope scope;
        Sequential big;
        ASSERT_TRUE(Sequential::create(specs, 1, big).ok());
        const std::uint64_t values = (300 * 400 + 400 + 400 * 500 + 500) * 4;
        EXPECT_LE(scope.peak(), model_bytes(specs));
        EXPECT_GE(scope.peak(), values);
        // and packing a weight (packed.hpp) holds one 8-row block of it twice, for a moment.
        EXPECT_LE(model_bytes(specs), values + 8192 + pack_scratch_bytes(500, 400));
    }
    {
        const mkt::AllocScope scope;
        const StateDict sd = m.state_dict();
        EXPECT_LE(scope.peak(), m.state_dict_bytes());
        EXPECT_GE(scope.peak() * 2, m.state_dict_bytes());
    }
    // Every change of dtype, from every dtype: the peak beside the model is
    // at most what set_weight_dtype_bytes says, and not far below it.
    const DType all[] = {DType::f32, DType::f16, DType::bf16, DType::int8};
    for (DType from : all)
        for (DType to : all) {
            m.set_weight_dtype(from);
            const std::uint64_t predicted = m.set_weight_dtype_bytes(to);
            const mkt::AllocScope scope;
            m.set_weight_dtype(to);
            EXPECT_LE(scope.peak(), predicted) << dtype_name(from) << " -> " << dtype_name(to);
            EXPECT_GE(scope.peak() + 1024, predicted * 9 / 10) << dtype_name(from) << " -> " << dtype_name(to);
        }
}

TEST(Model, AStrictLoadSaysWhatTheFileHasAndTheLikelyPrefix) {
    Sequential m = mkt::make_model("fc1=Linear(3,4),ReLU,fc2=Linear(4,2)");
    // DataParallel's keys: every one carries "module.".
    StateDict ddp;
    for (auto& [key, t] : m.state_dict()) ddp.emplace_back("module." + key, t);
    LoadReport report;
    Status st = m.load_state_dict(ddp, true, report);
    EXPECT_EQ(st.code(), Code::missing_key);
    EXPECT_EQ(key_prefix(report), "module.");
    EXPECT_NE(st.message().find("prefix 'module.'"), std::string::npos) << st.message();
    // Lightning's nested "model.net." too.
    StateDict nested;
    for (auto& [key, t] : m.state_dict()) nested.emplace_back("model.net." + key, t);
    EXPECT_EQ(m.load_state_dict(nested, true, report).code(), Code::missing_key);
    EXPECT_EQ(key_prefix(report), "model.net.");
    // Unrelated keys: no prefix, and the message lists what the file has.
    st = m.load_state_dict({{"a.weight", zeros({4, 3})}, {"b.bias", zeros({2})}}, true, report);
    EXPECT_EQ(key_prefix(report), "");
    EXPECT_NE(st.message().find("The file has: a.weight (4, 3), b.bias (2,)"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("Likely fix"), std::string::npos) << st.message();
}

TEST(Model, KeyErrorsShowBothSidesAndTheLikelyFix) {
    Sequential m = mkt::make_model("fc1=Linear(3,4),ReLU,fc2=Linear(4,2)");
    const StateDict sd = m.state_dict();
    LoadReport report;
    // The same layers, named by position: the file's names are the fix (a SPEC to paste).
    Sequential positional = mkt::make_model("Linear(3,4),ReLU,Linear(4,2)");
    Status st = positional.load_state_dict(sd, true, report);
    EXPECT_EQ(st.code(), Code::missing_key);
    EXPECT_NE(st.message().find("The model expects: 0.weight (4, 3), 0.bias (4,), 2.weight (2, 4), 2.bias (2,)"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("The file has: fc1.weight (4, 3), fc1.bias (4,), fc2.weight (2, 4), fc2.bias (2,)"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("name the layers as the file does: fc1=Linear(3,4),1=ReLU,fc2=Linear(4,2)"),
              std::string::npos)
        << st.message();
    // A prefix in the SPEC the file lacks.
    Sequential prefixed = mkt::make_model("model.fc1=Linear(3,4),ReLU,model.fc2=Linear(4,2)");
    st = prefixed.load_state_dict(sd, true, report);
    EXPECT_NE(st.message().find("start with 'model.', which the file's keys lack"), std::string::npos) << st.message();
    // Other shapes: no rename is offered.
    Sequential wider = mkt::make_model("Linear(3,5),ReLU,Linear(5,2)");
    st = wider.load_state_dict(sd, true, report);
    EXPECT_EQ(st.message().find("Likely fix"), std::string::npos) << st.message();
}
