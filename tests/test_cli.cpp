// The `modelkeep` command-line tool, run as a real process: init → inspect →
// predict → convert round trips checked against the core in-process, every
// error path's code, message and exit status, help texts and atomic writes.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "cli/dataset.hpp"
#include "cli/json.hpp"
#include "format.hpp"
#include "model.hpp"
#include "safetensors.hpp"
#include "spec.hpp"
#include "torch_checkpoint.hpp"
#include "torch_file.hpp"
#include "trainer.hpp"

using namespace modelkeep;

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

struct Result {
    int code = -1;
    std::string out, err;
};

std::string sh_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Bytes read_bytes(const fs::path& p) {
    const std::string s = read_text(p);
    return Bytes(s.begin(), s.end());
}

void write_bytes(const fs::path& p, const Bytes& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// The JSON array that follows "key": in the CLI's output, parsed.
std::vector<float> json_field(const std::string& text, const std::string& key, Shape* shape = nullptr) {
    const std::size_t at = text.find("\"" + key + "\":[");
    if (at == std::string::npos) {
        ADD_FAILURE() << "no \"" << key << "\" array in: " << text;
        return {};
    }
    const std::size_t begin = text.find('[', at);
    const std::size_t end = text.find(']', begin);
    Shape s;
    std::vector<float> data;
    const Status st = json::parse_array(text.substr(begin, end - begin + 1), s, data);
    if (!st.ok()) ADD_FAILURE() << st.to_string() << " in: " << text;
    if (shape) *shape = s;
    return data;
}

// The core's own answer for the same file and input, computed in-process.
Tensor core_predict(const Bytes& file, const Shape& shape, const std::vector<float>& input) {
    Sequential model;
    const Status st = read_model(file.data(), file.size(), model);
    EXPECT_TRUE(st.ok()) << st.to_string();
    Tensor y;
    const Status fw = model.forward(from_data(shape, input.data()), y);
    EXPECT_TRUE(fw.ok()) << fw.to_string();
    return y;
}

class Cli : public ::testing::Test {
protected:
    fs::path dir;

    void SetUp() override {
        char tmpl[] = "/tmp/modelkeep_cli_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    fs::path path(const std::string& name) const { return dir / name; }

    // Runs the CLI in the temp dir with `args`; stdin from `stdin_file` or /dev/null.
    // `spoiled`: the test build (MODELKEEP_CLI_TEST_HOOKS) with every output spoiled before it is read back.
    Result run(std::initializer_list<std::string> args, const std::string& stdin_file = "",
               bool spoiled = false) const {
        std::string cmd =
            "cd " + sh_quote(dir.string()) + " && " +
            (spoiled ? "MODELKEEP_TEST_SPOIL_OUTPUT=1 " + sh_quote(MODELKEEP_CLI_HOOKED) : sh_quote(MODELKEEP_CLI));
        for (const std::string& a : args) cmd += " " + sh_quote(a);
        cmd += " >" + sh_quote((dir / ".stdout").string()) + " 2>" + sh_quote((dir / ".stderr").string());
        cmd += " <" + sh_quote(stdin_file.empty() ? "/dev/null" : stdin_file);
        const int status = std::system(cmd.c_str());
        Result r;
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.out = read_text(dir / ".stdout");
        r.err = read_text(dir / ".stderr");
        fs::remove(dir / ".stdout");
        fs::remove(dir / ".stderr");
        return r;
    }

    // Runs and expects success with an empty stderr.
    Result ok(std::initializer_list<std::string> args, const std::string& stdin_file = "") const {
        Result r = run(args, stdin_file);
        EXPECT_EQ(r.code, 0) << "stderr: " << r.err;
        EXPECT_EQ(r.err, "");
        return r;
    }

    // Runs and expects exit status `code` and "modelkeep: CODE_NAME: ..." on stderr.
    Result fails(std::initializer_list<std::string> args, int code, const std::string& code_name,
                 bool spoiled = false) const {
        Result r = run(args, "", spoiled);
        EXPECT_EQ(r.code, code) << "stdout: " << r.out << "\nstderr: " << r.err;
        EXPECT_EQ(r.err.rfind("modelkeep: " + code_name + ": ", 0), 0u) << "stderr: " << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line expected: " << r.err;
        return r;
    }

    std::vector<std::string> tmp_leftovers() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir))
            if (contains(e.path().filename().string(), ".tmp-")) names.push_back(e.path().filename().string());
        return names;
    }
};

const char* const dtype_names[] = {"f32", "f16", "bf16", "int8"};

// dtype.hpp's bound for one stored weight.
float weight_bound(const std::string& dtype, float w, float row_max) {
    if (dtype == "f16") return std::max(std::ldexp(std::fabs(w), -11), std::ldexp(1.0f, -25));
    if (dtype == "bf16") return std::ldexp(std::fabs(w), -8);
    if (dtype == "int8") return row_max / 254.0f;
    return 0.0f;
}

}  // namespace

TEST_F(Cli, HelpDocumentsEveryCommandAndOption) {
    const Result r = ok({"--help"});
    for (const char* word : {"init",
                             "inspect",
                             "predict",
                             "convert",
                             "help",
                             "--seed",
                             "--dtype",
                             "--meta",
                             "--state-dict",
                             "--json",
                             "--input",
                             "--version",
                             "SPEC",
                             "f16",
                             "bf16",
                             "int8",
                             "Linear(in_features, out_features, bias=true)",
                             "LayerNorm",
                             "BatchNorm1d",
                             "LeakyReLU",
                             "GELU",
                             "Dropout",
                             "Flatten",
                             "LogSoftmax",
                             "Identity",
                             "Exit status"})
        EXPECT_TRUE(contains(r.out, word)) << word;
    EXPECT_EQ(ok({"-h"}).out, r.out);
    EXPECT_EQ(ok({"help"}).out, r.out);

    for (const std::string cmd : {"init", "inspect", "predict", "convert", "train"}) {
        const Result h = ok({"help", cmd});
        EXPECT_EQ(h.out.rfind("Usage: modelkeep " + cmd + " ", 0), 0u) << h.out;
        EXPECT_EQ(ok({cmd, "--help"}).out, h.out);
        EXPECT_EQ(ok({cmd, "x", "-h", "--bogus"}).out, h.out);  // help wins over other arguments
    }
    EXPECT_TRUE(contains(ok({"help", "init"}).out, "GELU(approximate=none|tanh)"));
    EXPECT_TRUE(contains(ok({"help", "spec"}).out, "LAYER := [NAME \"=\"] KIND"));
    EXPECT_TRUE(contains(ok({"help", "predict"}).out, "--input @PATH"));
    EXPECT_TRUE(contains(ok({"help", "inspect"}).out, "integrity {ok, code, message}"));

    // No arguments at all: the overview on stderr, usage exit status.
    const Result none = run({});
    EXPECT_EQ(none.code, 2);
    EXPECT_EQ(none.out, "");
    EXPECT_TRUE(contains(none.err, "Usage:"));
}

TEST_F(Cli, Version) { EXPECT_EQ(ok({"--version"}).out, "modelkeep 0.1.0\n"); }

TEST_F(Cli, HelpSpecExamplesAreValid) {
    const std::string text = ok({"help", "spec"}).out;
    int n = 0;
    for (std::size_t at = text.find("    '"); at != std::string::npos; at = text.find("    '", at + 1)) {
        const std::size_t b = at + 5, e = text.find('\'', b);
        const std::string spec = text.substr(b, e - b);
        const Result r = ok({"init", spec, "ex.mkp"});
        EXPECT_TRUE(contains(r.out, "wrote ex.mkp: full model")) << spec << ": " << r.out;
        ++n;
    }
    EXPECT_EQ(n, 3);
}

TEST_F(Cli, InitWritesWhatTheCoreWrites) {
    const Result r = ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--seed", "42"});
    EXPECT_EQ(r.out, "wrote tiny.mkp: full model, 1 layer, 2 tensors, 20 parameters, f32 weights, " +
                         std::to_string(fs::file_size(path("tiny.mkp"))) + " bytes\n");
    const Bytes file = read_bytes(path("tiny.mkp"));
    EXPECT_LE(file.size(), 160u);  // the tutorial model stays small

    // Byte for byte what write_model gives for the same SPEC and seed.
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec("fc1=Linear(3,5)", specs).ok());
    Sequential model;
    ASSERT_TRUE(Sequential::create(specs, 42, model).ok());
    Bytes expected;
    ASSERT_TRUE(write_model(model, WriteOptions{}, expected).ok());
    EXPECT_EQ(file, expected);

    // Default seed 0; different seeds give different weights.
    ok({"init", "fc1=Linear(3,5)", "seed0.mkp"});
    ok({"init", "fc1=Linear(3,5)", "seed0b.mkp", "--seed=0"});
    EXPECT_EQ(read_bytes(path("seed0.mkp")), read_bytes(path("seed0b.mkp")));
    EXPECT_NE(read_bytes(path("seed0.mkp")), file);

    // Options: dtype, metadata (last value wins, '=' allowed in values), state dict.
    const Result r2 = ok({"init", "Linear(4,8),ReLU,Linear(8,2)", "m.mkp", "--dtype", "bf16", "--meta", "a=1", "--meta",
                          "b=x=y", "--meta", "a=2", "--seed", "18446744073709551615"});
    EXPECT_TRUE(contains(r2.out, "full model, 3 layers, 4 tensors, 58 parameters, bf16 weights")) << r2.out;
    const Bytes m = read_bytes(path("m.mkp"));
    FileInfo info;
    ASSERT_TRUE(read_info(m.data(), m.size(), true, info).ok());
    EXPECT_EQ(info.metadata, (Metadata{{"a", "2"}, {"b", "x=y"}}));
    EXPECT_EQ(info.tensors[0].dtype, DType::bf16);
    EXPECT_EQ(info.tensors[1].dtype, DType::f32);

    const Result r3 = ok({"init", "Linear(4,8),ReLU,Linear(8,2)", "sd.mkp", "--state-dict"});
    EXPECT_TRUE(contains(r3.out, "wrote sd.mkp: state dict, 4 tensors, 58 parameters, f32 weights")) << r3.out;
    const Bytes sd = read_bytes(path("sd.mkp"));
    ASSERT_TRUE(read_info(sd.data(), sd.size(), true, info).ok());
    EXPECT_EQ(info.kind, FileKind::state_dict);
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, InspectText) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--meta", "author=me"});
    const Bytes file = read_bytes(path("tiny.mkp"));
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), true, info).ok());

    const std::string out = ok({"inspect", "tiny.mkp"}).out;
    for (const std::string& line : std::vector<std::string>{
             "file          tiny.mkp\n", "version       1.0\n", "kind          full model\n",
             "alignment     16 bytes\n", "header        " + std::to_string(info.header_bytes) + " bytes\n",
             "size          " + std::to_string(file.size()) + " bytes\n", "parameters    20\n",
             "architecture  fc1=Linear(3,5)\n", "layers (1):\n", "  fc1   Linear  fc1=Linear(3,5)\n", "tensors (2):\n",
             "metadata (1):\n", "  author  = me\n",
             "integrity     ok (header and data CRC-32, padding and int8 scales verified)\n"})
        EXPECT_TRUE(contains(out, line)) << "missing: " << line << "\nin:\n" << out;
    // Tensor rows: name, dtype, shape, then right-aligned bytes and offset.
    EXPECT_TRUE(contains(out, "  fc1.weight  f32    (5, 3)     60  " +
                                  std::string(6 - std::to_string(info.tensors[0].offset).size(), ' ') +
                                  std::to_string(info.tensors[0].offset) + "\n"))
        << out;
    EXPECT_TRUE(contains(out, "  fc1.bias    f32    (5,)       20")) << out;

    // A state dict has no layers section.
    ok({"init", "Linear(2,2),LayerNorm(2)", "sd.mkp", "--state-dict"});
    const std::string sd = ok({"inspect", "sd.mkp"}).out;
    EXPECT_TRUE(contains(sd, "kind          state dict (tensors only)\n")) << sd;
    EXPECT_TRUE(contains(sd, "architecture  none (state dict)\n")) << sd;
    EXPECT_FALSE(contains(sd, "layers (")) << sd;
    EXPECT_TRUE(contains(sd, "metadata (0)\n")) << sd;
    EXPECT_TRUE(contains(sd, "  1.weight  f32    (2,)")) << sd;
}

TEST_F(Cli, InspectJsonHasStableFields) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--meta", "author=me", "--meta", "note=a \"quoted\"\nline"});
    const Bytes file = read_bytes(path("tiny.mkp"));
    FileInfo info;
    ASSERT_TRUE(read_info(file.data(), file.size(), true, info).ok());
    const std::string expected =
        "{\"version\":\"1.0\",\"kind\":\"model\",\"align\":16,\"header_bytes\":" + std::to_string(info.header_bytes) +
        ",\"file_bytes\":" + std::to_string(file.size()) +
        ",\"param_count\":20,\"architecture\":\"fc1=Linear(3,5)\","
        "\"layers\":[{\"name\":\"fc1\",\"kind\":\"Linear\",\"spec\":\"fc1=Linear(3,5)\"}],"
        "\"tensors\":[{\"name\":\"fc1.weight\",\"dtype\":\"f32\",\"shape\":[5,3],\"bytes\":60,\"offset\":" +
        std::to_string(info.tensors[0].offset) +
        "},{\"name\":\"fc1.bias\",\"dtype\":\"f32\",\"shape\":[5],\"bytes\":20,\"offset\":" +
        std::to_string(info.tensors[1].offset) +
        "}],\"training\":null,\"metadata\":{\"author\":\"me\",\"note\":\"a \\\"quoted\\\"\\nline\"},"
        "\"integrity\":{\"ok\":true,\"code\":\"ok\",\"message\":\"\"}}\n";
    EXPECT_EQ(ok({"inspect", "tiny.mkp", "--json"}).out, expected);
    EXPECT_EQ(ok({"inspect", "--json", "tiny.mkp"}).out, expected);

    // A multi-layer model: canonical per-layer SPECs and the whole architecture.
    ok({"init",
        "Linear(4,8),ReLU,blk.norm=LayerNorm(8,eps=0.001),GELU(approximate='tanh'),Dropout(p=0.1),"
        "BatchNorm1d(8),head=Linear(8,3,bias=false),LogSoftmax(dim=-1)",
        "mlp.mkp", "--dtype", "int8"});
    const std::string j = ok({"inspect", "mlp.mkp", "--json"}).out;
    EXPECT_TRUE(contains(j,
                         "\"architecture\":\"0=Linear(4,8),1=ReLU,blk.norm=LayerNorm(8,eps=0.001),3=GELU(tanh),"
                         "4=Dropout(0.1),5=BatchNorm1d(8),head=Linear(8,3,bias=false),7=LogSoftmax\""))
        << j;
    EXPECT_TRUE(
        contains(j, "{\"name\":\"blk.norm\",\"kind\":\"LayerNorm\",\"spec\":\"blk.norm=LayerNorm(8,eps=0.001)\"}"))
        << j;
    EXPECT_TRUE(contains(j, "{\"name\":\"0.weight\",\"dtype\":\"int8\",\"shape\":[8,4],\"bytes\":64,")) << j;
    EXPECT_TRUE(contains(j, "{\"name\":\"5.running_var\",\"dtype\":\"f32\",\"shape\":[8],\"bytes\":32,")) << j;
    // params: 4*8+8 + 8+8 + 8+8 + 8*3 (buffers excluded)
    EXPECT_TRUE(contains(j, "\"param_count\":96,")) << j;
    EXPECT_TRUE(contains(j, "\"metadata\":{},")) << j;

    ok({"init", "Linear(2,2)", "sd.mkp", "--state-dict"});
    const std::string s = ok({"inspect", "sd.mkp", "--json"}).out;
    EXPECT_TRUE(contains(s, "\"kind\":\"state_dict\",")) << s;
    EXPECT_TRUE(contains(s, "\"architecture\":null,\"layers\":[],")) << s;
}

TEST_F(Cli, PredictMatchesTheCore) {
    ok({"init", "Linear(4,8),ReLU,LayerNorm(8),GELU(tanh),Dropout(0.1),BatchNorm1d(8),Linear(8,3),Softmax", "mlp.mkp",
        "--seed", "3"});
    const Bytes file = read_bytes(path("mlp.mkp"));
    const std::vector<float> input = {0.5f, -1.25f, 3.0f, 0.1f, 2.0f, 0.0f, -7.5f, 1e-3f};
    const Tensor want = core_predict(file, {2, 4}, input);

    const std::string text = "[[0.5, -1.25, 3, 0.1], [2, 0, -7.5, 1e-3]]";
    std::ofstream(path("in.json")) << text << "\n";
    const Result results[] = {ok({"predict", "mlp.mkp", "--input", text}),
                              ok({"predict", "mlp.mkp", "--input=" + text}),
                              ok({"predict", "mlp.mkp", "--input", "@in.json"}),
                              ok({"predict", "--input", "-", "mlp.mkp"}, path("in.json").string())};
    for (const Result& r : results) {
        EXPECT_EQ(r.out.rfind("{\"shape\":[2,3],\"data\":[", 0), 0u) << r.out;
        EXPECT_EQ(r.out.substr(r.out.size() - 3), "]}\n") << r.out;
        Shape shape;
        json_field(r.out, "shape", &shape);
        EXPECT_EQ(json_field(r.out, "shape"), (std::vector<float>{2, 3}));
        const std::vector<float> got = json_field(r.out, "data");
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want.data()[i]) << i;  // exact round trip
        EXPECT_EQ(r.out, results[0].out);
    }

    // A rank-1 input is passed as given: Linear accepts (*, in).
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--seed", "42"});
    const Bytes tiny = read_bytes(path("tiny.mkp"));
    const Result r1 = ok({"predict", "tiny.mkp", "--input", "[1, 2, 3]"});
    EXPECT_EQ(r1.out.rfind("{\"shape\":[5],\"data\":[", 0), 0u) << r1.out;
    const Tensor y1 = core_predict(tiny, {3}, {1, 2, 3});
    const std::vector<float> got1 = json_field(r1.out, "data");
    ASSERT_EQ(got1.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(got1[i], y1.data()[i]);
    const Result r3 = ok({"predict", "tiny.mkp", "--input", "[[[1, 2, 3]], [[4, 5, 6]]]"});
    EXPECT_EQ(r3.out.rfind("{\"shape\":[2,1,5],", 0), 0u) << r3.out;
}

TEST_F(Cli, ConvertToEachDtypeThenPredict) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--seed", "42", "--meta", "author=me"});
    const Bytes original = read_bytes(path("tiny.mkp"));
    Sequential model;
    ASSERT_TRUE(read_model(original.data(), original.size(), model).ok());
    Tensor rows;
    const Tensor& w = model.layers()[0].params[0].f32(rows);  // (5, 3)
    const std::vector<float> x = {1.0f, -2.0f, 3.0f};
    const Tensor base = core_predict(original, {1, 3}, x);

    for (const std::string dtype : dtype_names) {
        SCOPED_TRACE(dtype);
        const std::string out = "tiny-" + dtype + ".mkp";
        const Result c = ok({"convert", "tiny.mkp", out, "--dtype", dtype});
        EXPECT_TRUE(
            contains(c.out, "wrote " + out + ": full model, 1 layer, 2 tensors, 20 parameters, " + dtype + " weights"))
            << c.out;
        const std::string j = ok({"inspect", out, "--json"}).out;
        EXPECT_TRUE(contains(j, "{\"name\":\"fc1.weight\",\"dtype\":\"" + dtype + "\",\"shape\":[5,3]")) << j;
        EXPECT_TRUE(contains(j, "{\"name\":\"fc1.bias\",\"dtype\":\"f32\",\"shape\":[5]")) << j;
        EXPECT_TRUE(contains(j, "\"metadata\":{\"author\":\"me\"}")) << j;
        EXPECT_TRUE(contains(j, "\"integrity\":{\"ok\":true,")) << j;

        const Bytes converted = read_bytes(path(out));
        const Tensor exact = core_predict(converted, {1, 3}, x);
        const std::vector<float> got = json_field(ok({"predict", out, "--input", "[[1, -2, 3]]"}).out, "data");
        ASSERT_EQ(got.size(), 5u);
        for (std::size_t j2 = 0; j2 < 5; ++j2) {
            EXPECT_EQ(got[j2], exact.data()[j2]);  // what the core computes for this very file
            float row_max = 0.0f, bound = 0.0f, scale = 0.0f;
            for (std::size_t i = 0; i < 3; ++i) row_max = std::max(row_max, std::fabs(w(j2, i)));
            for (std::size_t i = 0; i < 3; ++i) {
                bound += weight_bound(dtype, w(j2, i), row_max) * std::fabs(x[i]);
                scale += std::fabs(w(j2, i) * x[i]);
            }
            bound += 1e-6f * (scale + 1.0f);  // float summation order
            EXPECT_LE(std::fabs(got[j2] - base.data()[j2]), bound) << "output " << j2;
            if (dtype == "f32") EXPECT_EQ(got[j2], base.data()[j2]);
        }
    }
    EXPECT_EQ(read_bytes(path("tiny-f32.mkp")), original);  // f32 → f32 is the identity
    // Narrower files are smaller.
    EXPECT_LT(fs::file_size(path("tiny-f16.mkp")), original.size());
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, ConvertToStateDictKeepsMetadata) {
    ok({"init", "Linear(3,4),ReLU,Linear(4,2)", "m.mkp", "--meta", "a=1", "--meta", "b=2"});
    const Result c =
        ok({"convert", "m.mkp", "sd.mkp", "--state-dict", "--meta", "b=3", "--meta", "c=4", "--dtype", "f16"});
    EXPECT_TRUE(contains(c.out, "wrote sd.mkp: state dict, 4 tensors, 26 parameters, f16 weights")) << c.out;
    const std::string j = ok({"inspect", "sd.mkp", "--json"}).out;
    EXPECT_TRUE(contains(j, "\"kind\":\"state_dict\"")) << j;
    EXPECT_TRUE(contains(j, "\"metadata\":{\"a\":\"1\",\"b\":\"3\",\"c\":\"4\"}")) << j;
    EXPECT_TRUE(contains(j, "{\"name\":\"0.weight\",\"dtype\":\"f16\",\"shape\":[4,3]")) << j;

    // The state dict's tensors equal the model's, within f16.
    const Bytes m = read_bytes(path("m.mkp")), sd = read_bytes(path("sd.mkp"));
    LoadedFile lm, ls;
    ASSERT_TRUE(read_file(m.data(), m.size(), lm).ok());
    ASSERT_TRUE(read_file(sd.data(), sd.size(), ls).ok());
    ASSERT_EQ(lm.tensors.size(), ls.tensors.size());
    for (std::size_t i = 0; i < lm.tensors.size(); ++i) {
        EXPECT_EQ(lm.tensors[i].first, ls.tensors[i].first);
        const Tensor& a = lm.tensors[i].second;
        const Tensor& b = ls.tensors[i].second;
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t k = 0; k < a.size(); ++k)
            EXPECT_LE(std::fabs(a.data()[k] - b.data()[k]), std::ldexp(std::fabs(a.data()[k]), -11) + 1e-7f);
    }

    // A state dict stays one, and cannot be run.
    ok({"convert", "sd.mkp", "sd2.mkp"});
    EXPECT_TRUE(contains(ok({"inspect", "sd2.mkp", "--json"}).out, "\"kind\":\"state_dict\""));
    const Result p = fails({"predict", "sd.mkp", "--input", "[[1, 2, 3]]"}, 1, "needs_architecture");
    EXPECT_TRUE(contains(p.err, "state dict")) << p.err;
    EXPECT_TRUE(contains(p.err, "--arch")) << p.err;

    // Converting a file onto itself.
    ok({"convert", "m.mkp", "m.mkp", "--dtype", "int8"});
    EXPECT_TRUE(contains(ok({"inspect", "m.mkp"}).out, "int8")) << "in-place convert";
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, BadSpecs) {
    fails({"init", "Linear(3", "x.mkp"}, 1, "invalid_spec");
    fails({"init", "Linear(3,5", "x.mkp"}, 1, "invalid_spec");
    fails({"init", "Linear(3)", "x.mkp"}, 1, "invalid_spec");
    fails({"init", "", "x.mkp"}, 1, "invalid_spec");
    const Result r = fails({"init", "Linear(3,5),Conv2d(1,2)", "x.mkp"}, 1, "unknown_layer");
    EXPECT_TRUE(contains(r.err, "Conv2d")) << r.err;
    fails({"init", "Linear(0,5)", "x.mkp"}, 1, "invalid_argument");
    fails({"init", "a b=Linear(1,1)", "x.mkp"}, 1, "bad_name");
    fails({"init", "a=ReLU,a=Tanh", "x.mkp"}, 1, "duplicate_name");
    EXPECT_FALSE(fs::exists(path("x.mkp")));
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, MissingAndUnreadableFiles) {
    for (const std::string cmd : {"inspect", "predict", "convert"}) {
        Result r = cmd == "predict"   ? fails({cmd, "nope.mkp", "--input", "[1]"}, 1, "io_error")
                   : cmd == "convert" ? fails({cmd, "nope.mkp", "out.mkp"}, 1, "io_error")
                                      : fails({cmd, "nope.mkp"}, 1, "io_error");
        EXPECT_TRUE(contains(r.err, "'nope.mkp'")) << r.err;
    }
    fs::create_directory(path("adir"));
    fails({"inspect", "adir"}, 1, "io_error");
    ok({"init", "Linear(1,1)", "m.mkp"});
    const Result r = fails({"predict", "m.mkp", "--input", "@missing.json"}, 1, "io_error");
    EXPECT_TRUE(contains(r.err, "'missing.json'")) << r.err;
    // Not a model file at all, whatever its name says.
    std::ofstream(path("text.mkp")) << "hello, this is not a model file";
    EXPECT_TRUE(contains(fails({"inspect", "text.mkp"}, 1, "unknown_format").err, "safetensors"));
    write_bytes(path("empty.mkp"), {});
    fails({"inspect", "empty.mkp"}, 1, "unknown_format");
}

TEST_F(Cli, CorruptedFiles) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp", "--seed", "42"});
    const Bytes good = read_bytes(path("tiny.mkp"));

    // A flipped data byte: the header is fine, so inspect lists everything but fails the check.
    Bytes bad = good;
    bad[bad.size() - 3] ^= 0x40;
    write_bytes(path("bad.mkp"), bad);
    Result r = fails({"inspect", "bad.mkp"}, 1, "checksum_mismatch");
    EXPECT_TRUE(contains(r.out, "fc1.weight")) << r.out;
    EXPECT_TRUE(contains(r.out, "architecture  fc1=Linear(3,5)")) << r.out;
    EXPECT_TRUE(contains(r.out, "integrity     FAILED: checksum_mismatch: ")) << r.out;
    r = fails({"inspect", "bad.mkp", "--json"}, 1, "checksum_mismatch");
    EXPECT_TRUE(contains(r.out, "\"tensors\":[{\"name\":\"fc1.weight\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"integrity\":{\"ok\":false,\"code\":\"checksum_mismatch\",\"message\":\"")) << r.out;
    fails({"predict", "bad.mkp", "--input", "[[1, 2, 3]]"}, 1, "checksum_mismatch");
    fails({"convert", "bad.mkp", "out.mkp"}, 1, "checksum_mismatch");
    EXPECT_FALSE(fs::exists(path("out.mkp")));

    // A flipped header byte: nothing can be listed.
    bad = good;
    bad[30] ^= 0x01;
    write_bytes(path("badhead.mkp"), bad);
    r = fails({"inspect", "badhead.mkp"}, 1, "checksum_mismatch");
    EXPECT_EQ(r.out, "");
    fails({"predict", "badhead.mkp", "--input", "[[1, 2, 3]]"}, 1, "checksum_mismatch");

    // Truncated and extended files.
    bad = Bytes(good.begin(), good.end() - 4);
    write_bytes(path("short.mkp"), bad);
    fails({"inspect", "short.mkp"}, 1, "truncated");
    bad = good;
    bad.push_back(0);
    write_bytes(path("long.mkp"), bad);
    fails({"predict", "long.mkp", "--input", "[[1, 2, 3]]"}, 1, "trailing_bytes");
}

TEST_F(Cli, BadInputs) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp"});
    const std::pair<const char*, const char*> cases[] = {
        {"[[1, 2], [3]]", "ragged"},
        {"[[1, NaN, 3]]", "NaN"},
        {"", "empty input"},
        {"[[1, 2, 3]] x", "after"},
        {"[[1, 2, 3e39]]", "float32 range"},
        {"[]", "empty array"},
        {"[[\"1\", 2, 3]]", "string"},
        {"5", "single number"},
        {"[[1, 2, 3]", "not closed"},
    };
    for (const auto& [text, needle] : cases) {
        const Result r = fails({"predict", "tiny.mkp", "--input", text}, 1, "invalid_input");
        EXPECT_TRUE(contains(r.err, needle)) << text << ": " << r.err;
        EXPECT_EQ(r.out, "");
    }
    const Result r = fails({"predict", "tiny.mkp", "--input", "[[1, 2]]"}, 1, "shape_mismatch");
    EXPECT_TRUE(contains(r.err, "fc1")) << r.err;
    fails({"predict", "tiny.mkp", "--input", "[[1, 2, 3, 4]]"}, 1, "shape_mismatch");
    // stdin with nothing on it.
    const Result e = run({"predict", "tiny.mkp", "--input", "-"});
    EXPECT_EQ(e.code, 1);
    EXPECT_TRUE(contains(e.err, "modelkeep: invalid_input: ")) << e.err;
}

TEST_F(Cli, UsageErrors) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp"});
    const Result r = fails({"inspect", "tiny.mkp", "--bogus"}, 2, "usage");
    EXPECT_TRUE(contains(r.err, "unknown option '--bogus'")) << r.err;
    EXPECT_TRUE(contains(r.err, "modelkeep help inspect")) << r.err;
    fails({"--bogus"}, 2, "usage");
    fails({"frobnicate"}, 2, "usage");
    fails({"help", "frobnicate"}, 2, "usage");
    fails({"init"}, 2, "usage");
    fails({"init", "Linear(1,1)"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "b.mkp"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--seed"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--seed", "-1"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--seed", "18446744073709551616"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--seed", "1", "--seed", "2"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--dtype", "f64"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--meta", "novalue"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--meta", "=v"}, 2, "usage");
    fails({"init", "Linear(1,1)", "a.mkp", "--state-dict=yes"}, 2, "usage");
    EXPECT_FALSE(fs::exists(path("a.mkp")));
    fails({"inspect"}, 2, "usage");
    fails({"inspect", "tiny.mkp", "tiny.mkp"}, 2, "usage");
    fails({"predict", "tiny.mkp"}, 2, "usage");
    fails({"predict", "tiny.mkp", "--input"}, 2, "usage");
    fails({"convert", "tiny.mkp"}, 2, "usage");
    fails({"convert", "tiny.mkp", "b.mkp", "--dtype", "int4"}, 2, "usage");
    fails({"convert", "tiny.mkp", "b.mkp", "--seed", "1"}, 2, "usage");  // init-only option
    // "--" ends the options.
    fails({"inspect", "--", "--json"}, 1, "io_error");
}

TEST_F(Cli, WritesAreAtomic) {
    ok({"init", "fc1=Linear(3,5)", "tiny.mkp"});
    const Bytes before = read_bytes(path("tiny.mkp"));

    // A failed init or convert leaves an existing OUT untouched.
    fails({"init", "Bogus", "tiny.mkp"}, 1, "unknown_layer");
    std::ofstream(path("garbage.mkp")) << "garbage";
    fails({"convert", "garbage.mkp", "tiny.mkp"}, 1, "unknown_format");
    EXPECT_EQ(read_bytes(path("tiny.mkp")), before);

    // Unwritable destinations: io_error naming OUT, nothing left behind.
    Result r = fails({"init", "Linear(1,1)", "no/such/dir/m.mkp"}, 1, "io_error");
    EXPECT_TRUE(contains(r.err, "'no/such/dir/m.mkp'")) << r.err;
    fs::create_directory(path("taken"));
    fs::create_directory(path("taken") / "x");
    r = fails({"convert", "tiny.mkp", "taken"}, 1, "io_error");
    EXPECT_TRUE(contains(r.err, "'taken'")) << r.err;
    EXPECT_TRUE(fs::is_directory(path("taken")));
    EXPECT_TRUE(tmp_leftovers().empty());
    if (::geteuid() != 0) {  // root ignores permissions
        fs::create_directory(path("ro"));
        fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
        fails({"init", "Linear(1,1)", "ro/m.mkp"}, 1, "io_error");
        fs::permissions(path("ro"), fs::perms::owner_all);
    }
}

// ---------------------------------------------------------------- nothing lost on failure

namespace {

// A state dict written by the core's torch writer (what torch.save would hold).
Bytes torch_file(const StateDict& sd) {
    Bytes b;
    const Status st = write_torch(sd, DType::f32, b);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return b;
}

// A safetensors file by hand: u64 header length, the JSON header, the data.
Bytes safetensors_file(const std::string& header, const Bytes& data) {
    Bytes b;
    for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(std::uint64_t(header.size()) >> (8 * i)));
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

}  // namespace

// A tensor of shape (0, 2^62) holds nothing, so the torch reader takes it
// (for now: it is to cap each dim too, and then refuses it first), but the
// .mkp and safetensors readers refuse a dim over 2^28: the .mkp writer refuses
// it as its reader would, the safetensors writer emits it and the read-back
// catches it. Either way: size_overflow, and the existing output survives.
TEST_F(Cli, ConvertWhoseOutputWouldNotReadBackLeavesTheOutputUntouched) {
    StateDict huge;
    huge.emplace_back("w", zeros({0, std::size_t(1) << 62}));
    write_bytes(path("huge.pt"), torch_file(huge));
    ok({"init", "fc1=Linear(3,5)", "x.mkp"});
    ok({"convert", "x.mkp", "x.safetensors"});
    for (const char* out : {"x.mkp", "x.safetensors"}) {
        const Bytes before = read_bytes(path(out));
        const Result r = fails({"convert", "huge.pt", out}, 1, "size_overflow");
        EXPECT_EQ(read_bytes(path(out)), before) << out;
        EXPECT_EQ(r.out, "");
    }
    fails({"convert", "huge.pt", "new.mkp"}, 1, "size_overflow");
    EXPECT_FALSE(fs::exists(path("new.mkp")));
    EXPECT_TRUE(tmp_leftovers().empty());
}

// Every writer reads its bytes back before replacing anything: the test
// build spoils each output (as a writer bug would), and the file the user
// had stays byte for byte.
TEST_F(Cli, EveryWriterReadsBackBeforeReplacing) {
    ok({"init", "fc1=Linear(3,5)", "in.mkp", "--seed", "1"});
    ok({"init", "fc1=Linear(3,5)", "x.mkp", "--seed", "2"});
    ok({"convert", "in.mkp", "x.safetensors"});
    ok({"convert", "in.mkp", "x.pt"});
    const std::vector<std::vector<std::string>> writers = {
        {"init", "Linear(2,2)", "x.mkp"},       {"init", "Linear(2,2)", "x.mkp", "--state-dict"},
        {"convert", "in.mkp", "x.mkp"},         {"convert", "in.mkp", "x.mkp", "--dtype", "int8"},
        {"convert", "in.mkp", "x.safetensors"}, {"convert", "in.mkp", "x.pt"}};
    for (const auto& w : writers) {
        const std::string out = w[2];
        const Bytes before = read_bytes(path(out));
        Result r;
        if (w.size() == 3)
            r = run({w[0], w[1], w[2]}, "", true);
        else if (w.size() == 4)
            r = run({w[0], w[1], w[2], w[3]}, "", true);
        else
            r = run({w[0], w[1], w[2], w[3], w[4]}, "", true);
        EXPECT_EQ(r.code, 1) << w[0] << " " << out << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "'" + out + "' was not written (an existing file is left as it was)")) << r.err;
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
        EXPECT_EQ(read_bytes(path(out)), before) << w[0] << " " << out;
    }
    // safetensors keeps f32 values bit for bit: a spoiled value is caught by the comparison.
    EXPECT_TRUE(contains(fails({"convert", "in.mkp", "x.safetensors"}, 1, "io_error", true).err,
                         "does not read back as written"));
    fails({"init", "Linear(2,2)", "fresh.mkp"}, 1, "checksum_mismatch", true);
    EXPECT_FALSE(fs::exists(path("fresh.mkp")));
    EXPECT_TRUE(tmp_leftovers().empty());
    // The same build unspoiled writes as usual.
    EXPECT_EQ(run({"init", "Linear(2,2)", "fresh.mkp"}).code, 0);
}

TEST_F(Cli, SuccessfulConvertReplacesTheOutput) {
    ok({"init", "fc1=Linear(3,5)", "a.mkp", "--seed", "1"});
    ok({"init", "fc1=Linear(3,5)", "x.mkp", "--seed", "2"});
    ok({"convert", "a.mkp", "x.safetensors"});
    ok({"convert", "a.mkp", "x.pt"});
    ok({"init", "Linear(4,4)", "b.mkp", "--seed", "3"});
    for (const char* out : {"x.mkp", "x.safetensors", "x.pt"}) {
        const Bytes before = read_bytes(path(out));
        ok({"convert", "b.mkp", out});
        EXPECT_NE(read_bytes(path(out)), before) << out;
    }
    EXPECT_EQ(read_bytes(path("x.mkp")), read_bytes(path("b.mkp")));
    Sequential m;
    const Bytes x = read_bytes(path("x.mkp"));
    ASSERT_TRUE(read_model(x.data(), x.size(), m).ok());
    EXPECT_EQ(format_spec(m.specs()), "0=Linear(4,4)");
    EXPECT_TRUE(tmp_leftovers().empty());
}

// ---------------------------------------------------------------- safe output

namespace {

// No raw ESC, other C0 byte (but the newline ending lines) or DEL anywhere.
void expect_no_raw_controls(const Result& r, const std::string& what) {
    for (const std::string* s : {&r.out, &r.err})
        for (char c : *s)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f) {
                ADD_FAILURE() << what << ": raw byte " << int(static_cast<unsigned char>(c)) << " in:\n"
                              << r.out << r.err;
                return;
            }
}

}  // namespace

TEST_F(Cli, NamesFromFilesArePrintedEscaped) {
    // safetensors names and metadata are JSON strings: they can hold ESC.
    const std::string header = R"({"__metadata__":{"k\u001b[2J":"v\u001b]0;pwned\u0007\u009b1m"},)"
                               R"("fc\u001b[31m.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("fc\u001b[31m.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})";
    write_bytes(path("evil.safetensors"), safetensors_file(header, Bytes(32, 0)));
    StateDict sd;
    sd.emplace_back("fc\x1b[31m.weight", zeros({2, 3}));
    sd.emplace_back("fc\x1b[31m.bias", zeros({2}));
    write_bytes(path("evil.pt"), torch_file(sd));

    for (const char* in : {"evil.safetensors", "evil.pt"}) {
        Result r = ok({"inspect", in});
        expect_no_raw_controls(r, std::string("inspect ") + in);
        EXPECT_TRUE(contains(r.out, "fc\\x1b[31m.weight")) << r.out;
        r = ok({"inspect", in, "--json"});
        expect_no_raw_controls(r, std::string("inspect --json ") + in);
        EXPECT_TRUE(contains(r.out, R"("fc\u001b[31m.weight")")) << r.out;
        r = fails({"predict", in, "--input", "[[1,2,3]]"}, 1, "needs_architecture");
        expect_no_raw_controls(r, std::string("predict ") + in);
        ok({"init", "Linear(1,1)", "kept.mkp"});
        const Bytes kept = read_bytes(path("kept.mkp"));
        r = fails({"convert", in, "kept.mkp"}, 1, "bad_name");  // .mkp names hold no control character
        expect_no_raw_controls(r, std::string("convert ") + in + " to .mkp");
        EXPECT_TRUE(contains(r.err, "\\x1b")) << r.err;
        EXPECT_EQ(read_bytes(path("kept.mkp")), kept);
        for (const char* out : {"out.safetensors", "out.pt"}) {
            r = ok({"convert", in, out});
            expect_no_raw_controls(r, std::string("convert ") + in + " " + out);
            expect_no_raw_controls(ok({"inspect", out}), std::string("inspect ") + out);
        }
    }
    Result r = ok({"inspect", "evil.safetensors"});
    EXPECT_TRUE(contains(r.out, "k\\x1b[2J")) << r.out;
    EXPECT_TRUE(contains(r.out, "v\\x1b]0;pwned\\x07\\u009b1m")) << r.out;
    EXPECT_FALSE(contains(r.out, "\xc2\x9b")) << "C1 escaped too";
    r = ok({"inspect", "evil.safetensors", "--json"});
    EXPECT_TRUE(contains(r.out, R"("k\u001b[2J":"v\u001b]0;pwned\u0007\u009b1m")")) << r.out;
    // A path from the command line is escaped as well.
    r = fails({"inspect", "no\x1b[31mfile"}, 1, "io_error");
    expect_no_raw_controls(r, "a missing path");
}

TEST_F(Cli, MetadataValuesKeepNewlinesButPrintThemEscaped) {
    ok({"init", "Linear(1,1)", "m.mkp", "--meta", "note=line 1\nline 2"});
    Result r = ok({"inspect", "m.mkp"});
    EXPECT_TRUE(contains(r.out, "note  = line 1\\x0aline 2")) << r.out;
    r = fails({"init", "Linear(1,1)", "m.mkp", "--meta", "note=\x1b[2J"}, 1, "bad_name");
    expect_no_raw_controls(r, "init --meta with ESC");
    r = fails({"init", "Linear(1,1)", "m.mkp", "--meta", "k\x1b=v"}, 1, "bad_name");
    expect_no_raw_controls(r, "init --meta key with ESC");
}

TEST_F(Cli, ThePrefixOptionAndTheRootLayer) {
    // A state dict whose keys are fc1.weight, fc1.bias: under --prefix fc1. they are a root
    // layer's ("weight", "bias"), as a named layer's without it; both predict the same.
    const std::string pt = std::string(MODELKEEP_TORCH_DIR) + "/files/tutorial_state.pt";
    const std::string x = "[[1, 2, 3]]";
    const Result named = ok({"predict", pt, "--arch", "fc1=Linear(3,5)", "--input", x});
    const Result root = ok({"predict", pt, "--arch", "=Linear(3,5)", "--prefix", "fc1.", "--input", x});
    EXPECT_EQ(root.out, named.out);
    // The key error names what the file has, and --prefix needs --arch.
    const Result missing = fails({"predict", pt, "--arch", "Linear(3,5)", "--input", x}, 1, "missing_key");
    EXPECT_NE(missing.err.find("The file has: fc1.weight (5, 3), fc1.bias (5,)"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find("Likely fix: the file's tensors match the model's layer by layer under other names: "
                               "name the layers as the file does: fc1=Linear(3,5)"),
              std::string::npos)
        << missing.err;
    const Result usage = run({"predict", pt, "--prefix", "fc1.", "--input", x});
    EXPECT_EQ(usage.code, 2);
    EXPECT_NE(usage.err.find("--prefix needs a prefix, and goes with --arch"), std::string::npos) << usage.err;
}

// ---------------------------------------------------------------- train

namespace {

// Two interleaved spirals, 2 features and a class 0/1 per row, with a header: the same
// numbers every run (no generator), awkward enough that the loss takes epochs to fall.
std::string spirals_csv(int n) {
    std::string csv = "x0,x1,label\n";
    for (int i = 0; i < n; ++i) {
        const int c = i % 2;
        const double r = 0.1 + 2.0 * double(i) / double(n);
        const double t = 2.5 * r + c * 3.14159265358979;
        csv += std::to_string(r * std::cos(t)) + "," + std::to_string(r * std::sin(t)) + "," + std::to_string(c) + "\n";
    }
    return csv;
}

const char* const train_spec = "Linear(2,12),Tanh,Dropout(0.1),Linear(12,2)";

// The mean losses of the "epoch E/N: loss L" lines of train's stderr.
std::vector<double> epoch_losses(const std::string& err) {
    std::vector<double> losses;
    for (std::size_t at = err.find(": loss "); at != std::string::npos; at = err.find(": loss ", at + 1))
        losses.push_back(std::strtod(err.c_str() + at + 7, nullptr));
    return losses;
}

}  // namespace

TEST_F(Cli, TrainThenResumeIsBitIdenticalToOneRun) {
    write_bytes(path("d.csv"), [] {
        const std::string s = spirals_csv(120);
        return Bytes(s.begin(), s.end());
    }());
    // One run of 4 epochs, and 2 + 2 through a checkpoint: the same file, byte for byte.
    const Result full = run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--optimizer",
                             "adam(lr=0.05)", "--scheduler", "step_lr(step_size=2, gamma=0.5)", "--epochs", "4",
                             "--batch-size", "16", "--seed", "7", "--out", "full.mkp"});
    ASSERT_EQ(full.code, 0) << full.err;
    EXPECT_TRUE(contains(full.out, "wrote full.mkp: modelkeep checkpoint at epoch 4, step 32")) << full.out;
    const std::vector<double> losses = epoch_losses(full.err);
    ASSERT_EQ(losses.size(), 4u) << full.err;
    EXPECT_LT(losses.back(), losses.front()) << full.err;
    EXPECT_TRUE(contains(full.err, "epoch 4/4: loss ")) << full.err;
    EXPECT_TRUE(contains(full.err, ", accuracy ")) << full.err;

    const Result half = run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--optimizer",
                             "adam(lr=0.05)", "--scheduler", "step_lr(step_size=2, gamma=0.5)", "--epochs", "2",
                             "--batch-size", "16", "--seed", "7", "--out", "half.mkp"});
    ASSERT_EQ(half.code, 0) << half.err;
    const Result rest =
        run({"train", train_spec, "--data", "d.csv", "--epochs", "2", "--resume", "half.mkp", "--out", "rest.mkp"});
    ASSERT_EQ(rest.code, 0) << rest.err;
    EXPECT_TRUE(contains(rest.err, "training 'half.mkp' (epoch 2, step 16)")) << rest.err;
    EXPECT_EQ(read_bytes(path("rest.mkp")), read_bytes(path("full.mkp")));
    EXPECT_EQ(epoch_losses(rest.err), std::vector<double>(losses.begin() + 2, losses.end()));

    // What the core's Trainer gives in-process on the same data and options: the same weights and state.
    Dataset data;
    const std::string csv = spirals_csv(120);
    ASSERT_TRUE(read_dataset(csv, "", data).ok());
    std::vector<LayerSpec> specs;
    ASSERT_TRUE(parse_spec(train_spec, specs).ok());
    Sequential model;
    ASSERT_TRUE(Sequential::create(specs, 7, model).ok());
    TrainerOptions options;
    ASSERT_TRUE(parse_optimizer("adam(lr=0.05)", options.optimizer).ok());
    ASSERT_TRUE(parse_loss("cross_entropy", options.loss).ok());
    ASSERT_TRUE(parse_scheduler("step_lr(step_size=2, gamma=0.5)", options.scheduler).ok());
    options.has_scheduler = true;
    options.batch_size = 16;
    options.seed = 7;
    Trainer trainer;
    ASSERT_TRUE(Trainer::create(model, options, trainer).ok());
    ASSERT_TRUE(trainer.set_data(data.x, data.y).ok());
    while (trainer.state().epoch < 4) {
        BatchResult r;
        ASSERT_TRUE(trainer.fit_batch(r).ok());
    }
    const Bytes file = read_bytes(path("full.mkp"));
    Sequential saved;
    TrainingState state;
    bool has_training = false;
    ASSERT_TRUE(read_checkpoint(MemorySource(file.data(), file.size()), saved, state, has_training).ok());
    ASSERT_TRUE(has_training);
    const StateDict want = model.state_dict(), got = saved.state_dict();
    ASSERT_EQ(want.size(), got.size());
    for (std::size_t i = 0; i < want.size(); ++i)
        EXPECT_EQ(std::memcmp(want[i].second.data(), got[i].second.data(), want[i].second.size() * 4), 0)
            << want[i].first;
    EXPECT_EQ(state.steps, trainer.state().steps);
    EXPECT_EQ(state.params[0].exp_avg, trainer.state().params[0].exp_avg);
    EXPECT_EQ(state.scheduler.lr, 0.05 * 0.5 * 0.5);

    // inspect shows the training section, in text and JSON.
    const Result text = ok({"inspect", "full.mkp"});
    EXPECT_TRUE(contains(text.out, "training:")) << text.out;
    EXPECT_TRUE(contains(text.out, "adam(lr=0.05")) << text.out;
    EXPECT_TRUE(contains(text.out, "step_lr(step_size=2")) << text.out;
    EXPECT_TRUE(contains(text.out, "4 epochs done, 32 steps in all")) << text.out;
    const Result json = ok({"inspect", "full.mkp", "--json"});
    EXPECT_TRUE(contains(json.out, "\"training\":{\"optimizer\":\"adam(lr=0.05")) << json.out;
    EXPECT_TRUE(contains(json.out, "\"epoch\":4,\"batch\":0,\"steps\":32")) << json.out;
    EXPECT_TRUE(contains(ok({"inspect", "half.mkp", "--json"}).out, "\"steps\":16"));
    ok({"init", "Linear(2,2)", "plain.mkp"});
    EXPECT_TRUE(contains(ok({"inspect", "plain.mkp", "--json"}).out, "\"training\":null"));
    // A checkpoint is a model file: predict runs it.
    EXPECT_TRUE(contains(ok({"predict", "full.mkp", "--input", "[[0.5, -0.5]]"}).out, "\"shape\":[1,2]"));
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, TrainWritesAndResumesPyTorchCheckpoints) {
    const std::string csv = spirals_csv(64);
    write_bytes(path("d.csv"), Bytes(csv.begin(), csv.end()));
    const Result a = run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--optimizer",
                          "sgd(lr=0.1, momentum=0.9)", "--epochs", "2", "--batch-size", "16", "--out", "a.pt"});
    ASSERT_EQ(a.code, 0) << a.err;
    EXPECT_TRUE(contains(a.out, "wrote a.pt: PyTorch general checkpoint at epoch 2, step 8")) << a.out;
    const Bytes pt = read_bytes(path("a.pt"));
    TorchCheckpoint ck;
    const Status st = read_torch_checkpoint(MemorySource(pt.data(), pt.size()), nullptr, ck);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_TRUE(ck.has_optimizer && ck.has_epoch && ck.has_loss);
    EXPECT_EQ(ck.optimizer.kind, OptimizerKind::sgd);
    EXPECT_EQ(ck.optimizer.momentum, 0.9);
    EXPECT_EQ(ck.epoch, 2);
    EXPECT_EQ(ck.params.size(), 4u);
    EXPECT_TRUE(ck.params[0].has_momentum_buffer);

    // Continued from the .pt (MODEL gives the architecture): the optimizer's state is the file's.
    const Result b = run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1",
                          "--batch-size", "16", "--resume", "a.pt", "--out", "b.mkp"});
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_TRUE(contains(b.err, "(PyTorch checkpoint, epoch 2)")) << b.err;
    EXPECT_TRUE(contains(b.err, "sgd(lr=0.1, momentum=0.9")) << b.err;
    const Bytes mkp = read_bytes(path("b.mkp"));
    Sequential model;
    TrainingState state;
    bool has_training = false;
    ASSERT_TRUE(read_checkpoint(MemorySource(mkp.data(), mkp.size()), model, state, has_training).ok());
    EXPECT_EQ(state.epoch, 3);
    EXPECT_EQ(state.options.optimizer.kind, OptimizerKind::sgd);

    // Adam and AdamW keep the same state: the file cannot say which, --optimizer must.
    ASSERT_EQ(
        run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "adam.pt"})
            .code,
        0);
    fails({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1", "--resume", "adam.pt",
           "--out", "c.mkp"},
          1, "invalid_argument");
    const Result c = run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--optimizer", "adamw",
                          "--epochs", "1", "--resume", "adam.pt", "--out", "c.mkp"});
    EXPECT_EQ(c.code, 0) << c.err;
    EXPECT_TRUE(contains(c.err, "warning: --optimizer adamw(")) << c.err;  // its defaults differ from the file's
    EXPECT_TRUE(tmp_leftovers().empty());
}

TEST_F(Cli, TrainRefusesWhatItCannotTrain) {
    const std::string csv = spirals_csv(32);
    write_bytes(path("d.csv"), Bytes(csv.begin(), csv.end()));
    write_bytes(path("bad.csv"), [] {
        const std::string s = "1,2,0\n3,4,5\n";  // class 5 of 2
        return Bytes(s.begin(), s.end());
    }());
    fails({"train", train_spec, "--loss", "mse", "--epochs", "1", "--out", "o.mkp"}, 2, "usage");
    fails({"train", train_spec, "--data", "d.csv", "--epochs", "1", "--out", "o.mkp"}, 2, "usage");
    fails({"train", train_spec, "--data", "d.csv", "--loss", "mse", "--epochs", "x", "--out", "o.mkp"}, 2, "usage");
    fails({"train", train_spec, "--data", "d.csv", "--loss", "mse", "--epochs", "1", "--out", "o.safetensors"}, 2,
          "usage");
    fails({"train", train_spec, "--data", "d.csv", "--loss", "mse", "--epochs", "1", "--shuffle", "yes", "--out",
           "o.mkp"},
          2, "usage");
    fails({"train", train_spec, "--data", "none.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "o.mkp"}, 1,
          "io_error");
    fails({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--optimizer", "adam(lr=-1)", "--epochs",
           "1", "--out", "o.mkp"},
          1, "invalid_hyperparameter");
    fails({"train", train_spec, "--data", "d.csv", "--loss", "kl_div", "--epochs", "1", "--out", "o.mkp"}, 1,
          "invalid_hyperparameter");
    const Result bad =
        run({"train", train_spec, "--data", "bad.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "o.mkp"});
    EXPECT_EQ(bad.code, 1);
    EXPECT_TRUE(contains(bad.err, "\nmodelkeep: target_out_of_range: ")) << bad.err;
    // Found at the first batch, after the line that says what trains.
    const Result wide =
        run({"train", "Linear(3,2)", "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "o.mkp"});
    EXPECT_EQ(wide.code, 1);
    EXPECT_TRUE(contains(wide.err, "\nmodelkeep: shape_mismatch: layer '0': linear expects input (*, 3)")) << wide.err;
    // Compact weights are for inference.
    ok({"init", "Linear(2,2)", "h.mkp", "--dtype", "f16"});
    const Result f16 =
        fails({"train", "h.mkp", "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "o.mkp"}, 1,
              "needs_f32");
    EXPECT_TRUE(contains(f16.err, "f32")) << f16.err;
    // --resume needs a checkpoint of the same architecture.
    ok({"init", train_spec, "plain.mkp"});
    fails({"train", train_spec, "--data", "d.csv", "--epochs", "1", "--resume", "plain.mkp", "--out", "o.mkp"}, 1,
          "wrong_kind");
    ASSERT_EQ(
        run({"train", train_spec, "--data", "d.csv", "--loss", "cross_entropy", "--epochs", "1", "--out", "ck.mkp"})
            .code,
        0);
    fails({"train", "Linear(2,2)", "--data", "d.csv", "--epochs", "1", "--resume", "ck.mkp", "--out", "o.mkp"}, 1,
          "arch_mismatch");
    // Nothing was written by a failed run.
    EXPECT_FALSE(fs::exists(path("o.mkp")));
    EXPECT_TRUE(tmp_leftovers().empty());
}
