// libFuzzer target for the allowlisting unpickler alone (fuzz_import reaches
// it only through a valid zip): any bytes → a value tree or an error, never a
// crash, leak, unbounded recursion or undefined behaviour. The last byte
// chooses the legacy (six-field persistent id) mode.
//   run: build/fuzz/fuzz_pickle -max_total_time=600 build/fuzz/corpus/pickle
#include <cstdint>
#include <cstdlib>

#include "pickle.hpp"

using namespace modelkeep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Unpickled out;
    const bool legacy = size > 0 && (data[size - 1] & 1);
    const Status st = unpickle(data, size, legacy, out);
    if (st.ok() && (!out.root || out.consumed == 0 || out.consumed > size)) std::abort();
    return 0;
}
