// Parity: is the number of ones in a bit string odd? The canonical state-tracking task: the
// state is one bit, flipped by every 1. Encoded as the xLSTM harness does (PAD 0, bits 1/2),
// answered next-token style at the last input position with the bit token of the parity.
#pragma once

#include "tasks/task.hpp"

namespace statelab {

class ParityTask final : public Task {
 public:
  ParityTask();
  std::string name() const override { return "parity"; }
  std::string definition() const override;
  std::string latent_definition() const override { return "parity of the prefix (0 or 1)"; }
  std::string family() const override { return "state tracking"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kZero, kOne}; }
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kZero = 1, kOne = 2;

 private:
  Vocab vocab_;
};

}  // namespace statelab
