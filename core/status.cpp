#include "status.hpp"

namespace modelkeep {

const char* code_name(Code code) {
    switch (code) {
        case Code::ok: return "ok";
        case Code::bad_magic: return "bad_magic";
        case Code::unsupported_version: return "unsupported_version";
        case Code::truncated: return "truncated";
        case Code::trailing_bytes: return "trailing_bytes";
        case Code::checksum_mismatch: return "checksum_mismatch";
        case Code::header_too_large: return "header_too_large";
        case Code::bad_varint: return "bad_varint";
        case Code::bad_section: return "bad_section";
        case Code::unknown_section: return "unknown_section";
        case Code::unknown_kind: return "unknown_kind";
        case Code::bad_alignment: return "bad_alignment";
        case Code::limit_exceeded: return "limit_exceeded";
        case Code::bad_name: return "bad_name";
        case Code::duplicate_name: return "duplicate_name";
        case Code::unknown_dtype: return "unknown_dtype";
        case Code::unknown_layer: return "unknown_layer";
        case Code::invalid_argument: return "invalid_argument";
        case Code::size_overflow: return "size_overflow";
        case Code::bad_padding: return "bad_padding";
        case Code::bad_scale: return "bad_scale";
        case Code::arch_mismatch: return "arch_mismatch";
        case Code::wrong_kind: return "wrong_kind";
        case Code::shape_mismatch: return "shape_mismatch";
        case Code::missing_key: return "missing_key";
        case Code::unexpected_key: return "unexpected_key";
        case Code::invalid_spec: return "invalid_spec";
        case Code::invalid_input: return "invalid_input";
        case Code::io_error: return "io_error";
        case Code::out_of_memory: return "out_of_memory";
        case Code::unknown_format: return "unknown_format";
        case Code::corrupt_zip: return "corrupt_zip";
        case Code::unsupported_compression: return "unsupported_compression";
        case Code::torchscript_archive: return "torchscript_archive";
        case Code::legacy_module: return "legacy_module";
        case Code::bad_pickle: return "bad_pickle";
        case Code::disallowed_global: return "disallowed_global";
        case Code::disallowed_opcode: return "disallowed_opcode";
        case Code::disallowed_persistent_id: return "disallowed_persistent_id";
        case Code::missing_storage: return "missing_storage";
        case Code::storage_size_mismatch: return "storage_size_mismatch";
        case Code::view_out_of_bounds: return "view_out_of_bounds";
        case Code::unsupported_tensor: return "unsupported_tensor";
        case Code::unsupported_byteorder: return "unsupported_byteorder";
        case Code::needs_architecture: return "needs_architecture";
        case Code::bad_header_json: return "bad_header_json";
        case Code::bad_offsets: return "bad_offsets";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace modelkeep
