// Held-out evaluation per length, its summary, JSON and table.
#include "lab/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "cells/catalog.hpp"
#include "kernels/rng.hpp"

namespace statelab {

namespace {

// Rows whose argmax at their last position is their final answer (logits [B, T, V] on the host).
int64_t final_correct(const float* logits, int64_t V, const Batch& batch) {
  int64_t correct = 0;
  for (int b = 0; b < batch.batch; ++b) {
    const size_t at = size_t(b) * batch.length + size_t(batch.lengths[size_t(b)] - 1);
    const float* row = logits + int64_t(at) * V;
    correct += std::max_element(row, row + V) - row == batch.targets[at];
  }
  return correct;
}

}  // namespace

EvalResult evaluate(Model<float>& model, const Task& task, Readout readout, const EvalConfig& e,
                    const std::vector<int>& train_lengths) {
  EvalResult r;
  r.task = task.name();
  r.cell = cell_name_of(model.config().blocks);
  r.family = task.family();
  r.readout = readout == Readout::final ? "final" : "per_token";
  r.train_lengths = train_lengths;
  r.chance = task.chance();
  Batch batch;
  for (int L : task.lengths_in(e.lengths[0], e.lengths[1], e.length_step)) {
    Rng rng(e.seed, kStreamEvalData, uint64_t(L));
    const int per_batch = int(std::clamp<int64_t>(e.batch_tokens / L, 1, e.samples));
    cpu::LossStats total;
    int64_t finals = 0;
    for (int done = 0; done < e.samples; done += per_batch) {
      const int b = std::min(per_batch, e.samples - done);
      task.sample(rng, b, L, readout, batch);
      model.forward(batch.tokens.data(), Pass::evaluation(b, L));
      const auto s = model.loss(batch.targets.data(), false);
      total.loss_sum += s.loss_sum;
      total.count += s.count;
      total.correct += s.correct;
      finals += final_correct(model.host_logits(), model.vocab(), batch);
    }
    const double n = double(std::max<int64_t>(total.count, 1));
    r.per_length.push_back({L, double(total.correct) / n, total.count, total.loss_sum / n,
                            double(finals) / e.samples});
  }
  summarize(r);
  return r;
}

void summarize(EvalResult& r) {
  const int hi = r.train_lengths.at(1);
  double sum = 0;
  int count = 0;
  for (const auto& x : r.per_length)
    if (x.length > hi) sum += x.accuracy, ++count;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.mean_accuracy_beyond_train = count ? sum / count : nan;
  r.scaled_accuracy_beyond_train =
      count ? (r.mean_accuracy_beyond_train - r.chance) / (1.0 - r.chance) : nan;
  r.solved_up_to = 0;
  std::vector<LengthAccuracy> sorted = r.per_length;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.length < b.length; });
  for (const auto& x : sorted) {
    if (x.accuracy < kSolvedAccuracy) break;
    r.solved_up_to = x.length;
  }
}

namespace {
nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }
}  // namespace

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json per = nlohmann::json::array();
  for (const auto& x : r.per_length)
    per.push_back({{"length", x.length},
                   {"accuracy", x.accuracy},
                   {"n", x.n},
                   {"loss", x.loss},
                   {"final_accuracy", x.final_accuracy}});
  return {{"task", r.task},
          {"cell", r.cell},
          {"family", r.family},
          {"readout", r.readout},
          {"train_lengths", r.train_lengths},
          {"chance", r.chance},
          {"per_length", per},
          {"mean_accuracy_beyond_train", number_or_null(r.mean_accuracy_beyond_train)},
          {"scaled_accuracy_beyond_train", number_or_null(r.scaled_accuracy_beyond_train)},
          {"solved_up_to", r.solved_up_to},
          {"solved_threshold", kSolvedAccuracy}};
}

std::string format_eval_table(const EvalResult& r) {
  constexpr int kBucket = 40;
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%s on %s, trained on lengths %d-%d (chance %.2f)\n",
                r.cell.c_str(), r.task.c_str(), r.train_lengths[0], r.train_lengths[1], r.chance);
  out += line;
  out += "  lengths      mean acc   min acc   lengths evaluated\n";
  int max_len = 0;
  for (const auto& x : r.per_length) max_len = std::max(max_len, x.length);
  for (int lo = 1; lo <= max_len; lo += kBucket) {
    const int hi = lo + kBucket - 1;
    double sum = 0, mn = 1;
    int k = 0;
    for (const auto& x : r.per_length)
      if (x.length >= lo && x.length <= hi) sum += x.accuracy, mn = std::min(mn, x.accuracy), ++k;
    if (!k) continue;
    std::snprintf(line, sizeof line, "  %4d-%-4d    %6.3f    %6.3f    %d%s\n", lo, hi, sum / k, mn,
                  k, hi <= r.train_lengths[1] ? "  (within training lengths)" : "");
    out += line;
  }
  if (std::isfinite(r.mean_accuracy_beyond_train)) {
    std::snprintf(line, sizeof line,
                  "  beyond training (> %d): mean accuracy %.3f, scaled accuracy %.3f\n",
                  r.train_lengths[1], r.mean_accuracy_beyond_train,
                  r.scaled_accuracy_beyond_train);
    out += line;
  } else {
    out += "  no evaluated length exceeds the training maximum\n";
  }
  std::snprintf(line, sizeof line, "  solved up to: %d (every evaluated length up to it >= %.2f)\n",
                r.solved_up_to, kSolvedAccuracy);
  out += line;
  return out;
}

}  // namespace statelab
