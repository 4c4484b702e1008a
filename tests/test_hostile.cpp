// Hostile bytes: every truncation and every single-byte change of valid files
// (full model and state dict, every dtype) must give an error — never a crash,
// never a silent load. npm test also runs this under ASan + UBSan.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "format_paths.hpp"

using namespace modelkeep;
using mkt::Bytes;

namespace {

std::vector<std::pair<std::string, Bytes>> valid_files() {
    std::vector<std::pair<std::string, Bytes>> files;
    const Sequential tiny = mkt::tiny_model();
    for (DType d : {DType::f32, DType::f16, DType::bf16, DType::int8}) {
        files.emplace_back(std::string("model_") + dtype_name(d), mkt::write_model_bytes(tiny, d));
        files.emplace_back(std::string("state_dict_") + dtype_name(d), mkt::write_state_dict_bytes(tiny, d));
    }
    Bytes tutorial;
    EXPECT_TRUE(write_model(mkt::tutorial_model(), WriteOptions{}, tutorial).ok());
    files.emplace_back("tutorial", tutorial);
    return files;
}

}  // namespace

TEST(Hostile, EveryTruncationIsAnError) {
    for (const auto& [name, file] : valid_files()) {
        for (std::size_t n = 0; n < file.size(); ++n) {
            const Bytes cut(file.begin(), file.begin() + std::ptrdiff_t(n));
            LoadedFile out;
            const Status st = mkt::read_file_both(cut, out);
            ASSERT_FALSE(st.ok()) << name << " cut to " << n << " bytes loaded";
        }
    }
}

TEST(Hostile, EverySingleByteChangeIsAnError) {
    // Every position, every one of the 255 other values.
    std::size_t tried = 0;
    for (const auto& [name, file] : valid_files()) {
        Bytes mutated = file;
        for (std::size_t i = 0; i < file.size(); ++i) {
            for (unsigned d = 1; d < 256; ++d) {
                mutated[i] = std::uint8_t(file[i] ^ d);
                LoadedFile out;
                const Status st = mkt::read_file_both(mutated, out);
                ASSERT_FALSE(st.ok()) << name << ": byte " << i << " ^ " << d << " loaded";
                ++tried;
            }
            mutated[i] = file[i];
        }
    }
    RecordProperty("mutations", int(tried));
}

TEST(Hostile, AppendedBytesAreAnError) {
    for (const auto& [name, file] : valid_files()) {
        Bytes longer = file;
        longer.push_back(0);
        LoadedFile out;
        EXPECT_EQ(mkt::read_file_both(longer, out).code(), Code::trailing_bytes) << name;
    }
}

TEST(Hostile, RandomGarbageNeverCrashes) {
    Rng rng(1234);
    for (int round = 0; round < 2000; ++round) {
        Bytes b(rng.next_u32() % 300);
        for (auto& v : b) v = std::uint8_t(rng.next_u32());
        if (b.size() >= 4 && round % 2) {  // half of them with our magic, to get further in
            b[0] = 0x89;
            b[1] = 'M';
            b[2] = 'K';
            b[3] = 'P';
        }
        LoadedFile out;
        EXPECT_FALSE(mkt::read_file_both(b, out).ok());
    }
}
