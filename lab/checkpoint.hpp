// Checkpoints: parameters, both AdamW moments and the TrainState (step, optimizer steps, the
// open logging interval, how many metrics lines were written) in one safetensors file per step
// under <run>/checkpoints/, written atomically; the newest K are kept. A resumed run loads the
// newest checkpoint that reads back whole and matches the run's config, so a kill at any
// moment costs at most the steps since the last checkpoint.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cells/model.hpp"
#include "lab/config.hpp"
#include "lab/trainer.hpp"

namespace statelab {

std::string checkpoint_path(const std::string& run_dir, int step);
// Checkpoint files of a run, newest first.
std::vector<std::string> list_checkpoints(const std::string& run_dir);

void save_checkpoint(const std::string& run_dir, Model<float>& model, const TrainState& state,
                     const RunConfig& cfg);
// Reads one checkpoint into `model` (parameters, and the AdamW moments unless the model is
// forward-only) and returns its state. Throws IoError naming the file when
// it is corrupt, misses a tensor, or was written by a run with another config.
TrainState load_checkpoint(const std::string& path, Model<float>& model, const RunConfig& cfg);
// Removes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& run_dir, int keep);

struct Resumed {
  std::string path;
  TrainState state;
};
// The newest checkpoint that loads; unreadable ones are reported through `warn` and skipped.
// Throws IoError when none loads.
Resumed load_newest_checkpoint(const std::string& run_dir, Model<float>& model,
                               const RunConfig& cfg,
                               const std::function<void(const std::string&)>& warn);

}  // namespace statelab
