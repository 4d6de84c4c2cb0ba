// The task interface: a generator of token batches with answers and the latent state at every
// position. Tasks are pure data: no model, no training. Randomness comes only from the Rng
// handed in, so a batch is a function of (seed, stream, index) and reproduces anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/rng.hpp"

namespace statelab {

struct Vocab {
  std::vector<std::string> names;  // printable name per token id; id 0 is PAD
  int size() const { return int(names.size()); }
};

// One batch of equal-length sequences, row-major [batch, length].
struct Batch {
  int batch = 0;
  int length = 0;
  std::vector<int32_t> tokens;   // model input
  std::vector<int32_t> targets;  // answer token where the loss applies, kIgnore elsewhere
  std::vector<int32_t> latent;   // the task's latent state after each position (for probes)
  static constexpr int32_t kIgnore = -1;

  void resize(int b, int t) {
    batch = b;
    length = t;
    tokens.assign(size_t(b) * t, 0);
    targets.assign(size_t(b) * t, kIgnore);
    latent.assign(size_t(b) * t, 0);
  }
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual std::string definition() const = 0;  // one line, for `lab tasks` and reports
  virtual const Vocab& vocab() const = 0;
  virtual double chance() const = 0;           // accuracy of the best constant guess
  virtual int min_length() const { return 1; }
  // Fills `out` with `batch` sequences of `length` input tokens each.
  virtual void sample(Rng& rng, int batch, int length, Batch& out) const = 0;
};

}  // namespace statelab
