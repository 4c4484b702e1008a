// Every case in tests/torch/*.txt, written by real PyTorch
// (tests/torch/make_torch_fixtures.py, whose docstring documents the format):
// the file's format is detected, valid files give torch's tensors bit for bit
// (as float32) and torch's outputs within 1e-6 of the output's scale, the
// architecture decision follows the case's load mode, and every hostile file
// is refused with its error code — with nothing executed (the marker file the
// payloads would create never appears).
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "import.hpp"
#include "pickle_builder.hpp"
#include "spec.hpp"
#include "torch_file.hpp"
#include "zip_builder.hpp"

using namespace modelkeep;

namespace {

const std::string dir = MODELKEEP_TORCH_DIR;
const char* marker = "/tmp/modelkeep_pwned_marker";

struct Named {
    std::string name, dtype;
    Shape shape;
    std::vector<float> values;
};

struct Case {
    std::string name, file, format, load, error, spec;
    std::vector<std::string> globals;
    std::vector<Named> tensors;
    bool has_input = false, has_output = false, has_naive = false;
    Named input, output, naive;
};

bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// "<rank> <d0> ..." then prod(d) hex floats on the following lines.
bool read_tensor(std::istringstream& head, std::istream& in, Named& t) {
    std::size_t rank = 0, n = 1;
    if (!(head >> rank)) return false;
    t.shape.assign(rank, 0);
    for (auto& d : t.shape) {
        if (!(head >> d)) return false;
        n *= d;
    }
    t.values.resize(n);
    for (auto& v : t.values) {
        std::string word;
        if (!(in >> word)) return false;
        v = std::strtof(word.c_str(), nullptr);
    }
    return true;
}

bool parse_case(const std::string& path, Case& c, std::string& err) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream head(line);
        std::string key;
        head >> key;
        std::string rest;
        std::getline(head >> std::ws, rest);
        std::istringstream args(rest);
        if (key == "case")
            c.name = rest;
        else if (key == "file")
            c.file = rest;
        else if (key == "format")
            c.format = rest;
        else if (key == "load")
            c.load = rest;
        else if (key == "error")
            c.error = rest;
        else if (key == "spec")
            c.spec = rest;
        else if (key == "global")
            c.globals.push_back(rest);
        else if (key == "tensor") {
            Named t;
            args >> t.name >> t.dtype;
            if (!read_tensor(args, in, t)) return err = "bad tensor " + t.name, false;
            c.tensors.push_back(t);
        } else if (key == "input") {
            if (!read_tensor(args, in, c.input)) return err = "bad input", false;
            c.has_input = true;
        } else if (key == "output") {
            if (!read_tensor(args, in, c.output)) return err = "bad output", false;
            c.has_output = true;
        } else if (key == "naive_output") {
            if (!read_tensor(args, in, c.naive)) return err = "bad naive_output", false;
            c.has_naive = true;
        } else if (key == "end") {
            return true;
        } else {
            return err = "unknown record '" + key + "'", false;
        }
    }
    return err = "no end record", false;
}

std::vector<std::string> case_names() {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > 4 && n.compare(n.size() - 4, 4, ".txt") == 0) out.push_back(n.substr(0, n.size() - 4));
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

const char* format_word(FileFormat f) {
    switch (f) {
        case FileFormat::mkp: return "mkp";
        case FileFormat::torch_zip: return "torch_zip";
        case FileFormat::torch_legacy: return "torch_legacy";
        case FileFormat::safetensors: return "safetensors";
        case FileFormat::unknown: break;
    }
    return "unknown";
}

// Worst |a - b| / max(1, max |b|) over the output.
double relative_error(const Tensor& got, const Named& want) {
    double scale = 1, worst = 0;
    for (float v : want.values) scale = std::max(scale, double(std::fabs(v)));
    for (std::size_t i = 0; i < want.values.size(); ++i)
        worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.values[i])) / scale);
    return worst;
}

void expect_output(const Sequential& model, const Case& c, const Named& want, const std::string& what) {
    ASSERT_TRUE(c.has_input) << c.name << " has no input";
    Tensor y;
    const Status st = model.forward(from_data(c.input.shape, c.input.values.data()), y);
    ASSERT_TRUE(st.ok()) << c.name << " " << what << ": " << st.to_string();
    ASSERT_EQ(shape_of(y), want.shape) << c.name << " " << what;
    const double err = relative_error(y, want);
    EXPECT_LE(err, 1e-6) << c.name << " " << what;
    std::cout << "[ torch    ] " << c.name << " (" << what << "): worst relative error " << err << "\n";
}

void expect_tensors(const StateDict& got, const Case& c) {
    ASSERT_EQ(got.size(), c.tensors.size()) << c.name;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const Named& want = c.tensors[i];
        EXPECT_EQ(got[i].first, want.name) << c.name;
        ASSERT_EQ(shape_of(got[i].second), want.shape) << c.name << " " << want.name;
        for (std::size_t k = 0; k < want.values.size(); ++k)
            ASSERT_EQ(std::memcmp(&got[i].second.data()[k], &want.values[k], 4), 0)
                << c.name << " " << want.name << "[" << k << "]: " << got[i].second.data()[k] << " vs "
                << want.values[k];
    }
}

class TorchFiles : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(TorchFiles, TheFixturesArePresent) {
    const auto names = case_names();
    EXPECT_GE(names.size(), 40u) << "run /usr/bin/python3 tests/torch/make_torch_fixtures.py";
    ASSERT_FALSE(exists(marker)) << marker << " exists before the tests: remove it";
}

TEST_P(TorchFiles, Case) {
    Case c;
    std::string err;
    ASSERT_TRUE(parse_case(dir + "/" + GetParam() + ".txt", c, err)) << GetParam() << ": " << err;
    const auto bytes = read_bytes(dir + "/files/" + c.file);
    ASSERT_FALSE(bytes.empty()) << c.file;
    if (c.format != "torchscript")
        EXPECT_EQ(format_word(detect_format(bytes.data(), bytes.size())), c.format) << c.name;

    Imported plain, seq;
    const Status st = import_file(bytes.data(), bytes.size(), ImportOptions(), true, plain);
    if (c.load == "refuse") {
        EXPECT_EQ(code_name(st.code()), c.error) << c.name << ": " << st.to_string();
        ImportOptions opt;
        opt.assume_sequential = true;
        EXPECT_EQ(code_name(import_file(bytes.data(), bytes.size(), opt, false, seq).code()), c.error) << c.name;
        SourceInfo info;
        const Status listed = read_source(bytes.data(), bytes.size(), info);
        EXPECT_TRUE(listed.ok() || code_name(listed.code()) == c.error) << c.name << ": " << listed.to_string();
        EXPECT_FALSE(exists(marker)) << c.name << " created " << marker;
        return;
    }

    // The tensors, as torch.load gives them.
    Imported weights;
    const Status read = import_file(bytes.data(), bytes.size(), ImportOptions(), false, weights);
    ASSERT_TRUE(read.ok()) << c.name << ": " << read.to_string();
    expect_tensors(weights.has_model ? weights.model.state_dict() : weights.tensors, c);
    if (c.format == "torch_zip" || c.format == "torch_legacy") EXPECT_EQ(weights.info.globals, c.globals) << c.name;
    SourceInfo info;
    ASSERT_TRUE(read_source(bytes.data(), bytes.size(), info).ok()) << c.name;
    ASSERT_EQ(info.tensors.size(), c.tensors.size()) << c.name;
    for (std::size_t i = 0; i < c.tensors.size(); ++i) {
        EXPECT_EQ(info.tensors[i].name, c.tensors[i].name);
        if (c.format != "safetensors") EXPECT_EQ(info.tensors[i].dtype, c.tensors[i].dtype) << c.name;
    }

    if (c.load == "auto") {
        ASSERT_TRUE(st.ok()) << c.name << ": " << st.to_string();
        EXPECT_EQ(plain.arch_from, "module tree");
        EXPECT_EQ(format_spec(plain.model.specs()), c.spec) << c.name;
        expect_output(plain.model, c, c.output, "from its module tree");
        return;
    }
    // Everything else says what it needs, then runs when told.
    EXPECT_EQ(st.code(), Code::needs_architecture) << c.name << ": " << st.to_string();
    if (c.load == "assume_sequential" || c.load == "needs_arch") {
        EXPECT_NE(st.message().find("module tree is"), std::string::npos) << st.message();
        ImportOptions opt;
        opt.assume_sequential = true;
        const Status s2 = import_file(bytes.data(), bytes.size(), opt, true, seq);
        ASSERT_TRUE(s2.ok()) << c.name << ": " << s2.to_string();
        if (c.load == "assume_sequential") {
            EXPECT_EQ(format_spec(seq.model.specs()), c.spec) << c.name;
            expect_output(seq.model, c, c.output, "assume_sequential");
        } else {
            ASSERT_TRUE(c.has_naive) << c.name;
            expect_output(seq.model, c, c.naive, "assume_sequential = the naive reading");
        }
    }
    if (!c.spec.empty() && c.load != "assume_sequential") {
        ImportOptions opt;
        opt.architecture = c.spec;
        Imported arch;
        const Status s3 = import_file(bytes.data(), bytes.size(), opt, true, arch);
        ASSERT_TRUE(s3.ok()) << c.name << ": " << s3.to_string();
        EXPECT_EQ(arch.arch_from, "architecture option");
        if (c.has_output) expect_output(arch.model, c, c.output, "with its SPEC");
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchFiles, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(TorchFiles, TheNaiveReadingOfANonSequentialForwardIsWrong) {
    // functional_full's forward is not its leaves in order: assume_sequential
    // runs, but gives another answer than torch — which is why it is opt-in.
    Case c;
    std::string err;
    ASSERT_TRUE(parse_case(dir + "/functional_full.txt", c, err)) << err;
    ASSERT_TRUE(c.has_output && c.has_naive);
    ASSERT_EQ(c.output.shape, c.naive.shape);
    Tensor naive = from_data(c.naive.shape, c.naive.values.data());
    EXPECT_GT(relative_error(naive, c.output), 1e-3);
}

TEST(TorchFiles, NothingWasExecuted) { EXPECT_FALSE(exists(marker)); }

// ---- resource bombs: hand-made files, each refused before its cost is paid ----

namespace {

using mkt::P;

void num(P& p, std::uint64_t v) { p.long1(std::int64_t(v)); }

void tuple(P& p, const std::vector<std::uint64_t>& v) {
    p.op('(');
    for (std::uint64_t x : v) num(p, x);
    p.op('t');
}

// _rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, shape, stride, False, OrderedDict())
void tensor(P& p, const std::string& key, std::uint64_t storage_numel, std::uint64_t offset,
            const std::vector<std::uint64_t>& shape, const std::vector<std::uint64_t>& stride) {
    p.global("torch._utils", "_rebuild_tensor_v2").op('(');
    p.op('(').str("storage").global("torch", "FloatStorage").str(key).str("cpu");
    num(p, storage_numel);
    p.op('t').op('Q');
    num(p, offset);
    tuple(p, shape);
    tuple(p, stride);
    p.op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
}

// A torch.save zip: archive/data.pkl, archive/data/<key> for each storage, archive/version.
std::vector<std::uint8_t> torch_zip(const std::vector<std::uint8_t>& pickle,
                                    const std::vector<std::pair<std::string, std::vector<std::uint8_t>>>& storages,
                                    bool deflate = false) {
    std::vector<mkt::Member> members = {{"archive/data.pkl", pickle}};
    for (const auto& [key, bytes] : storages) {
        members.push_back({"archive/data/" + key, bytes});
        if (deflate) members.back().method = 8;
    }
    members.push_back({"archive/version", {'3', '\n'}});
    return mkt::build_zip(members).bytes;
}

struct Refusal {
    Code code = Code::ok;
    std::uint64_t peak = 0;
    double seconds = 0;
};

// read_source and import_file, as the CLI and the package call them; the worst of both.
Refusal refuse(const std::vector<std::uint8_t>& bytes) {
    Refusal r;
    const auto start = std::chrono::steady_clock::now();
    const mkt::AllocScope scope;
    SourceInfo info;
    const Status listed = read_source(bytes.data(), bytes.size(), info);
    Imported in;
    const Status imported = import_file(bytes.data(), bytes.size(), ImportOptions(), false, in);
    r.peak = scope.peak();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(listed.code(), imported.code()) << listed.to_string() << " / " << imported.to_string();
    r.code = imported.code();
    return r;
}

void expect_cheap(const Refusal& r, Code code, const char* what) {
    EXPECT_EQ(r.code, code) << what;
    EXPECT_LE(r.peak, std::uint64_t(64) << 20) << what;
#if !defined(__SANITIZE_ADDRESS__)
    EXPECT_LE(r.seconds, 1.0) << what;
#endif
}

}  // namespace

TEST(TorchBombs, AStrideZeroViewIsRefusedBeforeItIsMaterialised) {
    // One float of storage viewed as (2^14, 2^14) with strides (0, 0): 1 GiB of float32 from a tiny file.
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
    tensor(p, "0", 1, 0, {1u << 14, 1u << 14}, {0, 0});
    p.op('u').stop();
    const auto file = torch_zip(p.b, {{"0", {0, 0, 128, 63}}});
    expect_cheap(refuse(file), Code::limit_exceeded, "stride-0 view");
}

TEST(TorchBombs, ManyViewsOfOneStorageAreRefused) {
    // 4096 tensors, each the whole of one 64 Ki-float storage: 1 GiB from 256 KiB.
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('(');
    for (int i = 0; i < 4096; ++i) {
        p.str("t" + std::to_string(i));
        tensor(p, "0", 1u << 16, 0, {1u << 16}, {1});
    }
    p.op('u').stop();
    const auto file = torch_zip(p.b, {{"0", std::vector<std::uint8_t>(std::size_t(4) << 16, 0)}});
    expect_cheap(refuse(file), Code::limit_exceeded, "shared-storage views");
}

TEST(TorchBombs, EveryDimensionIsCapped) {
    // (0, 2^62): no values at all, but a dimension no reader accepts (the .mkp reader caps each at 2^28).
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
    tensor(p, "0", 0, 0, {0, std::uint64_t(1) << 62}, {std::uint64_t(1) << 62, 1});
    p.op('u').stop();
    const auto file = torch_zip(p.b, {{"0", {}}});
    expect_cheap(refuse(file), Code::size_overflow, "(0, 2^62)");
}

TEST(TorchBombs, AModuleDagIsRefusedAfterItsBudget) {
    // Each of 48 levels holds the level below twice — built once, then read
    // from the memo — so a few KB describe 2^48 paths (nesting stays under the
    // unpickler's depth cap, so it is the walk's own budget that refuses it).
    P p;
    std::function<void(int)> level = [&](int k) {
        p.global("torch.nn.modules.container", "Sequential").op(')').op(0x81).op('}').op('(');
        p.str("_parameters").op('}').str("_buffers").op('}').str("_modules").op('}');
        if (k > 0) {
            p.op('(').str("a");
            level(k - 1);
            p.op('q').le(std::uint64_t(k - 1), 1).str("b").op('h').le(std::uint64_t(k - 1), 1).op('u');
        }
        p.str("training").op(0x88).op('u').op('b');
    };
    level(48);
    p.stop();
    const auto file = torch_zip(p.b, {});
    ASSERT_LT(file.size(), std::size_t(16) << 10);
    expect_cheap(refuse(file), Code::limit_exceeded, "module DAG");
}

TEST(TorchBombs, ADeflatedStorageIsBoundedByTheFile) {
    // 32 MiB of zeros deflate to about 32 KiB: a tensor of 4 values views it, so the
    // views are small, but reading them would inflate all of it.
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('(').str("w");
    tensor(p, "0", std::uint64_t(8) << 20, 0, {4}, {1});
    p.op('u').stop();
    const auto file = torch_zip(p.b, {{"0", std::vector<std::uint8_t>(std::size_t(32) << 20, 0)}}, true);
    ASSERT_LT(file.size(), std::size_t(1) << 20);
    expect_cheap(refuse(file), Code::limit_exceeded, "deflate bomb");
}

namespace {

// A pre-1.6 (legacy) checkpoint, every pickle in `protocol` (4 and 5 frame them).
std::vector<std::uint8_t> legacy_checkpoint(int protocol) {
    // {'model': {'w': ...}, 'optimizer': {'exp_avg': ...}}
    const auto pickle = [&](const std::function<void(P&)>& body) {
        P p(protocol);
        if (protocol >= 4) p.op(0x95).le(0, 8);  // FRAME (a length hint)
        body(p);
        p.stop();
        return p.b;
    };
    const auto legacy_tensor = [](P& p, const std::string& key, const std::string& type, int numel) {
        p.global("torch._utils", "_rebuild_tensor_v2").op('(');
        p.op('(').str("storage").global("torch", type).str(key).str("cpu").int1(numel).op('N').op('t').op('Q');
        p.int1(0).int1(numel).op(0x85).int1(1).op(0x85).op(0x89);
        p.global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
    };
    // The magic number: a pickle of the 10-byte LONG1 0x1950a86a20f9469cfc6c.
    std::vector<std::uint8_t> file = pickle([](P& p) {
        p.op(0x8a).le(10, 1);
        for (std::uint8_t b : {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}) p.op(b);
    });
    const auto append = [&](const std::vector<std::uint8_t>& b) { file.insert(file.end(), b.begin(), b.end()); };
    append(pickle([](P& p) { p.op('M').le(1001, 2); }));
    append(pickle([](P& p) { p.op('}').short_str("little_endian").op(0x88).op('s'); }));
    append(pickle([&](P& p) {
        p.op('}').op('(').short_str("model").op('}').short_str("w");
        legacy_tensor(p, "0", "FloatStorage", 2);
        p.op('s').short_str("optimizer").op('}').short_str("exp_avg");
        legacy_tensor(p, "1", "DoubleStorage", 3);
        p.op('s').op('u');
    }));
    append(pickle([](P& p) { p.op(']').op('(').short_str("0").short_str("1").op('e'); }));
    const auto storage = [&](std::uint64_t count, std::size_t item) {
        for (int i = 0; i < 8; ++i) file.push_back(std::uint8_t(count >> (8 * i)));
        for (std::size_t i = 0; i < count * item; ++i) file.push_back(i % 4 == 3 ? 0x3F : 0);  // 0.5f
    };
    storage(2, 4);
    storage(3, 8);
    return file;
}

}  // namespace

TEST(TorchLegacy, EveryPickleProtocolAndStoragesNoChosenTensorUses) {
    // The storages follow the pickles in a row, the optimizer's too, each as long
    // as its persistent id's type says, though only the model's tensors are read.
    for (int protocol : {2, 3, 4, 5}) {
        const auto file = legacy_checkpoint(protocol);
        EXPECT_EQ(detect_format(file.data(), file.size()), FileFormat::torch_legacy) << protocol;
        TorchFile t;
        const Status st = read_torch(file.data(), file.size(), true, t);
        ASSERT_TRUE(st.ok()) << "protocol " << protocol << ": " << st.to_string();
        ASSERT_EQ(t.tensors.size(), 1u);
        EXPECT_EQ(t.tensors[0].first, "w");
        EXPECT_EQ(t.tensors[0].second(1), 0.5f);
    }
}

TEST(TorchFiles, ABareTensorReadsAsOneTensorNamedTensor) {
    // torch.save(torch.ones(2, 3)): the pickle's root is the tensor itself.
    P p;
    tensor(p, "0", 6, 0, {2, 3}, {3, 1});
    p.stop();
    std::vector<std::uint8_t> data(24, 0);
    for (int i = 0; i < 6; ++i) data[std::size_t(4 * i + 2)] = 0x80, data[std::size_t(4 * i + 3)] = 0x3F;  // 1.0f
    const auto file = torch_zip(p.b, {{"0", data}});
    SourceInfo info;
    ASSERT_TRUE(read_source(file.data(), file.size(), info).ok());
    EXPECT_EQ(info.source, "tensor");
    Imported in;
    const Status st = import_file(file.data(), file.size(), ImportOptions(), false, in);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(in.tensors.size(), 1u);
    EXPECT_EQ(in.tensors[0].first, "tensor");
    EXPECT_EQ(shape_of(in.tensors[0].second), (Shape{2, 3}));
    EXPECT_EQ(in.tensors[0].second(1, 2), 1.0f);
}

TEST(TorchFiles, APickledModuleWhoseRootIsALayerRunsAsThatLayer) {
    // torch.save(nn.Linear(3, 2)): the root module is itself a supported layer.
    P p;
    p.global("torch.nn.modules.linear", "Linear").op(')').op(0x81).op('}').op('(');
    p.str("training").op(0x88);
    p.str("_parameters").op('}').op('(').str("weight");
    tensor(p, "0", 6, 0, {2, 3}, {3, 1});
    p.str("bias");
    tensor(p, "1", 2, 0, {2}, {1});
    p.op('u');
    p.str("_buffers").op('}').str("_modules").op('}');
    p.str("in_features").int1(3).str("out_features").int1(2);
    p.op('u').op('b').stop();
    std::vector<std::uint8_t> w(24, 0), b(8, 0);
    for (int i = 0; i < 6; ++i) w[std::size_t(4 * i + 3)] = 0x3F, w[std::size_t(4 * i + 2)] = 0x80;  // 1.0f
    const auto file = torch_zip(p.b, {{"0", w}, {"1", b}});
    Imported in;
    const Status st = import_file(file.data(), file.size(), ImportOptions(), true, in);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(in.arch_from, "module tree");
    EXPECT_EQ(format_spec(in.model.specs()), "=Linear(3,2)");
    EXPECT_EQ(in.model.state_dict()[0].first, "weight");
    Tensor y;
    ASSERT_TRUE(in.model.forward(from_data({1, 3}, std::vector<float>{1, 2, 3}.data()), y).ok());
    EXPECT_EQ(y(0, 0), 6.0f);
    EXPECT_EQ(y(0, 1), 6.0f);
}

TEST(TorchFiles, ACheckpointEntryChosenByName) {
    // {'model': {'w': (2,)}, 'ema': {'w': (3,)}, 'epoch': 4}: 'model' by default, 'ema' by name.
    P p;
    p.op('}').op('(').str("model").op('}').str("w");
    tensor(p, "0", 2, 0, {2}, {1});
    p.op('s').str("ema").op('}').str("w");
    tensor(p, "1", 3, 0, {3}, {1});
    p.op('s').str("epoch").int1(4).op('u').stop();
    const auto file = torch_zip(p.b, {{"0", std::vector<std::uint8_t>(8, 0)}, {"1", std::vector<std::uint8_t>(12, 0)}});
    SourceInfo info;
    ASSERT_TRUE(read_source(file.data(), file.size(), info).ok());
    EXPECT_EQ(info.source, "checkpoint['model']");
    EXPECT_EQ(info.entries, (std::vector<std::string>{"model", "ema"}));
    ASSERT_TRUE(read_source(file.data(), file.size(), info, "ema").ok());
    EXPECT_EQ(info.source, "checkpoint['ema']");
    EXPECT_EQ(info.tensors[0].shape, (Shape{3}));
    ImportOptions options;
    options.entry = "ema";
    Imported in;
    ASSERT_TRUE(import_file(file.data(), file.size(), options, false, in).ok());
    EXPECT_EQ(shape_of(in.tensors[0].second), (Shape{3}));
    options.entry = "epoch";  // not a state dict: the error lists the entries that are
    const Status st = import_file(file.data(), file.size(), options, false, in);
    EXPECT_EQ(st.code(), Code::missing_key);
    EXPECT_NE(st.message().find("model, ema"), std::string::npos) << st.message();
}

TEST(TorchFiles, AnArchiveThatHoldsTorchFilesNamesThemAndReadsTheOneChosen) {
    // Stable-Baselines3's model.zip: JSON beside policy.pth (a torch zip), deflated, no folder.
    P p;
    p.op('}').op('(').str("w");
    tensor(p, "0", 2, 0, {2}, {1});
    p.op('u').stop();
    std::vector<std::uint8_t> two(8);
    const float values[2] = {1.5f, -2.0f};
    std::memcpy(two.data(), values, 8);
    const auto policy = torch_zip(p.b, {{"0", two}});
    std::vector<mkt::Member> members = {{"data", {'{', '}'}},
                                        {"policy.pth", policy},
                                        {"policy.optimizer.pth", policy},
                                        {"_stable_baselines3_version", {'2'}}};
    for (auto& m : members) m.method = 8;
    const auto sb3 = mkt::build_zip(members).bytes;
    SourceInfo info;
    const Status st = read_source(sb3.data(), sb3.size(), info);
    EXPECT_EQ(st.code(), Code::unknown_format);
    EXPECT_NE(st.message().find("holds model files: policy.pth, policy.optimizer.pth"), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("--entry NAME"), std::string::npos) << st.message();
    ASSERT_TRUE(read_source(sb3.data(), sb3.size(), info, "policy.pth").ok());
    EXPECT_EQ(info.source, "policy.pth: state dict");
    EXPECT_GE(info.buffer_bytes, policy.size());  // the member is held whole while it is read
    ImportOptions options;
    options.entry = "policy.pth";
    Imported in;
    ASSERT_TRUE(import_file(sb3.data(), sb3.size(), options, false, in).ok());
    ASSERT_EQ(in.tensors.size(), 1u);
    EXPECT_EQ(in.tensors[0].second(1), -2.0f);
    options.entry = "value.pth";
    EXPECT_EQ(import_file(sb3.data(), sb3.size(), options, false, in).code(), Code::unknown_format);
    options.entry = "data";  // a member that is not a torch file
    EXPECT_EQ(import_file(sb3.data(), sb3.size(), options, false, in).code(), Code::unknown_format);
    // No model file at all: said so.
    const auto plain = mkt::build_zip({{"readme.txt", {'h', 'i'}}}).bytes;
    const Status none = read_source(plain.data(), plain.size(), info);
    EXPECT_EQ(none.code(), Code::unknown_format);
    EXPECT_NE(none.message().find("holds no .pt"), std::string::npos) << none.message();
}

TEST(TorchBombs, TheIntegrityCheckMaterialisesNoView) {
    // A (1000, 1000) stride-0 view of one float: within the view budget, so an import
    // builds its 4 MB; inspect's check reads the 4-byte storage and nothing else.
    P p;
    p.op('}').str("w");
    tensor(p, "0", 1, 0, {1000, 1000}, {0, 0});
    p.op('s').stop();
    const auto file = torch_zip(p.b, {{"0", std::vector<std::uint8_t>(4, 0)}});
    {
        const mkt::AllocScope scope;
        ASSERT_TRUE(check_source(MemorySource(file.data(), file.size())).ok());
        EXPECT_LT(scope.peak(), std::uint64_t(256) << 10);
    }
    {
        const mkt::AllocScope scope;
        Imported in;
        ASSERT_TRUE(import_file(file.data(), file.size(), ImportOptions(), false, in).ok());
        EXPECT_GE(scope.peak(), std::uint64_t(4000000));  // (what the check avoids)
    }
    // A damaged storage is still found: its CRC, read once.
    auto broken = file;
    const std::string key = "archive/data/0";
    const auto at = std::search(broken.begin(), broken.end(), key.begin(), key.end());
    ASSERT_NE(at, broken.end());
    // The data follows the local header's name (no extra field in mkt's stored members).
    broken[std::size_t(at - broken.begin()) + key.size()] ^= 0x55;
    EXPECT_EQ(check_source(MemorySource(broken.data(), broken.size())).code(), Code::checksum_mismatch);
}

TEST(TorchBombs, DeflatedStoragesShareOneBudget) {
    // 24 storages of 1 MiB of zeros, each within the budget alone (16 MiB + 16 per byte
    // of a ~30 KB file), 24 MiB together: refused before any is inflated.
    P p;
    p.op('}').op('(');
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> storages;
    for (int i = 0; i < 24; ++i) {
        const std::string key = std::to_string(i);
        p.str("w" + key);
        tensor(p, key, std::uint64_t(1) << 18, 0, {4}, {1});
        storages.push_back({key, std::vector<std::uint8_t>(std::size_t(1) << 20, 0)});
    }
    p.op('u').stop();
    const auto file = torch_zip(p.b, storages, true);
    ASSERT_LT(file.size(), std::size_t(64) << 10);
    const Refusal r = refuse(file);
    expect_cheap(r, Code::limit_exceeded, "many deflated storages");
    SourceInfo info;
    EXPECT_NE(read_source(file.data(), file.size(), info).message().find("the deflated storages inflate"),
              std::string::npos);
}

TEST(TorchFiles, BytesAfterThePickleAndEntriesOfWhatIsNoCheckpoint) {
    P p;
    p.op('}').str("w");
    tensor(p, "0", 2, 0, {2}, {1});
    p.op('s').stop();
    const std::vector<std::uint8_t> data(8, 0);
    auto hidden = p.b;  // a second pickle after STOP: a payload torch would never read, unlisted
    P payload;
    payload.global("posix", "system").str("true").op(0x85).op('R').stop();
    hidden.insert(hidden.end(), payload.b.begin(), payload.b.end());
    SourceInfo info;
    const auto trailing = torch_zip(hidden, {{"0", data}});
    const Status st = read_source(trailing.data(), trailing.size(), info);
    EXPECT_EQ(st.code(), Code::trailing_bytes) << st.to_string();
    // An entry asked of a plain state dict: said, not ignored.
    const auto plain = torch_zip(p.b, {{"0", data}});
    const Status entry = read_source(plain.data(), plain.size(), info, "ema");
    EXPECT_EQ(entry.code(), Code::missing_key);
    EXPECT_NE(entry.message().find("holds a state dict, not a checkpoint"), std::string::npos) << entry.message();
}

TEST(TorchBombs, SmallRecordsAndThePickleAreBoundedBeforeTheyAreInflated) {
    // A `version` record of 32 MiB of spaces, deflated to a few KiB: "3" after trimming, but
    // refused by its declared size before anything is inflated; the same for data.pkl.
    P p;
    p.op('}').stop();
    std::vector<std::uint8_t> spaces(std::size_t(32) << 20, ' ');
    spaces[0] = '3';
    std::vector<mkt::Member> members = {{"archive/data.pkl", p.b}, {"archive/version", spaces}};
    members[1].method = 8;
    const auto version = mkt::build_zip(members).bytes;
    ASSERT_LT(version.size(), std::size_t(1) << 20);
    const Refusal r = refuse(version);
    expect_cheap(r, Code::limit_exceeded, "deflated version record");
    SourceInfo info;
    EXPECT_NE(read_source(version.data(), version.size(), info).message().find("record 'archive/version'"),
              std::string::npos);
    // data.pkl padded with 32 MiB after its STOP and deflated: over the file's inflation budget.
    std::vector<std::uint8_t> padded = p.b;
    padded.resize(std::size_t(32) << 20, 0);
    std::vector<mkt::Member> pkl = {{"archive/data.pkl", padded}, {"archive/version", {'3', '\n'}}};
    pkl[0].method = 8;
    const auto pickle_bomb = mkt::build_zip(pkl).bytes;
    expect_cheap(refuse(pickle_bomb), Code::limit_exceeded, "deflated data.pkl");
}
