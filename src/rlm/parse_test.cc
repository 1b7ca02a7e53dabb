// Parser cases are data: tests/data/parser_cases.json.
#include "rlm/parse.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

namespace rlmbox::rlm {
namespace {

TEST(Parse, DataFileCases) {
  std::ifstream in(std::string(RLMBOX_SOURCE_DIR) + "/tests/data/parser_cases.json");
  ASSERT_TRUE(in) << "missing parser_cases.json";
  auto cases = nlohmann::json::parse(in);
  ASSERT_GT(cases.size(), 10u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::string reply = c["reply"];
    EXPECT_EQ(ParseCodeBlocks(reply), c["blocks"].get<std::vector<std::string>>());
    auto final = FindFinal(reply);
    if (c["final"].is_null()) {
      EXPECT_FALSE(final.has_value());
    } else {
      ASSERT_TRUE(final.has_value());
      EXPECT_EQ(final->kind == FinalMarker::Kind::kVariable ? "variable" : "answer",
                c["final"]["kind"].get<std::string>());
      EXPECT_EQ(final->value, c["final"]["value"].get<std::string>());
    }
  }
}

}  // namespace
}  // namespace rlmbox::rlm
