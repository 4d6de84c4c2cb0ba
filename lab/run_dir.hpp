// The run directory contract: config.json, metrics.jsonl, model.safetensors, eval.json (and
// checks.jsonl when the run evaluates during training).
// A run never writes into a directory that holds something else unless told to (--force).
#pragma once

#include <string>

namespace statelab {

std::string default_run_dir(const std::string& name);  // runs/<name>-YYYYmmdd-HHMMSS
// The files a run writes: config.json, metrics.jsonl, checks.jsonl (early-stop evaluations),
// model.safetensors, eval.json.
extern const char* const kRunFiles[5];

// Creates `dir` if needed. Refuses (ConfigError) a non-empty directory unless `force`; with
// `force` it removes the run files of an earlier run there (and nothing else), so no file of
// that run can be mistaken for one of the new run. Throws IoError when `dir` cannot be created.
void prepare_run_dir(const std::string& dir, bool force);

}  // namespace statelab
