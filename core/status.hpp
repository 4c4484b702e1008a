// status.hpp — one error code per failure mode, and the Status value every
// fallible function returns. Nothing in the core throws or aborts on bad
// input: the same code runs inside wasm, where either would kill the module.
#pragma once

#include <string>
#include <utility>

namespace modelkeep {

enum class Code : int {
    ok = 0,
    // --- the file format (see format.hpp) ---
    bad_magic,            ///< the first 4 bytes are not the modelkeep magic
    unsupported_version,  ///< major version newer (or older) than this reader
    truncated,            ///< the file ends before a field or tensor it declares
    trailing_bytes,       ///< bytes after the last tensor
    checksum_mismatch,    ///< header or data CRC-32 differs from the stored one
    header_too_large,     ///< header length over max_header_bytes or past the end
    bad_varint,           ///< an integer is overlong, non-canonical or too large
    bad_section,          ///< sections out of order, repeated, missing or overrunning
    unknown_section,      ///< a required (tag < 128) section this reader does not know
    unknown_kind,         ///< the file kind byte is neither model nor state dict
    bad_alignment,        ///< the alignment exponent is outside 2..12
    limit_exceeded,       ///< a count, rank or length over its cap
    bad_name,             ///< a name, key or string: empty, too long, not UTF-8, or not a valid layer name
    duplicate_name,       ///< the same tensor, layer or metadata key twice
    unknown_dtype,        ///< a tensor dtype code this reader does not know
    unknown_layer,        ///< a layer kind code (or SPEC name) this reader does not know
    invalid_argument,     ///< a layer parameter out of range (size 0, eps <= 0, p >= 1, ...)
    size_overflow,        ///< shape product or byte size overflows or is over max_tensor_elements
    bad_padding,          ///< an alignment padding byte is not zero
    bad_scale,            ///< an int8 row scale is negative, NaN or infinite
    arch_mismatch,        ///< a full model's tensors disagree with its layers
    wrong_kind,           ///< a full model was needed but the file is a state dict
    // --- models and state dicts ---
    shape_mismatch,       ///< an input or tensor has the wrong shape
    missing_key,          ///< strict load_state_dict: a model tensor is absent
    unexpected_key,       ///< strict load_state_dict: a tensor the model does not have
    // --- the SPEC language and the CLI ---
    invalid_spec,         ///< an architecture SPEC string does not parse
    invalid_input,        ///< input JSON / values do not parse
    io_error,             ///< a file could not be read or written
    out_of_memory,        ///< (wasm) the work needs more memory than the module can get
    // --- reading other formats: PyTorch (zip, legacy), safetensors (import.hpp) ---
    unknown_format,       ///< the bytes are none of: .mkp, torch zip, legacy torch, safetensors
    corrupt_zip,          ///< a zip archive's directory, entry or deflate stream is inconsistent
    unsupported_compression, ///< a zip entry compressed with a method other than stored/deflate
    torchscript_archive,  ///< a TorchScript (torch.jit.save) archive: code, never read
    legacy_module,        ///< a pre-1.6 torch file holding a whole module (it embeds source code)
    bad_pickle,           ///< a pickle is truncated, malformed, or builds an unexpected structure
    disallowed_global,    ///< a pickle names a global outside the allowlist (posix.system, ...)
    disallowed_opcode,    ///< a pickle uses an opcode torch.save never writes
    disallowed_persistent_id, ///< a persistent id that is not ('storage', type, key, location, numel)
    missing_storage,      ///< a tensor's storage record is absent from the archive
    storage_size_mismatch,///< a storage record (or safetensors span) is not numel × itemsize bytes
    view_out_of_bounds,   ///< a tensor view (offset, shape, strides) reaches past its storage
    unsupported_tensor,   ///< a tensor kind or dtype modelkeep does not convert (quantized, complex, ...)
    unsupported_byteorder,///< a big-endian torch archive
    needs_architecture,   ///< the file holds weights but does not say what runs: give an architecture
    bad_header_json,      ///< a safetensors header is not UTF-8 JSON of the expected shape
    bad_offsets,          ///< safetensors data_offsets overlap, leave holes or run backwards
};

/// The last code, for loops over every code.
constexpr Code last_code = Code::bad_offsets;

/// The stable snake_case name of a code ("bad_magic"); the JS layer uses the same names.
const char* code_name(Code code);

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status success() { return Status(); }
    bool ok() const { return code_ == Code::ok; }
    Code code() const { return code_; }
    const std::string& message() const { return message_; }
    /// "checksum_mismatch: data CRC-32 is 0x1234abcd but the header says 0x..."
    std::string to_string() const;

private:
    Code code_ = Code::ok;
    std::string message_;
};

inline Status error(Code code, std::string message) { return Status(code, std::move(message)); }

}  // namespace modelkeep

/// Propagate a failed Status to the caller.
#define MK_TRY(expr)                                  \
    do {                                              \
        ::modelkeep::Status mk_status_ = (expr);      \
        if (!mk_status_.ok()) return mk_status_;      \
    } while (0)
