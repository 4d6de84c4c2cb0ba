// The S3, S5 and A5 word problems against an independent evaluator: the group is re-enumerated
// here by counting through digit strings, every running product is recomputed by composing
// explicit permutation arrays parsed from the decoded tokens (earlier element applied first),
// and A5 closure is checked by cycle parity. Also: uniform answers, determinism, round trips
// and the rejection of inputs that are not group elements.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "tasks/permutation.hpp"

namespace statelab {
namespace {

using Perm = std::vector<int>;

struct GroupCase {
  std::unique_ptr<Task> (*make)();
  std::string name;
  int degree;
  bool even_only;
  int order;
};

const std::vector<GroupCase>& group_cases() {
  static const std::vector<GroupCase> cases = {
      {make_s3_task, "s3", 3, false, 6},
      {make_s5_task, "s5", 5, false, 120},
      {make_a5_task, "a5", 5, true, 60},
  };
  return cases;
}

// Parity from the cycle decomposition: a k-cycle is k - 1 transpositions.
bool is_even_by_cycles(const Perm& p) {
  std::vector<bool> seen(p.size(), false);
  int transpositions = 0;
  for (size_t start = 0; start < p.size(); ++start) {
    int length = 0;
    for (size_t i = start; !seen[i]; i = size_t(p[i])) {
      seen[i] = true;
      ++length;
    }
    if (length > 0) transpositions += length - 1;
  }
  return transpositions % 2 == 0;
}

std::string to_name(const Perm& p) {
  std::string s;
  for (int v : p) s += std::to_string(v);
  return s;
}

Perm parse(const std::string& name, int degree) {
  EXPECT_EQ(int(name.size()), degree) << name;
  Perm p;
  for (char c : name) p.push_back(c - '0');
  Perm sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < degree; ++i) EXPECT_EQ(sorted[size_t(i)], i) << name << " is a permutation";
  return p;
}

// The group in lexicographic order, found by counting through all base-n digit strings of
// length n in increasing order and keeping the permutations (even ones only for A_n).
std::vector<std::string> enumerate_group(int degree, bool even_only) {
  int total = 1;
  for (int i = 0; i < degree; ++i) total *= degree;
  std::vector<std::string> out;
  for (int code = 0; code < total; ++code) {
    Perm digits(static_cast<size_t>(degree));
    int rest = code;
    for (int i = degree - 1; i >= 0; --i) {
      digits[size_t(i)] = rest % degree;
      rest /= degree;
    }
    Perm sorted = digits;
    std::sort(sorted.begin(), sorted.end());
    bool perm = true;
    for (int i = 0; i < degree; ++i) perm = perm && sorted[size_t(i)] == i;
    if (perm && (!even_only || is_even_by_cycles(digits))) out.push_back(to_name(digits));
  }
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

TEST(PermutationTask, FactoriesNameTheGroupsAndEnumerateThemLexicographically) {
  for (const auto& c : group_cases()) {
    const auto task = c.make();
    EXPECT_EQ(task->name(), c.name);
    EXPECT_EQ(task->family(), "state tracking");
    EXPECT_TRUE(task->has_running_answer());
    EXPECT_EQ(task->vocab().size(), 1 + c.order);
    EXPECT_EQ(task->vocab().names[0], "<pad>");
    const auto expected = enumerate_group(c.degree, c.even_only);
    ASSERT_EQ(int(expected.size()), c.order);
    for (int k = 0; k < c.order; ++k)
      EXPECT_EQ(task->vocab().names[size_t(k + 1)], expected[size_t(k)]) << c.name << " " << k;
    Perm identity(static_cast<size_t>(c.degree));
    for (int i = 0; i < c.degree; ++i) identity[size_t(i)] = i;
    EXPECT_EQ(task->vocab().names[1], to_name(identity)) << "the identity is element 0";
    const auto answers = task->answer_tokens();
    ASSERT_EQ(int(answers.size()), c.order);
    for (int k = 0; k < c.order; ++k) EXPECT_EQ(answers[size_t(k)], k + 1);
    EXPECT_DOUBLE_EQ(task->chance(), 1.0 / c.order);
    EXPECT_TRUE(task->accepts_length(1));
    EXPECT_FALSE(task->definition().empty());
    EXPECT_FALSE(task->latent_definition().empty());
  }
}

TEST(PermutationTask, RunningProductMatchesExplicitCompositionAtEveryPosition) {
  for (const auto& c : group_cases()) {
    const auto task = c.make();
    const auto elements = enumerate_group(c.degree, c.even_only);
    std::map<std::string, int> index;
    for (size_t k = 0; k < elements.size(); ++k) index[elements[k]] = int(k);
    for (int length : {1, 2, 7, 10, 500}) {
      const int rows = 1000;
      Rng rng(17, kStreamTrainData, uint64_t(length));
      Batch batch;
      task->sample(rng, rows, length, Readout::per_token, batch);
      for (int b = 0; b < rows; ++b) {
        const int32_t* row = &batch.tokens[size_t(b) * size_t(length)];
        const auto names = split(task->decode(row, length));
        ASSERT_EQ(int(names.size()), length);
        Perm state(static_cast<size_t>(c.degree));
        for (int i = 0; i < c.degree; ++i) state[size_t(i)] = i;
        for (int t = 0; t < length; ++t) {
          const Perm g = parse(names[size_t(t)], c.degree);
          if (c.even_only) {
            ASSERT_TRUE(is_even_by_cycles(g)) << "A5 inputs are even";
          }
          Perm next(state.size());
          for (size_t i = 0; i < state.size(); ++i) next[i] = g[size_t(state[i])];  // state, then g
          state = next;
          if (c.even_only) {
            ASSERT_TRUE(is_even_by_cycles(state)) << "A5 products stay even";
          }
          const size_t i = size_t(b) * size_t(length) + size_t(t);
          const int32_t target = batch.targets[i];
          ASSERT_GE(target, 1);
          ASSERT_LT(target, task->vocab().size());
          ASSERT_EQ(task->vocab().names[size_t(target)], to_name(state))
              << c.name << " length " << length << " row " << b << " position " << t;
          ASSERT_EQ(batch.latent[i], index.at(to_name(state)));
        }
      }
    }
  }
}

TEST(PermutationTask, FinalReadoutKeepsOnlyTheLastProduct) {
  const auto task = make_s5_task();
  Batch per_token, final_only;
  Rng r1(3, kStreamTrainData, 4), r2(3, kStreamTrainData, 4);
  task->sample(r1, 100, 12, Readout::per_token, per_token);
  task->sample(r2, 100, 12, Readout::final, final_only);
  ASSERT_EQ(per_token.tokens, final_only.tokens);
  EXPECT_EQ(per_token.latent, final_only.latent);
  for (int b = 0; b < 100; ++b)
    for (int t = 0; t < 12; ++t) {
      const size_t i = size_t(b * 12 + t);
      EXPECT_EQ(final_only.targets[i], t == 11 ? per_token.targets[i] : Batch::kIgnore);
    }
}

TEST(PermutationTask, CompositionAppliesTheEarlierElementFirst) {
  const auto task = make_s3_task();
  // 102 swaps 0 and 1, then 021 swaps 1 and 2: 0 -> 1 -> 2, 1 -> 0 -> 0, 2 -> 2 -> 1 = "201".
  // The opposite order would give "120".
  const auto tokens = task->encode("102 021 021 102");
  std::vector<int32_t> answers(tokens.size()), latent(tokens.size());
  task->label(tokens.data(), int(tokens.size()), answers.data(), latent.data());
  EXPECT_EQ(task->decode(answers.data(), int(answers.size())), "102 201 102 012");
  EXPECT_EQ(latent[3], 0) << "back to the identity";
}

TEST(PermutationTask, AnswersAndInputsAreUniformOverTheGroup) {
  for (const auto& c : group_cases()) {
    const auto task = c.make();
    const int rows = 50 * c.order, length = 9;
    Rng rng(9, kStreamTrainData, 0);
    Batch batch;
    task->sample(rng, rows, length, Readout::final, batch);
    std::vector<int> answer_counts(static_cast<size_t>(c.order), 0);
    std::vector<int> input_counts(static_cast<size_t>(c.order), 0);
    for (int b = 0; b < rows; ++b) {
      ++answer_counts[size_t(batch.targets[size_t(b * length + length - 1)] - 1)];
      for (int t = 0; t < length; ++t)
        ++input_counts[size_t(batch.tokens[size_t(b * length + t)] - 1)];
    }
    // Chi-square against uniform, df = order - 1: reject above df + 6 sqrt(2 df).
    const auto chi_square = [&](const std::vector<int>& counts, double total) {
      const double expected = total / c.order;
      double x = 0;
      for (int n : counts) x += (n - expected) * (n - expected) / expected;
      return x;
    };
    const double df = c.order - 1, bound = df + 6 * std::sqrt(2 * df);
    EXPECT_LT(chi_square(answer_counts, rows), bound) << c.name << " final answers";
    EXPECT_LT(chi_square(input_counts, double(rows) * length), bound) << c.name << " inputs";
    const int most = *std::max_element(answer_counts.begin(), answer_counts.end());
    EXPECT_LT(double(most) / rows, 2.0 / c.order) << "no answer class dominates";
  }
}

TEST(PermutationTask, LabelRejectsPadAndOutOfRangeTokensNamingThePosition) {
  for (const auto& c : group_cases()) {
    const auto task = c.make();
    for (int32_t bad : {0, c.order + 1, -3}) {
      std::vector<int32_t> tokens = {1, 2, bad, 1};
      std::vector<int32_t> answers(4), latent(4);
      try {
        task->label(tokens.data(), 4, answers.data(), latent.data());
        FAIL() << c.name << " accepted token " << bad;
      } catch (const ConfigError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(c.name + ": position 3"), std::string::npos) << msg;
        EXPECT_NE(msg.find("one-line notation"), std::string::npos) << msg;
      }
    }
  }
}

TEST(PermutationTask, OddPermutationsAreNotSymbolsOfA5) {
  const auto a5 = make_a5_task();
  EXPECT_EQ(a5->vocab().id("10234"), -1);
  try {
    a5->encode("01234 10234");
    FAIL() << "an odd permutation was encoded as an A5 element";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'10234' at position 2"), std::string::npos) << e.what();
  }
  EXPECT_NE(make_s5_task()->vocab().id("10234"), -1) << "but it is one of S5";
}

}  // namespace
}  // namespace statelab
