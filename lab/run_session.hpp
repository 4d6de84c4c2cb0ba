// A training run in its directory, from config.json to eval.json: what `lab train` and the
// dashboard share, so a run trained in either looks the same on disk (config, metrics, checks,
// checkpoints, NaN reports, the final model and eval) and either can resume it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lab/config.hpp"
#include "lab/evaluate.hpp"
#include "lab/trainer.hpp"

namespace statelab {

struct RunSession {
  RunConfig config;
  std::string dir;
  std::unique_ptr<Trainer> trainer;
  std::string resumed_from;  // the checkpoint a resumed run continues from; empty for a new one
};

using Warn = std::function<void(const std::string&)>;

// A new run: prepares `dir` (refusing a non-empty one unless `force`), writes config.json and
// builds the trainer on the config's device.
std::unique_ptr<RunSession> open_new_run(const RunConfig& cfg, const std::string& dir, bool force);
// A stopped run, from its config.json and newest readable checkpoint; its logs are cut back to
// what that checkpoint had written. Problems that cost data are reported through `warn`.
std::unique_ptr<RunSession> open_resumed_run(const std::string& dir, const Warn& warn);

// Trains with metrics.jsonl/checks.jsonl and NaN reports added to `observers`; checkpoints go
// to the run directory unless `control.checkpoint` says otherwise.
TrainOutcome train_run(RunSession& run, std::vector<Observer*> observers, TrainControl control);
// A checkpoint of `state` (the trainer's, or the one TrainControl::checkpoint is given), and
// pruning to train.keep_checkpoints.
void checkpoint_run(RunSession& run, const TrainState& state);

struct FinishedRun {
  EvalResult result;
  double eval_s = 0;
};
// After training ended for good (not a resumable stop): model.safetensors, the evaluation over
// the config's eval lengths and eval.json with how training ended.
FinishedRun finish_run(RunSession& run, const TrainOutcome& outcome);

}  // namespace statelab
