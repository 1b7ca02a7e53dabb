// rlmbox: the command-line entry point. main() only wires subcommands.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/complete_command.h"
#include "cli/run_command.h"
#include "cli/serve_command.h"
#include "cli/serve_exec_command.h"
#include "cli/workflow_command.h"

int main(int argc, char** argv) {
  CLI::App app{"rlmbox - a WebAssembly sandbox for code written by language models"};
  app.require_subcommand(1);
  int exit_code = 0;
  rlmbox::cli::AddRunCommand(app, &exit_code);
  rlmbox::cli::AddServeExecCommand(app, &exit_code);
  rlmbox::cli::AddCompleteCommand(app, &exit_code);
  rlmbox::cli::AddServeCommand(app, &exit_code);
  rlmbox::cli::AddWorkflowCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {  // a bug of ours: report it, never abort
    std::cerr << "rlmbox: internal error: " << e.what() << "\n";
    return 70;
  }
  return exit_code;
}
