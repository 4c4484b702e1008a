// write_cases.hpp — files the writer makes from models and state dicts covering
// every dtype, compact weights (f16 with subnormals too), metadata and
// alignments: the cases the sink tests check byte for byte.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "fixtures.hpp"

namespace mkt {

struct WriteCase {
    std::string label;
    modelkeep::Sequential model;
    bool state_dict = false;  // written as model.state_dict()
    modelkeep::WriteOptions options;
};

/// A model whose Linear weights hold f16 subnormals and values of every size.
inline modelkeep::Sequential varied_model() {
    modelkeep::Sequential m = make_model("a=Linear(40,30),r=ReLU,b=Linear(30,7,bias=false),n=BatchNorm1d(7)", 3);
    modelkeep::StateDict sd = m.state_dict();
    float* w = sd[0].second.data();
    for (std::size_t i = 0; i < sd[0].second.size(); i += 7)
        w[i] = std::ldexp(float(i % 5) - 2.0f, -20);  // f16 subnormals
    w[3] = 3000.0f;
    modelkeep::LoadReport report;
    if (!m.load_state_dict(sd, true, report).ok()) ADD_FAILURE() << "varied_model";
    return m;
}

inline std::vector<WriteCase> write_cases() {
    using modelkeep::DType;
    const DType dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::int8};
    std::vector<WriteCase> out;
    for (DType d : dtypes) {
        for (unsigned align : {2u, 4u, 12u}) {
            WriteCase c{std::string("tiny ") + modelkeep::dtype_name(d) + " align " + std::to_string(align),
                        tiny_model()};
            c.options.dtype = d;
            c.options.align_log2 = align;
            c.options.metadata = {{"note", "v1"}, {"author", "ü"}};
            out.push_back(std::move(c));
        }
        WriteCase sd{std::string("state dict ") + modelkeep::dtype_name(d), varied_model(), true};
        sd.options.dtype = d;
        out.push_back(std::move(sd));
        for (DType held : {DType::f16, DType::bf16, DType::int8}) {
            WriteCase c{std::string("held ") + modelkeep::dtype_name(held) + " stored " + modelkeep::dtype_name(d),
                        varied_model()};
            c.model.set_weight_dtype(held);
            c.options.dtype = d;
            out.push_back(std::move(c));
        }
    }
    out.push_back({"empty", make_model("r=ReLU")});
    return out;
}

/// The case written through write_model / write_state_dict.
inline Bytes write_case(const WriteCase& c) {
    Bytes out;
    const auto st = c.state_dict ? modelkeep::write_state_dict(c.model.state_dict(), c.options, out)
                                 : modelkeep::write_model(c.model, c.options, out);
    if (!st.ok()) ADD_FAILURE() << c.label << ": " << st.to_string();
    return out;
}

}  // namespace mkt
