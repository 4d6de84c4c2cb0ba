// Trainer: batches, steps, metrics, divergence diagnosis.
#include "lab/trainer.hpp"

#include <chrono>
#include <cstdio>
#include <cmath>
#include <sstream>

#include "kernels/error.hpp"
#include "tasks/registry.hpp"

namespace statelab {

int64_t eval_max_tokens(const EvalConfig& e) {
  int64_t most = 0;
  for (int L = e.lengths[0]; L <= e.lengths[1]; L += e.length_step)
    most = std::max(most, std::clamp<int64_t>(e.batch_tokens / L, 1, e.samples) * L);
  return most;
}

Trainer::Trainer(const RunConfig& cfg)
    : cfg_(cfg),
      task_(make_task(cfg.task.name)),
      readout_(readout_from_name(cfg.task.readout)),
      train_lengths_(task_->lengths_in(cfg.task.train_lengths[0], cfg.task.train_lengths[1])),
      optimizer_(cfg.train) {
  SL_CHECK(!train_lengths_.empty(), "no accepted training length (validated by the config)");
  const int64_t train_tokens = int64_t(cfg.train.batch) * train_lengths_.back();
  model_ = std::make_unique<Model<float>>(cfg.model, task_->vocab().size(),
                                          std::max(train_tokens, eval_max_tokens(cfg.eval)),
                                          train_tokens);
  model_->params().initialize(cfg.train.seed);
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

TrainOutcome Trainer::train(const std::vector<Observer*>& observers) {
  using Clock = std::chrono::steady_clock;
  const auto& tc = cfg_.train;
  const auto start = Clock::now();
  auto interval_start = start;
  double interval_loss = 0, interval_correct = 0, interval_count = 0, interval_tokens = 0;
  int good_checks = 0;
  EvalConfig check = cfg_.eval;  // held-out accuracy at the longest training length
  check.lengths = {train_lengths_.back(), train_lengths_.back()};
  Batch batch;
  for (int step = 1; step <= tc.steps; ++step) {
    sample_batch(step, batch);
    const Pass p{tc.batch, batch.length};
    model_->params().zero_grads();
    model_->forward(batch.tokens.data(), p);
    const auto stats = model_->loss(batch.targets.data(), true);
    const double loss = stats.loss_sum / double(std::max<int64_t>(stats.count, 1));
    if (!std::isfinite(loss))
      throw Error("training diverged at step " + std::to_string(step) + ": loss is " +
                  std::to_string(loss) + "; " + locate_non_finite(p));
    model_->backward();
    const double lr = learning_rate(tc, step);
    const double grad_norm = optimizer_.step(model_->params(), lr);
    if (!std::isfinite(grad_norm))
      throw Error("training diverged at step " + std::to_string(step) +
                  ": gradient norm is not finite; " + locate_non_finite(p));

    interval_loss += stats.loss_sum;
    interval_correct += double(stats.correct);
    interval_count += double(stats.count);
    interval_tokens += double(p.tokens());
    const auto now = Clock::now();
    StepMetrics m;
    m.step = step;
    m.total_steps = tc.steps;
    m.loss = loss;
    m.train_accuracy = double(stats.correct) / double(std::max<int64_t>(stats.count, 1));
    m.lr = lr;
    m.grad_norm = grad_norm;
    m.elapsed_s = std::chrono::duration<double>(now - start).count();
    const double interval_s = std::chrono::duration<double>(now - interval_start).count();
    m.tokens_per_s = interval_s > 0 ? interval_tokens / interval_s : 0;
    for (auto* o : observers) o->on_step(m);
    if (step % tc.log_every == 0 || step == tc.steps) {
      m.loss = interval_loss / std::max(interval_count, 1.0);
      m.train_accuracy = interval_correct / std::max(interval_count, 1.0);
      for (auto* o : observers) o->on_log(m);
      interval_start = now;
      interval_loss = interval_correct = interval_count = interval_tokens = 0;
    }
    if (tc.eval_every > 0 && step % tc.eval_every == 0 && step < tc.steps) {
      const double acc = evaluate_on(check).per_length.at(0).accuracy;
      for (auto* o : observers) o->on_check(step, check.lengths[0], acc);
      good_checks = acc >= tc.early_stop_accuracy ? good_checks + 1 : 0;
      if (tc.early_stop_evals > 0 && good_checks >= tc.early_stop_evals) {
        char reason[160];
        std::snprintf(reason, sizeof reason,
                      "early_stop: held-out accuracy at length %d >= %g for %d evaluations",
                      check.lengths[0], tc.early_stop_accuracy, good_checks);
        return {step, reason};
      }
    }
  }
  return {tc.steps, "completed"};
}

namespace {
template <typename S>
int64_t first_non_finite(const S* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}
}  // namespace

std::string Trainer::locate_non_finite(Pass p) {
  const int64_t D = cfg_.model.d_model;
  for (int i = 0; i <= model_->n_blocks(); ++i) {
    const auto stream = model_->residual(i);
    const int64_t at = first_non_finite(stream.data, stream.numel());
    if (at < 0) continue;
    std::ostringstream s;
    const int64_t token = at / D;
    s << "first non-finite activation: "
      << (i == 0 ? std::string("the embedding output")
                 : "the output of block " + std::to_string(i - 1) + " (" +
                       model_->block(i - 1).cell() + ")")
      << " at batch row " << token / p.T << ", time step " << token % p.T << ", unit " << at % D;
    return s.str();
  }
  auto& ps = model_->params();
  for (size_t id = 0; id < ps.infos().size(); ++id) {
    const auto& info = ps.infos()[id];
    if (first_non_finite(ps.values() + info.offset, info.shape.numel()) >= 0)
      return "parameter " + info.name + " is not finite";
    if (first_non_finite(ps.grads() + info.offset, info.shape.numel()) >= 0)
      return "the gradient of " + info.name + " is not finite (first in declaration order)";
  }
  return "activations and gradients are finite; the loss itself overflowed";
}

}  // namespace statelab
