// The CPU step runner: a step runs to completion when submitted, exactly as the reference
// trainer always did (clip, then AdamW unless the loss or the norm is not finite).
#include "lab/step_runner.hpp"

#include <cmath>

#include "lab/optimizer.hpp"

namespace statelab {

namespace {

class CpuStepRunner final : public StepRunner {
 public:
  CpuStepRunner(Model<float>& model, const TrainConfig& tc) : model_(model), optimizer_(tc) {}

  void submit(int step, const Batch& batch, double lr) override {
    model_.params().zero_grads();
    model_.forward(batch.tokens.data(), Pass{batch.batch, batch.length});
    const auto stats = model_.loss(batch.targets.data(), true);
    StepResult r;
    r.step = step;
    r.lr = lr;
    r.tokens = int64_t(batch.batch) * batch.length;
    r.loss_sum = stats.loss_sum;
    r.count = stats.count;
    r.correct = stats.correct;
    r.grad_norm = NAN;
    if (std::isfinite(stats.loss_sum)) {
      model_.backward();
      r.grad_norm = optimizer_.clip(model_.params());
    }
    if (std::isfinite(r.grad_norm)) {
      optimizer_.apply(model_.params(), lr);
      r.applied = true;
    } else {
      r.grad_norm = NAN;
    }
    done_.push_back(r);
  }

  std::vector<StepResult> collect() override {
    std::vector<StepResult> out;
    out.swap(done_);
    return out;
  }
  bool due() const override { return true; }
  int64_t optimizer_steps() const override { return optimizer_.steps_taken(); }
  void set_optimizer_steps(int64_t steps) override { optimizer_.set_steps_taken(steps); }

 private:
  Model<float>& model_;
  AdamW<float> optimizer_;
  std::vector<StepResult> done_;
};

}  // namespace

std::unique_ptr<StepRunner> make_step_runner(Model<float>& model, const TrainConfig& tc) {
#ifdef STATELAB_HAVE_CUDA
  if (model.exec().on_cuda()) return make_gpu_step_runner(model, tc);
#endif
  return std::make_unique<CpuStepRunner>(model, tc);
}

}  // namespace statelab
