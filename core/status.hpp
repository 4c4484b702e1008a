// status.hpp — one error code per failure mode, and the Status value every
// fallible function returns. Nothing in the core throws or aborts on bad
// input: the same code runs inside wasm, where either would kill the module.
#pragma once

#include <string>
#include <utility>

namespace modelkeep {

/// Every code, once, in its stable order (never renumber: the values are
/// part of no file, but tests and tools loop over them). X(name) per code;
/// the enum, code_name, code_count and last_code are generated from it, and a
/// test checks docs/API.md and web/index.d.ts against it.
#define MODELKEEP_CODES(X)                                                                                        \
    X(ok) /* success */                                                                                           \
    /* --- the file format (see format.hpp) --- */                                                                \
    X(bad_magic)           /* the first 4 bytes are not the modelkeep magic */                                    \
    X(unsupported_version) /* major version newer (or older) than this reader */                                  \
    X(truncated)           /* the file ends before a field or tensor it declares */                               \
    X(trailing_bytes)      /* bytes after the last tensor */                                                      \
    X(checksum_mismatch)   /* header or data CRC-32 differs from the stored one */                                \
    X(header_too_large)    /* header length over max_header_bytes or past the end */                              \
    X(bad_varint)          /* an integer is overlong, non-canonical or too large */                               \
    X(bad_section)         /* sections out of order, repeated, missing or overrunning */                          \
    X(unknown_section)     /* a required (tag < 128) section this reader does not know */                         \
    X(unknown_kind)        /* the file kind byte is neither model nor state dict */                               \
    X(bad_alignment)       /* the alignment exponent is outside 2..12 */                                          \
    X(limit_exceeded)      /* a count, rank or length over its cap */                                             \
    X(bad_name)            /* a name, key or string: empty, too long, not UTF-8, or not a valid layer name */     \
    X(duplicate_name)      /* the same tensor, layer or metadata key twice */                                     \
    X(unknown_dtype)       /* a tensor dtype code this reader does not know */                                    \
    X(unknown_layer)       /* a layer kind code (or SPEC name) this reader does not know */                       \
    X(invalid_argument)    /* a layer parameter out of range (size 0, eps <= 0, p >= 1, ...) */                   \
    X(size_overflow)       /* shape product or byte size overflows or is over max_tensor_elements */              \
    X(bad_padding)         /* an alignment padding byte is not zero */                                            \
    X(bad_scale)           /* an int8 row scale is negative, NaN or infinite */                                   \
    X(arch_mismatch)       /* a full model's tensors disagree with its layers */                                  \
    X(wrong_kind)          /* a full model was needed but the file is a state dict */                             \
    /* --- models and state dicts --- */                                                                          \
    X(shape_mismatch) /* an input or tensor has the wrong shape */                                                \
    X(missing_key)    /* strict load_state_dict: a model tensor is absent */                                      \
    X(unexpected_key) /* strict load_state_dict: a tensor the model does not have */                              \
    /* --- the SPEC language and the CLI --- */                                                                   \
    X(invalid_spec)  /* an architecture SPEC string does not parse */                                             \
    X(invalid_input) /* input JSON / values do not parse */                                                       \
    X(io_error)      /* a file could not be read or written */                                                    \
    X(out_of_memory) /* (wasm) the work needs more memory than the module can get */                              \
    /* --- reading other formats: PyTorch (zip, legacy), safetensors (import.hpp) --- */                          \
    X(unknown_format)           /* the bytes are none of: .mkp, torch zip, legacy torch, safetensors */           \
    X(corrupt_zip)              /* a zip archive's directory, entry or deflate stream is inconsistent */          \
    X(unsupported_compression)  /* a zip entry compressed with a method other than stored/deflate */              \
    X(torchscript_archive)      /* a TorchScript (torch.jit.save) archive: code, never read */                    \
    X(legacy_module)            /* a pre-1.6 torch file holding a whole module (it embeds source code) */         \
    X(bad_pickle)               /* a pickle is truncated, malformed, or builds an unexpected structure */         \
    X(disallowed_global)        /* a pickle names a global outside the allowlist (posix.system, ...) */           \
    X(disallowed_opcode)        /* a pickle uses an opcode torch.save never writes */                             \
    X(disallowed_persistent_id) /* a persistent id that is not ('storage', type, key, location, numel) */         \
    X(missing_storage)          /* a tensor's storage record is absent from the archive */                        \
    X(storage_size_mismatch)    /* a storage record (or safetensors span) is not numel × itemsize bytes */       \
    X(view_out_of_bounds)       /* a tensor view (offset, shape, strides) reaches past its storage */             \
    X(unsupported_tensor)       /* a tensor kind or dtype modelkeep does not convert (quantized, complex, ...) */ \
    X(unsupported_byteorder)    /* a big-endian torch archive */                                                  \
    X(needs_architecture)       /* the file holds weights but does not say what runs: give an architecture */     \
    X(bad_header_json)          /* a safetensors header is not UTF-8 JSON of the expected shape */                \
    X(bad_offsets)              /* safetensors data_offsets overlap, leave holes or run backwards */              \
    /* --- builds --- */                                                                                          \
    X(needs_importer) /* a PyTorch / safetensors file (or export) in a build without the importer */              \
    /* --- training (loss.hpp, optim.hpp, lr_scheduler.hpp, train.hpp) --- */                                     \
    X(invalid_hyperparameter) /* an optimizer, schedule or loss option out of range (lr < 0, ...) */              \
    X(target_out_of_range)    /* a class index not in [0, C) nor ignore_index; a BCELoss input not in [0, 1] */   \
    X(needs_f32) /* training a model that holds compact (f16/bf16/int8) weights: set_weight_dtype(f32) first */   \
    X(unsupported_optimizer) /* a PyTorch optimizer state modelkeep cannot continue faithfully (see               \
                                torch_checkpoint.hpp) */

enum class Code : int {
#define MODELKEEP_X(name) name,
    MODELKEEP_CODES(MODELKEEP_X)
#undef MODELKEEP_X
};

/// How many codes there are; Code(0) .. Code(code_count - 1) are all of them.
constexpr int code_count = 0
#define MODELKEEP_X(name) +1
    MODELKEEP_CODES(MODELKEEP_X)
#undef MODELKEEP_X
    ;
/// The last code, for loops over every code.
constexpr Code last_code = Code(code_count - 1);
static_assert(Code::ok == Code(0), "ok is code 0");

/// The stable snake_case name of a code ("bad_magic"); the JS layer uses the same names.
const char* code_name(Code code);

class [[nodiscard]] Status {
public:
    Status() = default;
    /// The message is stored escaped (utf8.hpp's escape_text): names and text
    /// from files reach every message — CLI, JS, logs — without a control
    /// character, an invalid byte or an invisible reordering character.
    Status(Code code, const std::string& message);

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
#define MK_TRY(expr)                             \
    do {                                         \
        ::modelkeep::Status mk_status_ = (expr); \
        if (!mk_status_.ok()) return mk_status_; \
    } while (0)
