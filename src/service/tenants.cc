#include "service/tenants.h"

#include <fstream>
#include <sstream>

namespace rlmbox::service {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokens = 10'000;

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

}  // namespace

Result<Tenants> Tenants::Parse(std::string_view text) {
  Tenants t;
  std::istringstream in{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string tenant, token, extra;
    if (!(fields >> tenant)) continue;  // blank or comment
    const std::string where = "tokens file line " + std::to_string(n);
    if (!(fields >> token) || (fields >> extra)) {
      return InvalidArgument(where + ": expected `TENANT TOKEN`");
    }
    if (token.size() < kMinTokenLength) {
      return InvalidArgument(where + ": the token is shorter than " +
                             std::to_string(kMinTokenLength) + " characters");
    }
    for (const Entry& e : t.entries_) {
      if (e.token == token) return InvalidArgument(where + ": this token is already given");
    }
    if (t.entries_.size() >= kMaxTokens) return InvalidArgument("more than 10000 tokens");
    t.entries_.push_back({tenant, token});
  }
  if (t.entries_.empty()) return InvalidArgument("the tokens file holds no `TENANT TOKEN` line");
  return t;
}

Result<Tenants> Tenants::ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return NotFound("cannot read the tokens file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return Parse(ss.str());
}

Tenants Tenants::Single(const std::string& token) {
  Tenants t;
  if (!token.empty()) t.entries_.push_back({"default", token});
  return t;
}

std::optional<std::string> Tenants::Find(std::string_view token) const {
  std::optional<std::string> found;
  for (const Entry& e : entries_) {
    if (ConstantTimeEquals(token, e.token) && !found) found = e.tenant;
  }
  return found;
}

}  // namespace rlmbox::service
