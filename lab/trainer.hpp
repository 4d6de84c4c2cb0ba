// The training loop: sample a batch (lengths uniform over the task's accepted lengths in the
// training range, per batch or per sequence), forward, masked cross-entropy, backward, clip,
// AdamW, schedule; optionally stop early once held-out accuracy at the longest training length
// stays high. Observers see every step but never change training. All randomness flows from
// train.seed and the step number, so a run restored from a checkpoint continues bit for bit.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cells/model.hpp"
#include "lab/compute_device.hpp"
#include "lab/config.hpp"
#include "lab/evaluate.hpp"
#include "lab/step_runner.hpp"
#include "tasks/task.hpp"

namespace statelab {

struct StepMetrics {
  int step = 0, total_steps = 0;
  double loss = 0, train_accuracy = 0;  // this step, or the mean over the logged interval
  double lr = 0, grad_norm = 0;
  double tokens_per_s = 0, elapsed_s = 0;
};

// What went non-finite, found by re-running the failing step with checks after every layer.
struct NonFiniteReport {
  int step = 0;
  std::string message;   // names the step, layer, tensor, head and time step
  Batch batch;           // the batch of the failing step
  bool skipped = false;  // train.on_nan = "skip_step": the update was dropped, training goes on
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_step(const StepMetrics&) {}
  virtual void on_log(const StepMetrics&) {}  // every train.log_every steps and at the end
  // Held-out accuracy at the longest training length, every train.eval_every steps.
  virtual void on_check(int step, int length, double accuracy) {}
  virtual void on_non_finite(const NonFiniteReport&) {}
  // What probes saw inside the model (TrainControl::summarize) at a held-out check and at the end.
  virtual void on_summary(int step, const nlohmann::json& figures) {}
};

// Everything of a run in progress besides parameters and optimizer moments: a checkpoint
// stores it so that a resumed run repeats the uninterrupted one exactly.
struct TrainState {
  int step = 0;  // steps completed
  int64_t optimizer_steps = 0;
  int good_checks = 0;  // consecutive held-out checks at or above the early-stop bar
  int skipped_steps = 0;
  double interval_loss = 0, interval_correct = 0, interval_count = 0, interval_tokens = 0;
  double elapsed_s = 0;  // training seconds so far (pauses excluded), over every process
  int64_t metrics_lines = 0, checks_lines = 0;  // lines written so far to metrics/checks files
};

struct TrainOutcome {
  int steps_run = 0;
  std::string stop_reason;  // "completed", "early_stop: …", "stopped after step N", "interrupted …"
  bool resumable_stop = false;  // stopped on request (--stop-after, a signal): resume continues
};

// How a caller steers a run from outside: where to stop, a flag a signal handler raises, and
// what to do with a checkpoint (every train.checkpoint_every steps and whenever training stops).
struct TrainControl {
  int stop_after = 0;  // > 0: stop resumably after this step
  const std::atomic<bool>* interrupt = nullptr;
  std::function<void(const TrainState&)> checkpoint;
  // Called at every held-out check and when training completes; its result reaches the
  // observers' on_summary (the probes' gate and memory figures: see probes/training_summary).
  std::function<nlohmann::json(int step)> summarize;
  // Interactive callers (the dashboard). Raising `hold` gets the loop's attention: the steps in
  // flight are finished and on_hold(step) runs on the training thread before the next step. It
  // may block (a pause), evaluate, probe or save, and returns when training may go on.
  const std::atomic<bool>* hold = nullptr;
  std::function<void(int step)> on_hold;
  // Multiplies the scheduled learning rate from the next submitted step on (1 when null).
  const std::atomic<double>* lr_scale = nullptr;
};

class Trainer {
 public:
  explicit Trainer(const RunConfig& cfg);
  TrainOutcome train(const std::vector<Observer*>& observers, const TrainControl& control = {});
  EvalResult evaluate() { return evaluate_on(cfg_.eval); }
  EvalResult evaluate_on(const EvalConfig& e);
  Model<float>& model() { return *model_; }
  const ComputeDevice& device() const { return device_; }
  const Task& task() const { return *task_; }
  const RunConfig& config() const { return cfg_; }
  const TrainState& state() const { return state_; }
  // After loading parameters and moments from a checkpoint.
  void restore(const TrainState& s);

 private:
  void sample_batch(int step, Batch& batch) const;
  // Whether the step after which this one's result must be known (a log line, a check, a
  // checkpoint, a requested stop, the fault-injection window, the last step).
  bool control_point(int step, const TrainControl& control) const;
  // Recomputes the step of `batch` (forward, loss, backward) on the parameters the device holds
  // and names the first layer output, tensor, head and time step that is not finite, else the
  // first non-finite parameter, else the layer where the gradient first goes non-finite. A GPU
  // run recomputes it on a CPU copy of the parameters too, which tells a kernel fault from a
  // divergence. With train.on_nan = "stop" every later step was refused, so those are the
  // failing step's parameters.
  std::string diagnose_non_finite(const Batch& batch);

  RunConfig cfg_;
  std::unique_ptr<Task> task_;
  Readout readout_;
  std::vector<int> train_lengths_;  // the accepted lengths in task.train_lengths
  ComputeDevice device_;            // before the model: the model's memory lives on it
  std::unique_ptr<Model<float>> model_;
  std::unique_ptr<StepRunner> runner_;
  TrainState state_;
};

// Tokens of the largest eval forward: per length L, min(samples, batch_tokens / L) sequences.
int64_t eval_max_tokens(const EvalConfig& e);

}  // namespace statelab
