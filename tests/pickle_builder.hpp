// pickle_builder.hpp — a tiny assembler of pickle opcodes, for tests that
// need pickles no writer of ours makes (hostile ones above all).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mkt {

// A tiny assembler for pickle opcodes.
struct P {
    std::vector<std::uint8_t> b;
    explicit P(int proto = 2) {
        if (proto >= 0) {
            b.push_back(0x80);
            b.push_back(std::uint8_t(proto));
        }
    }
    P& op(std::uint8_t c) {
        b.push_back(c);
        return *this;
    }
    P& raw(const std::string& s) {
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    P& le(std::uint64_t v, int n) {  // n bytes, little-endian; bytes past the 8th are zero
        for (int i = 0; i < n; ++i) b.push_back(i < 8 ? std::uint8_t(v >> (8 * i)) : 0);
        return *this;
    }
    P& str(const std::string& s) { return op('X').le(s.size(), 4).raw(s); }
    P& short_str(const std::string& s) { return op(0x8c).le(s.size(), 1).raw(s); }
    P& global(const std::string& m, const std::string& n) { return op('c').raw(m + "\n" + n + "\n"); }
    P& int1(int v) { return op('K').le(std::uint64_t(v), 1); }
    P& long1(std::int64_t v, int n = 8) { return op(0x8a).le(std::uint64_t(n), 1).le(std::uint64_t(v), n); }
    P& stop() { return op('.'); }
    // ('storage', torch.<type>, key, 'cpu', numel) BINPERSID
    P& storage(const std::string& type, const std::string& key, int numel) {
        op('(').str("storage").global("torch", type).str(key).str("cpu").int1(numel).op('t').op('Q');
        return *this;
    }
    // _rebuild_tensor_v2(storage, offset, (rows, cols), (cols, 1), False, OrderedDict())
    P& tensor2d(const std::string& key, int rows, int cols, int offset = 0) {
        global("torch._utils", "_rebuild_tensor_v2").op('(');
        storage("FloatStorage", key, rows * cols + offset);
        int1(offset).int1(rows).int1(cols).op(0x86).int1(cols).int1(1).op(0x86).op(0x89);
        global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
        return *this;
    }
};

}  // namespace mkt
