// REPL semantics of the real guest (design §3).
#include <gtest/gtest.h>

#include "test_engine.h"

namespace rlmbox::engine {
namespace {

using testing::NewSession;
using testing::RunCode;
using testing::RunIn;

TEST(Repl, StatePersistsAcrossCellsOfASession) {
  auto s = NewSession();
  EXPECT_EQ(RunIn(*s, "x = 41\ndef f(a):\n    return a + 1\n").outcome, Outcome::kOk);
  auto r = RunIn(*s, "print(f(x))");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.stdout_text, "42\n");
}

TEST(Repl, EchoesOnlyALastExpression) {
  EXPECT_EQ(RunCode("x = 3\nx").stdout_text, "3\n");
  EXPECT_EQ(RunCode("x = 3").stdout_text, "");
  EXPECT_EQ(RunCode("print('hi')").stdout_text, "hi\n");  // None result: no double echo
  EXPECT_EQ(RunCode("'a' + 'b'").stdout_text, "'ab'\n");  // repr, like a notebook
  EXPECT_EQ(RunCode("1 + 1\nx = 2").stdout_text, "");     // not last: not echoed
  EXPECT_EQ(RunCode("for i in range(2):\n    i").stdout_text, "");
  // A string that merely looks like an expression statement is not echoed twice.
  EXPECT_EQ(RunCode("y = 'x'\nprint(y)\ny").stdout_text, "x\n'x'\n");
}

// The cell compiler (guest/shim.c compile_cell) against what compile() does.
TEST(Repl, CellCompilerMatchesCompile) {
  EXPECT_EQ(RunCode("42").stdout_text, "42\n");                 // a constant is still echoed
  EXPECT_EQ(RunCode("x = 1  # done\n\n# trailing\n").stdout_text, "");
  EXPECT_EQ(RunCode("def f():\n    return 5\nf()").stdout_text, "5\n");
  EXPECT_EQ(RunCode("None").stdout_text, "");
  auto nul = RunCode(std::string("x = 1\0", 6));
  ASSERT_TRUE(nul.error.has_value());
  EXPECT_EQ(*nul.error, "SyntaxError: source code string cannot contain null bytes");
  auto bad = RunCode("x = 1\nreturn 2\nx");  // a compile error before the echoed line
  ASSERT_TRUE(bad.error.has_value());
  EXPECT_EQ(*bad.error, "SyntaxError: 'return' outside function");
  EXPECT_NE(bad.stderr_text.find("line 2"), std::string::npos) << bad.stderr_text;
  auto syn = RunCode("a = (1,\nb = 2");
  ASSERT_TRUE(syn.error.has_value());
  EXPECT_EQ(syn.error->rfind("SyntaxError: ", 0), 0u) << *syn.error;
  EXPECT_EQ(RunCode("from __future__ import annotations\ndef g(a: Undefined): pass\n"
                    "g.__annotations__")
                .stdout_text,
            "{'a': 'Undefined'}\n");
  EXPECT_EQ(RunCode("import sys\nprint(sys.stdout.writable(), sys.stdout.encoding)").stdout_text,
            "True utf-8\n");
}

TEST(Repl, StatementsRunExactlyOnce) {
  auto r = RunCode("n = []\nn.append(1)\nn.append(2)\nlen(n)");
  EXPECT_EQ(r.stdout_text, "2\n");
}

TEST(Repl, ExceptionGivesTracebackAndKeepsEarlierState) {
  auto s = NewSession();
  auto r = RunIn(*s, "a = 1\nb = 2\n1 / 0\nc = 3");
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_FALSE(r.success);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(*r.error, "ZeroDivisionError: division by zero");
  EXPECT_NE(r.stderr_text.find("Traceback (most recent call last)"), std::string::npos);
  EXPECT_NE(r.stderr_text.find("line 3"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("1 / 0"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("rlmbox_runner"), std::string::npos) << "runner frames leak";
  EXPECT_EQ(RunIn(*s, "print(a, b, 'c' in globals())").stdout_text, "1 2 False\n");
}

TEST(Repl, SyntaxErrorIsAnExceptionOutcome) {
  auto r = RunCode("def broken(:\n  pass");
  EXPECT_EQ(r.outcome, Outcome::kException);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_NE(r.error->find("SyntaxError"), std::string::npos) << *r.error;
}

TEST(Repl, StdlibImportsWork) {
  auto r = RunCode(
      "import json, re, math, collections, itertools, decimal, datetime, zlib\n"
      "print(json.dumps({'a': [1, 2]}))\n"
      "print(re.findall(r'\\d+', 'a1b22'))\n"
      "print(math.isqrt(99))\n"
      "print(collections.Counter('aab').most_common(1))\n"
      "print(list(itertools.islice(itertools.count(), 3)))\n"
      "print(decimal.Decimal('1.1') + decimal.Decimal('2.2'))\n"
      "print(datetime.date(2024, 1, 31) + datetime.timedelta(days=1))\n"
      "print(len(zlib.compress(b'x' * 1000)) < 100)\n");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.stderr_text;
  EXPECT_EQ(r.stdout_text,
            "{\"a\": [1, 2]}\n['1', '22']\n9\n[('a', 2)]\n[0, 1, 2]\n3.3\n2024-02-01\nTrue\n");
}

TEST(Repl, UnicodeOutputRoundTrips) {
  auto r = RunCode("s = 'héllo wörld — 你好 🎉'\nprint(s)\nlen(s)");
  EXPECT_EQ(r.stdout_text, "héllo wörld — 你好 🎉\n18\n");
  // A lone surrogate cannot be UTF-8; it must not break the reply.
  auto bad = RunCode("print('\\ud800x')");
  EXPECT_EQ(bad.outcome, Outcome::kOk);
  EXPECT_NE(bad.stdout_text.find('x'), std::string::npos);
}

TEST(Repl, LargeStringContextLoadsOnce) {
  auto s = NewSession();
  std::string big(20u << 20, 'a');
  big[12345] = 'Z';
  ASSERT_TRUE(s->SetContext({ContextValue::Kind::kText, big}, testing::FastLimits()).ok());
  auto r = RunIn(*s, "print(type(context).__name__, len(context), context.index('Z'))");
  EXPECT_EQ(r.stdout_text, "str 20971520 12345\n") << r.stderr_text;
  // Still there in a later cell, without re-sending it.
  EXPECT_EQ(RunIn(*s, "len(context)").stdout_text, "20971520\n");
}

TEST(Repl, JsonContextBecomesDictOrList) {
  auto s = NewSession();
  ASSERT_TRUE(
      s->SetContext({ContextValue::Kind::kJson, R"({"docs": ["a", "b"], "n": 2})"}, testing::FastLimits())
          .ok());
  EXPECT_EQ(RunIn(*s, "type(context).__name__, context['docs'][1], context['n']").stdout_text,
            "('dict', 'b', 2)\n");
  ASSERT_TRUE(s->SetContext({ContextValue::Kind::kJson, "[1, 2, 3]"}, testing::FastLimits()).ok());
  EXPECT_EQ(RunIn(*s, "sum(context)").stdout_text, "6\n");
  EXPECT_EQ(s->SetContext({ContextValue::Kind::kJson, "{nope"}, testing::FastLimits()).code(),
            StatusCode::kInvalidArgument);
}

TEST(Repl, FinalVarAndAnswerMarkTheFinalAnswer) {
  auto s = NewSession();
  auto r = RunIn(*s, "result = 6 * 7\nFINAL_VAR('result')");
  EXPECT_EQ(r.stdout_text, "'42'\n");
  ASSERT_TRUE(r.final_answer.has_value());
  EXPECT_EQ(*r.final_answer, "42");

  auto s2 = NewSession();
  auto none = RunIn(*s2, "answer['content'] = 'draft'");
  EXPECT_FALSE(none.final_answer.has_value());
  auto ready = RunIn(*s2, "answer['content'] = 'done'\nanswer['ready'] = True");
  ASSERT_TRUE(ready.final_answer.has_value());
  EXPECT_EQ(*ready.final_answer, "done");

  auto missing = RunIn(*s2, "FINAL_VAR('nope')");
  EXPECT_NE(missing.stdout_text.find("not found"), std::string::npos);
}

TEST(Repl, ShowVarsListsUserVariables) {
  auto s = NewSession();
  RunIn(*s, "alpha = 1\nbeta = 'x'\n_hidden = 3");
  auto r = RunIn(*s, "SHOW_VARS()");
  EXPECT_NE(r.stdout_text.find("alpha: int"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("beta: str"), std::string::npos);
  EXPECT_EQ(r.stdout_text.find("_hidden"), std::string::npos);
  EXPECT_EQ(r.stdout_text.find("llm_query"), std::string::npos);
}

TEST(Repl, ReservedNamesAreRestoredBeforeEachCell) {
  auto s = NewSession();
  ASSERT_TRUE(s->SetContext({ContextValue::Kind::kText, "the context"}, testing::FastLimits()).ok());
  RunIn(*s, "llm_query = 1\nFINAL_VAR = None\ncontext = 'clobbered'\nanswer = 5");
  auto r = RunIn(*s, "callable(llm_query), callable(FINAL_VAR), context, answer");
  EXPECT_EQ(r.stdout_text, "(True, True, 'the context', {'content': '', 'ready': False})\n");
}

TEST(Repl, LocalsSummaryIsJsonSafe) {
  auto r = RunCode(
      "n = 1\ns = 'text'\nl = [1, 'a', None]\nd = {'k': 1.5}\nobj = object()\n"
      "big = 'x' * 100000\n_private = 2\nimport json\n");
  ASSERT_TRUE(r.locals.is_object());
  EXPECT_EQ(r.locals["n"], 1);
  EXPECT_EQ(r.locals["s"], "text");
  EXPECT_EQ(r.locals["l"], nlohmann::json::parse(R"([1, "a", null])"));
  EXPECT_EQ(r.locals["d"]["k"], 1.5);
  EXPECT_TRUE(r.locals["obj"].is_string());
  EXPECT_NE(r.locals["obj"].get<std::string>().find("object object"), std::string::npos);
  EXPECT_LE(r.locals["big"].get<std::string>().size(), 200u);
  EXPECT_FALSE(r.locals.contains("_private"));
  EXPECT_FALSE(r.locals.contains("json"));
  EXPECT_FALSE(r.locals.contains("llm_query"));
}

TEST(Repl, GetVarReadsAVariable) {
  auto s = NewSession();
  RunIn(*s, "summary = 'all good'\ncount = 3");
  auto v = s->GetVar("summary", testing::FastLimits());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["text"], "all good");
  EXPECT_EQ((*v)["type"], "str");
  EXPECT_EQ(s->GetVar("missing", testing::FastLimits()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace rlmbox::engine

namespace rlmbox::engine {
namespace {

// guest/cpython-patches/sum-int64-accumulator.patch: sum() of ints stays on its
// C fast path past 2**31 on wasm32. Fuel counts the guest's work exactly, so a
// total past 2**31 must cost about what a small total costs (upstream's 32-bit
// accumulator fell back to an int object per addition there, ~4x the work).
TEST(Guest, SumOfIntsKeepsItsFastPathPastTwoToThe31) {
  auto s = testing::TestExecutor().CreateSession(/*fuel=*/true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Limits l = testing::FastLimits();
  l.fuel = 1'000'000'000'000;
  auto run = [&](const std::string& code) {
    auto r = (*s)->Execute(code, l, nullptr);
    EXPECT_TRUE(r.ok() && r->outcome == Outcome::kOk) << code;
    return r.ok() ? *r : ExecutionResult{};
  };
  run("small = [1] * 200000\nbig = [1 << 20] * 200000\nhuge = [1 << 62] * 4");
  auto small = run("print(sum(small))");
  auto big = run("print(sum(big))");
  EXPECT_EQ(small.stdout_text, "200000\n");
  EXPECT_EQ(big.stdout_text, std::to_string(200000ull << 20) + "\n");
  EXPECT_LT(static_cast<double>(big.fuel_used), 1.3 * static_cast<double>(small.fuel_used))
      << "small " << small.fuel_used << ", big " << big.fuel_used;
  // Past 2**63 the general path takes over and the result stays exact.
  EXPECT_EQ(run("print(sum(huge), sum(huge) == 4 * (1 << 62))").stdout_text,
            "18446744073709551616 True\n");
  EXPECT_EQ(run("print(sum([-(1 << 62)] * 4, 1))").stdout_text, "-18446744073709551615\n");
}

}  // namespace
}  // namespace rlmbox::engine
