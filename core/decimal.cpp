// decimal.cpp — see decimal.hpp. A binary float is m · 2^e exactly, so its
// decimal expansion is an integer (m · 2^e, or m · 5^-e with the point moved
// -e places): every digit is computed, then rounded like printf (half to even
// on the exact rest). Text is read as N · 10^E exactly, and the quotient of
// two integers rounded to the float's precision, ties to even, like strtod.
#include "decimal.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace modelkeep {

namespace {

// A non-negative integer: 32-bit limbs, least significant first, no zero limb on top.
class Big {
public:
    explicit Big(std::uint64_t v = 0) {
        for (; v; v >>= 32) limb_.push_back(std::uint32_t(v));
    }
    bool zero() const { return limb_.empty(); }
    unsigned bits() const {
        if (limb_.empty()) return 0;
        unsigned n = unsigned(limb_.size() - 1) * 32;
        for (std::uint32_t top = limb_.back(); top; top >>= 1) ++n;
        return n;
    }
    // this = this · m + a
    void mul_add(std::uint32_t m, std::uint32_t a = 0) {
        std::uint64_t carry = a;
        for (std::uint32_t& l : limb_) {
            const std::uint64_t t = std::uint64_t(l) * m + carry;
            l = std::uint32_t(t);
            carry = t >> 32;
        }
        if (carry) limb_.push_back(std::uint32_t(carry));
    }
    // this = this · base^n, base 5 or 10
    void mul_pow(std::uint32_t base, unsigned n) {
        const unsigned step = base == 5 ? 13 : 9;  // 5^13 and 10^9 fit 32 bits
        std::uint32_t big = 1;
        for (unsigned i = 0; i < step; ++i) big *= base;
        for (; n >= step; n -= step) mul_add(big);
        std::uint32_t rest = 1;
        for (; n; --n) rest *= base;
        mul_add(rest);
    }
    void shl(unsigned n) {
        if (zero()) return;
        const unsigned words = n / 32, bits = n % 32;
        if (bits) {
            std::uint32_t carry = 0;
            for (std::uint32_t& l : limb_) {
                const std::uint32_t next = l >> (32 - bits);
                l = l << bits | carry;
                carry = next;
            }
            if (carry) limb_.push_back(carry);
        }
        limb_.insert(limb_.begin(), words, 0);
    }
    int compare(const Big& o) const {
        if (limb_.size() != o.limb_.size()) return limb_.size() < o.limb_.size() ? -1 : 1;
        for (std::size_t i = limb_.size(); i-- > 0;)
            if (limb_[i] != o.limb_[i]) return limb_[i] < o.limb_[i] ? -1 : 1;
        return 0;
    }
    // this -= o, o <= this
    void sub(const Big& o) {
        std::int64_t borrow = 0;
        for (std::size_t i = 0; i < limb_.size(); ++i) {
            std::int64_t t = std::int64_t(limb_[i]) - borrow - (i < o.limb_.size() ? std::int64_t(o.limb_[i]) : 0);
            borrow = t < 0;
            limb_[i] = std::uint32_t(t + (borrow << 32));
        }
        while (!limb_.empty() && limb_.back() == 0) limb_.pop_back();
    }
    // this /= d, d > 0; the remainder
    std::uint32_t div_small(std::uint32_t d) {
        std::uint64_t rem = 0;
        for (std::size_t i = limb_.size(); i-- > 0;) {
            const std::uint64_t t = rem << 32 | limb_[i];
            limb_[i] = std::uint32_t(t / d);
            rem = t % d;
        }
        while (!limb_.empty() && limb_.back() == 0) limb_.pop_back();
        return std::uint32_t(rem);
    }
    std::string decimal() const {
        if (zero()) return "0";
        Big n = *this;
        std::string out;
        while (!n.zero()) {
            std::uint32_t chunk = n.div_small(1000000000);
            for (int i = 0; i < 9; ++i, chunk /= 10) out.push_back(char('0' + chunk % 10));
        }
        while (out.size() > 1 && out.back() == '0') out.pop_back();
        return std::string(out.rbegin(), out.rend());
    }

private:
    std::vector<std::uint32_t> limb_;
};

// The binary formats: mantissa bits (with the hidden one), the least exponent
// of a normal value, and the greatest.
struct Format {
    int precision, min_exp, max_exp;
};
constexpr Format float_format{24, -126, 127};
constexpr Format double_format{53, -1022, 1023};

// Every digit of m · 2^e (m > 0), and the power of ten of the first one.
std::string exact_digits(std::uint64_t m, int e, int& exp10) {
    Big n(m);
    int point = 0;  // the value is n · 10^point
    if (e >= 0) {
        n.shl(unsigned(e));
    } else {
        n.mul_pow(5, unsigned(-e));
        point = e;
    }
    const std::string digits = n.decimal();
    exp10 = int(digits.size()) - 1 + point;
    return digits;
}

// digits rounded to p significant digits, half to even on the exact rest
// (a carry past the first digit raises exp10).
std::string round_digits(const std::string& digits, int p, int& exp10) {
    if (int(digits.size()) <= p) return digits;
    std::string d = digits.substr(0, std::size_t(p));
    const char next = digits[std::size_t(p)];
    bool rest = false;
    for (std::size_t i = std::size_t(p) + 1; i < digits.size() && !rest; ++i) rest = digits[i] != '0';
    if (next > '5' || (next == '5' && (rest || (d.back() - '0') % 2 == 1))) {
        int i = p - 1;
        for (; i >= 0 && d[std::size_t(i)] == '9'; --i) d[std::size_t(i)] = '0';
        if (i < 0) {
            d.insert(d.begin(), '1');
            d.pop_back();
            ++exp10;
        } else {
            ++d[std::size_t(i)];
        }
    }
    return d;
}

// printf's %.{p}g of the value whose rounded digits are d (first at 10^x).
std::string format_g(const std::string& d, int x, int p, bool negative) {
    std::string out = negative ? "-" : "";
    const auto trimmed = [](std::string s) {
        while (!s.empty() && s.back() == '0') s.pop_back();
        return s;
    };
    if (x < -4 || x >= p) {
        const std::string rest = trimmed(d.substr(1));
        out += d[0];
        if (!rest.empty()) out += "." + rest;
        const int ax = x < 0 ? -x : x;
        out += x < 0 ? "e-" : "e+";
        if (ax < 10) out += '0';
        out += std::to_string(ax);
        return out;
    }
    std::string digits = d;
    if (int(digits.size()) < x + 1) digits.append(std::size_t(x + 1) - digits.size(), '0');
    if (x >= 0) {
        out += digits.substr(0, std::size_t(x) + 1);
        const std::string frac = trimmed(digits.substr(std::size_t(x) + 1));
        if (!frac.empty()) out += "." + frac;
    } else {
        const std::string frac = trimmed(std::string(std::size_t(-x - 1), '0') + digits);
        out += "0." + frac;
    }
    return out;
}

// v = ±m · 2^e for a finite non-zero v of the format (its bits, top bit the sign).
void decompose(std::uint64_t bits, const Format& f, bool& negative, std::uint64_t& m, int& e) {
    const int frac_bits = f.precision - 1;
    const int total = f.precision == 24 ? 32 : 64;
    negative = (bits >> (total - 1)) & 1;
    const int exp_field = int((bits >> frac_bits) & ((std::uint64_t(1) << (total - 1 - frac_bits)) - 1));
    m = bits & ((std::uint64_t(1) << frac_bits) - 1);
    const int bias = f.max_exp;
    if (exp_field == 0) {
        e = f.min_exp - frac_bits;  // subnormal
    } else {
        m |= std::uint64_t(1) << frac_bits;
        e = exp_field - bias - frac_bits;
    }
}

template <class T>
bool parse_to(const std::string& text, const Format& f, T& out);

template <class T, class Bits>
std::string shortest(T v, const Format& f, int max_precision) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
    if (v == 0) return std::signbit(v) ? "-0" : "0";
    Bits bits;
    std::memcpy(&bits, &v, sizeof v);
    bool negative;
    std::uint64_t m;
    int e;
    decompose(bits, f, negative, m, e);
    int exp10 = 0;
    const std::string digits = exact_digits(m, e, exp10);
    std::string text;
    for (int p = 1; p <= max_precision; ++p) {
        int x = exp10;
        const std::string rounded = round_digits(digits, p, x);  // may raise x: before format_g reads it
        text = format_g(rounded, x, p, negative);
        T back;
        if (parse_to(text, f, back) && back == v) break;
    }
    return text;
}

// The nearest value of the format to n · 10^e10 (n > 0), ties to even; false past the largest.
template <class T>
bool nearest(const Big& n, int e10, const Format& f, T& out) {
    Big a = n, b(1);
    if (e10 >= 0)
        a.mul_pow(10, unsigned(e10));
    else
        b.mul_pow(10, unsigned(-e10));
    // q = floor(a / b / 2^k) with P + 2 or P + 3 bits; then exactly P + 2 (the
    // mantissa, a round bit, a guard bit) and a sticky bit for the rest.
    const int P = f.precision;
    int k = int(a.bits()) - int(b.bits()) - (P + 2);
    if (k >= 0)
        b.shl(unsigned(k));
    else
        a.shl(unsigned(-k));
    std::uint64_t q = 0;
    for (int i = P + 3; i >= 0; --i) {  // binary long division
        Big shifted = b;
        shifted.shl(unsigned(i));
        if (a.compare(shifted) >= 0) {
            a.sub(shifted);
            q |= std::uint64_t(1) << i;
        }
    }
    bool sticky = !a.zero();
    if (q >> (P + 2)) {
        sticky = sticky || (q & 1);
        q >>= 1;
        ++k;
    }
    // The value is in [2^exp2, 2^(exp2 + 1)); below the least normal exponent
    // the mantissa has fewer bits (subnormal).
    int exp2 = k + P + 1;
    if (exp2 < f.min_exp) {
        const int shift = f.min_exp - exp2;
        if (shift > P + 2) {
            sticky = sticky || q;
            q = 0;
        } else {
            sticky = sticky || (q & ((std::uint64_t(1) << shift) - 1));
            q >>= shift;
        }
        k += shift;
    }
    std::uint64_t mant = q >> 2;
    const bool half = q & 2, below = (q & 1) || sticky;
    if (half && (below || (mant & 1))) ++mant;
    const int scale = k + 2;  // value = mant · 2^scale
    if (mant >> P) {          // rounded up to the next power of two
        mant >>= 1;
        if (scale + 1 + P - 1 > f.max_exp) return false;
        out = T(std::ldexp(double(mant), scale + 1));
        return true;
    }
    if (mant && scale + int(64 - __builtin_clzll(mant)) - 1 > f.max_exp) return false;
    out = T(std::ldexp(double(mant), scale));
    return true;
}

template <class T>
bool parse_to(const std::string& text, const Format& f, T& out) {
    constexpr std::size_t max_text = 1024;
    if (text.empty() || text.size() > max_text) return false;
    std::size_t i = 0;
    const bool negative = text[i] == '-';
    if (text[i] == '-' || text[i] == '+') ++i;
    Big n;
    int e10 = 0, digits = 0;
    bool seen_point = false, any = false;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '.' && !seen_point) {
            seen_point = true;
            continue;
        }
        if (c < '0' || c > '9') break;
        any = true;
        if (n.zero() && c == '0') {  // a leading zero counts only as a place
            if (seen_point) --e10;
            continue;
        }
        n.mul_add(10, std::uint32_t(c - '0'));
        ++digits;
        if (seen_point) --e10;
    }
    if (!any) return false;
    if (i < text.size()) {
        if (text[i] != 'e' && text[i] != 'E') return false;
        ++i;
        const bool neg_exp = i < text.size() && text[i] == '-';
        if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
        if (i == text.size()) return false;
        int x = 0;
        for (; i < text.size(); ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            if (x < 100000) x = x * 10 + (text[i] - '0');
        }
        e10 += neg_exp ? -x : x;
    }
    if (n.zero()) {
        out = negative ? -T(0) : T(0);
        return true;
    }
    // Far beyond the format's range (n has at most 1024 digits): no division needed.
    if (e10 + digits > 400) return false;
    if (e10 + digits < -400) {
        out = negative ? -T(0) : T(0);
        return true;
    }
    T v;
    if (!nearest(n, e10, f, v)) return false;
    out = negative ? -v : v;
    return true;
}

}  // namespace

std::string format_float(float v) { return shortest<float, std::uint32_t>(v, float_format, 9); }
std::string format_double(double v) { return shortest<double, std::uint64_t>(v, double_format, 17); }

bool parse_float(const std::string& text, float& out) { return parse_to(text, float_format, out); }
bool parse_double(const std::string& text, double& out) { return parse_to(text, double_format, out); }

}  // namespace modelkeep
