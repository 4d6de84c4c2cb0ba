// The regular (finite-state) tasks of the Chomsky-hierarchy benchmark: even pairs, cycle
// navigation and modular arithmetic without brackets. Each is solved by a small automaton, so
// every prefix has an answer and the automaton's state is the latent a probe should find.
// Follows google-deepmind/neural_networks_chomsky_hierarchy tasks/regular/ (distributions) and
// the xLSTM harness (answer at the last input, "=" before it); deviations are named per class.
#pragma once

#include <memory>

#include "tasks/task.hpp"

namespace statelab {

// Even pairs: a/b uniform; the answer is whether "ab" and "ba" occur an even number of times in
// total, which holds exactly when the first symbol equals the last. Chomsky `even_pairs.py`
// reads bits 0/1 and answers a class (0 = even); xLSTM reuses the symbol tokens as answers.
// Here the answer tokens are T (even) and F (odd), distinct from the inputs a/b, so that an
// answer cannot be mistaken for an input; the running answer at every prefix is our addition.
class EvenPairsTask final : public Task {
 public:
  EvenPairsTask();
  std::string name() const override { return "even_pairs"; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "state tracking"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kTrue, kFalse}; }
  // Exactly 1/2 at every length >= 2 (first and last symbol independent and uniform).
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kA = 1, kB = 2, kTrue = 3, kFalse = 4;

 private:
  Vocab vocab_;
};

// Cycle navigation: moves -1, 0, +1 uniform on a cycle of 5 positions, starting at p0; the
// answer is the current position p0..p4. As Chomsky `cycle_navigation.py`; the xLSTM harness
// uses the same moves with position tokens after the move tokens, as here.
class CycleNavigationTask final : public Task {
 public:
  CycleNavigationTask();
  std::string name() const override { return "cycle_navigation"; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "state tracking"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override;
  // The answer distribution depends on the length: chance is exact for the training regime,
  // lengths uniform over the accepted ones in [kChanceLengthLo, kChanceLengthHi].
  double chance() const override { return chance_; }
  bool has_running_answer() const override { return true; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int kChanceLengthLo = 3, kChanceLengthHi = 40;  // the reference harness
  static constexpr int kCycle = 5;
  // Moves -1, 0, +1 are kLeft, kStay, kRight (move = id - kStay); position k is kPosition0 + k.
  static constexpr int32_t kLeft = 1, kStay = 2, kRight = 3, kPosition0 = 4;

 private:
  Vocab vocab_;
  double chance_;
};

// Modular arithmetic without brackets, modulus 5: "d op d ... op d =" with digits 0..4 and the
// operators + - * drawn uniformly, * binding tighter than + and -, and a - b = a + (-b). As
// Chomsky `modular_arithmetic.py` (expression of odd length) followed by "=" as in the xLSTM
// harness, so an input has even length >= 2; other lengths are refused where Chomsky shortens
// them by one. The answer (a digit token) is the value of the expression read so far, defined
// after every digit and at "=" (running answers are our addition); operators have no answer.
class ModularArithmeticTask final : public Task {
 public:
  ModularArithmeticTask();
  std::string name() const override { return "modular_arithmetic"; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "state tracking"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override;
  // Exact for the training regime, as for cycle navigation (short expressions favour 0).
  double chance() const override { return chance_; }
  bool has_running_answer() const override { return true; }
  bool accepts_length(int length) const override { return length >= 2 && length % 2 == 0; }
  std::string length_rule() const override { return "even lengths >= 2"; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int kChanceLengthLo = 3, kChanceLengthHi = 40;  // the reference harness
  static constexpr int kModulus = 5;
  static constexpr int32_t kDigit0 = 1;  // digit d is kDigit0 + d
  static constexpr int32_t kPlus = 6, kMinus = 7, kTimes = 8, kEquals = 9;

 private:
  Vocab vocab_;
  double chance_;
};

std::unique_ptr<Task> make_even_pairs_task();
std::unique_ptr<Task> make_cycle_navigation_task();
std::unique_ptr<Task> make_modular_arithmetic_task();

}  // namespace statelab
