// libFuzzer target for the SPEC parser: any text → an error or layer specs
// whose canonical form parses back to the same canonical form.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "spec.hpp"

using namespace modelkeep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<LayerSpec> specs;
    if (!parse_spec(text, specs).ok()) return 0;
    const std::string canonical = format_spec(specs);
    std::vector<LayerSpec> again;
    if (!parse_spec(canonical, again).ok() || format_spec(again) != canonical) std::abort();
    return 0;
}
