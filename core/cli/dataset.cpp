#include "dataset.hpp"

#include <algorithm>
#include <cstring>

#include "decimal.hpp"
#include "json.hpp"

namespace modelkeep {

namespace {

Status bad(const std::string& what) { return error(Code::invalid_input, "--data: " + what); }

Tensor tensor_of(const Shape& shape, const std::vector<float>& data) {
    Tensor t(shape);
    std::copy(data.begin(), data.end(), t.data());
    return t;
}

bool blank(const std::string& line) {
    return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

std::string trimmed(const std::string& s) {
    std::size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
    return s.substr(a, b - a);
}

// One CSV line into its fields: commas separate, a field in double quotes may
// hold commas and "" for a quote. False (with `why`) for an unclosed quote or
// text after a closing one.
bool split_fields(const std::string& line, std::vector<std::string>& fields, std::string& why) {
    fields.clear();
    std::size_t i = 0;
    for (;;) {
        std::string field;
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i < line.size() && line[i] == '"') {
            for (++i;; ++i) {
                if (i >= line.size()) {
                    why = "a quoted field is not closed";
                    return false;
                }
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        field += '"';
                        ++i;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += line[i];
            }
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            if (i < line.size() && line[i] != ',') {
                why = "text after a closing quote";
                return false;
            }
        } else {
            const std::size_t end = std::min(line.find(',', i), line.size());
            field = trimmed(line.substr(i, end - i));
            i = end;
        }
        fields.push_back(std::move(field));
        if (i >= line.size()) return true;
        ++i;  // the comma
    }
}

std::string column_list(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < 20; ++i) out += (i ? ", " : "") + json::quote(names[i]);
    if (names.size() > 20) out += ", ... (" + std::to_string(names.size()) + " in all)";
    return out;
}

}  // namespace

Status read_dataset_json(const std::string& text, Dataset& out) {
    std::vector<json::NamedArray> members;
    const Status st = json::parse_object(text, members);
    if (!st.ok()) return bad(st.message());
    const json::NamedArray *x = nullptr, *y = nullptr;
    for (const json::NamedArray& m : members) {
        if (m.key == "x")
            x = &m;
        else if (m.key == "y")
            y = &m;
        else
            return bad("unknown key \"" + m.key + "\" (the object holds \"x\" and \"y\")");
    }
    if (!x || !y) return bad(std::string("the object has no \"") + (x ? "y" : "x") + "\"");
    if (x->shape.size() < 2)
        return bad("\"x\" must be an array of samples, each an array of features ([[1, 2], [3, 4]]); got a rank-" +
                   std::to_string(x->shape.size()) + " array");
    if (y->shape.size() > 2)
        return bad(
            "\"y\" must be one target per sample ([0, 1]) or one array per sample ([[0.5], [1.5]]); got "
            "rank " +
            std::to_string(y->shape.size()));
    if (y->shape[0] != x->shape[0])
        return bad("\"x\" has " + std::to_string(x->shape[0]) + " samples but \"y\" has " +
                   std::to_string(y->shape[0]));
    Dataset d;
    d.x = tensor_of(x->shape, x->data);
    d.y = tensor_of(y->shape, y->data);
    out = std::move(d);
    return Status::success();
}

Status read_dataset_csv(const std::string& text, const std::string& target, Dataset& out, std::uint64_t max_values) {
    std::vector<float> xs, ys;
    std::vector<std::string> header, fields;
    std::size_t columns = 0, target_at = 0, rows = 0, line_no = 0;
    std::string why;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (blank(line)) continue;
        const std::string at = "line " + std::to_string(line_no);
        if (!split_fields(line, fields, why)) return bad(at + ": " + why);
        if (columns == 0) {  // the first row: a header unless every field is a number
            columns = fields.size();
            if (columns < 2)
                return bad(at + ": one column; a CSV needs the features and a target (the last column, or --target)");
            float v;
            const bool numbers =
                std::all_of(fields.begin(), fields.end(), [&](const std::string& f) { return parse_float(f, v); });
            if (!target.empty() && numbers)
                return bad("--target " + json::quote(target) + " names a column, but the CSV has no header row");
            target_at = columns - 1;
            if (!numbers) {
                header = fields;
                if (!target.empty()) {
                    const auto it = std::find(header.begin(), header.end(), target);
                    if (it == header.end())
                        return bad("no column named " + json::quote(target) + "; the columns are " +
                                   column_list(header));
                    if (std::count(header.begin(), header.end(), target) > 1)
                        return bad("two columns are named " + json::quote(target));
                    target_at = std::size_t(it - header.begin());
                }
                continue;
            }
        }
        if (fields.size() != columns)
            return bad(at + ": " + std::to_string(fields.size()) + " fields, but the first row has " +
                       std::to_string(columns));
        if (xs.size() + ys.size() + columns > max_values)
            return bad(at + ": more than " + std::to_string(max_values) + " values");
        for (std::size_t c = 0; c < columns; ++c) {
            float v;
            if (!parse_float(fields[c], v))
                return bad(at + ", field " + std::to_string(c + 1) +
                           (header.empty() ? std::string() : " (" + json::quote(header[c]) + ")") + ": " +
                           json::quote(fields[c]) + " is not a number");
            (c == target_at ? ys : xs).push_back(v);
        }
        ++rows;
    }
    if (rows == 0) return bad("the CSV has no data rows");
    Dataset d;
    d.x = tensor_of({rows, columns - 1}, xs);
    d.y = tensor_of({rows}, ys);
    if (!header.empty()) {
        d.target = header[target_at];
        for (std::size_t c = 0; c < columns; ++c)
            if (c != target_at) d.features.push_back(header[c]);
    }
    out = std::move(d);
    return Status::success();
}

Status read_dataset(const std::string& text, const std::string& target, Dataset& out) {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '{') {
        if (!target.empty()) return bad("--target is for CSV files; a JSON file gives \"x\" and \"y\"");
        return read_dataset_json(text, out);
    }
    return read_dataset_csv(text, target, out);
}

}  // namespace modelkeep
