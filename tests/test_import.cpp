// import.hpp's memory functions against what the readers and writers really
// hold (alloc_tracking): import_bytes for every readable file kind, read from
// a source outside memory as in wasm, and export_bytes for both export formats.
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "counting_source.hpp"
#include "fixtures.hpp"
#include "import.hpp"
#include "safetensors.hpp"
#include "torch_file.hpp"

using namespace modelkeep;

namespace {

std::vector<std::uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Measured {
    std::uint64_t peak = 0, predicted = 0;
    bool ok = false;
};

// Imports `bytes` as the wasm binding does: read_source first (its info is what
// the memory is reserved by), then import_file, whose peak is measured.
Measured measure_import(const std::vector<std::uint8_t>& bytes, const ImportOptions& options, bool need_model) {
    Measured m;
    const mkt::CountingSource source(bytes);
    SourceInfo info;
    if (!read_source(source, info).ok()) return m;
    m.predicted = import_bytes(info, options, need_model);
    const mkt::AllocScope scope;
    {
        Imported in;
        m.ok = import_file(source, options, need_model, in).ok();
    }
    m.peak = scope.peak();
    return m;
}

Sequential big_model(DType dtype) {
    Sequential m = mkt::make_model("fc1=Linear(300,500),ReLU,BatchNorm1d(500),fc2=Linear(500,200)", 5);
    m.set_weight_dtype(dtype);
    return m;
}

}  // namespace

TEST(Import, ImportBytesBoundsEveryReadableFixture) {
    // The real PyTorch files of tests/torch/files: small, so the bookkeeping
    // (pickle values, names) is most of what they hold.
    DIR* d = opendir(MODELKEEP_TORCH_DIR "/files");
    ASSERT_NE(d, nullptr);
    int checked = 0;
    while (const dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name[0] == '.' || name.rfind("mal_", 0) == 0 || name.rfind("st_", 0) == 0) continue;
        const auto bytes = read_bytes(MODELKEEP_TORCH_DIR "/files/" + name);
        const Measured m = measure_import(bytes, ImportOptions(), false);
        if (!m.ok) continue;  // not a file of tensors (not_a_model.txt)
        EXPECT_LE(m.peak, m.predicted) << name;
        ++checked;
    }
    closedir(d);
    EXPECT_GE(checked, 15);
}

TEST(Import, ImportBytesIsCloseForLargeFiles) {
    // Large files of every kind: the prediction bounds the peak and is not far
    // above it (the bookkeeping allowance and f16's subnormal table at its largest).
    struct Made {
        std::string what;
        std::vector<std::uint8_t> bytes;
        ImportOptions options;
    };
    std::vector<Made> files;
    for (DType dtype : {DType::f32, DType::f16, DType::bf16, DType::int8}) {
        const Sequential model = big_model(dtype);
        Made own{std::string(".mkp model ") + dtype_name(dtype), {}, {}};
        WriteOptions w;
        w.dtype = dtype;
        ASSERT_TRUE(write_model(model, w, own.bytes).ok());
        files.push_back(own);
        Made spec = own;  // the same file under an architecture option: read as float32
        spec.what += " with an architecture";
        spec.options.architecture = format_spec(model.specs());
        files.push_back(spec);
        if (dtype == DType::int8) continue;
        // Weights only: read into the model an architecture names, as float32.
        Made st{std::string("safetensors ") + dtype_name(dtype), {}, spec.options};
        ASSERT_TRUE(write_safetensors(model.state_dict(), {}, dtype, st.bytes).ok());
        files.push_back(st);
        Made pt{std::string("torch zip ") + dtype_name(dtype), {}, spec.options};
        ASSERT_TRUE(write_torch(model.state_dict(), dtype, pt.bytes).ok());
        files.push_back(pt);
    }
    // An f16 weight holding inf cannot be held compact: it is expanded to
    // float32 beside its halves, the transient import_bytes allows for.
    Sequential inf_model = big_model(DType::f32);
    StateDict sd = inf_model.state_dict();
    sd[0].second.data()[7] = std::numeric_limits<float>::infinity();  // fc1.weight, the largest
    LoadReport report;
    ASSERT_TRUE(inf_model.load_state_dict(sd, true, report).ok());
    Made inf{".mkp model f16 holding inf", {}, {}};
    WriteOptions w;
    w.dtype = DType::f16;
    ASSERT_TRUE(write_model(inf_model, w, inf.bytes).ok());
    files.push_back(inf);
    for (const Made& f : files) {
        const Measured m = measure_import(f.bytes, f.options, true);
        ASSERT_TRUE(m.ok) << f.what;
        EXPECT_LE(m.peak, m.predicted) << f.what;
        if (f.what == ".mkp model f16") continue;  // its weights hold no inf: the transient does not happen
        EXPECT_GE(m.peak * 3 / 2, m.predicted) << f.what << ": peak " << m.peak << ", predicted " << m.predicted;
    }
}

TEST(Import, ExportBytesBoundsBothWriters) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
        const Sequential model = big_model(DType::f32);
        const StateDict sd = model.state_dict();
        for (ExportFormat format : {ExportFormat::safetensors, ExportFormat::torch}) {
            const std::uint64_t predicted = export_bytes(format, model.state_dict_shapes(), dtype);
            std::vector<std::uint8_t> out;
            const mkt::AllocScope scope;
            ASSERT_TRUE(
                (format == ExportFormat::torch ? write_torch(sd, dtype, out) : write_safetensors(sd, {}, dtype, out))
                    .ok());
            const std::string what =
                std::string(format == ExportFormat::torch ? "torch " : "safetensors ") + dtype_name(dtype);
            EXPECT_LE(scope.peak(), predicted) << what;
            EXPECT_GE(scope.peak() * 13 / 10, predicted)
                << what << ": peak " << scope.peak() << ", predicted " << predicted;
        }
    }
}

TEST(Import, APrefixOptionMapsTheFilesKeysOntoTheModel) {
    // A DataParallel state dict as safetensors, plus a tensor that is not the model's.
    const Sequential model = mkt::make_model("fc1=Linear(3,4),ReLU,fc2=Linear(4,2)", 4);
    StateDict sd;
    for (auto& [key, t] : model.state_dict()) sd.emplace_back("module." + key, t);
    sd.emplace_back("loss.weight", zeros({2}));
    std::vector<std::uint8_t> bytes;
    ASSERT_TRUE(write_safetensors(sd, {}, DType::f32, bytes).ok());
    ImportOptions options;
    options.architecture = format_spec(model.specs());
    Imported in;
    const Status refused = import_file(bytes.data(), bytes.size(), options, true, in);
    EXPECT_EQ(refused.code(), Code::missing_key);
    EXPECT_NE(refused.message().find("prefix 'module.'"), std::string::npos) << refused.message();
    options.prefix = "module.";
    const Status st = import_file(bytes.data(), bytes.size(), options, true, in);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(in.model.state_dict()[0].second, model.state_dict()[0].second);
    options.prefix = "net.";
    EXPECT_EQ(import_file(bytes.data(), bytes.size(), options, true, in).code(), Code::missing_key);
}
