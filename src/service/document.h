// Reading configuration and workflow documents written as JSON or YAML.
// Plain functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace rlmbox::service {

// Parses `text` as JSON, or else as YAML (YAML scalars become JSON numbers,
// booleans and null where YAML 1.2's core schema says so; quoted ones stay
// strings). `what` names the document in errors.
// Errors: kInvalidArgument with the parser's message and position.
Result<nlohmann::json> ParseDocument(std::string_view text, std::string_view what);

// Reads and parses a file. Errors: kNotFound, or as ParseDocument.
Result<nlohmann::json> ReadDocument(const std::string& path);

}  // namespace rlmbox::service
