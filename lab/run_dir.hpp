// The run directory contract: config.json, metrics.jsonl, model.safetensors, eval.json (and
// checks.jsonl when the run evaluates during training).
// A run never writes into a directory that holds something else unless told to (--force).
#pragma once

#include <string>

namespace statelab {

// <root>/<name>-YYYYmmdd-HHMMSS, with -2, -3, ... appended while that exists, so two runs
// started within one second never collide.
std::string default_run_dir(const std::string& name, const std::string& root = "runs");
// Creates `dir` if needed. Refuses (ConfigError) a non-empty directory unless `force`; with
// `force` it removes what an earlier run wrote there (its files, checkpoints and NaN reports,
// and nothing else), so nothing of that run is taken for the new one's, and a later --resume
// never starts from the old run's checkpoints. Throws IoError when `dir` cannot be created.
void prepare_run_dir(const std::string& dir, bool force);

}  // namespace statelab
