// libFuzzer target for every foreign format behind import_file: the zip reader
// and inflater, the unpickler, the torch zip and legacy readers, safetensors.
// Any bytes → an error or tensors, never a crash, leak or undefined behaviour.
// Invariants: read_source (structure only) accepts whatever import_file
// accepts; a general checkpoint's optimizer state reads or is refused, never crashes; what imports exports again as
// safetensors and .pt and reads back to the same tensors.
//   run: build/fuzz/fuzz_import -max_total_time=600 build/fuzz/corpus/import
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "import.hpp"
#include "safetensors.hpp"
#include "torch_checkpoint.hpp"
#include "torch_file.hpp"

using namespace modelkeep;

namespace {

// The same named tensors, in any order (safetensors stores them sorted by
// dtype and name), with bit-equal values (NaN equal to NaN).
void same_or_abort(const StateDict& a, const StateDict& b) {
    if (a.size() != b.size()) std::abort();
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::size_t j = 0;
        while (j < b.size() && b[j].first != a[i].first) ++j;
        if (j == b.size()) std::abort();
        if (shape_of(a[i].second) != shape_of(b[j].second)) std::abort();
        const float* x = a[i].second.data();
        const float* y = b[j].second.data();
        for (std::size_t k = 0; k < a[i].second.size(); ++k)
            if (!(x[k] == y[k] || (x[k] != x[k] && y[k] != y[k]))) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    SourceInfo info;
    const Status structure = read_source(data, size, info);
    // PyTorch's general checkpoint: an error or an optimizer state, one per parameter id.
    if (structure.ok() && (info.format == FileFormat::torch_zip || info.format == FileFormat::torch_legacy)) {
        const OptimizerOptions hint = adam_options();
        TorchCheckpoint ck;
        if (read_torch_checkpoint(MemorySource(data, size), &hint, ck).ok() && ck.has_optimizer &&
            ck.params.size() != ck.state_shapes.size())
            std::abort();
    }
    Imported in;
    ImportOptions options;
    options.assume_sequential = size > 0 && (data[size - 1] & 1);
    const Status full = import_file(data, size, options, false, in);
    if (full.ok() && !structure.ok()) std::abort();
    if (!full.ok() || in.info.format == FileFormat::mkp) return 0;

    StateDict tensors = in.has_model ? in.model.state_dict() : in.tensors;
    for (const auto& kv : tensors)  // num_batches_tracked is exported as int64 (rounded)
        if (kv.first.size() >= 19 && kv.first.compare(kv.first.size() - 19, 19, "num_batches_tracked") == 0) return 0;
    // Names torch files allow may not be valid safetensors keys or unique; skip those.
    std::vector<std::uint8_t> st_bytes, pt_bytes;
    if (write_safetensors(tensors, {}, DType::f32, st_bytes).ok()) {
        StateDict back;
        if (!read_safetensors(st_bytes.data(), st_bytes.size(), back).ok()) std::abort();
        same_or_abort(tensors, back);
    }
    if (write_torch(tensors, DType::f32, pt_bytes).ok()) {
        TorchFile back;
        if (!read_torch(pt_bytes.data(), pt_bytes.size(), true, back).ok()) std::abort();
        same_or_abort(tensors, back.tensors);
    }
    return 0;
}
