// The reader of format.hpp, over a ByteSource: fixed header → version → header
// CRC → sections → architecture → data layout (read_header), then the data
// region streamed once in file order: padding, decode, CRC, scales
// (read_data). Every count is checked against its cap and the bytes left
// before anything is reserved; nothing is allocated for tensor data until the
// whole structure checked out, and a tensor only when its bytes are reached.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "compact.hpp"
#include "crc32.hpp"
#include "format.hpp"
#include "packed.hpp"
#include "spec.hpp"
#include "wire.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the format reader assumes a little-endian host");

namespace modelkeep {

namespace {

std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}

std::string hex32(std::uint32_t v) {
    char buf[11];
    static const char* digits = "0123456789abcdef";
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 8; ++i) buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xF];
    buf[10] = 0;
    return buf;
}

Status read_metadata(WireReader& c, Metadata& out) {
    std::uint64_t n;
    MK_TRY(c.count(n, max_metadata_entries, 3, "metadata entries"));
    std::unordered_set<std::string> keys;
    for (std::uint64_t i = 0; i < n; ++i) {
        std::string key, value;
        MK_TRY(c.str(key, max_metadata_key_bytes, "metadata key"));
        if (key.empty()) return error(Code::bad_name, "metadata entry " + std::to_string(i) + " has an empty key");
        if (first_control(key) >= 0)
            return error(Code::bad_name, "metadata key '" + escape_text(key) + "' holds a control character");
        MK_TRY(c.str(value, max_metadata_value_bytes, "metadata value"));
        if (first_control(value, true) >= 0)
            return error(Code::bad_name,
                         "metadata value of '" + key + "' holds a control character other than newline and tab");
        if (!keys.insert(key).second) return error(Code::duplicate_name, "metadata key '" + key + "' appears twice");
        out.emplace_back(std::move(key), std::move(value));
    }
    return Status::success();
}

Status read_layer(WireReader& c, LayerSpec& s) {
    MK_TRY(c.str(s.name, 255, "layer name"));
    if (!s.name.empty() && !valid_layer_name(s.name))  // empty: the root, the model's only layer (§7)
        return error(Code::bad_name, "layer name '" + s.name + "' is not segments of [A-Za-z0-9_] joined by '.'");
    std::uint8_t kind = 0;
    MK_TRY(c.u8(kind, "layer kind"));
    if (kind < 1 || kind > layer_kind_count)
        return error(Code::unknown_layer, "layer '" + s.name + "' has unknown kind code " + std::to_string(kind));
    s.kind = LayerKind(kind);
    std::uint8_t flags = 0, allowed = 0;
    switch (s.kind) {
        case LayerKind::linear:
            MK_TRY(c.varint(s.in_features, "Linear in_features"));
            MK_TRY(c.varint(s.out_features, "Linear out_features"));
            MK_TRY(c.u8(flags, "Linear flags"));
            allowed = 1;
            s.bias = flags & 1;
            break;
        case LayerKind::leaky_relu: MK_TRY(c.f32(s.slope, "LeakyReLU slope")); break;
        case LayerKind::gelu: {
            std::uint8_t approx = 0;
            MK_TRY(c.u8(approx, "GELU approximate"));
            if (approx > 1)
                return error(Code::invalid_argument, "layer '" + s.name + "' (GELU): approximate code " +
                                                         std::to_string(approx) + " is not 0 or 1");
            s.tanh_approx = approx == 1;
            break;
        }
        case LayerKind::dropout: MK_TRY(c.f32(s.p, "Dropout p")); break;
        case LayerKind::flatten: {
            std::int64_t a = 0, b = 0;
            MK_TRY(c.svarint(a, "Flatten start_dim"));
            MK_TRY(c.svarint(b, "Flatten end_dim"));
            if (a < -64 || a > 64 || b < -64 || b > 64)
                return error(Code::invalid_argument, "layer '" + s.name + "' (Flatten): dims out of range");
            s.start_dim = std::int32_t(a);
            s.end_dim = std::int32_t(b);
            break;
        }
        case LayerKind::layer_norm:
        case LayerKind::batch_norm1d:
            MK_TRY(c.varint(s.in_features, "norm num_features"));
            MK_TRY(c.f32(s.eps, "norm eps"));
            MK_TRY(c.u8(flags, "norm flags"));
            allowed = 3;
            s.affine = flags & 1;
            if (s.kind == LayerKind::layer_norm)
                s.bias = flags & 2;
            else
                s.track_running_stats = flags & 2;
            break;
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity: break;  // nothing follows the kind
    }
    if (flags & ~allowed)
        return error(Code::invalid_argument, "layer '" + s.name + "' (" + layer_kind_name(s.kind) +
                                                 "): undefined flag bits set (flags " + std::to_string(flags) + ")");
    return validate_layer(s);
}

Status read_tensor_record(WireReader& c, TensorInfo& t) {
    MK_TRY(c.str(t.name, max_name_bytes, "tensor name"));
    if (t.name.empty()) return error(Code::bad_name, "a tensor has an empty name");
    if (first_control(t.name) >= 0)
        return error(Code::bad_name, "tensor name '" + escape_text(t.name) + "' holds a control character");
    std::uint8_t dtype = 0, rank = 0;
    MK_TRY(c.u8(dtype, "tensor dtype"));
    if (!dtype_known(dtype))
        return error(Code::unknown_dtype, "tensor '" + t.name + "' has unknown dtype code " + std::to_string(dtype));
    t.dtype = DType(dtype);
    MK_TRY(c.u8(rank, "tensor rank"));
    if (rank > max_rank)
        return error(Code::limit_exceeded, "tensor '" + t.name + "' has rank " + std::to_string(rank) +
                                               ", over the cap of " + std::to_string(max_rank));
    for (int i = 0; i < rank; ++i) {
        std::uint64_t d;
        MK_TRY(c.varint(d, "tensor dim"));
        if (d > max_tensor_elements)
            return error(Code::size_overflow, "tensor '" + t.name + "' dim " + std::to_string(i) + " is " +
                                                  std::to_string(d) + ", over " + std::to_string(max_tensor_elements));
        t.shape.push_back(std::size_t(d));
    }
    std::uint64_t numel;
    MK_TRY(checked_numel(t.shape, numel, "tensor '" + t.name + "'"));
    const std::uint64_t rows = t.shape.size() >= 2 ? t.shape[0] : 1;
    t.bytes = numel == 0 ? 0 : stored_bytes(t.dtype, numel, rows);
    return Status::success();
}

Status read_tensors(WireReader& c, std::vector<TensorInfo>& out) {
    std::uint64_t n;
    MK_TRY(c.count(n, max_tensors, 4, "tensors"));
    out.reserve(std::size_t(n));
    std::unordered_set<std::string> names;
    for (std::uint64_t i = 0; i < n; ++i) {
        TensorInfo t;
        MK_TRY(read_tensor_record(c, t));
        if (!names.insert(t.name).second) return error(Code::duplicate_name, "tensor '" + t.name + "' appears twice");
        out.push_back(std::move(t));
    }
    return Status::success();
}

Status check_architecture(const FileInfo& info) {
    MK_TRY(validate_specs(info.layers));
    std::size_t i = 0;
    for (const LayerSpec& s : info.layers) {
        for (const ParamInfo& p : layer_params(s)) {
            const std::string key = param_key(s.name, p.name);
            if (i >= info.tensors.size())
                return error(Code::arch_mismatch, "layer '" + s.name + "' (" + format_layer(s) + ") needs tensor '" +
                                                      key + "' but the file has only " +
                                                      std::to_string(info.tensors.size()) + " tensors");
            const TensorInfo& t = info.tensors[i++];
            if (t.name != key)
                return error(Code::arch_mismatch, "tensor " + std::to_string(i - 1) + " is '" + t.name +
                                                      "' but layer '" + s.name + "' (" + format_layer(s) + ") needs '" +
                                                      key + "' there");
            if (t.shape != p.shape)
                return error(Code::arch_mismatch, "tensor '" + key + "' is " + shape_to_string(t.shape) +
                                                      " but layer '" + s.name + "' (" + format_layer(s) + ") needs " +
                                                      shape_to_string(p.shape));
        }
    }
    if (i != info.tensors.size())
        return error(Code::arch_mismatch, "tensor '" + info.tensors[i].name + "' belongs to no layer");
    return Status::success();
}

// Step 1 of read_header: the fixed header (§3) — magic, version, header_len —
// then exactly [0, header_len) read into `header`; its CRC checked (step 2)
// before anything in it is believed; kind and alignment.
Status read_fixed_header(const ByteSource& source, FileInfo& info, std::vector<std::uint8_t>& header,
                         std::uint32_t& want_data_crc) {
    const std::uint64_t size = source.size();
    header.assign(std::size_t(std::min<std::uint64_t>(size, fixed_header_bytes)), 0);
    source.read(0, header.data(), header.size());
    const std::uint8_t* data = header.data();
    for (std::size_t i = 0; i < 4 && i < header.size(); ++i)
        if (data[i] != format_magic[i])
            return error(Code::bad_magic, "not a modelkeep file (the first bytes are not \\x89MKP)");
    if (size < fixed_header_bytes)
        return error(Code::truncated, "the file is " + std::to_string(size) + " bytes, shorter than the " +
                                          std::to_string(fixed_header_bytes) + "-byte fixed header");
    info.major = data[4];
    info.minor = data[5];
    if (info.major != format_major)
        return error(Code::unsupported_version,
                     "the file is format version " + std::to_string(info.major) + "." + std::to_string(info.minor) +
                         "; this reader reads version " + std::to_string(format_major) + ".x" +
                         (info.major > format_major ? " (a newer modelkeep wrote it: upgrade)" : ""));
    const std::uint32_t header_len = le32(data + 12);
    if (header_len < fixed_header_bytes)
        return error(Code::bad_section,
                     "header_len " + std::to_string(header_len) + " is shorter than the fixed header");
    if (header_len > max_header_bytes)
        return error(Code::header_too_large, "header_len " + std::to_string(header_len) + " is over the cap of " +
                                                 std::to_string(max_header_bytes));
    if (header_len > size)
        return error(Code::truncated, "the header is " + std::to_string(header_len) + " bytes but the file is only " +
                                          std::to_string(size));
    header.resize(header_len);  // the sections follow the 20 bytes already read
    source.read(fixed_header_bytes, header.data() + fixed_header_bytes, header_len - fixed_header_bytes);
    data = header.data();
    want_data_crc = le32(data + 16);
    // Step 2: the header CRC covers [0, 8) and [12, header_len).
    const std::uint32_t want_header_crc = le32(data + 8);
    const std::uint32_t header_crc = crc32_update(crc32(data, 8), data + 12, header_len - 12);
    if (header_crc != want_header_crc)
        return error(Code::checksum_mismatch, "header CRC-32 is " + hex32(header_crc) + " but the file says " +
                                                  hex32(want_header_crc) + ": the header is corrupted");
    const std::uint8_t kind = data[6];
    if (kind != 1 && kind != 2)
        return error(Code::unknown_kind,
                     "file kind " + std::to_string(kind) + " is neither 1 (model) nor 2 (state dict)");
    info.kind = FileKind(kind);
    info.align_log2 = data[7];
    if (info.align_log2 < 2 || info.align_log2 > 12)
        return error(Code::bad_alignment, "align_log2 " + std::to_string(info.align_log2) + " is outside 2..12");
    info.header_bytes = header_len;
    info.file_bytes = size;
    return Status::success();
}

// Step 3: the sections (§4) filling [20, header_len): tags strictly
// increasing, each payload consumed exactly, optional ones skipped — but the
// payload of a section with data whose tag is in `wanted` is kept there.
Status read_sections(const std::vector<std::uint8_t>& header, FileInfo& info, std::vector<SectionContent>* wanted) {
    const std::uint8_t* data = header.data();
    const std::size_t header_len = header.size();
    std::size_t pos = fixed_header_bytes;
    int last_tag = -1;
    bool have_layers = false, have_tensors = false;
    while (pos < header_len) {
        WireReader h{data, pos, header_len, "header"};
        std::uint8_t tag = 0;
        std::uint64_t len = 0;
        MK_TRY(h.u8(tag, "section tag"));
        MK_TRY(h.varint(len, "section length"));
        if (len > h.left())
            return error(Code::bad_section, "section " + std::to_string(tag) + " at byte " + std::to_string(pos) +
                                                " declares " + std::to_string(len) + " bytes, past the header's end");
        if (int(tag) <= last_tag)
            return error(Code::bad_section, "section " + std::to_string(tag) + " at byte " + std::to_string(pos) +
                                                " is out of order or repeated");
        last_tag = tag;
        WireReader c{data, h.pos, h.pos + std::size_t(len), ""};
        switch (tag) {
            case 1:
                c.section = "METADATA";
                MK_TRY(read_metadata(c, info.metadata));
                break;
            case 2: {
                c.section = "LAYERS";
                if (info.kind != FileKind::model)
                    return error(Code::bad_section, "a state dict file has a LAYERS section");
                std::uint64_t n;
                MK_TRY(c.count(n, max_layers, 3, "layers"));
                info.layers.reserve(std::size_t(n));
                for (std::uint64_t i = 0; i < n; ++i) {
                    LayerSpec s;
                    MK_TRY(read_layer(c, s));
                    info.layers.push_back(std::move(s));
                }
                have_layers = true;
                break;
            }
            case 3:
                c.section = "TENSORS";
                MK_TRY(read_tensors(c, info.tensors));
                have_tensors = true;
                break;
            default:
                if (tag < 128)
                    return error(Code::unknown_section,
                                 "required section " + std::to_string(tag) + " is unknown to this reader (format " +
                                     std::to_string(format_major) + "." + std::to_string(format_reader_minor) + ")");
                if (tag >= first_data_section_tag) {  // optional with data (§4.7): its data is skipped too
                    c.section = "section " + std::to_string(tag);
                    std::uint64_t bytes = 0;
                    MK_TRY(c.varint(bytes, "data length"));
                    info.section_data.push_back({tag, 0, bytes});
                    if (wanted)  // bounded by the header, already read
                        for (SectionContent& w : *wanted)
                            if (w.tag == tag) {
                                w.present = true;
                                w.payload.assign(data + c.pos, data + c.end);
                            }
                }
                c.pos = c.end;  // optional: skip
        }
        if (c.pos != c.end)
            return error(Code::bad_section,
                         c.section + " section has " + std::to_string(c.end - c.pos) + " unread bytes at its end");
        pos = c.end;
    }
    if (!have_tensors) return error(Code::bad_section, "the TENSORS section is missing");
    if (info.kind == FileKind::model && !have_layers)
        return error(Code::bad_section, "a model file without a LAYERS section");
    return Status::success();
}

// Step 5: the data layout (§6): each tensor's offset, and the file must end
// exactly where the last one does.
Status lay_out_data(FileInfo& info) {
    const std::uint64_t align = std::uint64_t(1) << info.align_log2;
    const std::uint64_t size = info.file_bytes;
    std::uint64_t at = info.header_bytes;
    for (TensorInfo& t : info.tensors) {
        if (t.bytes == 0) {
            t.offset = at;
            continue;
        }
        at = (at + align - 1) & ~(align - 1);
        t.offset = at;
        at += t.bytes;
        if (at > size)
            return error(Code::truncated, "tensor '" + t.name + "' needs bytes [" + std::to_string(t.offset) + ", " +
                                              std::to_string(at) + ") but the file is only " + std::to_string(size) +
                                              " bytes");
    }
    for (SectionData& d : info.section_data) {  // then each optional section's data, in tag order
        if (d.bytes == 0) {
            d.offset = at;
            continue;
        }
        at = (at + align - 1) & ~(align - 1);
        d.offset = at;
        if (at > size || d.bytes > size - at)
            return error(Code::truncated, "section " + std::to_string(d.tag) + " declares " + std::to_string(d.bytes) +
                                              " bytes of data from byte " + std::to_string(at) +
                                              " but the file is only " + std::to_string(size) + " bytes");
        at += d.bytes;
    }
    if (at < size)
        return error(Code::trailing_bytes,
                     std::to_string(size - at) + " bytes after the data (which ends at " + std::to_string(at) + ")");
    return Status::success();
}

// Everything but the tensor data, in named steps, so that every tensor has its
// place in the file before any is allocated. want_data_crc: the data CRC the
// header promises.
Status read_header(const ByteSource& source, FileInfo& info, std::uint32_t& want_data_crc,
                   std::vector<SectionContent>* wanted = nullptr) {
    info = FileInfo{};
    std::vector<std::uint8_t> header;
    MK_TRY(read_fixed_header(source, info, header, want_data_crc));  // steps 1 and 2
    MK_TRY(read_sections(header, info, wanted));                     // step 3
    if (info.kind == FileKind::model) {                              // step 4: layers against tensors (§8)
        MK_TRY(check_architecture(info));
        info.param_count = param_count(info.layers);
    } else {
        for (const TensorInfo& t : info.tensors) info.param_count += numel(t.shape);
    }
    return lay_out_data(info);  // step 5
}

// The data region, read in file order, each byte once: every byte goes into
// the data CRC as it is read.
class DataStream {
public:
    explicit DataStream(const ByteSource& source) : source_(source) {}

    /// [offset, offset + n), n ≤ read_chunk_bytes: in place for a source in
    /// memory, else in the scratch buffer (all a load holds beyond its tensors).
    const std::uint8_t* chunk(std::uint64_t offset, std::size_t n) {
        const std::uint8_t* p = source_range(source_, offset, n, scratch_);
        crc_ = crc32_update(crc_, p, n);
        return p;
    }
    /// [offset, offset + n) straight into dst (a tensor's own storage).
    void into(std::uint64_t offset, void* dst, std::size_t n) {
        source_.read(offset, dst, n);
        crc_ = crc32_update(crc_, static_cast<const std::uint8_t*>(dst), n);
    }
    std::uint32_t crc() const { return crc_; }

private:
    const ByteSource& source_;
    std::vector<std::uint8_t> scratch_;
    std::uint32_t crc_ = 0;
};

// The one place stored values become float32: `count` values of t from
// element `first` on, stored at `stored` (f16 / bf16: little-endian halves;
// int8: the q bytes, row r scaled by scales[r]), into out's storage.
void decode_values(const TensorInfo& t, const float* scales, std::size_t first, const std::uint8_t* stored,
                   std::size_t count, Tensor& out) {
    float* dst = out.data() + first;
    switch (t.dtype) {
        case DType::f32: break;  // read into the tensor as they are (read_tensor)
        case DType::f16:
            for (std::size_t i = 0; i < count; ++i)
                dst[i] = f16_to_f32(std::uint16_t(stored[2 * i] | stored[2 * i + 1] << 8));
            break;
        case DType::bf16:
            for (std::size_t i = 0; i < count; ++i)
                dst[i] = bf16_to_f32(std::uint16_t(stored[2 * i] | stored[2 * i + 1] << 8));
            break;
        case DType::int8: {
            const std::size_t rows = t.shape.size() >= 2 ? t.shape[0] : 1;
            const std::size_t cols = out.size() / rows;
            for (std::size_t i = 0; i < count;) {  // row by row: one scale each
                const std::size_t r = (first + i) / cols;
                const std::size_t row_end = std::min(count, (r + 1) * cols - first);
                for (; i < row_end; ++i) dst[i] = float(std::int8_t(stored[i])) * scales[r];
            }
            break;
        }
    }
}

// One tensor's stored bytes [t.offset, t.offset + t.bytes), t.bytes > 0, and
// with `out`, its values, held in a Param allocated here. Stored layout
// (format.hpp §5): int8 is rows × f32 scale, then numel × int8 q; the other
// dtypes are numel values. A bad int8 scale is bad_scale, but only after the
// whole tensor was read: the caller reports it once the data CRC matched.
//
// With keep_compact (a Linear weight stored f16, bf16 or int8), the stored
// values go into a compact Param as they are instead of being decoded —
// unless finish_compact finds values it cannot hold, which are then decoded
// to float32 after all.
Status read_tensor(DataStream& in, const TensorInfo& t, Param* out, bool keep_compact) {
    Status bad_scale;
    std::uint64_t at = t.offset;
    CompactWeight compact;
    keep_compact = keep_compact && out && t.dtype != DType::f32;
    if (keep_compact) {
        compact.dtype = t.dtype;
        compact.rows = t.shape[0];
        compact.cols = t.shape[1];
    }
    std::vector<float>& scales = compact.scale;  // int8 with `out`: one per row
    if (t.dtype == DType::int8) {
        const std::uint64_t rows = t.shape.size() >= 2 ? t.shape[0] : 1;
        if (out) scales.resize(std::size_t(rows));
        for (std::uint64_t r = 0; r < rows;) {
            const std::size_t n = std::size_t(std::min<std::uint64_t>(rows - r, read_chunk_bytes / 4));
            const std::uint8_t* p = in.chunk(at, n * 4);
            for (std::size_t i = 0; i < n; ++i, ++r) {
                float scale;
                std::memcpy(&scale, p + 4 * i, 4);
                if ((!(scale >= 0.0f) || !std::isfinite(scale)) && bad_scale.ok())
                    bad_scale =
                        error(Code::bad_scale, "tensor '" + t.name + "' row " + std::to_string(r) + " has scale " +
                                                   format_float(scale) + " (must be finite and >= 0)");
                if (out) scales[r] = scale;
            }
            at += n * 4;
        }
    }
    const std::size_t width = t.dtype == DType::f32 ? 4 : t.dtype == DType::int8 ? 1 : 2;  // stored bytes per value
    const std::size_t numel = std::size_t((t.offset + t.bytes - at) / width);
    if (keep_compact) {  // allocated only now, filled straight from the source
        void* dst;
        if (t.dtype == DType::int8) {
            compact.q.resize(numel);
            dst = compact.q.data();
        } else {
            compact.half.resize(numel);
            dst = compact.half.data();
        }
        in.into(at, dst, numel * width);
        if (bad_scale.ok() && !finish_compact(compact))
            *out = Param(expand_weight(compact));  // f16 inf/NaN: float32 after all
        else
            *out = Param(std::move(compact));
        return bad_scale;
    }
    Tensor* values = nullptr;
    if (out) {
        *out = Param(Tensor(t.shape));  // allocated only now; every element is written below
        values = &out->values();
        if (t.dtype == DType::f32) {
            in.into(at, values->data(), numel * 4);
            return bad_scale;
        }
    }
    for (std::size_t first = 0; first < numel;) {
        const std::size_t n = std::min(numel - first, read_chunk_bytes / width);
        const std::uint8_t* p = in.chunk(at, n * width);
        if (values) decode_values(t, scales.data(), first, p, n, *values);
        first += n;
        at += n * width;
    }
    return bad_scale;
}

// Streams the data region (after read_header): padding checked zero, the
// data CRC and the int8 scales verified — reported in that order, as a
// whole-file check would — and with `params`, every tensor read as it is
// reached. On failure `params` holds nothing to use. With keep_compact (one
// flag per tensor), tensor i with keep_compact[i] that is stored narrower than
// float32 is held compact (read_tensor). The data of a section in `wanted`
// (present) is read into its own vector (its size already checked against
// the file's by lay_out_data); any other section's data is checked, not kept.
Status read_data(const ByteSource& source, const FileInfo& info, std::uint32_t want_data_crc,
                 std::vector<Param>* params, const std::vector<bool>* keep_compact = nullptr,
                 std::vector<SectionContent>* wanted = nullptr) {
    DataStream in(source);
    Status bad_scale;  // the first one, reported after the CRC
    if (params) params->reserve(info.tensors.size());
    std::uint64_t prev_end = info.header_bytes;
    for (std::size_t i = 0; i < info.tensors.size(); ++i) {
        const TensorInfo& t = info.tensors[i];
        if (t.bytes == 0) {
            if (params) params->emplace_back(Tensor(t.shape));
            continue;
        }
        const std::uint8_t* pad = in.chunk(prev_end, std::size_t(t.offset - prev_end));  // < 2^align_log2 bytes
        for (std::uint64_t b = prev_end; b < t.offset; ++b)
            if (pad[b - prev_end] != 0)
                return error(Code::bad_padding,
                             "padding byte " + std::to_string(b) + " before tensor '" + t.name + "' is not zero");
        const Status st =
            read_tensor(in, t, params ? &params->emplace_back() : nullptr, keep_compact && (*keep_compact)[i]);
        if (bad_scale.ok()) bad_scale = st;
        prev_end = t.offset + t.bytes;
    }
    for (const SectionData& d : info.section_data) {
        if (d.bytes == 0) continue;
        SectionContent* keep = nullptr;
        if (wanted)
            for (SectionContent& w : *wanted)
                if (w.tag == d.tag && w.present) keep = &w;
        const std::uint8_t* pad = in.chunk(prev_end, std::size_t(d.offset - prev_end));
        for (std::uint64_t b = prev_end; b < d.offset; ++b)
            if (pad[b - prev_end] != 0)
                return error(Code::bad_padding, "padding byte " + std::to_string(b) + " before the data of section " +
                                                    std::to_string(d.tag) + " is not zero");
        if (keep) {                  // allocated only now, filled straight from the source
            if (d.bytes > SIZE_MAX)  // a 32-bit (wasm) build
                return error(Code::size_overflow, "section " + std::to_string(d.tag) + "'s " + std::to_string(d.bytes) +
                                                      " bytes of data do not fit in memory");
            keep->data.resize(std::size_t(d.bytes));
            in.into(d.offset, keep->data.data(), std::size_t(d.bytes));
            prev_end = d.offset + d.bytes;
            continue;
        }
        for (std::uint64_t at = d.offset; at < d.offset + d.bytes;) {
            const std::size_t n = std::size_t(std::min<std::uint64_t>(d.offset + d.bytes - at, read_chunk_bytes));
            in.chunk(at, n);
            at += n;
        }
        prev_end = d.offset + d.bytes;
    }
    if (in.crc() != want_data_crc)
        return error(Code::checksum_mismatch, "data CRC-32 is " + hex32(in.crc()) + " but the header says " +
                                                  hex32(want_data_crc) + ": the tensor data is corrupted");
    return bad_scale;
}

}  // namespace

Status read_info(const ByteSource& source, bool check_data, FileInfo& info) {
    std::uint32_t want_data_crc = 0;
    MK_TRY(read_header(source, info, want_data_crc));
    if (!check_data) return Status::success();
    MK_TRY(read_data(source, info, want_data_crc, nullptr));
    info.data_checked = true;
    return Status::success();
}

Status read_file(const ByteSource& source, LoadedFile& out) {
    FileInfo info;
    std::uint32_t want_data_crc = 0;
    MK_TRY(read_header(source, info, want_data_crc));
    std::vector<Param> params;
    MK_TRY(read_data(source, info, want_data_crc, &params));
    info.data_checked = true;
    StateDict named;
    named.reserve(params.size());
    for (std::size_t i = 0; i < params.size(); ++i)
        named.emplace_back(info.tensors[i].name, std::move(params[i].values()));
    out.info = std::move(info);
    out.tensors = std::move(named);
    return Status::success();
}

Status read_model(const ByteSource& source, Sequential& model, Metadata* metadata, FileInfo* file,
                  std::vector<SectionContent>* sections) {
    std::vector<SectionContent> wanted;  // filled here, handed back only on success
    if (sections) {
        for (SectionContent& s : *sections) {
            wanted.push_back(SectionContent{s.tag, false, {}, {}});
            s = SectionContent{s.tag, false, {}, {}};
        }
    }
    FileInfo info;
    std::uint32_t want_data_crc = 0;
    MK_TRY(read_header(source, info, want_data_crc, sections ? &wanted : nullptr));
    if (info.kind != FileKind::model)
        return error(Code::wrong_kind,
                     "the file is a state dict without an architecture: build the model "
                     "from a SPEC and use load_state_dict");
    // Linear weights stored f16 / bf16 / int8 stay so in memory (compact.hpp).
    std::vector<bool> keep_compact;
    for (const LayerSpec& s : info.layers) {
        const std::size_t n = layer_params(s).size();
        for (std::size_t i = 0; i < n; ++i) keep_compact.push_back(s.kind == LayerKind::linear && i == 0);
    }
    std::vector<Param> params;
    MK_TRY(read_data(source, info, want_data_crc, &params, &keep_compact, sections ? &wanted : nullptr));
    model = Sequential::from_parts(info.layers, std::move(params));
    info.data_checked = true;
    if (sections) *sections = std::move(wanted);
    if (metadata) *metadata = info.metadata;
    if (file) *file = std::move(info);
    return Status::success();
}

Status read_model_as(const ByteSource& source, const std::string& architecture, Sequential& model, FileInfo& info,
                     const std::string& prefix) {
    if (architecture.empty()) {
        const Status st = read_model(source, model, nullptr, &info);
        if (st.code() != Code::wrong_kind) return st;
        FileInfo head;
        MK_TRY(read_info(source, false, head));
        std::vector<std::pair<std::string, Shape>> shapes;
        for (const TensorInfo& t : head.tensors) shapes.emplace_back(t.name, t.shape);
        return error(Code::needs_architecture, "a modelkeep state dict holds weights, not the layers that use them. " +
                                                   architecture_advice(shapes));
    }
    std::vector<LayerSpec> specs;
    MK_TRY(parse_spec(architecture, specs));
    LoadedFile f;
    MK_TRY(read_file(source, f));
    MK_TRY(take_prefix(f.tensors, prefix));
    MK_TRY(Sequential::from_state_dict(specs, std::move(f.tensors), model));
    info = std::move(f.info);
    return Status::success();
}

std::uint64_t read_bytes(const FileInfo& info, bool as_model, bool with_sections) {
    std::uint64_t tensors = 0, largest_f16 = 0, chunk = 0, pack = 0;
    const auto through_chunk = [&](std::uint64_t bytes) {
        chunk = std::max(chunk, std::min<std::uint64_t>(bytes, read_chunk_bytes));
    };
    for (const TensorInfo& t : info.tensors) {
        const std::uint64_t e = numel(t.shape);
        // In a model file, the rank-2 tensors are exactly the Linear weights.
        if (as_model && info.kind == FileKind::model && t.shape.size() == 2 && t.dtype != DType::f32) {
            tensors += compact_bytes_bound(t.dtype, t.shape[0], t.shape[1]);
            if (t.dtype == DType::int8) through_chunk(std::uint64_t(t.shape[0]) * 4);  // the row scales
            if (t.dtype == DType::f16) largest_f16 = std::max(largest_f16, e * 4);
        } else {
            tensors += e * 4;
            if (t.dtype != DType::f32) through_chunk(t.bytes);
            if (as_model && info.kind == FileKind::model && t.shape.size() == 2)  // packed once read (packed.hpp)
                pack = std::max(pack, pack_scratch_bytes(std::size_t(t.shape[0]), std::size_t(t.shape[1])));
        }
    }
    // Bookkeeping (measured, tests/test_import.cpp): what the header parse builds,
    // each tensor's slot and name, a few fixed tables.
    const std::uint64_t bookkeeping = info.header_bytes * 64 + info.tensors.size() * 1024 + (16 << 10);
    std::uint64_t sections = 0;  // read_model's SectionContent: each payload (< the header) and data
    if (with_sections)
        for (const SectionData& d : info.section_data) sections += d.bytes + info.header_bytes;
    return tensors + largest_f16 + chunk + pack + bookkeeping + sections;
}

// The pointer + size overloads: the same reader over the bytes in memory (a
// null pointer holds nothing, whatever the size).
Status read_info(const std::uint8_t* data, std::size_t size, bool check_data, FileInfo& info) {
    return read_info(MemorySource(data, data ? size : 0), check_data, info);
}

Status read_file(const std::uint8_t* data, std::size_t size, LoadedFile& out) {
    return read_file(MemorySource(data, data ? size : 0), out);
}

Status read_model(const std::uint8_t* data, std::size_t size, Sequential& model, Metadata* metadata) {
    return read_model(MemorySource(data, data ? size : 0), model, metadata);
}

}  // namespace modelkeep
