// `rlmbox workflow run FILE`: runs a workflow (docs/nodes.md) in-process and
// prints its result as JSON. Model calls of llm and agent nodes go to the
// OpenAI-compatible API configured by LLM_* (as for `rlmbox complete`).
#pragma once

#include <CLI/CLI.hpp>

namespace rlmbox::cli {

void AddWorkflowCommand(CLI::App& app, int* exit_code);

}  // namespace rlmbox::cli
