// The run directory contract: config.json, metrics.jsonl, model.safetensors, eval.json.
// A run never writes into a directory that holds something else unless told to (--force).
#pragma once

#include <string>

namespace statelab {

std::string default_run_dir(const std::string& name);  // runs/<name>-YYYYmmdd-HHMMSS
// Creates `dir` if needed. Refuses (ConfigError) a non-empty directory unless `force`, and
// throws IoError when it cannot be created.
void prepare_run_dir(const std::string& dir, bool force);

}  // namespace statelab
