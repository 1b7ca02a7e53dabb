#include "service/profiles.h"

namespace rlmbox::service {
namespace {

using std::chrono::milliseconds;

engine::Limits Make(uint64_t memory_mb, milliseconds timeout) {
  engine::Limits l;
  l.memory_bytes = memory_mb << 20;
  l.timeout = timeout;
  return l;
}

Result<double> PositiveNumber(const nlohmann::json& j, const char* name) {
  if (!j.is_number()) return InvalidArgument(std::string(name) + " must be a number");
  double v = j.get<double>();
  if (!(v > 0)) return InvalidArgument(std::string(name) + " must be greater than 0");
  return v;
}

Result<std::vector<std::string>> ModuleList(const nlohmann::json& j, const std::string& what) {
  if (!j.is_array()) return InvalidArgument(what + " must be a list of module names");
  std::vector<std::string> out;
  for (const auto& item : j) {
    if (!item.is_string() || item.get<std::string>().empty()) {
      return InvalidArgument(what + " must be a list of module names");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

// Applies {memory_mb, timeout, fuel, max_output_bytes} from `j` onto `limits`.
Status ApplyLimitFields(const nlohmann::json& j, const std::string& what, engine::Limits& limits,
                        std::optional<std::vector<std::string>>* imports) {
  if (!j.is_object()) return InvalidArgument(what + " must be an object");
  for (const auto& [key, value] : j.items()) {
    if (key == "allowed_imports" && imports != nullptr) {
      if (value.is_null()) {
        imports->reset();
        continue;
      }
      ASSIGN_OR_RETURN(*imports, ModuleList(value, what + ".allowed_imports"));
      continue;
    }
    ASSIGN_OR_RETURN(double v, PositiveNumber(value, (what + "." + key).c_str()));
    if (key == "memory_mb") {
      limits.memory_bytes = static_cast<uint64_t>(v * (1 << 20));
    } else if (key == "timeout") {
      limits.timeout = milliseconds(std::max<int64_t>(1, static_cast<int64_t>(v * 1000)));
    } else if (key == "cpu_time") {
      limits.cpu_time = milliseconds(std::max<int64_t>(1, static_cast<int64_t>(v * 1000)));
    } else if (key == "fuel") {
      limits.fuel = static_cast<uint64_t>(v);
    } else if (key == "max_output_bytes") {
      limits.max_output_bytes = static_cast<uint64_t>(v);
    } else {
      return InvalidArgument(what + ": unknown setting '" + key + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

const Profile* FindProfile(const std::vector<Profile>& profiles, std::string_view name) {
  for (const auto& p : profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Status ApplyProfileConfig(const nlohmann::json& j, const std::string& path,
                          std::vector<Profile>& profiles, engine::LimitCeilings& ceilings) {
  if (!j.is_object()) return InvalidArgument(path + ": expected an object");
  for (const auto& [key, value] : j.items()) {
    if (key != "profiles" && key != "ceilings") {
      return InvalidArgument(path + ": unknown key '" + key + "'");
    }
  }
  if (j.contains("ceilings")) {
    engine::Limits c;
    c.timeout = ceilings.timeout;
    c.cpu_time = ceilings.cpu_time;
    c.fuel = ceilings.fuel;
    c.memory_bytes = ceilings.memory_bytes;
    c.max_output_bytes = ceilings.max_output_bytes;
    RETURN_IF_ERROR(ApplyLimitFields(j["ceilings"], path + ": ceilings", c, nullptr));
    ceilings.timeout = c.timeout;
    ceilings.cpu_time = c.cpu_time;
    ceilings.fuel = c.fuel;
    ceilings.memory_bytes = c.memory_bytes;
    ceilings.max_output_bytes = c.max_output_bytes;
  }
  if (j.contains("profiles")) {
    if (!j["profiles"].is_object()) return InvalidArgument(path + ": profiles must be an object");
    for (const auto& [name, fields] : j["profiles"].items()) {
      Profile* p = const_cast<Profile*>(FindProfile(profiles, name));
      if (p == nullptr) {
        profiles.push_back(Profile{name, profiles.front().limits, std::nullopt});
        p = &profiles.back();
      }
      RETURN_IF_ERROR(ApplyLimitFields(fields, path + ": profiles." + name, p->limits,
                                       &p->allowed_imports));
    }
  }
  for (const auto& p : profiles) {
    if (p.limits.timeout > ceilings.timeout || p.limits.cpu_time > ceilings.cpu_time ||
        p.limits.memory_bytes > ceilings.memory_bytes ||
        p.limits.fuel > ceilings.fuel || p.limits.max_output_bytes > ceilings.max_output_bytes) {
      return InvalidArgument(path + ": profile '" + p.name + "' is above the ceilings");
    }
  }
  return Status::Ok();
}

std::vector<Profile> BuiltinProfiles(milliseconds execution_timeout) {
  using namespace std::chrono_literals;
  return {
      {"default", Make(256, execution_timeout)},
      {"code", Make(32, 10s)},
      {"tool", Make(64, 5s)},
      {"agent", Make(128, 30s)},
      {"llm", Make(16, 2s)},
      {"condition", Make(8, 1s)},
      {"loop", Make(64, 60s)},
      {"rlm", Make(512, execution_timeout)},
  };
}

Result<engine::Limits> ResolveLimits(const nlohmann::json& request,
                                     const std::vector<Profile>& profiles,
                                     const engine::LimitCeilings& ceilings) {
  std::string name = "default";
  if (request.contains("profile") && !request["profile"].is_null()) {
    if (!request["profile"].is_string()) return InvalidArgument("profile must be a string");
    name = request["profile"].get<std::string>();
  }
  const Profile* profile = FindProfile(profiles, name);
  if (profile == nullptr) return InvalidArgument("unknown profile '" + name + "'");
  engine::Limits limits = profile->limits;

  if (request.contains("timeout") && !request["timeout"].is_null()) {
    ASSIGN_OR_RETURN(double seconds, PositiveNumber(request["timeout"], "timeout"));
    if (seconds * 1000 > static_cast<double>(ceilings.timeout.count())) {
      return InvalidArgument("timeout above the limit of " +
                             std::to_string(ceilings.timeout.count() / 1000) + " s");
    }
    limits.timeout = milliseconds(std::max<int64_t>(1, static_cast<int64_t>(seconds * 1000)));
  }
  if (request.contains("limits") && !request["limits"].is_null()) {
    const auto& l = request["limits"];
    if (!l.is_object()) return InvalidArgument("limits must be an object");
    for (const auto& [key, value] : l.items()) {
      if (key != "memory_mb" && key != "fuel" && key != "max_output_bytes" && key != "timeout" &&
          key != "cpu_time") {
        return InvalidArgument("unknown limit '" + key + "'");
      }
      ASSIGN_OR_RETURN(double v, PositiveNumber(value, key.c_str()));
      if (key == "timeout") {
        if (v * 1000 > static_cast<double>(ceilings.timeout.count())) {
          return InvalidArgument("timeout above the limit of " +
                                 std::to_string(ceilings.timeout.count() / 1000) + " s");
        }
        limits.timeout = milliseconds(std::max<int64_t>(1, static_cast<int64_t>(v * 1000)));
      } else if (key == "cpu_time") {
        if (v * 1000 > static_cast<double>(ceilings.cpu_time.count())) {
          return InvalidArgument("cpu_time above the limit of " +
                                 std::to_string(ceilings.cpu_time.count() / 1000) + " s");
        }
        limits.cpu_time = milliseconds(std::max<int64_t>(1, static_cast<int64_t>(v * 1000)));
      } else if (key == "memory_mb") {
        if (v * (1 << 20) > static_cast<double>(ceilings.memory_bytes)) {
          return InvalidArgument("memory_mb above the limit of " +
                                 std::to_string(ceilings.memory_bytes >> 20));
        }
        limits.memory_bytes = static_cast<uint64_t>(v * (1 << 20));
      } else if (key == "fuel") {
        if (v > static_cast<double>(ceilings.fuel)) {
          return InvalidArgument("fuel above the limit of " + std::to_string(ceilings.fuel));
        }
        limits.fuel = static_cast<uint64_t>(v);
      } else {
        if (v > static_cast<double>(ceilings.max_output_bytes)) {
          return InvalidArgument("max_output_bytes above the limit of " +
                                 std::to_string(ceilings.max_output_bytes));
        }
        limits.max_output_bytes = static_cast<uint64_t>(v);
      }
    }
  }
  return limits;
}

}  // namespace rlmbox::service
