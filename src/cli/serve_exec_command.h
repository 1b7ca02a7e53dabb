// `rlmbox serve-exec`: the execution plane's HTTP service.
#pragma once

#include <CLI/CLI.hpp>

namespace rlmbox::cli {

void AddServeExecCommand(CLI::App& app, int* exit_code);

}  // namespace rlmbox::cli
