// Node settings shared by `serve-exec`, `serve` and `workflow run`: profiles
// (built-in, then a config file) and the tools directory.
#pragma once

#include <chrono>
#include <string>

#include "base/status.h"
#include "nodes/node_runner.h"

namespace rlmbox::cli {

// `profiles_file` / `tools_dir` empty: RLMBOX_PROFILES / RLMBOX_TOOLS_DIR, if set.
// Errors: kInvalidArgument / kNotFound naming the file or directory.
Result<nodes::NodeRunner::Options> NodeOptions(std::string profiles_file, std::string tools_dir,
                                               std::chrono::milliseconds execution_timeout);

}  // namespace rlmbox::cli
