// How training steps execute. On the CPU a step runs when it is submitted. On a GPU a step is
// queued: the whole step (upload, forward, loss, backward, norm, clip, AdamW) is one CUDA graph
// per (batch, length) shape, replayed; its loss and gradient norm land in a device ring that
// collect() reads back, so the host prepares the next batch while the GPU computes and syncs
// only every few steps. The trainer drives both through this interface and processes results
// in step order, which keeps its logic (logging, NaN handling, checkpoints) device-agnostic.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cells/model.hpp"
#include "lab/config.hpp"
#include "tasks/task.hpp"

namespace statelab {

struct StepResult {
  int step = 0;
  int64_t tokens = 0;  // B·T of the step's batch
  double lr = 0;        // the learning rate the step was submitted with
  double loss_sum = 0;
  int64_t count = 0, correct = 0;
  double grad_norm = 0;  // before clipping; NaN when the loss or the gradient was not finite
  bool applied = false;  // the optimizer step happened
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Runs or queues training step `step` (1-based) on `batch` at learning rate lr.
  virtual void submit(int step, const Batch& batch, double lr) = 0;
  // The results of every submitted step not yet collected, in step order; waits for them.
  virtual std::vector<StepResult> collect() = 0;
  // Whether the queue is as full as it should get: the trainer collects then.
  virtual bool due() const = 0;
  // Optimizer steps applied so far (AdamW's bias correction); set on resume.
  virtual int64_t optimizer_steps() const = 0;
  virtual void set_optimizer_steps(int64_t steps) = 0;
};

// The runner for the model's device. The model must outlive it.
std::unique_ptr<StepRunner> make_step_runner(Model<float>& model, const TrainConfig& tc);

#ifdef STATELAB_HAVE_CUDA
std::unique_ptr<StepRunner> make_gpu_step_runner(Model<float>& model, const TrainConfig& tc);
#endif

}  // namespace statelab
