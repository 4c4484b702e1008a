// decimal.hpp — float and double to and from decimal text, exactly, with
// integer arithmetic only. The C library's versions (printf's %g, strtod)
// work in long double, which WebAssembly emulates in software: they and the
// emulation were about a sixth of the module. tests/test_decimal.cpp checks
// every function against the C library (the plain reference) on millions of values.
#pragma once

#include <string>

namespace modelkeep {

/// The shortest decimal that parse_float reads back as v: what "%.*g" prints
/// at the smallest precision (1 to 9) that round-trips ("0.1", "1e-05",
/// "123456792"); "inf", "-inf", "nan" for the rest.
std::string format_float(float v);
/// The same for a double (precision 1 to 17).
std::string format_double(double v);

/// [+-]digits[.digits][(e|E)[+-]digits] (or the same starting with '.') →
/// the nearest float, ties to even, as strtof rounds. False for anything
/// else (spaces, hex, "inf", "nan", an empty exponent), for text over 1024
/// bytes, and for a value beyond the largest finite float.
bool parse_float(const std::string& text, float& out);
/// The same for a double.
bool parse_double(const std::string& text, double& out);

}  // namespace modelkeep
