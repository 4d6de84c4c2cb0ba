// Batch assembly shared by every task: rows drawn one after another from the same generator, so
// a batch is the same whichever way it is later split.
#include "tasks/task.hpp"

#include <algorithm>

namespace statelab {

void Task::sample(Rng& rng, int batch, int length, Batch& out) const {
  out.resize(batch, length);
  for (int b = 0; b < batch; ++b) {
    const size_t row = size_t(b) * length;
    sample_sequence(rng, length, &out.tokens[row], &out.targets[row], &out.latent[row]);
  }
}

void Task::sample_mixed(Rng& rng, int batch, int lo, int hi, Batch& out) const {
  std::vector<int32_t> lengths(static_cast<size_t>(batch));
  for (auto& n : lengths) n = int32_t(rng.uniform_int(lo, hi));
  const int longest = *std::max_element(lengths.begin(), lengths.end());
  out.resize(batch, longest);
  out.lengths = lengths;
  for (int b = 0; b < batch; ++b) {
    const size_t row = size_t(b) * longest;
    sample_sequence(rng, lengths[size_t(b)], &out.tokens[row], &out.targets[row], &out.latent[row]);
  }
}

}  // namespace statelab
