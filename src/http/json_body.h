// Decoding a request body as one JSON object, the same way on both servers:
// bounded (base/bounded_json.h), 400 with a clear message otherwise.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/bounded_json.h"

namespace rlmbox::http {

inline Result<nlohmann::json> ParseJsonBody(std::string_view body) {
  auto j = ParseBoundedJson(body, kRequestJsonLimits, "the body");
  if (!j.ok()) {
    if (j.status().message().find("not valid JSON") != std::string::npos) {
      return InvalidArgument("invalid JSON body");
    }
    return j.status();
  }
  if (!j->is_object()) return InvalidArgument("the body must be a JSON object");
  return j;
}

}  // namespace rlmbox::http
