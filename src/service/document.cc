#include "service/document.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include "base/bounded_json.h"

namespace rlmbox::service {
namespace {

using nlohmann::json;

json Scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text == "null" || text == "~" || text.empty()) return nullptr;
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  char* end = nullptr;
  long long i = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() && *end == '\0') return i;
  double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() && *end == '\0') return d;
  return text;
}

// Converting a YAML tree copies what its aliases share, so a small document
// of nested aliases ("billion laughs") would expand without end: the
// conversion is bounded by the number of values it makes and their depth.
constexpr size_t kMaxDocumentValues = 200'000;
constexpr size_t kMaxDocumentDepth = 256;

struct Budget {
  size_t values = 0;
  bool exceeded = false;
};

json ToJson(const YAML::Node& node, Budget& budget, size_t depth) {
  if (budget.exceeded || ++budget.values > kMaxDocumentValues || depth > kMaxDocumentDepth) {
    budget.exceeded = true;
    return nullptr;
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        out.push_back(ToJson(item, budget, depth + 1));
        if (budget.exceeded) return nullptr;
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          budget.exceeded = true;
          return nullptr;
        }
        out[kv.first.Scalar()] = ToJson(kv.second, budget, depth + 1);
        if (budget.exceeded) return nullptr;
      }
      return out;
    }
  }
  return nullptr;
}

}  // namespace

Result<json> ParseDocument(std::string_view text, std::string_view what) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    auto j = ParseBoundedJson(text, kRequestJsonLimits, what);
    if (j.ok()) return j;
    if (j.status().message().find("not valid JSON") == std::string::npos) return j.status();
  }
  try {
    Budget budget;
    json out = ToJson(YAML::Load(std::string(text)), budget, 0);
    if (budget.exceeded) {
      return InvalidArgument(std::string(what) + " expands to more than " +
                             std::to_string(kMaxDocumentValues) + " values or nests deeper than " +
                             std::to_string(kMaxDocumentDepth) +
                             " levels (YAML aliases are counted each time they are used), "
                             "or has a key that is not a scalar");
    }
    return out;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string(what) + " is neither JSON nor YAML: " + e.what());
  }
}

Result<json> ReadDocument(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return ParseDocument(text.str(), path);
}

}  // namespace rlmbox::service
