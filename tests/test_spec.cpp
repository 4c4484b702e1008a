#include <gtest/gtest.h>

#include "model.hpp"
#include "spec.hpp"

using namespace modelkeep;

namespace {
std::vector<LayerSpec> parse_ok(const std::string& s) {
    std::vector<LayerSpec> out;
    const Status st = parse_spec(s, out);
    EXPECT_TRUE(st.ok()) << s << ": " << st.to_string();
    return out;
}
Code parse_code(const std::string& s) {
    std::vector<LayerSpec> out;
    return parse_spec(s, out).code();
}
}  // namespace

TEST(Spec, IssueExamples) {
    auto l = parse_ok("Linear(784,512),ReLU,Dropout(0.1),LayerNorm(512),GELU(tanh),Linear(512,10)");
    ASSERT_EQ(l.size(), 6u);
    EXPECT_EQ(l[0].name, "0");
    EXPECT_EQ(l[0].kind, LayerKind::linear);
    EXPECT_EQ(l[0].in_features, 784u);
    EXPECT_EQ(l[0].out_features, 512u);
    EXPECT_FLOAT_EQ(l[2].p, 0.1f);
    EXPECT_EQ(l[3].in_features, 512u);
    EXPECT_TRUE(l[4].tanh_approx);
    EXPECT_EQ(l[5].name, "5");
    auto t = parse_ok("fc1=Linear(3,5)");
    EXPECT_EQ(t[0].name, "fc1");
    auto d = parse_ok("block.layers.0=Linear(4,8,bias=false), head = Linear(8, 2)");
    EXPECT_EQ(d[0].name, "block.layers.0");
    EXPECT_FALSE(d[0].bias);
    EXPECT_EQ(d[1].name, "head");
}

TEST(Spec, ArgumentsAndKeywords) {
    auto l = parse_ok(
        "LeakyReLU(0.2),LeakyReLU(negative_slope=0.3),LayerNorm(8,1e-6),"
        "LayerNorm(8,elementwise_affine=false),BatchNorm1d(4,eps=0.001,affine=False),"
        "BatchNorm1d(4,track_running_stats=false),GELU(approximate='tanh'),Flatten(0,-1),"
        "Softmax(dim=-1),LogSoftmax(-1),Identity(),SiLU,Sigmoid,Tanh,Dropout(p=0.25)");
    EXPECT_FLOAT_EQ(l[0].slope, 0.2f);
    EXPECT_FLOAT_EQ(l[1].slope, 0.3f);
    EXPECT_FLOAT_EQ(l[2].eps, 1e-6f);
    EXPECT_FALSE(l[3].affine);
    EXPECT_FLOAT_EQ(l[4].eps, 0.001f);
    EXPECT_FALSE(l[4].affine);
    EXPECT_FALSE(l[5].track_running_stats);
    EXPECT_TRUE(l[6].tanh_approx);
    EXPECT_EQ(l[7].start_dim, 0);
    EXPECT_FLOAT_EQ(l[14].p, 0.25f);
}

TEST(Spec, FormatRoundTrips) {
    const std::string canonical =
        "0=Linear(3,5),1=Linear(5,2,bias=false),x=LeakyReLU(0.2),2=GELU(tanh),3=GELU,4=Dropout(0.1),"
        "5=Flatten(0,-1),6=LayerNorm(8,eps=1e-06,elementwise_affine=false),7=LayerNorm(8,bias=false),"
        "8=BatchNorm1d(4,affine=false,track_running_stats=false),9=Softmax,10=LogSoftmax,11=ReLU,12=Identity";
    EXPECT_EQ(format_spec(parse_ok(canonical)), canonical);
    EXPECT_EQ(format_spec(parse_ok("Linear(3, 5), ReLU")), "0=Linear(3,5),1=ReLU");
}

TEST(Spec, FormatFloatIsShortestRoundTrip) {
    EXPECT_EQ(format_float(0.1f), "0.1");
    EXPECT_EQ(format_float(1e-5f), "1e-05");
    EXPECT_EQ(format_float(0.2f), "0.2");
    const float odd = 0.123456789f;
    EXPECT_EQ(std::strtof(format_float(odd).c_str(), nullptr), odd);
}

TEST(Spec, Errors) {
    EXPECT_EQ(parse_code(""), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3,5),"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3,5,6,7)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(a,5)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3,5,colour=red)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3,5,bias=maybe)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(in_features=3,5)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Linear(3,5,in_features=4)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Softmax(0)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("LeakyReLU(nan)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("Conv2d(3,5)"), Code::unknown_layer);
    EXPECT_EQ(parse_code("Linear(0,5)"), Code::invalid_argument);
    EXPECT_EQ(parse_code("Dropout(1.5)"), Code::invalid_argument);
    EXPECT_EQ(parse_code("LayerNorm(4,0)"), Code::invalid_argument);
    EXPECT_EQ(parse_code("Linear(1000000,1000000)"), Code::size_overflow);
    EXPECT_EQ(parse_code("Linear(99999999999999999999,1)"), Code::invalid_spec);
    EXPECT_EQ(parse_code("a b=Linear(3,5)"), Code::bad_name);
    EXPECT_EQ(parse_code(".a=ReLU"), Code::bad_name);
    EXPECT_EQ(parse_code(std::string(max_spec_bytes + 1, 'x')), Code::limit_exceeded);
    std::vector<LayerSpec> out;
    const Status st = parse_spec("ReLU,Conv2d(3,5)", out);
    EXPECT_NE(st.message().find("Conv2d"), std::string::npos);
}

TEST(Spec, TheRootLayerHasNoName) {
    // "=Linear(3,5)": a model that is one Linear, its keys "weight" and "bias" (torch's bare nn.Linear).
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("=Linear(3,5)", specs).ok());
    ASSERT_EQ(specs.size(), 1u);
    EXPECT_EQ(specs[0].name, "");
    EXPECT_EQ(format_spec(specs), "=Linear(3,5)");
    Sequential m;
    ASSERT_TRUE(Sequential::create(specs, 1, m).ok());
    EXPECT_EQ(m.state_dict()[0].first, "weight");
    EXPECT_EQ(m.state_dict()[1].first, "bias");
    // Beside other layers it is refused: the root is the model's only layer.
    ASSERT_TRUE(parse_spec("=Linear(3,5),ReLU", specs).ok());
    EXPECT_EQ(Sequential::create(specs, 1, m).code(), Code::bad_name);
    // A bare module's keys suggest the root.
    EXPECT_EQ(suggest_spec({{"weight", {1, 4}}, {"bias", {1}}}), "=Linear(4,1)");
}
