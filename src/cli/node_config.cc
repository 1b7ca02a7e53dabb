#include "cli/node_config.h"

#include <cstdlib>

#include "service/document.h"

namespace rlmbox::cli {

Result<nodes::NodeRunner::Options> NodeOptions(std::string profiles_file, std::string tools_dir,
                                               std::chrono::milliseconds execution_timeout) {
  if (profiles_file.empty() && std::getenv("RLMBOX_PROFILES") != nullptr) {
    profiles_file = std::getenv("RLMBOX_PROFILES");
  }
  if (tools_dir.empty() && std::getenv("RLMBOX_TOOLS_DIR") != nullptr) {
    tools_dir = std::getenv("RLMBOX_TOOLS_DIR");
  }
  nodes::NodeRunner::Options o;
  o.profiles = service::BuiltinProfiles(execution_timeout);
  if (!profiles_file.empty()) {
    auto config = service::ReadDocument(profiles_file);
    Status s = config.ok() ? service::ApplyProfileConfig(*config, profiles_file, o.profiles,
                                                         o.ceilings)
                           : config.status();
    if (!s.ok()) return InvalidArgument("profile config: " + s.message());
  }
  if (!tools_dir.empty()) {
    ASSIGN_OR_RETURN(o.tools, nodes::ToolRegistry::Load(tools_dir));
  }
  return o;
}

}  // namespace rlmbox::cli
