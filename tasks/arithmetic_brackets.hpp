// Modular arithmetic with brackets (modulus 5), the context-free task of the Chomsky benchmark:
// Chomsky `tasks/dcf/modular_arithmetic_brackets.py` with mult=True (as its experiments/
// constants.py builds it), operators {+, -, *}; Grazzi et al. use {+, -}. Deviation: "=" follows
// the expression (xLSTM harness style) and the answer is read there. Explicit stacks bound the
// nesting by memory, not the call stack; checked against a recursive evaluator in the tests.
#pragma once

#include <memory>

#include "tasks/task.hpp"

namespace statelab {

// The generator builds an expression of exactly n = length - 1 tokens: n = 1: d; 2: - d;
// 3: ( d ); 4: ( - d ); n >= 5: ( L op R ) with |L| uniform in 1..n-4, |R| = n - |L| - 3, op
// uniform. label() accepts exactly that language followed by "=":
//   E := d | - d | ( E op E ) | ( d ) | ( - d )
// so "- ( ... )" and "( ( ... ) )" are rejected, as the generator never forms them.
class ModularArithmeticBracketsTask final : public Task {
 public:
  ModularArithmeticBracketsTask();
  std::string name() const override { return "modular_arithmetic_brackets"; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "context-free"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override;
  // Exact for the training regime: input lengths uniform over [kChanceLengthLo,
  // kChanceLengthHi]; products pull the value toward 0, more so at short lengths.
  double chance() const override { return chance_; }
  bool has_running_answer() const override { return false; }
  bool accepts_length(int length) const override { return length >= 2; }
  std::string length_rule() const override { return "length >= 2 (expression + '=')"; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int kChanceLengthLo = 3, kChanceLengthHi = 40;  // the reference harness
  static constexpr int kModulus = 5;
  static constexpr int32_t kDigit0 = 1;  // digit d is kDigit0 + d
  static constexpr int32_t kPlus = 6, kMinus = 7, kTimes = 8, kOpen = 9, kClose = 10,
                           kEquals = 11;

 private:
  Vocab vocab_;
  double chance_;
};

std::unique_ptr<Task> make_modular_arithmetic_brackets_task();

}  // namespace statelab
