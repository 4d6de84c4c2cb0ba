// The counting tasks (majority, count_equality, anbn, count_mod3) checked against evaluators
// written here over the decoded strings: symbol counts, prefix checks, an (a+)(b+) scan.
// Also checked: answers and latents at every position, class balance and the mix of negative
// kinds, accepted lengths, determinism per (seed, index), encode/decode round trips, and the
// errors label() gives for invalid inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "tasks/counting.hpp"

namespace statelab {
namespace {

// Row b of a batch as a string of one character per token ("abba", "0110").
std::string row_string(const Task& task, const Batch& batch, int b) {
  const int n = batch.lengths[size_t(b)];
  std::string text = task.decode(&batch.tokens[size_t(b) * size_t(batch.length)], n), out;
  for (char c : text)
    if (c != ' ') out += c;
  EXPECT_EQ(int(out.size()), n) << "every input symbol is one character: " << text;
  return out;
}

std::string name_of(const Task& task, int32_t id) {
  return id == Batch::kIgnore ? "<ignore>" : task.vocab().names.at(size_t(id));
}

int32_t target(const Batch& batch, int b, int t) {
  return batch.targets[size_t(b) * size_t(batch.length) + size_t(t)];
}
int32_t latent(const Batch& batch, int b, int t) {
  return batch.latent[size_t(b) * size_t(batch.length) + size_t(t)];
}

// log C(n, k) / 2^n, for exact class probabilities of uniform strings.
double binomial_probability(int n, int k) {
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) -
                  n * std::log(2.0));
}

// The ConfigError label() throws for `tokens`, or "" if it accepts them.
std::string label_error(const Task& task, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> answers(tokens.size()), latents(tokens.size());
  try {
    task.label(tokens.data(), int(tokens.size()), answers.data(), latents.data());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

void expect_mentions(const std::string& message, const std::vector<std::string>& parts) {
  ASSERT_FALSE(message.empty()) << "label accepted an invalid input";
  for (const auto& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

std::vector<std::unique_ptr<Task>> all_counting_tasks() {
  std::vector<std::unique_ptr<Task>> tasks;
  tasks.push_back(make_majority_task());
  tasks.push_back(make_count_equality_task());
  tasks.push_back(make_anbn_task());
  tasks.push_back(make_count_mod3_task());
  return tasks;
}

// ---- majority ----

TEST(Majority, AnswerIsTheMoreFrequentSymbolAndEveryPrefixHasItsMajorityOrNoTarget) {
  MajorityTask task;
  Batch batch;
  for (int length : {1, 3, 41, 501}) {
    Rng rng(11, kStreamTrainData, uint64_t(length));
    task.sample(rng, length > 100 ? 300 : 1500, length, Readout::per_token, batch);
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      int na = 0, nb = 0;
      for (int t = 0; t < length; ++t) {
        na += s[size_t(t)] == 'a';
        nb += s[size_t(t)] == 'b';
        ASSERT_EQ(na + nb, t + 1) << s;
        EXPECT_EQ(latent(batch, b, t), na - nb);
        const std::string expected = na > nb ? "a" : nb > na ? "b" : "<ignore>";
        EXPECT_EQ(name_of(task, target(batch, b, t)), expected) << s << " at " << t;
      }
      EXPECT_NE(na, nb) << "odd lengths never tie";
    }
  }
}

TEST(Majority, AcceptsOnlyOddLengthsAndRefusesToGenerateOthers) {
  MajorityTask task;
  for (int length : {1, 3, 41, 501}) EXPECT_TRUE(task.accepts_length(length)) << length;
  for (int length : {0, -1, 2, 40, 500}) EXPECT_FALSE(task.accepts_length(length)) << length;
  std::vector<int32_t> tokens(40);
  Rng rng(1, kStreamTrainData, 0);
  EXPECT_THROW(task.generate(rng, 40, tokens.data()), ConfigError);
  EXPECT_EQ(task.lengths_in(1, 8), (std::vector<int>{1, 3, 5, 7}));
}

TEST(Majority, FinalAnswersAreBalancedAndNearTiesAreCommon) {
  MajorityTask task;
  Batch batch;
  Rng rng(9, kStreamTrainData, 0);
  task.sample(rng, 4000, 41, Readout::final, batch);
  int a_wins = 0, margin_one = 0;
  for (int b = 0; b < batch.batch; ++b) {
    a_wins += target(batch, b, 40) == MajorityTask::kA;
    margin_one += std::abs(latent(batch, b, 40)) == 1;
  }
  EXPECT_NEAR(a_wins / 4000.0, 0.5, 0.03);
  // P(|#a - #b| = 1) = 2 C(41, 20) / 2^41 for a uniform string.
  EXPECT_NEAR(margin_one / 4000.0, 2 * binomial_probability(41, 20), 0.03);
  EXPECT_DOUBLE_EQ(task.chance(), 0.5);
}

TEST(Majority, LabelRejectsForeignSymbolsAndTiesNamingThePosition) {
  MajorityTask task;
  expect_mentions(label_error(task, {1, 0, 2}), {"majority", "position 2", "<pad>", "a and b"});
  expect_mentions(label_error(task, {1, 2, 7}), {"majority", "position 3", "<7>"});
  expect_mentions(label_error(task, task.encode("a b b a")), {"majority", "ties", "position 4"});
  EXPECT_EQ(label_error(task, task.encode("a a b a")), "") << "an even length without a tie";
}

// ---- count_equality ----

TEST(CountEquality, EveryPrefixIsAnsweredWhetherItsCountsAreEqual) {
  CountEqualityTask task;
  Batch batch;
  for (int length : {2, 4, 40, 500}) {
    Rng rng(12, kStreamTrainData, uint64_t(length));
    task.sample(rng, length > 100 ? 400 : 1500, length, Readout::per_token, batch);
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      for (int t = 0; t < length; ++t) {
        const auto na = std::count(s.begin(), s.begin() + t + 1, 'a');
        const auto nb = std::count(s.begin(), s.begin() + t + 1, 'b');
        ASSERT_EQ(na + nb, t + 1) << s;
        EXPECT_EQ(latent(batch, b, t), na - nb);
        EXPECT_EQ(name_of(task, target(batch, b, t)), na == nb ? "T" : "F") << s << " at " << t;
      }
    }
  }
}

TEST(CountEquality, HalfAreBalancedAndNegativesAreOftenOffByTwo) {
  CountEqualityTask task;
  Batch batch;
  for (int length : {2, 40, 500}) {
    Rng rng(13, kStreamTrainData, uint64_t(length));
    task.sample(rng, 4000, length, Readout::final, batch);
    int balanced = 0, negatives = 0, off_by_two = 0, far = 0, balanced_first_a = 0;
    std::set<std::string> balanced_strings;
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      const auto diff = std::count(s.begin(), s.end(), 'a') - std::count(s.begin(), s.end(), 'b');
      if (diff == 0) {
        ++balanced;
        balanced_first_a += s[0] == 'a';
        balanced_strings.insert(s);
      } else {
        ++negatives;
        off_by_two += std::abs(diff) == 2;
        far += std::abs(diff) > 10;
      }
    }
    EXPECT_NEAR(balanced / 4000.0, 0.5, 0.03) << length;
    EXPECT_NEAR(balanced_first_a / double(balanced), 0.5, 0.04) << "balanced strings shuffled";
    // Half the negatives are forced to |d| = 2; the other half are uniform strings with d != 0.
    const double p2 = 2 * binomial_probability(length, length / 2 + 1);
    const double p0 = binomial_probability(length, length / 2);
    EXPECT_NEAR(off_by_two / double(negatives), 0.5 + 0.5 * p2 / (1 - p0), 0.03) << length;
    if (length == 500) {
      EXPECT_GT(far, negatives / 4) << "uniform negatives keep their wide spread of differences";
      EXPECT_GT(balanced_strings.size(), 1900u) << "balanced strings are not a fixed pattern";
    }
  }
  EXPECT_DOUBLE_EQ(task.chance(), 0.5);
}

TEST(CountEquality, AcceptsOnlyEvenLengths) {
  CountEqualityTask task;
  for (int length : {2, 4, 40, 500}) EXPECT_TRUE(task.accepts_length(length)) << length;
  for (int length : {0, 1, 3, 41, 501}) EXPECT_FALSE(task.accepts_length(length)) << length;
  std::vector<int32_t> tokens(41);
  Rng rng(1, kStreamTrainData, 0);
  EXPECT_THROW(task.generate(rng, 41, tokens.data()), ConfigError);
  EXPECT_THROW(task.generate(rng, 1, tokens.data()), ConfigError);
}

TEST(CountEquality, LabelRejectsAnswerTokensAndPadNamingThePosition) {
  CountEqualityTask task;
  expect_mentions(label_error(task, task.encode("a b T b")),
                  {"count_equality", "position 3", "'T'", "a and b"});
  expect_mentions(label_error(task, {2, 0}), {"count_equality", "position 2", "<pad>"});
  EXPECT_EQ(label_error(task, task.encode("a b a")), "") << "odd inputs are answerable (F)";
}

// ---- anbn ----

// The regex (a+)(b+) as a two-run scan (std::regex trips GCC 12's -Wmaybe-uninitialized under
// the sanitizers): the lengths of the two runs, or false if `s` is not a+ b+.
bool match_a_plus_b_plus(const std::string& s, size_t& run_a, size_t& run_b) {
  run_a = s.find_first_not_of('a');
  if (run_a == 0 || run_a == std::string::npos) return false;
  run_b = s.size() - run_a;
  return s.find_first_not_of('b', run_a) == std::string::npos;
}

// The prefix check and counter, from string searches rather than a step-by-step automaton.
bool is_anbn(const std::string& s) {
  const size_t k = s.size() / 2;
  return k >= 1 && s == std::string(k, 'a') + std::string(k, 'b');
}
int counter_of(const std::string& p) {
  const size_t first_b = std::min(p.find('b'), p.size());  // i = #leading a's
  const size_t i = first_b, j = p.size() - first_b;
  const bool alive = p.find('a', first_b) == std::string::npos && j <= i && i >= 1;
  return alive ? int(i) - int(j) : -1;
}

TEST(Anbn, FinalAnswerMatchesAPlusBPlusWithEqualRunsAndEveryPrefixItsMembershipAndCounter) {
  AnbnTask task;
  Batch batch;
  for (int length : {2, 4, 40, 500}) {
    Rng rng(14, kStreamTrainData, uint64_t(length));
    task.sample(rng, length > 100 ? 300 : 1500, length, Readout::per_token, batch);
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      size_t run_a = 0, run_b = 0;
      const bool member = match_a_plus_b_plus(s, run_a, run_b) && run_a == run_b;
      EXPECT_EQ(name_of(task, target(batch, b, length - 1)), member ? "T" : "F") << s;
      for (int t = 0; t < length; ++t) {
        const std::string prefix = s.substr(0, size_t(t) + 1);
        EXPECT_EQ(name_of(task, target(batch, b, t)), is_anbn(prefix) ? "T" : "F") << prefix;
        EXPECT_EQ(latent(batch, b, t), counter_of(prefix)) << prefix;
      }
    }
  }
}

TEST(Anbn, HalfArePositivesAndEachNearMissKindIsASixth) {
  AnbnTask task;
  Batch batch;
  for (int length : {2, 40, 500}) {
    const int n = length / 2;
    Rng rng(15, kStreamTrainData, uint64_t(length));
    task.sample(rng, 6000, length, Readout::final, batch);
    int positive = 0, more_a = 0, more_b = 0, out_of_order = 0;
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      const auto na = std::count(s.begin(), s.end(), 'a');
      const bool sorted = std::is_sorted(s.begin(), s.end());  // 'a' < 'b': a* b*
      if (sorted && na == n) ++positive;
      else if (sorted && na == n + 1) ++more_a;
      else if (sorted && na == n - 1) ++more_b;
      else if (!sorted && na == n) ++out_of_order;
      else ADD_FAILURE() << "a string of no stated kind: " << s;
    }
    EXPECT_NEAR(positive / 6000.0, 0.5, 0.03) << length;
    EXPECT_NEAR(more_a / 6000.0, 1.0 / 6, 0.02) << length;
    EXPECT_NEAR(more_b / 6000.0, 1.0 / 6, 0.02) << length;
    EXPECT_NEAR(out_of_order / 6000.0, 1.0 / 6, 0.02) << length;
  }
  EXPECT_DOUBLE_EQ(task.chance(), 0.5);
}

TEST(Anbn, AcceptsOnlyEvenLengthsSoLengthNeverGivesTheClassAway) {
  AnbnTask task;
  for (int length : {2, 4, 40, 500}) EXPECT_TRUE(task.accepts_length(length)) << length;
  for (int length : {0, 1, 3, 41, 501}) EXPECT_FALSE(task.accepts_length(length)) << length;
  std::vector<int32_t> tokens(3);
  Rng rng(1, kStreamTrainData, 0);
  EXPECT_THROW(task.generate(rng, 3, tokens.data()), ConfigError);
}

TEST(Anbn, LabelRejectsAnswerTokensPadAndUnknownIdsNamingThePosition) {
  AnbnTask task;
  expect_mentions(label_error(task, task.encode("a a F b")), {"anbn", "position 3", "'F'"});
  expect_mentions(label_error(task, {1, 1, 2, 0}), {"anbn", "position 4", "<pad>"});
  expect_mentions(label_error(task, {1, 9}), {"anbn", "position 2", "<9>", "a and b"});
  // An invalid symbol after the prefix is already dead is still caught.
  expect_mentions(label_error(task, {2, 1, 3}), {"anbn", "position 3", "'T'"});
}

TEST(Anbn, DeadPrefixesStayDeadAndOddInputsAreAnswered) {
  AnbnTask task;
  const auto tokens = task.encode("a b a b");
  std::vector<int32_t> answers(4), latents(4);
  task.label(tokens.data(), 4, answers.data(), latents.data());
  EXPECT_EQ(latents, (std::vector<int32_t>{1, 0, AnbnTask::kDead, AnbnTask::kDead}));
  EXPECT_EQ(answers, (std::vector<int32_t>{AnbnTask::kFalse, AnbnTask::kTrue, AnbnTask::kFalse,
                                           AnbnTask::kFalse}));
  const auto odd = task.encode("a a b");
  task.label(odd.data(), 3, answers.data(), latents.data());
  EXPECT_EQ(latents[2], 1);
  EXPECT_EQ(answers[2], AnbnTask::kFalse);
}

// ---- count_mod3 ----

TEST(CountMod3, EveryPrefixIsAnsweredWithItsCountOfOnesModThree) {
  CountMod3Task task;
  Batch batch;
  for (int length : {1, 2, 41, 40, 500}) {
    Rng rng(16, kStreamTrainData, uint64_t(length));
    task.sample(rng, length > 100 ? 300 : 1500, length, Readout::per_token, batch);
    for (int b = 0; b < batch.batch; ++b) {
      const std::string s = row_string(task, batch, b);
      for (int t = 0; t < length; ++t) {
        const auto ones = std::count(s.begin(), s.begin() + t + 1, '1');
        ASSERT_EQ(ones + std::count(s.begin(), s.begin() + t + 1, '0'), t + 1) << s;
        EXPECT_EQ(latent(batch, b, t), ones % 3);
        EXPECT_EQ(name_of(task, target(batch, b, t)), "r" + std::to_string(ones % 3));
      }
    }
  }
  for (int length : {1, 2, 41, 500}) EXPECT_TRUE(task.accepts_length(length));
  EXPECT_FALSE(task.accepts_length(0));
}

TEST(CountMod3, ClassesAreNearUniformAndChanceIsAThirdAtEvaluationLengths) {
  CountMod3Task task;
  Batch batch;
  Rng rng(17, kStreamTrainData, 0);
  task.sample(rng, 4500, 40, Readout::final, batch);
  int classes[3] = {0, 0, 0}, ones = 0;
  for (int b = 0; b < batch.batch; ++b) ++classes[target(batch, b, 39) - CountMod3Task::kR0];
  for (auto tok : batch.tokens) ones += tok == CountMod3Task::kOne;
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(classes[r] / 4500.0, 1.0 / 3, 0.03) << "r" << r;
  EXPECT_NEAR(ones / (4500.0 * 40), 0.5, 0.01);
  // Exact class probabilities of a uniform 40-bit string: the best constant is within 1e-12
  // of the returned chance. The training mix [3, 40] peaks at 51/152 (the comment in the task).
  for (int length : {40, 41, 256}) {
    double p[3] = {0, 0, 0};
    for (int k = 0; k <= length; ++k) p[k % 3] += binomial_probability(length, k);
    EXPECT_NEAR(*std::max_element(p, p + 3), task.chance(), 1e-12) << length;
  }
  double mix[3] = {0, 0, 0};
  for (int length = 3; length <= 40; ++length)
    for (int k = 0; k <= length; ++k) mix[k % 3] += binomial_probability(length, k) / 38;
  EXPECT_NEAR(*std::max_element(mix, mix + 3), 51.0 / 152, 1e-9);
}

TEST(CountMod3, LabelRejectsAnswerTokensAndForeignIdsNamingThePosition) {
  CountMod3Task task;
  expect_mentions(label_error(task, task.encode("0 1 r1")),
                  {"count_mod3", "position 3", "'r1'", "0 and 1"});
  expect_mentions(label_error(task, {0, 1}), {"count_mod3", "position 1", "<pad>"});
  expect_mentions(label_error(task, {2, 2, 2, -3}), {"count_mod3", "position 4", "<-3>"});
}

// ---- all four ----

TEST(CountingTasks, NamesFactoriesAndAnswerTokensAreWhatTheRegistryExpects) {
  const auto tasks = all_counting_tasks();
  const std::vector<std::string> names = {"majority", "count_equality", "anbn", "count_mod3"};
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& task = *tasks[i];
    EXPECT_EQ(task.name(), names[i]);
    EXPECT_EQ(task.family(), "counting");
    EXPECT_TRUE(task.has_running_answer());
    EXPECT_FALSE(task.definition().empty());
    EXPECT_FALSE(task.latent_definition().empty());
    EXPECT_EQ(task.vocab().names[0], "<pad>");
    std::set<std::string> unique(task.vocab().names.begin(), task.vocab().names.end());
    EXPECT_EQ(unique.size(), task.vocab().names.size()) << "vocab names are unique";
    for (const auto& n : task.vocab().names) EXPECT_EQ(n.find(' '), std::string::npos);
    for (int32_t id : task.answer_tokens()) EXPECT_TRUE(id > 0 && id < task.vocab().size());
  }
}

TEST(CountingTasks, EncodeOfDecodeIsTheIdentityAndLabelAcceptsEveryGeneratedInput) {
  for (const auto& task : all_counting_tasks()) {
    for (int length : task->lengths_in(1, 12)) {
      Rng rng(21, kStreamTrainData, uint64_t(length));
      Batch batch;
      task->sample(rng, 50, length, Readout::per_token, batch);
      for (int b = 0; b < batch.batch; ++b) {
        const int32_t* row = &batch.tokens[size_t(b) * size_t(length)];
        const std::vector<int32_t> original(row, row + length);
        EXPECT_EQ(task->encode(task->decode(row, length)), original) << task->name();
        EXPECT_EQ(label_error(*task, original), "") << task->name();
      }
    }
  }
}

TEST(CountingTasks, FinalReadoutTargetsOnlyTheLastPositionWithAnAnswerToken) {
  for (const auto& task : all_counting_tasks()) {
    const auto answers = task->answer_tokens();
    Batch batch;
    Rng rng(5, kStreamTrainData, 1);
    task->sample_mixed(rng, 300, 3, 40, Readout::final, batch);
    std::set<int32_t> seen;
    for (int b = 0; b < batch.batch; ++b) {
      const int n = batch.lengths[size_t(b)];
      ASSERT_TRUE(task->accepts_length(n)) << task->name() << " drew length " << n;
      seen.insert(n);
      for (int t = 0; t < batch.length; ++t) {
        if (t >= n) {
          EXPECT_EQ(batch.tokens[size_t(b) * size_t(batch.length) + size_t(t)], 0);
          EXPECT_EQ(latent(batch, b, t), Batch::kIgnore);
        }
        const int32_t y = target(batch, b, t);
        if (t == n - 1) {
          EXPECT_NE(std::find(answers.begin(), answers.end(), y), answers.end()) << task->name();
        } else {
          EXPECT_EQ(y, Batch::kIgnore) << task->name();
        }
      }
    }
    EXPECT_GT(seen.size(), 15u) << task->name() << ": lengths vary row to row";
  }
}

}  // namespace
}  // namespace statelab
