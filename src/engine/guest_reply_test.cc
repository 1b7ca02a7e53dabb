#include "engine/guest_reply.h"

#include <gtest/gtest.h>

namespace rlmbox::engine {
namespace {

TEST(GuestReply, EveryFieldIsCutToTheCap) {
  const std::string big(5000, 'x');
  const std::string reply = R"({"success": false, "stdout": ")" + big + R"(", "stderr": ")" + big +
                            R"(", "error": ")" + big + R"(", "exception_type": "ValueError",)" +
                            R"( "answer": {"ready": true, "content": ")" + big + R"("}})";
  auto r = DecodeExecuteReply(reply, 100, false);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->stdout_text.size(), 100u);
  EXPECT_EQ(r->stderr_text.size(), 100u);
  EXPECT_EQ(r->error->size(), 100u);
  EXPECT_EQ(r->final_answer->size(), 100u);
}

TEST(GuestReply, LocalsStopAtTheCapWithoutChangingTheOutcome) {
  std::string locals;
  for (int i = 0; i < 50; ++i) {
    locals += (i ? ", " : "") + std::string("\"v") + std::to_string(i) + "\": \"" +
              std::string(40, 'a') + "\"";
  }
  auto r = DecodeExecuteReply(R"({"success": true, "locals": {)" + locals + "}}", 500, false);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->truncated);
  EXPECT_TRUE(r->locals_truncated);
  EXPECT_LE(r->locals.dump().size(), 500u + 64);
  EXPECT_GT(r->locals.size(), 0u);
}

TEST(GuestReply, MalformedRepliesAreRefused) {
  for (const char* bad : {R"({"stdout": "x"})", R"({"success": 1})", R"({"success": true, "stdout": [1]})",
                          R"({"success": true, "locals": {"1x": 1}})", R"({"success": true, "locals": 3})",
                          R"({"success": true, "answer": {"ready": true, "content": 5}})", "[]", "nope"}) {
    EXPECT_FALSE(DecodeExecuteReply(bad, 1000, false).ok()) << bad;
  }
  const std::string deep = R"({"success": true, "locals": {"x": )" + std::string(100'000, '[');
  auto r = DecodeExecuteReply(deep, 1 << 20, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("deeper than"), std::string::npos);
}

TEST(GuestReply, ARepliesLargerThanTheCapAllowsIsRefusedUnread) {
  const std::string huge(MaxReplyBytes(1000) + 1, ' ');
  EXPECT_FALSE(DecodeExecuteReply(huge, 1000, false).ok());
}

TEST(GuestReply, NodeValuesOverTheCapBecomeNull) {
  auto r = DecodeExecuteReply(R"({"success": true, "value": ")" + std::string(2000, 'v') +
                                  R"(", "value_type": "str"})",
                              1000, true);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->truncated);
  EXPECT_TRUE(r->value->is_null());
}

}  // namespace
}  // namespace rlmbox::engine
