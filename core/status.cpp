#include "status.hpp"

#include "utf8.hpp"

namespace modelkeep {

Status::Status(Code code, const std::string& message) : code_(code), message_(escape_text(message)) {}

const char* code_name(Code code) {
    switch (code) {
#define MODELKEEP_X(name) \
    case Code::name: return #name;
        MODELKEEP_CODES(MODELKEEP_X)
#undef MODELKEEP_X
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace modelkeep
