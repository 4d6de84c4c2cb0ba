// The training loop: sample a batch (lengths uniform in the training range, per batch or per
// sequence),
// forward, masked cross-entropy, backward, clip, AdamW, schedule; observers see every step and
// every logged interval but never change training. Everything random flows from train.seed.
#pragma once

#include <memory>
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
};

class Trainer {
 public:
  explicit Trainer(const RunConfig& cfg);
  void train(const std::vector<Observer*>& observers);
  EvalResult evaluate() { return statelab::evaluate(*model_, *task_, cfg_.eval, cfg_.task.train_lengths); }
  Model<float>& model() { return *model_; }
  const Task& task() const { return *task_; }
  const RunConfig& config() const { return cfg_; }

 private:
  // Names the first block output or parameter gradient that is not finite, for the message of
  // a diverged run.
  std::string locate_non_finite(Pass p);

  RunConfig cfg_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<Model<float>> model_;
  AdamW<float> optimizer_;
};

// Tokens of the largest eval forward: per length L, min(samples, batch_tokens / L) sequences.
int64_t eval_max_tokens(const EvalConfig& e);

}  // namespace statelab
