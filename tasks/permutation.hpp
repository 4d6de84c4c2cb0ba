// Word problems over permutation groups (S3, S5, A5; Merrill, Petty & Sabharwal 2024, "The
// Illusion of State"): each token is a group element drawn uniformly, the answer after every
// prefix is the running product. S5 and A5 are the NC1-complete cases a constant-depth model
// cannot track; S3 is the smallest non-abelian one. One class serves every group: the group is
// enumerated once and its products tabulated, so labelling is a table walk per token.
#pragma once

#include <memory>
#include <vector>

#include "tasks/task.hpp"

namespace statelab {

// Permutations of {0..n-1} in one-line notation: the token "120" is the map 0->1, 1->2, 2->0.
// Product: a·b means "apply a, then b", (a·b)(i) = b(a(i)). The answer at position t is
// s_t = g_1·g_2·…·g_t, i.e. s_t(i) = g_t(s_{t-1}(i)) with s_0 the identity. The opposite order
// is the same task with every element relabelled by its inverse, so difficulty does not depend
// on the choice; what matters is that label() and every evaluator agree on it.
// Elements are numbered in lexicographic order of their one-line notation (the order of
// Python's itertools.permutations, which the Merrill et al. generator enumerates); the
// alternating group keeps only the even permutations, in the same order. Index 0 is the
// identity in every group. Token id = element index + 1 (id 0 is PAD).
class PermutationGroupTask final : public Task {
 public:
  // degree n in 3..6; even_only: A_n instead of S_n. Named "s<n>" or "a<n>".
  PermutationGroupTask(int degree, bool even_only);

  std::string name() const override { return name_; }
  std::string definition() const override;
  std::string latent_definition() const override;
  std::string family() const override { return "state tracking"; }
  const Vocab& vocab() const override { return vocab_; }
  std::vector<int32_t> answer_tokens() const override;
  // Uniform inputs make every prefix product uniform over the group, at every length >= 1.
  double chance() const override { return 1.0 / order(); }
  bool has_running_answer() const override { return true; }
  void generate(Rng& rng, int length, int32_t* tokens) const override;
  void label(const int32_t* tokens, int length, int32_t* answers, int32_t* latent) const override;

  int degree() const { return degree_; }
  int order() const { return int(elements_.size()); }

 private:
  std::string name_;
  int degree_;
  bool even_only_;
  std::vector<std::vector<int>> elements_;  // one-line notation per element index
  std::vector<int32_t> product_;            // product_[a * order + b] = index of a·b
  Vocab vocab_;
};

std::unique_ptr<Task> make_s3_task();
std::unique_ptr<Task> make_s5_task();
std::unique_ptr<Task> make_a5_task();

}  // namespace statelab
