// The loop's prompts (prompts/*.md, embedded at build time) and their
// {{placeholder}} rendering. Thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace rlmbox::rlm {

// The text of prompts/<name>.md; empty for an unknown name.
std::string_view Prompt(std::string_view name);

// Replaces each {{key}} in `tmpl` with vars[key]; unknown keys stay as they are.
std::string Render(std::string_view tmpl, const std::map<std::string, std::string>& vars);

}  // namespace rlmbox::rlm
