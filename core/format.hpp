// format.hpp — the modelkeep file format (.mkp), version 1.2: its reader and
// writer. docs/FORMAT.md is the normative text; this is its summary.
//
//  1. All fixed-size integers and floats are little-endian; floats are IEEE-754
//     binary32. A varint is unsigned LEB128: at most 10 bytes, value < 2^64,
//     canonical (the last byte is non-zero unless it is the only byte). An
//     svarint is a zigzag-encoded varint. A string is a varint byte length then
//     that many bytes of UTF-8. Names and metadata keys hold no control
//     character (U+0000–U+001F, U+007F, U+0080–U+009F); metadata values may
//     hold \n and \t but no other control character (bad_name).
//  2. A file is: the fixed header (20 bytes), the sections (up to header_len),
//     then the tensor data, each tensor preceded by the zero padding that aligns
//     it, then (1.2) the data of the optional sections with data, aligned alike.
//     Nothing follows.
//  3. Fixed header:   off size field
//                      0   4   magic 89 4D 4B 50 ("\x89MKP")
//                      4   1   major version = 1   (a reader rejects any other major)
//                      5   1   minor version = 0, 1 for a root layer (§7), 2 with a section with data (a reader accepts
//                      any minor) 6   1   kind: 1 = full model, 2 = state dict 7   1   align_log2 in [2, 12]: tensor
//                      data alignment (writer: 4, 16 bytes) 8   4   header_crc: CRC-32 of bytes [0, 8) ++ [12,
//                      header_len)
//                     12   4   header_len: 20 ≤ header_len ≤ 16 MiB
//                     16   4   data_crc: CRC-32 of bytes [header_len, end of file)
//  4. Sections fill [20, header_len) exactly: each is a tag byte, a varint
//     payload length and the payload, which its parser must consume exactly.
//     Tags strictly increase. Tags 0–127 must be known to the reader
//     (unknown_section); tags 128–255 are optional and skipped when unknown.
//     Tags 192–255 (1.2) are optional sections *with data*: the payload starts
//     with a varint data_bytes, and that many bytes follow the tensor data
//     (§6); a reader that does not know the tag skips the payload and the data.
//       tag 1 METADATA (optional): varint count ≤ 1024, then count × (key string
//             of 1–256 bytes, value string ≤ 1 MiB); keys unique.
//       tag 2 LAYERS: present iff kind = 1. varint count ≤ 4096, then layer records (§7).
//       tag 3 TENSORS (required): varint count ≤ 65536, then tensor records (§5).
//  5. Tensor record: name string (1–1024 bytes, unique), dtype u8, rank u8 ≤ 8,
//     rank × varint dims; product ≤ 2^28 elements, each dim ≤ 2^28. dtype 1 f32 (4 B/element),
//     2 f16 (2 B), 3 bf16 (2 B), 4 int8: rows = dims[0] if rank ≥ 2 else 1, then
//     rows × f32 scale (finite, ≥ 0) followed by numel × int8 q; value = q·scale.
//  6. Data: pos = header_len; for each tensor in table order with a non-zero byte
//     size, pos = align_up(pos, 2^align_log2), the tensor occupies [pos, pos+bytes),
//     pos += bytes; then for each section with data, in tag order, the same with
//     its data_bytes. The file ends exactly at pos. Padding bytes are zero, and
//     data_crc covers all of it.
//  7. Layer record: name string (segments of [A-Za-z0-9_] joined by '.', ≤ 255
//     bytes, unique; or, 1.1, empty: the root, the model's only layer, whose
//     tensor names have no prefix), kind u8, then per kind: 1 Linear: in varint, out varint,
//     flags u8 (bit 0 bias). 3 LeakyReLU: slope f32. 6 GELU: u8 0 = exact, 1 = tanh.
//     11 Dropout: p f32. 12 Flatten: start svarint, end svarint. 13 LayerNorm:
//     n varint, eps f32, flags u8 (bit 0 elementwise_affine, bit 1 bias).
//     14 BatchNorm1d: n varint, eps f32, flags u8 (bit 0 affine, bit 1
//     track_running_stats). 2 ReLU, 4 Sigmoid, 5 Tanh, 7 SiLU, 8 Softmax,
//     9 LogSoftmax, 10 Identity: nothing. Undefined flag bits must be zero.
//  8. In a full model the tensor table is exactly the model's state_dict: same
//     keys, same order, same shapes (arch_mismatch otherwise).
//
// The reader takes a ByteSource (source.hpp; pointer + size is a MemorySource):
// it reads the fixed header, then exactly header_len bytes, and validates all
// of it — sections, architecture, data layout against the file size — before
// any tensor is allocated. It then streams the data region once, in file
// order: padding and int8 scales are checked and the data CRC is updated as
// each range arrives, f32 tensors are read straight into their own storage,
// narrower dtypes are decoded from 1 MiB chunks. What a load holds is the
// tensors (plus one chunk), never a copy of the file. Every failure returns one
// Status code (status.hpp), nothing throws or aborts, and a failed read hands
// back no tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dtype.hpp"
#include "layer.hpp"
#include "model.hpp"
#include "sink.hpp"
#include "source.hpp"
#include "status.hpp"
#include "utf8.hpp"

namespace modelkeep {

constexpr std::uint8_t format_magic[4] = {0x89, 'M', 'K', 'P'};
constexpr std::uint8_t format_major = 1;
/// The minor version this writer writes for a root layer (an empty layer name,
/// §7), which readers before 1.1 refuse; 0 otherwise, and 2 (format_data_minor)
/// when the file has an optional section with data.
constexpr std::uint8_t format_minor = 1;
constexpr std::uint8_t format_data_minor = 2;
/// The newest minor version this reader implements: 2, optional sections with
/// data (§4.7), which it skips unless a caller knows them (read_model's sections).
constexpr std::uint8_t format_reader_minor = 2;
constexpr std::size_t fixed_header_bytes = 20;
constexpr std::size_t max_header_bytes = 16u << 20;
constexpr std::size_t max_tensors = 65536;
constexpr std::size_t max_metadata_entries = 1024;
constexpr std::size_t max_metadata_key_bytes = 256;
constexpr std::size_t max_metadata_value_bytes = 1u << 20;
/// The reader's scratch: padding, scales and the values of dtypes narrower
/// than f32 are read (and decoded) at most this many bytes at a time.
constexpr std::size_t read_chunk_bytes = 1u << 20;

enum class FileKind : std::uint8_t { model = 1, state_dict = 2 };

using Metadata = std::vector<std::pair<std::string, std::string>>;

/// The first tag of an optional section with data (§4.7): its payload starts
/// with the varint byte length of its data, which follows the tensor data.
constexpr std::uint8_t first_data_section_tag = 192;

/// Where an optional section's data is (§6): [offset, offset + bytes).
struct SectionData {
    std::uint8_t tag = 0;
    std::uint64_t offset = 0, bytes = 0;
};

/// An optional section with data (§4.7) as read_model hands it back to a
/// caller that knows its tag: set `tag`, read; `present` says whether the file
/// had it. The format layer does not interpret either part.
struct SectionContent {
    std::uint8_t tag = 0;
    bool present = false;
    std::vector<std::uint8_t> payload;  // the section's payload after its data_bytes varint
    std::vector<std::uint8_t> data;     // its data_bytes bytes of data (read with the data CRC)
};

/// One piece of an optional section's data to write: `bytes` bytes at `data`,
/// which must stay valid and unchanged until the file is emitted.
struct DataPiece {
    const void* data = nullptr;
    std::size_t bytes = 0;
};

/// An optional section with data (§4.7) to write.
struct ExtraSection {
    std::uint8_t tag = 0;               // 192–255; a list's tags strictly increase
    std::vector<std::uint8_t> payload;  // what follows the data_bytes varint the writer puts first
    std::vector<DataPiece> data;        // the data in order, emitted as it is; data_bytes is their sum
};

struct TensorInfo {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    std::uint64_t offset = 0;  // of its data in the file
    std::uint64_t bytes = 0;   // stored bytes (int8 includes the row scales)
};

/// Everything about a file except the tensor values.
struct FileInfo {
    std::uint8_t major = 0, minor = 0;
    FileKind kind = FileKind::model;
    unsigned align_log2 = 0;
    std::uint64_t header_bytes = 0, file_bytes = 0;
    Metadata metadata;
    std::vector<LayerSpec> layers;  // full models only
    std::vector<TensorInfo> tensors;
    /// The optional sections with data, in tag order. Each is skipped (its data
    /// read through the CRC and padding checks only) unless a caller of
    /// read_model asked for its tag (SectionContent).
    std::vector<SectionData> section_data;
    /// Parameter elements: for a model, sum(p.numel() for p in parameters())
    /// (buffers excluded); for a state dict, all elements.
    std::uint64_t param_count = 0;
    bool data_checked = false;  // data CRC, padding and int8 scales verified
};

/// Reads and validates everything but the tensor data (header CRC included).
/// With check_data, also streams the data to verify its CRC, padding and int8
/// scales (no tensor is allocated), so a success means read_file would succeed too.
Status read_info(const ByteSource& source, bool check_data, FileInfo& info);
Status read_info(const std::uint8_t* data, std::size_t size, bool check_data, FileInfo& info);

struct LoadedFile {
    FileInfo info;
    StateDict tensors;  // decoded to float32, in file order
};

/// Validates the structure, then reads every tensor once, decoded to float32;
/// `out` is set only when the whole file (data CRC included) checked out.
Status read_file(const ByteSource& source, LoadedFile& out);
Status read_file(const std::uint8_t* data, std::size_t size, LoadedFile& out);

/// read_file + Sequential built from the layers (kind must be model; a state
/// dict gives wrong_kind with a hint to use load_state_dict, before any data is read).
/// Linear weights stored f16, bf16 or int8 stay compact in memory (compact.hpp).
/// `file`, if given, receives the file's info (data_checked set).
/// `sections`, if given, lists the optional sections with data the caller knows
/// (their `tag` set, increasing): each the file has is filled (present, payload,
/// data — the data read in the same single pass, under the data CRC, allocated
/// only after the whole structure checked out); the others are skipped as
/// usual. On failure none is filled (each is reset).
Status read_model(const ByteSource& source, Sequential& model, Metadata* metadata = nullptr, FileInfo* file = nullptr,
                  std::vector<SectionContent>* sections = nullptr);
Status read_model(const std::uint8_t* data, std::size_t size, Sequential& model, Metadata* metadata = nullptr);

/// The most memory read_model (as_model) or read_file holds at once for a
/// file read_info described as `info`, read from a source outside memory (as
/// in wasm): its tensors — float32, but read_model holds Linear weights stored
/// f16, bf16 or int8 compact (an f16 weight holding inf/NaN is expanded beside
/// its halves: the largest such transient is counted) — the reader's chunk
/// where values are decoded, and bookkeeping. For a caller that reserves first.
/// With sections, also every optional section's payload and data, as
/// read_model holds them when asked for all of them.
std::uint64_t read_bytes(const FileInfo& info, bool as_model, bool with_sections = false);

/// A model from a .mkp file: the file's own (read_model: compact weights
/// kept) or, given `architecture` (a SPEC), that model holding the file's
/// tensors (read_file, then Sequential::from_state_dict: strict keys and
/// shapes). A state dict without an architecture is needs_architecture, said
/// from its header alone with the SPEC its tensors suggest. `info` receives
/// the file's info (data_checked set).
/// With a prefix (an architecture given), only the file's keys under it are the
/// model's (take_prefix).
Status read_model_as(const ByteSource& source, const std::string& architecture, Sequential& model, FileInfo& info,
                     const std::string& prefix = "");

struct WriteOptions {
    /// Storage dtype of tensors of rank ≥ 2 (weights); lower-rank tensors
    /// (biases, norm parameters, running stats) are always stored as f32.
    DType dtype = DType::f32;
    Metadata metadata;
    unsigned align_log2 = 4;
    /// Optional sections with data (§4.7), written after the TENSORS section and
    /// their data after the tensors'; any makes the file format 1.2.
    std::vector<ExtraSection> sections;
};

/// The writer's scratch: values stored narrower than float32 are converted at
/// most this many bytes at a time.
constexpr std::size_t write_chunk_bytes = 1u << 20;

/// A tensor as the writer will emit it: float32 values, or a Linear layer's
/// compact weight (emitted as it is when the stored dtype is its own,
/// expanded first otherwise).
struct PlannedTensor {
    const Tensor* tensor = nullptr;
    const CompactWeight* compact = nullptr;
    std::vector<float> scales;  // stored int8 (unless compact int8 as it is): each row's scale
    bool packed = false;        // tensor holds a Linear weight in the kernels' layout (packed.hpp)
};

/// A file laid out but not written: everything checked, the header built and
/// the int8 scales computed, no tensor data copied. It points into the model or
/// state dict it was planned from, which must outlive it unchanged.
struct WritePlan {
    FileInfo info;                       // as read_info would report the file (data_checked false)
    std::vector<std::uint8_t> header;    // bytes [0, info.header_bytes); header_crc and data_crc still zero
    std::vector<PlannedTensor> tensors;  // one per info.tensors entry
    std::vector<std::vector<DataPiece>> section_pieces;  // one per info.section_data entry
};

/// Plans a full model (architecture + every tensor) or named tensors only. Every
/// error the writer can give comes from here (invalid names, duplicates, a
/// header too large, NaN or infinity stored as int8, ...), before any byte is emitted.
Status plan_model(const Sequential& model, const WriteOptions& options, WritePlan& plan);
Status plan_state_dict(const StateDict& tensors, const WriteOptions& options, WritePlan& plan);

/// Writes the planned file (plan.info.file_bytes long) into `sink`: the
/// sections, then each tensor and its padding in file order, each byte once,
/// the data CRC updated as they go; last the fixed header at offset 0, which
/// holds it. float32 values (and compact weights stored as they are, except
/// f16 with subnormals) are written straight from the tensors' memory; other
/// conversions go through a scratch of at most scratch_bytes (a row range of an
/// int8 weight; part of a row if one row is larger). Cannot fail.
void emit_file(const WritePlan& plan, ByteSink& sink, std::size_t scratch_bytes = write_chunk_bytes);

/// The most memory emit_file(plan, sink, scratch_bytes) allocates: its
/// scratch (grown to one row of an f16 weight wider than it), a compact weight
/// stored in another dtype expanded to float32 (one at a time), and a copy of
/// the header. For a caller that reserves memory before emitting.
std::uint64_t emit_bytes(const WritePlan& plan, std::size_t scratch_bytes = write_chunk_bytes);

/// plan + emit into `out`, resized to the file.
Status write_model(const Sequential& model, const WriteOptions& options, std::vector<std::uint8_t>& out);
Status write_state_dict(const StateDict& tensors, const WriteOptions& options, std::vector<std::uint8_t>& out);

}  // namespace modelkeep
