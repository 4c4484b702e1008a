// libFuzzer target for the .mkp reader: any bytes → an error or a model, never
// a crash, leak or undefined behaviour. Whatever reads must also write back
// and read again to the same tensors; a checkpoint's TRAINING section that reads
// must resume a trainer, and write back to the same bytes.
//   build:  cmake --preset fuzz && cmake --build --preset fuzz
//   run:    build/fuzz/fuzz_reader -max_total_time=600 build/fuzz/corpus   (longer: see README)
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "checkpoint.hpp"
#include "format.hpp"
#include "trainer.hpp"

using namespace modelkeep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FileInfo info;
    const Status header_only = read_info(data, size, false, info);
    LoadedFile loaded;
    const Status full = read_file(data, size, loaded);
    if (full.ok() && !header_only.ok()) std::abort();  // the full read checks a superset
    if (!full.ok()) return 0;

    // Round trip: what reads must write and read back identically (f32 keeps values).
    std::vector<std::uint8_t> again;
    WriteOptions opt;
    opt.metadata = loaded.info.metadata;
    opt.align_log2 = loaded.info.align_log2;
    Status st;
    if (loaded.info.kind == FileKind::model) {
        Sequential m;
        if (!read_model(data, size, m).ok()) std::abort();
        // The training section: whatever read_checkpoint hands back re-encodes to the same
        // section, and a trainer resumes from it (unless the model is compact: needs_f32).
        Sequential cm;
        TrainingState state;
        bool has_training = false;
        if (read_checkpoint(MemorySource(data, size), cm, state, has_training).ok() && has_training) {
            std::vector<std::uint8_t> ck;
            if (!write_checkpoint(cm, state, opt, ck).ok()) std::abort();
            Sequential cm2;
            TrainingState state2;
            bool again_training = false;
            if (!read_checkpoint(MemorySource(ck.data(), ck.size()), cm2, state2, again_training).ok() ||
                !again_training || state2.steps != state.steps || state2.params.size() != state.params.size())
                std::abort();
            Trainer t;
            const Status resumed = Trainer::resume(cm, state, t);
            if (!resumed.ok() && resumed.code() != Code::needs_f32) std::abort();
        }
        st = write_model(m, opt, again);
    } else {
        st = write_state_dict(loaded.tensors, opt, again);
    }
    if (!st.ok()) return 0;  // e.g. an int8 file cannot hold NaN, but f32 can: only f32 is written here
    LoadedFile back;
    if (!read_file(again.data(), again.size(), back).ok()) std::abort();
    if (back.tensors.size() != loaded.tensors.size()) std::abort();
    for (std::size_t i = 0; i < back.tensors.size(); ++i) {
        const Tensor& a = back.tensors[i].second;
        const Tensor& b = loaded.tensors[i].second;
        if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * 4) != 0) std::abort();
    }
    return 0;
}
