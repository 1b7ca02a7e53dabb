// `rlmbox run`: runs Python code in a fresh sandbox and reports the result.
#pragma once

#include <CLI/CLI.hpp>

namespace rlmbox::cli {

// Registers the `run` subcommand on `app`; its callback sets `*exit_code`.
void AddRunCommand(CLI::App& app, int* exit_code);

// The process exit code for each outcome (documented in docs/api.md).
int ExitCodeForOutcome(std::string_view outcome);

}  // namespace rlmbox::cli
