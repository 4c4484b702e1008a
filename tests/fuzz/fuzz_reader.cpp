// libFuzzer target for the .mkp reader: any bytes → an error or a model, never
// a crash, leak or undefined behaviour. Whatever reads must also write back
// and read again to the same tensors.
//   build:  cmake --preset fuzz && cmake --build --preset fuzz
//   run:    build/fuzz/fuzz_reader -max_total_time=600 build/fuzz/corpus   (longer: see README)
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "format.hpp"

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
