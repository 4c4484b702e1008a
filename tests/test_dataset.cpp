// The CLI's training data (core/cli/dataset.hpp): JSON {"x", "y"} and CSV, every
// refusal a clear invalid_input naming where, and the value cap checked as it reads.
#include <gtest/gtest.h>

#include <string>

#include "cli/dataset.hpp"

using namespace modelkeep;

namespace {

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.size()); }

// The refusal of `text`: invalid_input, its message holding `says`.
void refused(const std::string& text, const std::string& says, const std::string& target = "") {
    Dataset d;
    const Status st = read_dataset(text, target, d);
    EXPECT_EQ(st.code(), Code::invalid_input) << text;
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
}

}  // namespace

TEST(Dataset, JsonClassIndicesAndTargets) {
    Dataset d;
    ASSERT_TRUE(read_dataset(" {\"x\": [[1, 2], [3, 4.5], [5, -6]], \"y\": [0, 1, 1]}\n", "", d).ok());
    EXPECT_EQ(d.x.shape()[0], 3u);
    EXPECT_EQ(d.x.shape()[1], 2u);
    EXPECT_EQ(values(d.x), (std::vector<float>{1, 2, 3, 4.5f, 5, -6}));
    ASSERT_EQ(d.y.dimension(), 1u);
    EXPECT_EQ(values(d.y), (std::vector<float>{0, 1, 1}));

    ASSERT_TRUE(read_dataset("{\"y\": [[0.5, 1], [2, 3]], \"x\": [[1], [2]]}", "", d).ok());  // any order
    EXPECT_EQ(d.y.shape()[1], 2u);
    EXPECT_EQ(values(d.y), (std::vector<float>{0.5f, 1, 2, 3}));
}

TEST(Dataset, JsonRefusals) {
    refused("{\"x\": [[1, 2]]}", "no \"y\"");
    refused("{\"x\": [[1, 2]], \"y\": [0], \"z\": [1]}", "unknown key \"z\"");
    refused("{\"x\": [[1, 2]], \"x\": [[1, 2]], \"y\": [0]}", "appears twice");
    refused("{\"x\": [1, 2], \"y\": [0, 1]}", "array of samples");
    refused("{\"x\": [[1, 2], [3, 4]], \"y\": [0]}", "2 samples but \"y\" has 1");
    refused("{\"x\": [[1, 2], [3]], \"y\": [0, 1]}", "ragged");
    refused("{\"x\": [[1, NaN]], \"y\": [0]}", "not a JSON number");
    refused("{\"x\": [[1, 2]], \"y\": [0]} trailing", "after the closing '}'");
    refused("{\"x\": [[1, 2]], \"y\": [0]}", "--target is for CSV", "label");
    refused("{}", "empty object");
}

TEST(Dataset, CsvWithHeaderTargetLastOrNamed) {
    const std::string csv = "a,\"b, with a comma\",label\r\n1,2,0\r\n\r\n3, 4.5 ,1\r\n";
    Dataset d;
    ASSERT_TRUE(read_dataset(csv, "", d).ok());
    EXPECT_EQ(values(d.x), (std::vector<float>{1, 2, 3, 4.5f}));
    EXPECT_EQ(values(d.y), (std::vector<float>{0, 1}));
    EXPECT_EQ(d.target, "label");
    EXPECT_EQ(d.features, (std::vector<std::string>{"a", "b, with a comma"}));

    ASSERT_TRUE(read_dataset(csv, "a", d).ok());  // the target in the middle
    EXPECT_EQ(values(d.x), (std::vector<float>{2, 0, 4.5f, 1}));
    EXPECT_EQ(values(d.y), (std::vector<float>{1, 3}));
    EXPECT_EQ(d.features, (std::vector<std::string>{"b, with a comma", "label"}));
}

TEST(Dataset, CsvWithoutHeader) {
    Dataset d;
    ASSERT_TRUE(read_dataset("1,2,3\n4,5,6", "", d).ok());  // no final newline
    EXPECT_EQ(d.x.shape()[0], 2u);
    EXPECT_EQ(values(d.y), (std::vector<float>{3, 6}));
    EXPECT_TRUE(d.features.empty());
}

TEST(Dataset, CsvRefusals) {
    refused("a,b\n1,2\n3\n", "line 3: 1 fields, but the first row has 2");
    refused("a,b\n1,x\n", "line 2, field 2 (\"b\"): \"x\" is not a number");
    refused("1,2\n", "names a column, but the CSV has no header", "b");
    refused("a,b\n1,2\n", "no column named \"c\"; the columns are \"a\", \"b\"", "c");
    refused("a,a,b\n1,2,3\n", "two columns are named \"a\"", "a");
    refused("a,b\n", "no data rows");
    refused("", "no data rows");
    refused("1\n2\n", "one column");
    refused("a,\"b\n1,2\n", "line 1: a quoted field is not closed");
    refused("a,b,c\n1,2,\n", "line 2, field 3 (\"c\"): \"\" is not a number");
}

TEST(Dataset, TheValueCapStopsAFileAsItReads) {
    // The cap is checked per row before the row is kept: 3 rows of 4 values fit 12, not 11.
    const std::string csv = "1,2,3,4\n5,6,7,8\n9,10,11,12\n";
    Dataset d;
    ASSERT_TRUE(read_dataset_csv(csv, "", d, 12).ok());
    EXPECT_EQ(d.x.shape()[0], 3u);
    const Status st = read_dataset_csv(csv, "", d, 11);
    EXPECT_EQ(st.code(), Code::invalid_input);
    EXPECT_NE(st.message().find("line 3: more than 11 values"), std::string::npos) << st.message();
    EXPECT_EQ(d.x.shape()[0], 3u);  // a refusal leaves `out` as it was
}
