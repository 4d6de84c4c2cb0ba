// Trainer: batches, steps, metrics, held-out checks, checkpoints through the caller, and the
// diagnosis of a step that went non-finite.
#include "lab/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "kernels/error.hpp"
#include "lab/optimizer.hpp"
#include "tasks/registry.hpp"

namespace statelab {

int64_t eval_max_tokens(const EvalConfig& e) {
  int64_t most = 0;
  for (int64_t L = e.lengths[0]; L <= e.lengths[1]; L += e.length_step)  // 64-bit: see lengths_in
    most = std::max(most, std::clamp<int64_t>(e.batch_tokens / L, 1, e.samples) * L);
  return most;
}

Trainer::Trainer(const RunConfig& cfg)
    : cfg_(cfg),
      task_(make_task(cfg.task.name)),
      readout_(readout_from_name(cfg.task.readout)),
      train_lengths_(task_->lengths_in(cfg.task.train_lengths[0], cfg.task.train_lengths[1])),
      device_(open_device(cfg.device, precision_from_name(cfg.precision), "device")) {
  SL_CHECK(!train_lengths_.empty(), "no accepted training length (validated by the config)");
  const int64_t train_tokens = int64_t(cfg.train.batch) * train_lengths_.back();
  model_ = std::make_unique<Model<float>>(cfg.model, task_->vocab().size(),
                                          std::max(train_tokens, eval_max_tokens(cfg.eval)),
                                          train_tokens, device_.exec);
  model_->params().initialize(cfg.train.seed);
  runner_ = make_step_runner(*model_, cfg.train);
}

void Trainer::restore(const TrainState& s) {
  state_ = s;
  runner_->set_optimizer_steps(s.optimizer_steps);
}

void Trainer::sample_batch(int step, Batch& batch) const {
  Rng rng(cfg_.train.seed, kStreamTrainData, uint64_t(step));
  if (cfg_.task.length_sampling == "per_sample") {
    task_->sample_mixed(rng, cfg_.train.batch, train_lengths_.front(), train_lengths_.back(),
                        readout_, batch);
    return;
  }
  const int L = train_lengths_[size_t(rng.uniform_int(0, int64_t(train_lengths_.size()) - 1))];
  task_->sample(rng, cfg_.train.batch, L, readout_, batch);
}

EvalResult Trainer::evaluate_on(const EvalConfig& e) {
  return statelab::evaluate(*model_, *task_, readout_, e, cfg_.task.train_lengths);
}

namespace {

// Fault injection for tests: the named parameter is NaN while the object lives.
class Poison {
 public:
  Poison(ParamStore<float>& ps, const std::string& name) : ps_(ps) {
    for (const auto& info : ps.infos())
      if (info.name == name) {
        ps.to_host();
        target_ = ps.host_values() + info.offset;
        saved_.assign(target_, target_ + info.shape.numel());
        std::fill_n(target_, saved_.size(), NAN);
        ps.to_device();
        return;
      }
    throw ConfigError("train.poison.parameter: no parameter named '" + name + "'");
  }
  ~Poison() {
    ps_.to_host();
    std::copy(saved_.begin(), saved_.end(), target_);
    ps_.to_device();
  }

 private:
  ParamStore<float>& ps_;
  float* target_ = nullptr;
  std::vector<float> saved_;
};

template <typename S>
bool all_finite(const S* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

// Backward runs through the parameters in reverse declaration order, so the last parameter
// whose gradient is not finite belongs to the layer where the gradient first went non-finite:
// every layer before it only inherits the fault.
std::string gradient_origin(ParamStore<float>& ps) {
  ps.to_host();
  int bad = 0;
  std::string last;
  for (const auto& info : ps.infos())
    if (!all_finite(ps.host_grads() + info.offset, info.shape.numel())) ++bad, last = info.name;
  if (bad == 0) return "";
  return "activations are finite; the gradient first goes non-finite at " + last +
         " (in backward order; " + std::to_string(bad) + " of " +
         std::to_string(ps.infos().size()) + " parameters have a non-finite gradient)";
}

// One forward, loss and backward of `batch` on `model`: where it first goes non-finite, or
// empty when every value is finite.
std::string recompute_step(Model<float>& model, const Batch& batch) {
  model.forward(batch.tokens.data(), Pass{batch.batch, batch.length});
  if (std::string found = model.find_non_finite(); !found.empty())
    return "first non-finite activation: " + found;
  auto& ps = model.params();
  ps.to_host();
  for (const auto& info : ps.infos())
    if (!all_finite(ps.host_values() + info.offset, info.shape.numel()))
      return "parameter " + info.name + " is not finite";
  ps.zero_grads();
  const auto stats = model.loss(batch.targets.data(), true);
  if (!std::isfinite(stats.loss_sum)) return "activations are finite; the loss is not";
  model.backward();
  return gradient_origin(ps);
}

}  // namespace

std::string Trainer::diagnose_non_finite(const Batch& batch) {
  const std::string here = recompute_step(*model_, batch);
  if (!model_->exec().on_cuda())
    return here.empty() ? "recomputed, the step is finite: the fault did not repeat" : here;
  // The same step on a CPU copy of the parameters tells a GPU kernel fault (the CPU stays
  // finite) from values that really diverge (both go non-finite).
  const int64_t tokens = int64_t(batch.tokens.size());
  Model<float> cpu(cfg_.model, model_->vocab(), tokens, tokens);
  auto& from = model_->params();  // same config and scalar type: the same layout
  from.to_host();
  std::copy_n(from.host_values(), from.size(), cpu.params().values());
  const std::string there = recompute_step(cpu, batch);
  return "recomputed on " + device_.spec + ": " + (here.empty() ? "finite" : here) +
         "; on the CPU from the same parameters: " + (there.empty() ? "finite" : there);
}

bool Trainer::control_point(int step, const TrainControl& control) const {
  const auto& tc = cfg_.train;
  return step == tc.steps || step % tc.log_every == 0 ||
         (tc.eval_every > 0 && step % tc.eval_every == 0) ||
         (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) ||
         (control.stop_after > 0 && step >= control.stop_after) ||
         (tc.poison_step > 0 && (step == tc.poison_step - 1 || step == tc.poison_step)) ||
         (control.interrupt && control.interrupt->load()) || (control.hold && control.hold->load());
}

TrainOutcome Trainer::train(const std::vector<Observer*>& observers, const TrainControl& control) {
  using Clock = std::chrono::steady_clock;
  const auto& tc = cfg_.train;
  const auto start = Clock::now();
  auto interval_start = start;
  double held_s = 0;  // time in on_hold (a paused dashboard) is not training time
  auto elapsed = [&] {
    return state_.elapsed_s + std::chrono::duration<double>(Clock::now() - start).count() - held_s;
  };
  EvalConfig check = cfg_.eval;  // held-out accuracy at the longest training length
  check.lengths = {train_lengths_.back(), train_lengths_.back()};
  auto save = [&] {
    if (!control.checkpoint) return;
    TrainState s = state_;
    s.elapsed_s = elapsed();
    control.checkpoint(s);
  };
  auto summarize = [&](int step) {
    if (!control.summarize) return;
    const nlohmann::json figures = control.summarize(step);
    for (auto* o : observers) o->on_summary(step, figures);
    ++state_.metrics_lines;
  };
  // Everything that follows a step once its result is known, in step order: metrics, the
  // diagnosis of a non-finite step, held-out checks, stops and checkpoints. A value ends the
  // run. `last` marks the newest submitted step: only there may the run stop on request, since
  // every step before it has already run on the device.
  auto finish = [&](const StepResult& r, bool last) -> std::optional<TrainOutcome> {
    const int step = r.step;
    const double loss = r.loss_sum / double(std::max<int64_t>(r.count, 1));
    if (!r.applied) {
      NonFiniteReport report;
      report.step = step;
      sample_batch(step, report.batch);
      report.skipped = tc.on_nan == "skip_step";
      report.message = "step " + std::to_string(step) + ": " +
                       (std::isfinite(loss) ? "the gradient norm is not finite"
                                            : "the loss is " + std::to_string(loss)) +
                       "; " + diagnose_non_finite(report.batch);
      for (auto* o : observers) o->on_non_finite(report);
      if (!report.skipped) throw Error("training diverged at " + report.message);
      ++state_.skipped_steps;  // the update is dropped; the step still counts
    } else {
      state_.interval_loss += r.loss_sum;
      state_.interval_correct += double(r.correct);
      state_.interval_count += double(r.count);
      state_.interval_tokens += double(r.tokens);
    }
    state_.step = step;
    state_.optimizer_steps = runner_->optimizer_steps();

    const auto now = Clock::now();
    StepMetrics m;
    m.step = step;
    m.total_steps = tc.steps;
    m.loss = loss;
    m.train_accuracy = double(r.correct) / double(std::max<int64_t>(r.count, 1));
    m.lr = r.lr;
    m.grad_norm = r.grad_norm;
    m.elapsed_s = elapsed();
    const double interval_s = std::chrono::duration<double>(now - interval_start).count();
    m.tokens_per_s = interval_s > 0 ? state_.interval_tokens / interval_s : 0;
    for (auto* o : observers) o->on_step(m);
    if (step % tc.log_every == 0 || step == tc.steps) {
      m.loss = state_.interval_loss / std::max(state_.interval_count, 1.0);
      m.train_accuracy = state_.interval_correct / std::max(state_.interval_count, 1.0);
      for (auto* o : observers) o->on_log(m);
      ++state_.metrics_lines;
      interval_start = now;
      state_.interval_loss = state_.interval_correct = state_.interval_count = 0;
      state_.interval_tokens = 0;
    }
    if (!last) return std::nullopt;
    if (tc.eval_every > 0 && step % tc.eval_every == 0 && step < tc.steps) {
      const double acc = evaluate_on(check).per_length.at(0).accuracy;
      for (auto* o : observers) o->on_check(step, check.lengths[0], acc);
      ++state_.checks_lines;
      summarize(step);
      state_.good_checks = acc >= tc.early_stop_accuracy ? state_.good_checks + 1 : 0;
      if (tc.early_stop_evals > 0 && state_.good_checks >= tc.early_stop_evals) {
        save();
        char reason[160];
        std::snprintf(reason, sizeof reason,
                      "early_stop: held-out accuracy at length %d >= %g for %d evaluations",
                      check.lengths[0], tc.early_stop_accuracy, state_.good_checks);
        return TrainOutcome{step, reason, false};
      }
    }
    if (step == tc.steps) return std::nullopt;
    if (control.hold && control.hold->load()) {  // may raise interrupt
      const auto held = Clock::now();
      control.on_hold(step);
      const auto resumed = Clock::now();
      held_s += std::chrono::duration<double>(resumed - held).count();
      interval_start += resumed - held;  // nor does it lower tokens/s
    }
    if (control.interrupt && control.interrupt->load()) {
      save();
      return TrainOutcome{step, "interrupted after step " + std::to_string(step), true};
    }
    if (control.stop_after > 0 && step >= control.stop_after) {
      save();
      return TrainOutcome{step, "stopped after step " + std::to_string(step) + " (--stop-after)",
                          true};
    }
    if (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) save();
    return std::nullopt;
  };

  Batch batch;
  const int first_step = state_.step + 1;
  for (int step = first_step; step <= tc.steps; ++step) {
    std::optional<Poison> poisoned;
    if (tc.poison_step == step) poisoned.emplace(model_->params(), tc.poison_parameter);
    sample_batch(step, batch);
    const double scale = control.lr_scale ? control.lr_scale->load() : 1.0;
    runner_->submit(step, batch, learning_rate(tc, step) * scale);
    if (!runner_->due() && !control_point(step, control)) continue;
    // A poisoned step is a control point, so it is finished (and diagnosed) before the poison
    // is lifted at the end of this iteration.
    const std::vector<StepResult> done = runner_->collect();
    for (size_t i = 0; i < done.size(); ++i)
      if (auto outcome = finish(done[i], i + 1 == done.size())) {
        state_.elapsed_s = elapsed();
        return *outcome;
      }
  }
  // A run resumed from its final checkpoint has logged its closing summary already.
  if (state_.step >= first_step) summarize(state_.step);
  save();
  state_.elapsed_s = elapsed();
  return {state_.step, "completed", false};
}

}  // namespace statelab
