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

// One batch, row-major [batch, length]. Rows may be shorter than `length`: a row of n input
// tokens is followed by PAD (token 0) with no target, as in the reference harness.
struct Batch {
  int batch = 0;
  int length = 0;
  std::vector<int32_t> tokens;   // model input
  std::vector<int32_t> targets;  // answer token where the loss applies, kIgnore elsewhere
  std::vector<int32_t> latent;   // the task's latent state after each position, kIgnore on PAD
  std::vector<int32_t> lengths;  // input tokens per row
  static constexpr int32_t kIgnore = -1;

  void resize(int b, int t) {
    batch = b;
    length = t;
    tokens.assign(size_t(b) * t, 0);
    targets.assign(size_t(b) * t, kIgnore);
    latent.assign(size_t(b) * t, kIgnore);
    lengths.assign(size_t(b), t);
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
  // Writes one sequence of `length` input tokens (tokens, targets and latent each hold `length`
  // entries, targets pre-filled with kIgnore).
  virtual void sample_sequence(Rng& rng, int length, int32_t* tokens, int32_t* targets,
                               int32_t* latent) const = 0;

  // `batch` sequences of exactly `length` tokens.
  void sample(Rng& rng, int batch, int length, Batch& out) const;
  // `batch` sequences whose lengths are drawn uniformly from [lo, hi] row by row, padded to the
  // longest; the reference harness's training batches.
  void sample_mixed(Rng& rng, int batch, int lo, int hi, Batch& out) const;
};

}  // namespace statelab
