// Counting tasks: majority, count equality, aⁿbⁿ membership and count mod 3. No published
// generator exists for these versions (REFERENCES.md), so each is defined here and in
// counting.cpp. The generators balance the final answer (count_mod3: uniform to within
// 2^-L) and draw negatives that are near misses, so a coarse count cannot answer. Majority,
// count_equality and anbn each draw one length parity only, so the length is never a cue.
// tests/tasks/test_counting.cpp checks them against counts and a regex over decoded strings.
#pragma once

#include <memory>

#include "tasks/task.hpp"

namespace statelab {

// Which symbol is more frequent in an odd-length string over {a, b}.
class MajorityTask final : public Task {
 public:
  MajorityTask();
  std::string name() const override { return "majority"; }
  std::string definition() const override;
  std::string latent_definition() const override { return "#a - #b of the prefix"; }
  std::string family() const override { return "counting"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kA, kB}; }
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  bool accepts_length(int length) const override { return length >= 1 && length % 2 == 1; }
  std::string length_rule() const override { return "odd lengths >= 1 (no ties)"; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kA = 1, kB = 2;

 private:
  Vocab vocab_;
};

// Whether a string over {a, b} holds as many a's as b's.
class CountEqualityTask final : public Task {
 public:
  CountEqualityTask();
  std::string name() const override { return "count_equality"; }
  std::string definition() const override;
  std::string latent_definition() const override { return "#a - #b of the prefix"; }
  std::string family() const override { return "counting"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kTrue, kFalse}; }
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  bool accepts_length(int length) const override { return length >= 2 && length % 2 == 0; }
  std::string length_rule() const override { return "even lengths >= 2"; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kA = 1, kB = 2, kTrue = 3, kFalse = 4;

 private:
  Vocab vocab_;
};

// Membership in { aⁿbⁿ : n >= 1 }, against near misses of the same length.
class AnbnTask final : public Task {
 public:
  AnbnTask();
  std::string name() const override { return "anbn"; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "counting"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kTrue, kFalse}; }
  double chance() const override { return 0.5; }
  bool has_running_answer() const override { return true; }
  bool accepts_length(int length) const override { return length >= 2 && length % 2 == 0; }
  std::string length_rule() const override { return "even lengths >= 2 (L = 2n)"; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kA = 1, kB = 2, kTrue = 3, kFalse = 4;
  // The latent value once the prefix can no longer become a^k b^k. The live counter is never
  // negative, so -1 cannot be mistaken for a count, and it stays next to the live range for
  // linear probes.
  static constexpr int32_t kDead = -1;

 private:
  Vocab vocab_;
};

// The number of ones in a bit string, mod 3.
class CountMod3Task final : public Task {
 public:
  CountMod3Task();
  std::string name() const override { return "count_mod3"; }
  std::string definition() const override;
  std::string latent_definition() const override { return "#1s of the prefix mod 3 (0, 1, 2)"; }
  std::string family() const override { return "counting"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override { return {kR0, kR1, kR2}; }
  double chance() const override;
  bool has_running_answer() const override { return true; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  static constexpr int32_t kZero = 1, kOne = 2, kR0 = 3, kR1 = 4, kR2 = 5;

 private:
  Vocab vocab_;
};

std::unique_ptr<Task> make_majority_task();
std::unique_ptr<Task> make_count_equality_task();
std::unique_ptr<Task> make_anbn_task();
std::unique_ptr<Task> make_count_mod3_task();

}  // namespace statelab
