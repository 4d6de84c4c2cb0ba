// Parity: is the number of ones in a bit string odd? The canonical state-tracking task: the
// state is one bit, flipped by every 1. Encoded as the xLSTM harness does (PAD 0, bits 1/2),
// answered next-token style at the last input position.
#pragma once

#include "tasks/task.hpp"

namespace statelab {

class ParityTask final : public Task {
 public:
  ParityTask();
  std::string name() const override { return "parity"; }
  std::string definition() const override;
  const Vocab& vocab() const override { return vocab_; }
  double chance() const override { return 0.5; }
  void sample_sequence(Rng& rng, int length, int32_t* tokens, int32_t* targets,
                       int32_t* latent) const override;

  static constexpr int32_t kZero = 1, kOne = 2;

 private:
  Vocab vocab_;
};

}  // namespace statelab
