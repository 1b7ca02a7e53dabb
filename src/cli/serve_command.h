// `rlmbox serve`: the inference plane's HTTP service.
#pragma once

#include <CLI/CLI.hpp>

namespace rlmbox::cli {

void AddServeCommand(CLI::App& app, int* exit_code);

}  // namespace rlmbox::cli
