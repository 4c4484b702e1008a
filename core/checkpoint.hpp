// checkpoint.hpp — a training checkpoint in one .mkp file: the model (as
// format.hpp writes it) plus the optional TRAINING section with data (tag 192,
// docs/FORMAT.md §4.7 and §4.8; the grammar opens checkpoint.cpp), which holds
// a TrainingState (trainer.hpp).
//
// Compatibility: every 1.x reader accepts any minor version, and a reader of
// 1.2 that does not know tag 192 skips it (after its padding, size and CRC
// checks) and loads the file as the plain model it also is. Tested.
//
// Must: write nothing but the one section beside what write_model writes (the
// model's bytes are the same, so a checkpoint is a model file); validate the
// whole section (sizes, counts, enum values, option ranges through the same
// checks as create) before any state is handed back; bound every count by the
// section's own size before allocating; give one Status code per failure
// (bad_section for a malformed section, naming the field; shape_mismatch when its parameter
// states do not fit the model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "format.hpp"
#include "model.hpp"
#include "sink.hpp"
#include "source.hpp"
#include "status.hpp"
#include "trainer.hpp"

namespace modelkeep {

/// The TRAINING section's tag.
constexpr std::uint8_t training_section_tag = 192;

/// Plans a full model file carrying `state` in its TRAINING section (the file is
/// format 1.2); emit it with emit_file (format.hpp), as a plain model.
Status plan_checkpoint(const Sequential& model, const TrainingState& state, const WriteOptions& options,
                       WritePlan& plan);
/// plan + emit into `out`.
Status write_checkpoint(const Sequential& model, const TrainingState& state, const WriteOptions& options,
                        std::vector<std::uint8_t>& out);

/// The most memory read_checkpoint holds at once for a file read_info described
/// as `info`, read from a source outside memory: read_bytes(info, true, true)
/// (the model, the section's payload and raw data) plus the decoded state (its
/// buffers, as many bytes as the raw data, and what the payload decodes to,
/// bounded by the header's size).
std::uint64_t read_checkpoint_bytes(const FileInfo& info);

/// read_model, plus the TRAINING section when the file has one (has_training);
/// without one, `state` is untouched and has_training false.
Status read_checkpoint(const ByteSource& source, Sequential& model, TrainingState& state, bool& has_training,
                       Metadata* metadata = nullptr, FileInfo* file = nullptr);

}  // namespace modelkeep
