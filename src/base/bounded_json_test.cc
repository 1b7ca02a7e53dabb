#include "base/bounded_json.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace rlmbox {
namespace {

using nlohmann::json;

const JsonLimits kWide{100'000, 0};

std::string Repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// Our decoder must accept exactly what nlohmann accepts, with equal values of
// the same types (unsigned for non-negative integers, as nlohmann decides).
void ExpectSameAsNlohmann(const std::string& text) {
  SCOPED_TRACE(text.size() > 200 ? text.substr(0, 200) + "..." : text);
  json theirs = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto ours = ParseBoundedJson(text, kWide);
  ASSERT_EQ(ours.ok(), !theirs.is_discarded()) << (ours.ok() ? "" : ours.status().message());
  EXPECT_EQ(ValidateBoundedJson(text, kWide).ok(), ours.ok());
  if (!ours.ok()) return;
  EXPECT_EQ(*ours, theirs);
  EXPECT_EQ(ours->dump(), theirs.dump());  // types too: 1 vs 1.0, -0 vs 0
}

TEST(BoundedJson, AcceptsExactlyWhatNlohmannAccepts) {
  const std::vector<std::string> cases = {
      "", " ", "null", "true", "false", "nul", "truee", "0", "-0", "-0.0", "01", "-01", "1.",
      ".5", "+1", "1e", "1e+", "1E-2", "1e400", "-1e400", "1e-400", "123456789012345678901234",
      "18446744073709551615", "18446744073709551616", "-9223372036854775808",
      "-9223372036854775809", "3.141592653589793", "2.2250738585072014e-308", "NaN", "Infinity",
      "[]", "[ ]", "[1,]", "[,1]", "[1 2]", "[1,2]", "{}", "{ }", R"({"a":1,})", R"({"a" 1})",
      R"({a:1})", R"({"a":1,"a":2})", R"({"b":1,"a":[true,{"c":null}]})", "[1]x", "[1] \n\t\r",
      "\xEF\xBB\xBF[1]", "\xEF\xBB[1]", R"("\u0041\u00e9\u4e2d\ud83d\ude00")", R"("\ud83d")",
      R"("\ude00")", R"("\ud83d\u0041")", R"("\ud83dx")", R"("\u12")", R"("\x")", R"("\/\b\f")",
      "\"tab\there\"", "\"a\x01\"", "\"\x7F\"", "\"caf\xC3\xA9\"", "\"\xC3\"", "\"\xC0\xAF\"",
      "\"\xE0\x80\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xF0\x9F\x98\x80\"",
      "\"\xFF\"", "\"unterminated", "\"12345678\\\"9abcdefgh\"", "[\"a\"]]", "{\"a\":}",
      "[-]", "[1e5,2E+3,-4.5e-1]", "\"\\u0000\"",
  };
  for (const auto& c : cases) ExpectSameAsNlohmann(c);
}

TEST(BoundedJson, RefusesANulByteOutsideStrings) {
  // nlohmann ends the text at a NUL byte outside a string and accepts what came
  // before; the NUL and whatever follows it are not JSON, so we refuse them.
  const std::string smuggled("{\"a\": 1}\0{\"b\": 2}", 17);
  EXPECT_FALSE(json::parse(smuggled, nullptr, false).is_discarded());
  EXPECT_FALSE(ParseBoundedJson(smuggled, kWide).ok());
  EXPECT_FALSE(ParseBoundedJson(std::string("[1,\0 2]", 7), kWide).ok());
  // Inside a string it is a control character, refused by both.
  ExpectSameAsNlohmann(std::string("\"a\0b\"", 5));
}

TEST(BoundedJson, MatchesNlohmannOnMutatedDocuments) {
  const std::string seed =
      R"({"context": "lorem \"ipsum\" \u00e9 \ud83d\ude00 caf)" "\xC3\xA9" R"(", "n": [0, -1, 2.5e3,
      18446744073709551616, true, false, null], "o": {"k": {"deep": [[[]]]}}, "s": "\\\/\n"})";
  ExpectSameAsNlohmann(seed);
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\",:\\u0123456789eE+-. \ntrfalsn\xC3\xA9\xED\xA0\xF0";
  for (int i = 0; i < 20'000; ++i) {
    std::string s = seed;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      const size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, 1 + rng() % 4); break;
        default: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (s.empty()) s = "x";
    }
    ExpectSameAsNlohmann(s);
    if (HasFailure()) return;
  }
}

TEST(BoundedJson, BigStringsCrossWhole) {
  std::string text(3'000'003, 'a');
  for (size_t i = 0; i < text.size(); i += 97) text[i] = ' ';
  text.replace(1'000'000, 2, "\xC3\xA9");
  text.replace(2'000'000, 2, "\\n");
  ExpectSameAsNlohmann("{\"context\": \"" + text + "\"}");
}

TEST(BoundedJson, DepthCountsOnlyArraysAndObjects) {
  EXPECT_TRUE(ParseBoundedJson(R"(["[[[[", {"a": "}}}\"[["}])", JsonLimits{2, 0}).ok());
  EXPECT_FALSE(ParseBoundedJson(R"({"a": [1, [2, [3]]]})", JsonLimits{3, 0}).ok());
  EXPECT_TRUE(ParseBoundedJson(R"({"a": [1, [2, [3]]]})", JsonLimits{4, 0}).ok());
  EXPECT_TRUE(ParseBoundedJson(R"("plain")", JsonLimits{0, 0}).ok());
}

TEST(BoundedJson, RefusesDeepTextsWithoutGoingDeeper) {
  // Truncated, balanced, or a million levels: refused at the first level past
  // the cap (no stack overflow; the test would crash otherwise).
  for (const std::string& deep :
       {std::string(1'000'000, '['), std::string(200'000, '[') + std::string(200'000, ']'),
        Repeat(R"({"a":)", 300'000)}) {
    auto r = ParseBoundedJson(deep, kRequestJsonLimits, "the body");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("the body nests arrays/objects deeper than 256"),
              std::string::npos)
        << r.status().message();
    EXPECT_FALSE(ValidateBoundedJson(deep, kRequestJsonLimits).ok());
  }
  const std::string ok = std::string(256, '[') + std::string(256, ']');
  EXPECT_TRUE(ParseBoundedJson(ok, kRequestJsonLimits).ok());
  EXPECT_FALSE(ParseBoundedJson("[" + ok + "]", kRequestJsonLimits).ok());
}

TEST(BoundedJson, SizeAndSyntaxErrorsSayWhat) {
  auto big = ParseBoundedJson(R"({"a": 1})", JsonLimits{8, 4}, "the reply");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("the reply is larger than 4 bytes"), std::string::npos);
  auto bad = ParseBoundedJson("{nope", kRequestJsonLimits, "the body");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("the body is not valid JSON"), std::string::npos);
  EXPECT_FALSE(ValidateBoundedJson(R"({"a": 1})", JsonLimits{8, 4}).ok());
}

}  // namespace
}  // namespace rlmbox
