// The cell modes workflow nodes use (CellOptions): values, variables, calls and
// the import policy, at the engine's level.
#include <gtest/gtest.h>

#include "test_engine.h"

namespace rlmbox::engine {
namespace {

using nlohmann::json;
using testing::FastLimits;
using testing::NewSession;
using testing::TestExecutor;

ExecutionResult RunCell(const std::string& code, CellOptions cell) {
  executor::ExecuteRequest req;
  req.code = code;
  req.limits = FastLimits();
  req.cell = std::move(cell);
  auto r = TestExecutor().Execute(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ExecutionResult{};
}

CellOptions Mode(CellOptions::Mode mode, json vars = json::object()) {
  CellOptions c;
  c.mode = mode;
  c.vars = std::move(vars);
  return c;
}

TEST(Cells, NodeModeValueIsOutputElseLastExpression) {
  auto r = RunCell("output = {'n': n}\n'ignored'", Mode(CellOptions::Mode::kNode, {{"n", 3}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error.value_or("");
  EXPECT_EQ(*r.value, json({{"n", 3}}));
  EXPECT_EQ(r.value_type, "dict");
  EXPECT_EQ(r.stdout_text, "");  // no notebook echo in node mode
  r = RunCell("n * 2", Mode(CellOptions::Mode::kNode, {{"n", 4}}));
  EXPECT_EQ(*r.value, json(8));
  r = RunCell("x = 1", Mode(CellOptions::Mode::kNode));
  EXPECT_TRUE(r.value->is_null());
  EXPECT_EQ(r.value_type, "NoneType");
  // A value that is not JSON comes back as its str().
  r = RunCell("output = {1, 2}", Mode(CellOptions::Mode::kNode));
  EXPECT_EQ(r.value_type, "set");
  EXPECT_EQ(*r.value, json("{1, 2}"));
}

TEST(Cells, EvalModeTakesOneExpression) {
  auto r = RunCell("a < b", Mode(CellOptions::Mode::kEval, {{"a", 1}, {"b", 2}}));
  EXPECT_EQ(*r.value, json(true));
  EXPECT_EQ(r.value_type, "bool");
  r = RunCell("x = 1", Mode(CellOptions::Mode::kEval));
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("SyntaxError"), std::string::npos);
  EXPECT_FALSE(r.value.has_value());
}

TEST(Cells, TemplateModeRendersAgainstTheVariables) {
  auto r = RunCell("{who} has {items[0]} and {d[k]}",
               Mode(CellOptions::Mode::kTemplate,
                    {{"who", "Ann"}, {"items", {7}}, {"d", {{"k", "v"}}}}));
  EXPECT_EQ(*r.value, json("Ann has 7 and v"));
  r = RunCell("{nope}", Mode(CellOptions::Mode::kTemplate));
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("KeyError"), std::string::npos);
}

TEST(Cells, CallRunsAFunctionTheCodeDefines) {
  CellOptions c = Mode(CellOptions::Mode::kNode);
  c.call_function = "execute";
  c.call_kwargs = {{"a", 2}, {"b", 5}};
  auto r = RunCell("def execute(a, b):\n    return a ** b", c);
  EXPECT_EQ(*r.value, json(32));
  r = RunCell("x = 1", c);
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("no function 'execute'"), std::string::npos);
}

TEST(Cells, VariablesCannotReplaceReservedNames) {
  auto r = RunCell("llm_query.__name__ if False else type(llm_query).__name__",
               Mode(CellOptions::Mode::kNode, {{"llm_query", "spoofed"}, {"_hidden", 1}}));
  EXPECT_EQ(*r.value, json("function"));
  // Module dunders are the interpreter's; other names with underscores are the
  // caller's (DSPy passes `__dspy_host_token`).
  r = RunCell("__name__", Mode(CellOptions::Mode::kEval, {{"__name__", "spoofed"}}));
  EXPECT_EQ(*r.value, json("__main__"));
  r = RunCell("_hidden + __mangled", Mode(CellOptions::Mode::kEval, {{"_hidden", 1}, {"__mangled", 2}}));
  EXPECT_EQ(*r.value, json(3));
}

TEST(Cells, ImportPolicyIsFixedForTheSandbox) {
  auto s = NewSession();
  CellOptions strict = Mode(CellOptions::Mode::kNode);
  strict.allowed_imports = std::vector<std::string>{"math"};
  auto r = s->Execute("import math\nmath.floor(2.5)", FastLimits(), nullptr, strict);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->value, json(2));
  // Without a list, the sandbox keeps the one it has...
  r = s->Execute("import json", FastLimits(), nullptr, Mode(CellOptions::Mode::kNode));
  EXPECT_EQ(r->outcome, Outcome::kException);
  EXPECT_NE(r->error->find("not allowed"), std::string::npos);
  // ...and a different list is refused.
  CellOptions other = strict;
  other.allowed_imports = std::vector<std::string>{"math", "json"};
  r = s->Execute("1", FastLimits(), nullptr, other);
  EXPECT_EQ(r->outcome, Outcome::kException);
  EXPECT_NE(r->error->find("different allowed_imports"), std::string::npos);
}

}  // namespace
}  // namespace rlmbox::engine
