#include "base/bounded_json.h"

#include <gtest/gtest.h>

namespace rlmbox {
namespace {

TEST(BoundedJson, DepthSkipsBracketsInsideStrings) {
  EXPECT_EQ(JsonNestingDepth(R"(["[[[[", {"a": "}}}\"[["}])", 100), 2u);
  EXPECT_EQ(JsonNestingDepth(R"("plain")", 100), 0u);
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, [2, [3]]]})", 100), 4u);
}

TEST(BoundedJson, DepthScanStopsPastTheLimit) {
  const std::string deep(1'000'000, '[');
  EXPECT_EQ(JsonNestingDepth(deep, 10), 11u);
}

TEST(BoundedJson, RefusesDeepTextsBeforeParsing) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  auto r = ParseBoundedJson(deep, kRequestJsonLimits, "the body");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("deeper than 256"), std::string::npos);
  const std::string ok = std::string(256, '[') + std::string(256, ']');
  EXPECT_TRUE(ParseBoundedJson(ok, kRequestJsonLimits).ok());
}

TEST(BoundedJson, SizeAndSyntaxErrorsSayWhat) {
  auto big = ParseBoundedJson(R"({"a": 1})", JsonLimits{8, 4}, "the reply");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("the reply is larger than 4 bytes"), std::string::npos);
  auto bad = ParseBoundedJson("{nope", kRequestJsonLimits, "the body");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace rlmbox
