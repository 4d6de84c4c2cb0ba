// The training loop: sample a batch (lengths uniform over the task's accepted lengths in the
// training range, per batch or per sequence), forward, masked cross-entropy, backward, clip,
// AdamW, schedule; optionally stop early once held-out accuracy at the longest training length
// stays high. Observers see every step but never change training. All randomness flows from
// train.seed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cells/model.hpp"
#include "lab/config.hpp"
#include "lab/evaluate.hpp"
#include "lab/optimizer.hpp"
#include "tasks/task.hpp"

namespace statelab {

struct StepMetrics {
  int step = 0, total_steps = 0;
  double loss = 0, train_accuracy = 0;  // this step, or the mean over the logged interval
  double lr = 0, grad_norm = 0;
  double tokens_per_s = 0, elapsed_s = 0;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_step(const StepMetrics&) {}
  virtual void on_log(const StepMetrics&) {}  // every train.log_every steps and at the end
  // Held-out accuracy at the longest training length, every train.eval_every steps.
  virtual void on_check(int step, int length, double accuracy) {}
};

struct TrainOutcome {
  int steps_run = 0;
  std::string stop_reason;  // "completed" or "early_stop: ..."
};

class Trainer {
 public:
  explicit Trainer(const RunConfig& cfg);
  TrainOutcome train(const std::vector<Observer*>& observers);
  EvalResult evaluate() { return evaluate_on(cfg_.eval); }
  EvalResult evaluate_on(const EvalConfig& e);
  Model<float>& model() { return *model_; }
  const Task& task() const { return *task_; }
  const RunConfig& config() const { return cfg_; }

 private:
  void sample_batch(int step, Batch& batch) const;
  // Names the first block output or parameter gradient that is not finite, for the message of
  // a diverged run.
  std::string locate_non_finite(Pass p);

  RunConfig cfg_;
  std::unique_ptr<Task> task_;
  Readout readout_;
  std::vector<int> train_lengths_;  // the accepted lengths in task.train_lengths
  std::unique_ptr<Model<float>> model_;
  AdamW<float> optimizer_;
};

// Tokens of the largest eval forward: per length L, min(samples, batch_tokens / L) sequences.
int64_t eval_max_tokens(const EvalConfig& e);

}  // namespace statelab
