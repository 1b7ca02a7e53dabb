// Tenants: who a caller is, decided by its bearer token.
//
// A tokens file (RLMBOX_TOKENS_FILE / --tokens-file) holds one `TENANT TOKEN`
// pair per line ('#' starts a comment); RLMBOX_TOKEN is the one-tenant
// shorthand (tenant "default"). With no token at all, auth is off and every
// caller is the same tenant "". Sessions belong to the tenant that created
// them (service/session_manager.h). Immutable after construction; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlmbox::service {

class Tenants {
 public:
  Tenants() = default;

  // Parses a tokens file's text. Errors: kInvalidArgument naming the line
  // (not two fields, a token shorter than 16 characters, a token given twice).
  static Result<Tenants> Parse(std::string_view text);
  // Reads and parses a file. Errors: kNotFound, or as Parse.
  static Result<Tenants> ReadFile(const std::string& path);
  // The one-tenant shorthand: `token` belongs to tenant "default".
  static Tenants Single(const std::string& token);

  bool auth_required() const { return !entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // The tenant the token belongs to, or nullopt. Every known token is
  // compared in full, in time independent of where they differ.
  std::optional<std::string> Find(std::string_view token) const;

 private:
  struct Entry {
    std::string tenant;
    std::string token;
  };
  std::vector<Entry> entries_;
};

}  // namespace rlmbox::service
