#include "service/document.h"

#include <gtest/gtest.h>

#include "service/profiles.h"

namespace rlmbox::service {
namespace {

using nlohmann::json;

TEST(Document, YamlScalarsFollowTheCoreSchema) {
  auto j = ParseDocument(
      "a: 12\nb: -3\nc: 1.5\nd: true\ne: false\nf: null\ng: ~\nh: text\n"
      "i: '12'\nj: \"true\"\nk: [1, two, {x: 3}]\nl:\n", "t");
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["a"], json(12));
  EXPECT_TRUE((*j)["a"].is_number_integer());
  EXPECT_EQ((*j)["b"], json(-3));
  EXPECT_EQ((*j)["c"], json(1.5));
  EXPECT_EQ((*j)["d"], json(true));
  EXPECT_EQ((*j)["e"], json(false));
  EXPECT_TRUE((*j)["f"].is_null());
  EXPECT_TRUE((*j)["g"].is_null());
  EXPECT_EQ((*j)["h"], json("text"));
  EXPECT_EQ((*j)["i"], json("12"));    // quoted: a string
  EXPECT_EQ((*j)["j"], json("true"));  // quoted: a string
  EXPECT_EQ((*j)["k"], json::parse(R"([1, "two", {"x": 3}])"));
  EXPECT_TRUE((*j)["l"].is_null());
}

TEST(Document, JsonIsReadAsJson) {
  auto j = ParseDocument(R"({"n": 1, "s": "x", "l": [true, null]})", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(R"({"n": 1, "s": "x", "l": [true, null]})"));
}

TEST(Document, BlockScalarsKeepTheirText) {
  auto j = ParseDocument("code: |\n  x = 1\n  output = x + 1\n", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["code"], json("x = 1\noutput = x + 1\n"));
}

TEST(Document, MalformedInputIsAClearError) {
  auto j = ParseDocument("nodes: [unclosed", "the workflow");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(j.status().message().find("the workflow"), std::string::npos);
  EXPECT_EQ(ReadDocument("/nonexistent/wf.yaml").status().code(), StatusCode::kNotFound);
}

TEST(Profiles, ConfigChangesAddsAndChecks) {
  auto profiles = BuiltinProfiles(std::chrono::seconds(30));
  engine::LimitCeilings ceilings;
  auto config = ParseDocument(
      "profiles:\n"
      "  code: {memory_mb: 64, timeout: 2.5, allowed_imports: [json, math]}\n"
      "  reports: {timeout: 20}\n"
      "ceilings: {timeout: 100}\n", "p.yaml");
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(ApplyProfileConfig(*config, "p.yaml", profiles, ceilings).ok());
  const Profile* code = FindProfile(profiles, "code");
  ASSERT_NE(code, nullptr);
  EXPECT_EQ(code->limits.memory_bytes, 64ull << 20);
  EXPECT_EQ(code->limits.timeout, std::chrono::milliseconds(2500));
  ASSERT_TRUE(code->allowed_imports.has_value());
  EXPECT_EQ(*code->allowed_imports, (std::vector<std::string>{"json", "math"}));
  const Profile* reports = FindProfile(profiles, "reports");
  ASSERT_NE(reports, nullptr);  // a new name starts from "default"
  EXPECT_EQ(reports->limits.memory_bytes, FindProfile(profiles, "default")->limits.memory_bytes);
  EXPECT_EQ(ceilings.timeout, std::chrono::seconds(100));

  // A request may not go above the new ceiling.
  auto over = ResolveLimits(json{{"profile", "reports"}, {"timeout", 200}}, profiles, ceilings);
  EXPECT_FALSE(over.ok());
}

TEST(Profiles, BadConfigsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"limits: {}", "unknown key 'limits'"},
      {"profiles: {code: {speed: 1}}", "unknown setting 'speed'"},
      {"profiles: {code: {memory_mb: -1}}", "greater than 0"},
      {"profiles: {code: {allowed_imports: json}}", "list of module names"},
      {"profiles: {code: {memory_mb: 99999}}", "above the ceilings"},
      {"[1, 2]", "expected an object"},
  };
  for (const auto& [text, message] : cases) {
    auto profiles = BuiltinProfiles(std::chrono::seconds(30));
    engine::LimitCeilings ceilings;
    auto config = ParseDocument(text, "p.yaml");
    ASSERT_TRUE(config.ok()) << text;
    Status s = ApplyProfileConfig(*config, "p.yaml", profiles, ceilings);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.message().find(message), std::string::npos) << text << ": " << s.message();
  }
}

}  // namespace
}  // namespace rlmbox::service
