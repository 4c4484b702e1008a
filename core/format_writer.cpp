// The writer of format.hpp. It validates what it is given with the same caps
// the reader enforces, so everything it writes reads back.
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "crc32.hpp"
#include "format.hpp"

namespace modelkeep {

namespace {

struct Bytes {
    std::vector<std::uint8_t>& b;
    void u8(std::uint8_t v) { b.push_back(v); }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    }
    void f32(float v) {
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        u32(u);
    }
    void varint(std::uint64_t v) {
        do {
            std::uint8_t byte = v & 0x7F;
            v >>= 7;
            if (v) byte |= 0x80;
            b.push_back(byte);
        } while (v);
    }
    void svarint(std::int64_t v) { varint((std::uint64_t(v) << 1) ^ std::uint64_t(v >> 63)); }
    void str(const std::string& s) {
        varint(s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
};

void put_u32_at(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
}

void section(std::vector<std::uint8_t>& out, std::uint8_t tag, const std::vector<std::uint8_t>& payload) {
    Bytes w{out};
    w.u8(tag);
    w.varint(payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
}

void layer_record(Bytes& w, const LayerSpec& s) {
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
        default:
            break;
    }
}

// One tensor to write: float32 values, or a Linear layer's compact weight
// (written as it is when `dtype` is its own, expanded first otherwise).
struct Item {
    const std::string* name;
    const Tensor* tensor;
    DType dtype;
    const CompactWeight* compact = nullptr;

    Shape shape() const { return compact ? Shape{compact->rows, compact->cols} : shape_of(*tensor); }
};

Status write(FileKind kind, const std::vector<LayerSpec>* layers, const std::vector<Item>& items,
             const WriteOptions& opt, std::vector<std::uint8_t>& out) {
    if (opt.align_log2 < 2 || opt.align_log2 > 12)
        return error(Code::bad_alignment, "align_log2 " + std::to_string(opt.align_log2) + " is outside 2..12");
    if (items.size() > max_tensors)
        return error(Code::limit_exceeded, std::to_string(items.size()) + " tensors, over the cap of " +
                                               std::to_string(max_tensors));
    if (opt.metadata.size() > max_metadata_entries)
        return error(Code::limit_exceeded, std::to_string(opt.metadata.size()) +
                                               " metadata entries, over the cap of " +
                                               std::to_string(max_metadata_entries));
    std::vector<std::uint8_t> head(fixed_header_bytes, 0);
    if (!opt.metadata.empty()) {
        std::vector<std::uint8_t> payload;
        Bytes w{payload};
        std::unordered_set<std::string> keys;
        w.varint(opt.metadata.size());
        for (const auto& [k, v] : opt.metadata) {
            if (k.empty() || k.size() > max_metadata_key_bytes || !valid_utf8(k))
                return error(Code::bad_name, "metadata key '" + k + "' must be 1 to 256 bytes of UTF-8");
            if (v.size() > max_metadata_value_bytes || !valid_utf8(v))
                return error(Code::bad_name, "metadata value of '" + k + "' must be at most 1 MiB of UTF-8");
            if (!keys.insert(k).second) return error(Code::duplicate_name, "metadata key '" + k + "' given twice");
            w.str(k);
            w.str(v);
        }
        section(head, 1, payload);
    }
    if (layers) {
        std::vector<std::uint8_t> payload;
        Bytes w{payload};
        w.varint(layers->size());
        for (const LayerSpec& s : *layers) layer_record(w, s);
        section(head, 2, payload);
    }
    std::vector<std::uint64_t> sizes;
    {
        std::vector<std::uint8_t> payload;
        Bytes w{payload};
        std::unordered_set<std::string> names;
        w.varint(items.size());
        for (const Item& it : items) {
            const std::string& name = *it.name;
            if (name.empty() || name.size() > max_name_bytes || !valid_utf8(name))
                return error(Code::bad_name, "tensor name '" + name + "' must be 1 to 1024 bytes of UTF-8");
            if (!names.insert(name).second) return error(Code::duplicate_name, "tensor '" + name + "' given twice");
            const Shape shape = it.shape();
            std::uint64_t numel;
            MK_TRY(checked_numel(shape, numel, "tensor '" + name + "'"));
            w.str(name);
            w.u8(std::uint8_t(it.dtype));
            w.u8(std::uint8_t(shape.size()));
            for (std::size_t d : shape) w.varint(d);
            sizes.push_back(numel == 0 ? 0 : stored_bytes(it.dtype, numel, shape.size() >= 2 ? shape[0] : 1));
        }
        section(head, 3, payload);
    }
    if (head.size() > max_header_bytes)
        return error(Code::header_too_large, "the header would be " + std::to_string(head.size()) +
                                                 " bytes, over the cap of " + std::to_string(max_header_bytes));

    // Layout (§6), then fill.
    const std::uint64_t align = std::uint64_t(1) << opt.align_log2;
    std::uint64_t total = head.size();
    for (std::uint64_t s : sizes)
        if (s) total = ((total + align - 1) & ~(align - 1)) + s;
    if (total > SIZE_MAX) return error(Code::size_overflow, "the file would not fit in memory");
    // One zero-filled allocation of the final size: padding is already zero.
    std::vector<std::uint8_t> file(std::size_t(total), 0);
    std::memcpy(file.data(), head.data(), head.size());
    const std::size_t header_len = head.size();
    std::size_t at = header_len;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (!sizes[i]) continue;
        at = std::size_t((at + align - 1) & ~(align - 1));
        std::uint8_t* p = file.data() + at;
        const CompactWeight* compact = items[i].compact;
        if (compact && compact->dtype == items[i].dtype) {
            compact_to_stored(*compact, p);
            at += std::size_t(sizes[i]);
            continue;
        }
        const Tensor expanded = compact ? expand_weight(*compact) : Tensor();
        const Tensor& t = compact ? expanded : *items[i].tensor;
        const std::size_t n = t.size();
        switch (items[i].dtype) {
            case DType::f32: std::memcpy(p, t.data(), n * 4); break;
            case DType::f16:
            case DType::bf16:
                for (std::size_t k = 0; k < n; ++k) {
                    const std::uint16_t h = items[i].dtype == DType::f16 ? f32_to_f16(t.data()[k]) : f32_to_bf16(t.data()[k]);
                    p[2 * k] = std::uint8_t(h);
                    p[2 * k + 1] = std::uint8_t(h >> 8);
                }
                break;
            case DType::int8: {
                const std::size_t rows = t.dimension() >= 2 ? t.shape()[0] : 1;
                if (!quantize_int8(t.data(), rows, n / rows, p))
                    return error(Code::invalid_argument, "tensor '" + *items[i].name +
                                                             "' holds NaN or infinity, which int8 cannot store");
                break;
            }
        }
        at += std::size_t(sizes[i]);
    }
    file[0] = format_magic[0];
    file[1] = format_magic[1];
    file[2] = format_magic[2];
    file[3] = format_magic[3];
    file[4] = format_major;
    file[5] = format_minor;
    file[6] = std::uint8_t(kind);
    file[7] = std::uint8_t(opt.align_log2);
    put_u32_at(file, 12, std::uint32_t(header_len));
    put_u32_at(file, 16, crc32(file.data() + header_len, file.size() - header_len));
    put_u32_at(file, 8, crc32_update(crc32(file.data(), 8), file.data() + 12, header_len - 12));
    out = std::move(file);
    return Status::success();
}

DType dtype_for(const WriteOptions& opt, std::size_t rank) { return rank >= 2 ? opt.dtype : DType::f32; }

}  // namespace

Status write_model(const Sequential& model, const WriteOptions& options, std::vector<std::uint8_t>& out) {
    const std::vector<LayerSpec> specs = model.specs();
    MK_TRY(validate_specs(specs));
    std::vector<std::string> names;
    std::vector<Item> items;
    for (const Layer& layer : model.layers()) {
        const auto infos = layer_params(layer.spec);
        for (std::size_t i = 0; i < infos.size(); ++i) {
            names.push_back(layer.spec.name + "." + infos[i].name);
            const bool compact = i == 0 && layer.compact.active();
            items.push_back({nullptr, &layer.params[i], dtype_for(options, infos[i].shape.size()),
                             compact ? &layer.compact : nullptr});
        }
    }
    for (std::size_t i = 0; i < items.size(); ++i) items[i].name = &names[i];  // names no longer moves
    return write(FileKind::model, &specs, items, options, out);
}

Status write_state_dict(const StateDict& tensors, const WriteOptions& options, std::vector<std::uint8_t>& out) {
    std::vector<Item> items;
    for (const auto& [name, t] : tensors) items.push_back({&name, &t, dtype_for(options, t.dimension())});
    return write(FileKind::state_dict, nullptr, items, options, out);
}

}  // namespace modelkeep
