// training_golden.hpp — reads the fixtures of tests/golden/make_training_golden.py (its
// docstring is the format): cases of options, float32 tensors and double lists. Used by
// test_loss.cpp, test_optim.cpp and test_lr_scheduler.cpp.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace mkt {

struct TrainingCase {
    std::string name;
    std::map<std::string, std::string> opts;
    std::map<std::string, modelkeep::Tensor> tensors;
    std::vector<std::string> tensor_order;  // labels as the file lists them
    std::map<std::string, std::vector<double>> doubles;

    bool has(const std::string& key) const { return opts.count(key) != 0; }
    std::string word(const std::string& key, const std::string& fallback = "") const {
        auto it = opts.find(key);
        return it == opts.end() ? fallback : it->second;
    }
    double number(const std::string& key, double fallback) const {
        auto it = opts.find(key);
        if (it == opts.end()) return fallback;
        if (it->second == "inf") return INFINITY;
        return std::strtod(it->second.c_str(), nullptr);
    }
    bool flag(const std::string& key, bool fallback = false) const {
        auto it = opts.find(key);
        return it == opts.end() ? fallback : it->second == "true";
    }
    const modelkeep::Tensor& tensor(const std::string& label) const {
        auto it = tensors.find(label);
        if (it == tensors.end()) {
            ADD_FAILURE() << name << ": no tensor '" << label << "'";
            static const modelkeep::Tensor empty;
            return empty;
        }
        return it->second;
    }
};

inline float parse_hex32(const std::string& tok) {
    if (tok == "nan") return NAN;
    char* end = nullptr;
    const float v = std::strtof(tok.c_str(), &end);
    EXPECT_EQ(end, tok.c_str() + tok.size()) << "bad value " << tok;
    return v;
}

/// Every case of tests/golden/training/<file>.txt; a malformed file fails the test.
inline std::vector<TrainingCase> load_training_cases(const std::string& file) {
    const std::string path = std::string(MODELKEEP_GOLDEN_DIR) + "/training/" + file + ".txt";
    std::ifstream in(path);
    std::vector<TrainingCase> cases;
    if (!in) {
        ADD_FAILURE() << "cannot open " << path;
        return cases;
    }
    std::string line;
    TrainingCase c;
    bool open = false;
    auto read_values = [&](std::size_t n, auto push) {
        std::size_t got = 0;
        std::string l;
        while (got < n && std::getline(in, l)) {
            std::istringstream tokens(l);
            std::string tok;
            while (tokens >> tok) {
                push(tok);
                ++got;
            }
        }
        EXPECT_EQ(got, n) << path << ": short value list in " << c.name;
    };
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream h(line);
        std::string word;
        h >> word;
        if (word == "case") {
            c = TrainingCase{};
            h >> c.name;
            open = true;
        } else if (word == "opt") {
            std::string k, v;
            h >> k >> v;
            c.opts[k] = v;
        } else if (word == "tensor") {
            std::string label;
            std::size_t rank = 0;
            h >> label >> rank;
            modelkeep::Shape shape(rank);
            std::size_t n = 1;
            for (auto& d : shape) {
                h >> d;
                n *= d;
            }
            std::vector<float> vals;
            read_values(n, [&](const std::string& tok) { vals.push_back(parse_hex32(tok)); });
            vals.resize(n);
            c.tensors[label] = modelkeep::from_data(shape, vals.data());
            c.tensor_order.push_back(label);
        } else if (word == "double") {
            std::string label;
            std::size_t n = 0;
            h >> label >> n;
            std::vector<double>& vals = c.doubles[label];
            read_values(n, [&](const std::string& tok) { vals.push_back(std::strtod(tok.c_str(), nullptr)); });
        } else if (word == "end") {
            EXPECT_TRUE(open) << path << ": end without case";
            cases.push_back(c);
            open = false;
        } else {
            ADD_FAILURE() << path << ": unexpected line '" << line << "'";
        }
    }
    EXPECT_FALSE(open) << path << ": last case has no end";
    return cases;
}

/// Distance in units in the last place between two floats (0 when bit-equal or both NaN).
inline std::int64_t ulp_distance(float a, float b) {
    if (std::isnan(a) && std::isnan(b)) return 0;
    if (std::isnan(a) || std::isnan(b)) return INT64_MAX;
    std::int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    // Map to a monotonic integer line (negative floats reversed).
    const std::int64_t la = ia < 0 ? std::int64_t(INT32_MIN) - ia : ia;
    const std::int64_t lb = ib < 0 ? std::int64_t(INT32_MIN) - ib : ib;
    return la > lb ? la - lb : lb - la;
}

/// Each value within `ulps` ULP of torch's, or within `rel` of the tensor's largest
/// magnitude (for values that cancel to near zero); prints the worst offender.
inline ::testing::AssertionResult close_to(const std::string& what, const modelkeep::Tensor& ours,
                                           const modelkeep::Tensor& torch, std::int64_t ulps, double rel = 0.0) {
    if (modelkeep::shape_of(ours) != modelkeep::shape_of(torch))
        return ::testing::AssertionFailure()
               << what << ": shape " << modelkeep::shape_to_string(modelkeep::shape_of(ours)) << " but torch's is "
               << modelkeep::shape_to_string(modelkeep::shape_of(torch));
    double scale = 0.0;
    for (float v : torch)
        if (std::isfinite(v)) scale = std::max(scale, double(std::fabs(v)));
    for (std::size_t i = 0; i < torch.size(); ++i) {
        const float a = ours.data()[i], b = torch.data()[i];
        const std::int64_t d = ulp_distance(a, b);
        if (d <= ulps) continue;
        if (rel > 0.0 && std::isfinite(a) && std::isfinite(b) && std::fabs(double(a) - double(b)) <= rel * scale)
            continue;
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s[%zu]: ours %a (%.9g), torch %a (%.9g): %lld ULP", what.c_str(), i, a, a, b,
                      b, (long long)d);
        return ::testing::AssertionFailure() << buf;
    }
    return ::testing::AssertionSuccess();
}

}  // namespace mkt
