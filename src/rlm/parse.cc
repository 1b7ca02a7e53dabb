#include "rlm/parse.h"

#include <cctype>

namespace rlmbox::rlm {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits into lines (without their '\n'), keeping each line's offset.
struct Line {
  size_t begin;
  std::string_view text;
};
std::vector<Line> Lines(std::string_view s) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) nl = s.size();
    std::string_view line = s.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back({pos, line});
    if (nl == s.size()) break;
    pos = nl + 1;
  }
  return out;
}

bool IsFence(std::string_view line) { return Trim(line) == "```"; }

// The reply with every fenced block (any language) blanked out, so markers
// inside code are not taken for answers.
std::string OutsideCode(std::string_view reply) {
  std::string out;
  bool in_block = false;
  for (const auto& l : Lines(reply)) {
    std::string_view t = Trim(l.text);
    if (!in_block && t.substr(0, 3) == "```") {
      in_block = true;
      out += '\n';
      continue;
    }
    if (in_block) {
      if (IsFence(l.text)) in_block = false;
      out += '\n';
      continue;
    }
    out += l.text;
    out += '\n';
  }
  return out;
}

}  // namespace

std::vector<std::string> ParseCodeBlocks(std::string_view reply) {
  std::vector<std::string> blocks;
  auto lines = Lines(reply);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view t = Trim(lines[i].text);
    if (t.substr(0, 3) != "```") continue;
    std::string_view lang = Trim(t.substr(3));
    const bool repl = lang.substr(0, 4) == "repl" &&
                      (lang.size() == 4 || std::isspace(static_cast<unsigned char>(lang[4])));
    size_t j = i + 1;
    while (j < lines.size() && !IsFence(lines[j].text)) ++j;
    if (j == lines.size()) break;  // unterminated: ignored (and so is the rest)
    if (repl) {
      std::string code;
      for (size_t k = i + 1; k < j; ++k) {
        code += lines[k].text;
        code += '\n';
      }
      blocks.push_back(std::move(code));
    }
    i = j;
  }
  return blocks;
}

std::optional<FinalMarker> FindFinal(std::string_view reply) {
  const std::string text = OutsideCode(reply);
  for (const auto& l : Lines(text)) {
    std::string_view t = l.text;
    size_t lead = 0;
    while (lead < t.size() && (t[lead] == ' ' || t[lead] == '\t')) ++lead;
    std::string_view rest = t.substr(lead);
    const bool is_var = rest.substr(0, 10) == "FINAL_VAR(";
    const bool is_final = !is_var && rest.substr(0, 6) == "FINAL(";
    if (!is_var && !is_final) continue;
    // Scan from the opening parenthesis to its balanced close, across lines.
    const size_t open = l.begin + lead + (is_var ? 9 : 5);
    int depth = 0;
    size_t close = std::string::npos;
    for (size_t p = open; p < text.size(); ++p) {
      if (text[p] == '(') ++depth;
      if (text[p] == ')' && --depth == 0) {
        close = p;
        break;
      }
    }
    std::string inner = close == std::string::npos ? text.substr(open + 1)
                                                  : text.substr(open + 1, close - open - 1);
    std::string_view v = Trim(inner);
    if (is_var) {
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        v = v.substr(1, v.size() - 2);
      }
      return FinalMarker{FinalMarker::Kind::kVariable, std::string(Trim(v))};
    }
    return FinalMarker{FinalMarker::Kind::kAnswer, std::string(v)};
  }
  return std::nullopt;
}

}  // namespace rlmbox::rlm
