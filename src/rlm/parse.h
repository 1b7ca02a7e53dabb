// Parsing a model's reply: ```repl code blocks and final-answer markers.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlmbox::rlm {

// The contents of every ```repl block, in order. A block opens with a line
// starting ```repl (anything after "repl" on that line is ignored) and closes
// at the next line that is exactly ``` (surrounding spaces allowed). Blocks in
// other languages are ignored; an unterminated block is ignored.
std::vector<std::string> ParseCodeBlocks(std::string_view reply);

struct FinalMarker {
  enum class Kind { kAnswer, kVariable };
  Kind kind;
  std::string value;  // the answer text, or the variable name
};

// The final-answer marker in the text outside code blocks, if any:
// FINAL_VAR(name) (quotes around the name allowed) or FINAL(text), where text
// may span lines and contain balanced parentheses. A marker must start a line
// (after optional spaces). When both kinds appear, the first one wins.
std::optional<FinalMarker> FindFinal(std::string_view reply);

}  // namespace rlmbox::rlm
