// The training-time probe summarizer.
#include "probes/training_summary.hpp"

#include <algorithm>
#include <memory>

#include "probes/probe_pass.hpp"
#include "probes/summary.hpp"

namespace statelab {

std::function<nlohmann::json(int)> make_training_summarizer(Trainer& trainer, int samples,
                                                            int max_length) {
  const RunConfig& cfg = trainer.config();
  const Task& task = trainer.task();
  // The longest length the task can form within both limits.
  std::vector<int> lengths = task.lengths_in(1, std::min(cfg.eval.lengths[1], max_length));
  SL_CHECK(!lengths.empty(), "no length for the probe summary");
  const int length = lengths.back();
  auto batch = std::make_shared<Batch>();
  Rng rng(cfg.eval.seed, kStreamEvalData, uint64_t(length));
  task.sample(rng, samples, length, readout_from_name(cfg.task.readout), *batch);
  auto copy =
      std::make_shared<Model<float>>(cfg.model, task.vocab().size(), int64_t(samples) * length, 0);
  return [&trainer, batch, copy](int) {
    auto& source = trainer.model().params();
    source.to_host();
    std::copy_n(source.host_values(), source.size(), copy->params().values());
    ProbeSummary summary;
    summary.add(probe_batch(*copy, *batch, 0).series());
    return summary.key_figures();
  };
}

}  // namespace statelab
