// The flip-flop language (Liu et al. 2023, "Exposing Attention Glitches with Flip-Flop Language
// Modeling"): a 1-bit register driven by instruction/bit pairs, w (write the bit), i (ignore
// the bit), r (the bit equals the register). Mostly ignores, so a read must recall a write far
// back past many distractor bits: a memory task a recurrent state solves exactly and attention
// solves only approximately. The published FFL(0.8) distribution, answered next-token style.
#pragma once

#include <memory>

#include "tasks/task.hpp"

namespace statelab {

// Input (length 2k + 1, k >= 1): k instruction/bit pairs, the first a write, then a final lone
// "r" whose bit is the answer: the last written bit. The paper's FFL(T, p) sequence of T
// instructions (first w, last r) is exactly our input of length 2T - 1 plus its answer.
// Inner instructions are i.i.d. with the constants below (the paper's FFL(0.8): 80% ignore,
// 10% write, 10% read, as in the released synthseq/flipflop data); write and ignore bits are
// uniform, a read bit is the register. Running answers sit at every "r" (the bit that must
// follow); the paper likewise scores only the read bits, the others being random.
class FlipFlopTask final : public Task {
 public:
  FlipFlopTask();
  std::string name() const override { return "flip_flop"; }
  std::string definition() const override;
  std::string latent_definition() const override {
    return "the last written bit (0 or 1), -1 before the first write's bit is read";
  }
  std::string family() const override { return "memory"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kBit0, kBit1}; }
  // The final answer is the bit of the last write, and every write bit is uniform.
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  bool accepts_length(int length) const override { return length >= 3 && length % 2 == 1; }
  std::string length_rule() const override { return "odd lengths >= 3"; }
  // Throws ConfigError for a length accepts_length() rejects.
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  // Token ids in the order of the released data's tokenizer (w, r, i, 0, 1), shifted by PAD.
  static constexpr int32_t kWriteOp = 1, kReadOp = 2, kIgnoreOp = 3, kBit0 = 4, kBit1 = 5;
  // Instruction probabilities after the first (always w) and before the last (always r).
  static constexpr double kIgnoreProbability = 0.8;
  static constexpr double kWriteProbability = 0.1;
  static constexpr double kReadProbability = 0.1;

 private:
  Vocab vocab_;
};

std::unique_ptr<Task> make_flip_flop_task();

}  // namespace statelab
