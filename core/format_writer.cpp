// The writer of format.hpp. It validates what it is given with the same caps
// the reader enforces, so everything it writes reads back.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "crc32.hpp"
#include "format.hpp"
#include "packed.hpp"
#include "wire.hpp"

namespace modelkeep {

namespace {

void put_u32_at(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
}

void section(std::vector<std::uint8_t>& out, std::uint8_t tag, const std::vector<std::uint8_t>& payload) {
    WireWriter w{out};
    w.u8(tag);
    w.varint(payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
}

void layer_record(WireWriter& w, const LayerSpec& s) {
    w.str(s.name);
    w.u8(std::uint8_t(s.kind));
    switch (s.kind) {
        case LayerKind::linear:
            w.varint(s.in_features);
            w.varint(s.out_features);
            w.u8(s.bias ? 1 : 0);
            break;
        case LayerKind::leaky_relu: w.f32(s.slope); break;
        case LayerKind::gelu: w.u8(s.tanh_approx ? 1 : 0); break;
        case LayerKind::dropout: w.f32(s.p); break;
        case LayerKind::flatten:
            w.svarint(s.start_dim);
            w.svarint(s.end_dim);
            break;
        case LayerKind::layer_norm:
        case LayerKind::batch_norm1d: {
            w.varint(s.in_features);
            w.f32(s.eps);
            const bool second = s.kind == LayerKind::layer_norm ? s.bias : s.track_running_stats;
            w.u8(std::uint8_t((s.affine ? 1 : 0) | (second ? 2 : 0)));
            break;
        }
        case LayerKind::relu:
        case LayerKind::sigmoid:
        case LayerKind::tanh:
        case LayerKind::silu:
        case LayerKind::softmax:
        case LayerKind::log_softmax:
        case LayerKind::identity: break;  // nothing follows the kind
    }
}

// One tensor to write: float32 values, or a Linear layer's compact weight.
struct Item {
    const std::string* name;
    const Tensor* tensor;
    DType dtype;
    const CompactWeight* compact = nullptr;
    bool packed = false;  // tensor is in the kernels' layout (packed.hpp)

    Shape shape() const { return compact ? Shape{compact->rows, compact->cols} : shape_of(*tensor); }
    bool compact_as_is() const { return compact && compact->dtype == dtype; }
};

// A packed weight's (out, in) rows (packed.hpp).
Tensor rows_of(const Tensor& packed) {
    const std::size_t rows = packed.shape()[0], cols = packed.shape()[1];
    Tensor t(Shape{rows, cols});
    unpack_weight_rows(packed.data(), rows, cols, 0, rows, t.data());
    return t;
}

// Each row's int8 scale of x (rows × cols); false if a value is NaN or infinite.
bool int8_scales(const float* x, std::size_t rows, std::size_t cols, std::vector<float>& scales) {
    scales.resize(rows);
    for (std::size_t r = 0; r < rows; ++r)
        if (!int8_scale(x + r * cols, cols, scales[r])) return false;
    return true;
}

Status plan(FileKind kind, const std::vector<LayerSpec>* layers, const std::vector<Item>& items,
            const WriteOptions& opt, WritePlan& out) {
    if (opt.align_log2 < 2 || opt.align_log2 > 12)
        return error(Code::bad_alignment, "align_log2 " + std::to_string(opt.align_log2) + " is outside 2..12");
    if (items.size() > max_tensors)
        return error(Code::limit_exceeded,
                     std::to_string(items.size()) + " tensors, over the cap of " + std::to_string(max_tensors));
    if (opt.metadata.size() > max_metadata_entries)
        return error(Code::limit_exceeded, std::to_string(opt.metadata.size()) + " metadata entries, over the cap of " +
                                               std::to_string(max_metadata_entries));
    WritePlan p;
    FileInfo& info = p.info;
    info.major = format_major;
    // 1.1 only for what 1.0 readers cannot read: a root layer (an empty name).
    const bool root = layers && layers->size() == 1 && (*layers)[0].name.empty();
    info.minor = root ? format_minor : 0;
    info.kind = kind;
    info.align_log2 = opt.align_log2;
    std::vector<std::uint8_t> head(fixed_header_bytes, 0);
    if (!opt.metadata.empty()) {
        std::vector<std::uint8_t> payload;
        WireWriter w{payload};
        std::unordered_set<std::string> keys;
        w.varint(opt.metadata.size());
        for (const auto& [k, v] : opt.metadata) {
            if (k.empty() || k.size() > max_metadata_key_bytes || !valid_utf8(k))
                return error(Code::bad_name, "metadata key '" + escape_text(k) + "' must be 1 to 256 bytes of UTF-8");
            if (first_control(k) >= 0)
                return error(Code::bad_name, "metadata key '" + escape_text(k) + "' holds a control character");
            if (v.size() > max_metadata_value_bytes || !valid_utf8(v))
                return error(Code::bad_name,
                             "metadata value of '" + escape_text(k) + "' must be at most 1 MiB of UTF-8");
            if (first_control(v, true) >= 0)
                return error(Code::bad_name, "metadata value of '" + escape_text(k) +
                                                 "' holds a control character other than newline and tab");
            if (!keys.insert(k).second)
                return error(Code::duplicate_name, "metadata key '" + escape_text(k) + "' given twice");
            w.str(k);
            w.str(v);
        }
        section(head, 1, payload);
        info.metadata = opt.metadata;
    }
    if (layers) {
        std::vector<std::uint8_t> payload;
        WireWriter w{payload};
        w.varint(layers->size());
        for (const LayerSpec& s : *layers) layer_record(w, s);
        section(head, 2, payload);
        info.layers = *layers;
        info.param_count = param_count(*layers);
    }
    {
        std::vector<std::uint8_t> payload;
        WireWriter w{payload};
        std::unordered_set<std::string> names;
        w.varint(items.size());
        for (const Item& it : items) {
            const std::string& name = *it.name;
            if (name.empty() || name.size() > max_name_bytes || !valid_utf8(name))
                return error(Code::bad_name,
                             "tensor name '" + escape_text(name) + "' must be 1 to 1024 bytes of UTF-8");
            if (first_control(name) >= 0)
                return error(Code::bad_name, "tensor name '" + escape_text(name) + "' holds a control character");
            if (!names.insert(name).second) return error(Code::duplicate_name, "tensor '" + name + "' given twice");
            const Shape shape = it.shape();
            for (std::size_t d = 0; d < shape.size(); ++d)
                if (shape[d] > max_tensor_elements)  // as the reader: a zero-sized tensor too
                    return error(Code::size_overflow, "tensor '" + escape_text(name) + "' dim " + std::to_string(d) +
                                                          " is " + std::to_string(shape[d]) + ", over " +
                                                          std::to_string(max_tensor_elements));
            std::uint64_t numel;
            MK_TRY(checked_numel(shape, numel, "tensor '" + name + "'"));
            w.str(name);
            w.u8(std::uint8_t(it.dtype));
            w.u8(std::uint8_t(shape.size()));
            for (std::size_t d : shape) w.varint(d);
            const std::uint64_t rows = shape.size() >= 2 ? shape[0] : 1;
            info.tensors.push_back({name, it.dtype, shape, 0, numel == 0 ? 0 : stored_bytes(it.dtype, numel, rows)});
            if (!layers) info.param_count += numel;
        }
        section(head, 3, payload);
    }
    int last_tag = first_data_section_tag - 1;
    for (const ExtraSection& x : opt.sections) {  // §4.7: varint data_bytes, then the caller's payload
        if (int(x.tag) <= last_tag)
            return error(Code::bad_section,
                         "optional section with data " + std::to_string(x.tag) +
                             (x.tag < first_data_section_tag ? " is below tag 192" : " is out of order or repeated"));
        last_tag = x.tag;
        std::uint64_t bytes = 0;
        for (const DataPiece& piece : x.data) {
            if (piece.bytes > UINT64_MAX - bytes)
                return error(Code::size_overflow, "section " + std::to_string(x.tag) + "'s data overflows");
            bytes += piece.bytes;
        }
        if (x.payload.size() > max_header_bytes)  // checked again below, with the rest of the header
            return error(Code::header_too_large, "section " + std::to_string(x.tag) + "'s payload is " +
                                                     std::to_string(x.payload.size()) + " bytes");
        std::vector<std::uint8_t> payload;
        payload.reserve(10 + x.payload.size());
        WireWriter w{payload};
        w.varint(bytes);
        payload.insert(payload.end(), x.payload.begin(), x.payload.end());
        section(head, x.tag, payload);
        info.section_data.push_back({x.tag, 0, bytes});
        p.section_pieces.push_back(x.data);
    }
    if (!opt.sections.empty()) info.minor = format_data_minor;
    if (head.size() > max_header_bytes)
        return error(Code::header_too_large, "the header would be " + std::to_string(head.size()) +
                                                 " bytes, over the cap of " + std::to_string(max_header_bytes));

    // Layout (§6).
    const std::uint64_t align = std::uint64_t(1) << opt.align_log2;
    std::uint64_t total = head.size();
    for (TensorInfo& t : info.tensors)
        if (t.bytes) {
            t.offset = (total + align - 1) & ~(align - 1);
            total = t.offset + t.bytes;
        } else {
            t.offset = total;
        }
    for (SectionData& d : info.section_data)  // then each section's data, in tag order
        if (d.bytes) {
            d.offset = (total + align - 1) & ~(align - 1);
            if (d.offset < total || d.bytes > UINT64_MAX - d.offset)
                return error(Code::size_overflow, "the file would not fit in memory");
            total = d.offset + d.bytes;
        } else {
            d.offset = total;
        }
    if (total > SIZE_MAX) return error(Code::size_overflow, "the file would not fit in memory");
    info.header_bytes = head.size();
    info.file_bytes = total;

    // int8 scales now: they precede the values in the file, and a value int8
    // cannot store is an error before anything is written.
    for (const Item& it : items) {
        PlannedTensor t{it.tensor, it.compact, {}, it.packed};
        if (it.dtype == DType::int8 && !it.compact_as_is() && info.tensors[p.tensors.size()].bytes) {
            const Tensor expanded = it.compact  ? expand_weight(*it.compact)
                                    : it.packed ? rows_of(*it.tensor)
                                                : Tensor();
            const Tensor& x = it.compact || it.packed ? expanded : *it.tensor;
            const std::size_t rows = x.dimension() >= 2 ? x.shape()[0] : 1;
            if (!int8_scales(x.data(), rows, x.size() / rows, t.scales))
                return error(Code::invalid_argument,
                             "tensor '" + *it.name + "' holds NaN or infinity, which int8 cannot store");
        }
        p.tensors.push_back(std::move(t));
    }

    // The fixed header but data_crc and header_crc, which covers data_crc
    // (both unknown until the data is emitted).
    std::memcpy(head.data(), format_magic, 4);
    head[4] = format_major;
    head[5] = info.minor;
    head[6] = std::uint8_t(kind);
    head[7] = std::uint8_t(opt.align_log2);
    put_u32_at(head, 12, std::uint32_t(head.size()));
    p.header = std::move(head);
    out = std::move(p);
    return Status::success();
}

// Writes the data region in file order, keeping its CRC.
class Emitter {
public:
    Emitter(ByteSink& sink, std::uint64_t at, std::size_t scratch_bytes)
        : sink_(sink), at_(at), scratch_(std::max<std::size_t>(scratch_bytes, 8)) {}

    void bytes(const void* data, std::size_t n) {
        sink_.write(at_, data, n);
        crc_ = crc32_update(crc_, static_cast<const std::uint8_t*>(data), n);
        at_ += n;
    }
    void zeros_to(std::uint64_t offset) {
        static const std::uint8_t zero[4096] = {};  // padding is below 2^12 (align_log2 ≤ 12)
        bytes(zero, std::size_t(offset - at_));
    }
    // n values stored 2 bytes each, converted into the scratch a part at a time.
    template <class Convert>
    void halves(std::size_t n, Convert convert) {
        for (std::size_t k = 0; k < n;) {
            const std::size_t m = std::min(n - k, scratch_.size() / 2);
            convert(k, m, scratch_.data());
            bytes(scratch_.data(), m * 2);
            k += m;
        }
    }
    void tensor(const TensorInfo& info, const PlannedTensor& t);
    std::uint32_t crc() const { return crc_; }

private:
    ByteSink& sink_;
    std::uint64_t at_;
    std::vector<std::uint8_t> scratch_;
    std::uint32_t crc_ = 0;
};

void Emitter::tensor(const TensorInfo& info, const PlannedTensor& t) {
    const CompactWeight* compact = t.compact;
    if (compact && compact->dtype == info.dtype) {
        if (compact->dtype == DType::int8) {
            bytes(compact->scale.data(), compact->rows * 4);
            bytes(compact->q.data(), compact->q.size());
        } else if (compact->sub_start.empty()) {
            bytes(compact->half.data(), compact->half.size() * 2);
        } else {  // f16 subnormals go back in their place, a row range at a time
            const std::size_t cols = compact->cols, per = std::max<std::size_t>(1, scratch_.size() / 2 / cols);
            for (std::size_t r = 0; r < compact->rows; r += per) {
                const std::size_t r1 = std::min(compact->rows, r + per);
                if ((r1 - r) * cols * 2 > scratch_.size()) scratch_.resize((r1 - r) * cols * 2);  // one wide row
                compact_rows_to_stored(*compact, r, r1, scratch_.data());
                bytes(scratch_.data(), (r1 - r) * cols * 2);
            }
        }
        return;
    }
    if (t.packed && info.dtype == DType::f32) {  // the rows, unpacked a scratch-full at a time
        const std::size_t rows = t.tensor->shape()[0], cols = t.tensor->shape()[1], cap = scratch_.size() / 4;
        for (std::size_t first = 0; first < rows * cols; first += cap) {
            const std::size_t n = std::min(cap, rows * cols - first);
            unpack_weight_range(t.tensor->data(), rows, cols, first, n, reinterpret_cast<float*>(scratch_.data()));
            bytes(scratch_.data(), n * 4);
        }
        return;
    }
    const Tensor expanded = compact ? expand_weight(*compact) : t.packed ? rows_of(*t.tensor) : Tensor();
    const Tensor& x = compact || t.packed ? expanded : *t.tensor;
    const float* v = x.data();
    const std::size_t n = x.size();
    switch (info.dtype) {
        case DType::f32: bytes(v, n * 4); break;
        case DType::f16:
        case DType::bf16: {
            std::uint16_t (*const to_half)(float) = info.dtype == DType::f16 ? f32_to_f16 : f32_to_bf16;
            halves(n, [&](std::size_t k, std::size_t m, std::uint8_t* out) {
                for (std::size_t i = 0; i < m; ++i) {
                    const std::uint16_t h = to_half(v[k + i]);
                    out[2 * i] = std::uint8_t(h);
                    out[2 * i + 1] = std::uint8_t(h >> 8);
                }
            });
            break;
        }
        case DType::int8: {
            // The scales (little-endian hosts only, as quantize_int8), then the
            // values a row range at a time — part of a row if one is wider.
            bytes(t.scales.data(), t.scales.size() * 4);
            const std::size_t rows = t.scales.size(), cols = n / rows;
            if (cols <= scratch_.size()) {
                const std::size_t per = scratch_.size() / cols;
                for (std::size_t r = 0; r < rows; r += per) {
                    const std::size_t r1 = std::min(rows, r + per);
                    for (std::size_t i = r; i < r1; ++i)
                        quantize_int8_values(v + i * cols, cols, t.scales[i], scratch_.data() + (i - r) * cols);
                    bytes(scratch_.data(), (r1 - r) * cols);
                }
            } else {
                for (std::size_t r = 0; r < rows; ++r)
                    for (std::size_t c = 0; c < cols; c += scratch_.size()) {
                        const std::size_t m = std::min(cols - c, scratch_.size());
                        quantize_int8_values(v + r * cols + c, m, t.scales[r], scratch_.data());
                        bytes(scratch_.data(), m);
                    }
            }
            break;
        }
    }
}

DType dtype_for(const WriteOptions& opt, std::size_t rank) { return rank >= 2 ? opt.dtype : DType::f32; }

void write_planned(const WritePlan& plan, std::vector<std::uint8_t>& out) {
    std::vector<std::uint8_t> file(std::size_t(plan.info.file_bytes));
    MemorySink sink(file.data());
    emit_file(plan, sink);
    out = std::move(file);
}

// The items of a model: its layers' tensors in state_dict order, compact weights as they are held.
std::vector<Item> model_items(const Sequential& model, std::vector<std::string>& names, const WriteOptions& options) {
    std::vector<Item> items;
    for (const Layer& layer : model.layers()) {
        const auto infos = layer_params(layer.spec);
        for (std::size_t i = 0; i < infos.size(); ++i) {
            names.push_back(param_key(layer.spec.name, infos[i].name));
            const Param& p = layer.params[i];
            items.push_back({nullptr, p.is_compact() ? nullptr : &p.values(), dtype_for(options, infos[i].shape.size()),
                             p.is_compact() ? &p.compact() : nullptr, p.is_packed()});
        }
    }
    for (std::size_t i = 0; i < items.size(); ++i) items[i].name = &names[i];  // names no longer moves
    return items;
}

}  // namespace

Status plan_model(const Sequential& model, const WriteOptions& options, WritePlan& plan_out) {
    const std::vector<LayerSpec> specs = model.specs();
    MK_TRY(validate_specs(specs));
    std::vector<std::string> names;
    const std::vector<Item> items = model_items(model, names, options);
    return plan(FileKind::model, &specs, items, options, plan_out);
}

Status plan_state_dict(const StateDict& tensors, const WriteOptions& options, WritePlan& plan_out) {
    std::vector<Item> items;
    for (const auto& [name, t] : tensors) items.push_back({&name, &t, dtype_for(options, t.dimension())});
    return plan(FileKind::state_dict, nullptr, items, options, plan_out);
}

void emit_file(const WritePlan& plan, ByteSink& sink, std::size_t scratch_bytes) {
    const std::uint64_t header_len = plan.info.header_bytes;
    sink.write(fixed_header_bytes, plan.header.data() + fixed_header_bytes,
               std::size_t(header_len) - fixed_header_bytes);
    Emitter data(sink, header_len, scratch_bytes);
    for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
        const TensorInfo& t = plan.info.tensors[i];
        if (!t.bytes) continue;
        data.zeros_to(t.offset);
        data.tensor(t, plan.tensors[i]);
    }
    for (std::size_t i = 0; i < plan.section_pieces.size(); ++i) {  // as they are: no scratch
        const SectionData& d = plan.info.section_data[i];
        if (!d.bytes) continue;
        data.zeros_to(d.offset);
        for (const DataPiece& piece : plan.section_pieces[i])
            if (piece.bytes) data.bytes(piece.data, piece.bytes);
    }
    std::vector<std::uint8_t> header = plan.header;
    put_u32_at(header, 16, data.crc());
    put_u32_at(header, 8, crc32_update(crc32(header.data(), 8), header.data() + 12, header.size() - 12));
    sink.write(0, header.data(), fixed_header_bytes);
}

std::uint64_t emit_bytes(const WritePlan& plan, std::size_t scratch_bytes) {
    std::uint64_t scratch = std::max<std::size_t>(scratch_bytes, 8), expansion = 0;
    for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
        const CompactWeight* c = plan.tensors[i].compact;
        if (plan.tensors[i].packed && plan.info.tensors[i].bytes) {
            const Tensor& w = *plan.tensors[i].tensor;
            if (plan.info.tensors[i].dtype != DType::f32)  // f32: through the scratch (Emitter::tensor)
                expansion = std::max<std::uint64_t>(expansion, std::uint64_t(w.size()) * sizeof(float));
        }
        if (!c || !plan.info.tensors[i].bytes) continue;
        if (c->dtype != plan.info.tensors[i].dtype)
            expansion = std::max<std::uint64_t>(expansion, std::uint64_t(c->rows) * c->cols * sizeof(float));
        else if (!c->sub_start.empty())
            scratch = std::max<std::uint64_t>(scratch, std::uint64_t(c->cols) * 2);  // Emitter::tensor: one wide row
    }
    return scratch + expansion + plan.header.size();
}

Status write_model(const Sequential& model, const WriteOptions& options, std::vector<std::uint8_t>& out) {
    WritePlan p;
    MK_TRY(plan_model(model, options, p));
    write_planned(p, out);
    return Status::success();
}

Status write_state_dict(const StateDict& tensors, const WriteOptions& options, std::vector<std::uint8_t>& out) {
    WritePlan p;
    MK_TRY(plan_state_dict(tensors, options, p));
    write_planned(p, out);
    return Status::success();
}

}  // namespace modelkeep
