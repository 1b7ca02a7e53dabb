// `rlmbox complete`: runs an RLM from the command line (in-process sandbox).
#pragma once

#include <CLI/CLI.hpp>

namespace rlmbox::cli {

void AddCompleteCommand(CLI::App& app, int* exit_code);

}  // namespace rlmbox::cli
