#include "rlm/prompts.h"

namespace rlmbox::rlm {

std::string Render(std::string_view tmpl, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(tmpl.size());
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(tmpl.substr(pos, open - pos));
    auto it = vars.find(std::string(tmpl.substr(open + 2, close - open - 2)));
    if (it != vars.end()) {
      out += it->second;
    } else {
      out.append(tmpl.substr(open, close + 2 - open));
    }
    pos = close + 2;
  }
  out.append(tmpl.substr(pos));
  return out;
}

}  // namespace rlmbox::rlm
