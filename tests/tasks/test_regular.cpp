// The regular tasks (even pairs, cycle navigation, modular arithmetic) against evaluators that
// work on the decoded text and never call label(): counting unequal pairs, simulating the walk,
// and a recursive-descent parser of the expression. Also: answer balance and exact chance,
// determinism per (seed, index), encode/decode round trips, and rejection of invalid inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "tasks/regular.hpp"

namespace statelab {
namespace {

int mod5(int x) { return ((x % 5) + 5) % 5; }

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The decoded symbols of row b of a batch sampled at one length.
std::vector<std::string> row_symbols(const Task& task, const Batch& batch, int b) {
  return words(task.decode(&batch.tokens[size_t(b) * size_t(batch.length)], batch.length));
}

std::string answer_name(const Task& task, const Batch& batch, int b, int t) {
  const int32_t id = batch.targets[size_t(b) * size_t(batch.length) + size_t(t)];
  return id == Batch::kIgnore ? "<ignore>" : task.vocab().names[size_t(id)];
}

int32_t latent_at(const Batch& batch, int b, int t) {
  return batch.latent[size_t(b) * size_t(batch.length) + size_t(t)];
}

// Throws unless label() rejects `text` with a ConfigError naming `position`.
void expect_rejected_at(const Task& task, const std::vector<int32_t>& tokens, int position) {
  std::vector<int32_t> answers(tokens.size()), latent(tokens.size());
  try {
    task.label(tokens.data(), int(tokens.size()), answers.data(), latent.data());
    ADD_FAILURE() << task.name() << " accepted '" << task.decode(tokens.data(), int(tokens.size()))
                  << "'";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(task.name()), std::string::npos) << what;
    EXPECT_NE(what.find("position " + std::to_string(position) + " "), std::string::npos) << what;
  }
}

// Counts of each final answer over `rows` rows of mixed training lengths.
std::vector<int> final_answer_counts(const Task& task, int rows, int lo, int hi) {
  Batch batch;
  Rng rng(77, kStreamTrainData, 0);
  task.sample_mixed(rng, rows, lo, hi, Readout::final, batch);
  std::vector<int> counts(size_t(task.vocab().size()), 0);
  for (int b = 0; b < rows; ++b)
    ++counts[size_t(batch.targets[size_t(b) * size_t(batch.length) +
                                  size_t(batch.lengths[size_t(b)] - 1)])];
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Even pairs

TEST(EvenPairs, RunningAnswerIsTheParityOfUnequalAdjacentPairsAndLatentTheFirstAndCurrentSymbol) {
  EvenPairsTask task;
  Batch batch;
  for (int length : {1, 2, 17, 40, 500}) {
    ASSERT_TRUE(task.accepts_length(length));
    Rng rng(11, kStreamTrainData, uint64_t(length));
    const int rows = length == 500 ? 200 : 1000;
    task.sample(rng, rows, length, Readout::per_token, batch);
    for (int b = 0; b < rows; ++b) {
      const auto s = row_symbols(task, batch, b);
      ASSERT_EQ(int(s.size()), length);
      int unequal = 0;
      for (int t = 0; t < length; ++t) {
        ASSERT_TRUE(s[size_t(t)] == "a" || s[size_t(t)] == "b") << s[size_t(t)];
        if (t > 0) unequal += s[size_t(t)] != s[size_t(t - 1)];
        ASSERT_EQ(answer_name(task, batch, b, t), unequal % 2 == 0 ? "T" : "F");
        ASSERT_EQ(latent_at(batch, b, t), 2 * (s[0] == "b") + (s[size_t(t)] == "b"));
      }
    }
  }
}

TEST(EvenPairs, FinalReadoutAnswersOnlyAtTheLastPosition) {
  EvenPairsTask task;
  Batch batch;
  Rng rng(12, kStreamTrainData, 0);
  task.sample(rng, 50, 9, Readout::final, batch);
  for (int b = 0; b < 50; ++b)
    for (int t = 0; t < 9; ++t)
      EXPECT_EQ(answer_name(task, batch, b, t) != "<ignore>", t == 8);
}

TEST(EvenPairs, AnswersAreBalancedAndChanceIsOneHalf) {
  EvenPairsTask task;
  Batch batch;
  Rng rng(13, kStreamTrainData, 0);
  task.sample(rng, 4000, 17, Readout::final, batch);
  int even = 0;
  for (int b = 0; b < 4000; ++b) even += answer_name(task, batch, b, 16) == "T";
  EXPECT_NEAR(even / 4000.0, 0.5, 0.03);
  const auto counts = final_answer_counts(task, 20000, 3, 40);
  EXPECT_NEAR(counts[EvenPairsTask::kTrue] / 20000.0, task.chance(), 0.015);
  EXPECT_DOUBLE_EQ(task.chance(), 0.5);
}

TEST(EvenPairs, LabelRejectsAnswerTokensAndPadNamingThePosition) {
  EvenPairsTask task;
  expect_rejected_at(task, {EvenPairsTask::kA, EvenPairsTask::kB, EvenPairsTask::kTrue}, 3);
  expect_rejected_at(task, {EvenPairsTask::kA, 0, EvenPairsTask::kB}, 2);
  expect_rejected_at(task, {EvenPairsTask::kB, 99}, 2);
}

// ---------------------------------------------------------------------------------------------
// Cycle navigation

TEST(CycleNavigation, RunningAnswerAndLatentAreTheSimulatedPositionOnTheCycleOfFive) {
  CycleNavigationTask task;
  Batch batch;
  for (int length : {1, 2, 17, 40, 500}) {
    ASSERT_TRUE(task.accepts_length(length));
    Rng rng(21, kStreamTrainData, uint64_t(length));
    const int rows = length == 500 ? 200 : 1000;
    task.sample(rng, rows, length, Readout::per_token, batch);
    for (int b = 0; b < rows; ++b) {
      const auto s = row_symbols(task, batch, b);
      ASSERT_EQ(int(s.size()), length);
      int position = 0;
      for (int t = 0; t < length; ++t) {
        const std::string& move = s[size_t(t)];
        ASSERT_TRUE(move == "-1" || move == "0" || move == "+1") << move;
        position = mod5(position + std::stoi(move));
        ASSERT_EQ(answer_name(task, batch, b, t), "p" + std::to_string(position));
        ASSERT_EQ(latent_at(batch, b, t), position);
      }
    }
  }
}

TEST(CycleNavigation, MovesAreUniformAndLongWalksEndUniformly) {
  CycleNavigationTask task;
  Batch batch;
  Rng rng(22, kStreamTrainData, 0);
  task.sample(rng, 4000, 101, Readout::final, batch);
  std::vector<int> moves(4, 0), ends(5, 0);
  for (int b = 0; b < 4000; ++b) {
    for (int t = 0; t < 101; ++t) ++moves[size_t(batch.tokens[size_t(b * 101 + t)])];
    ++ends[size_t(latent_at(batch, b, 100))];
  }
  for (int m = 1; m <= 3; ++m) EXPECT_NEAR(moves[size_t(m)] / (4000.0 * 101), 1.0 / 3, 0.01);
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(ends[size_t(k)] / 4000.0, 0.2, 0.03) << "p" << k;
}

TEST(CycleNavigation, ChanceIsTheClosedFormFrequencyOfTheBestPositionOverTrainingLengths) {
  CycleNavigationTask task;
  // P_L(k) = (1 + 2 a^L cos(2 pi k / 5) + 2 c^L cos(4 pi k / 5)) / 5, with a, c the eigenvalues
  // (1 + 2 cos(2 pi j / 5)) / 3 of one uniform step; mixed uniformly over the training lengths.
  const double pi = std::acos(-1.0);
  const double a = (1 + 2 * std::cos(2 * pi / 5)) / 3, c = (1 + 2 * std::cos(4 * pi / 5)) / 3;
  const int lo = CycleNavigationTask::kChanceLengthLo, hi = CycleNavigationTask::kChanceLengthHi;
  std::vector<double> mixed(5, 0.0);
  for (int k = 0; k < 5; ++k)
    for (int L = lo; L <= hi; ++L)
      mixed[size_t(k)] += (1 + 2 * std::pow(a, L) * std::cos(2 * pi * k / 5) +
                           2 * std::pow(c, L) * std::cos(4 * pi * k / 5)) /
                          5 / (hi - lo + 1);
  for (int k = 1; k < 5; ++k) EXPECT_GT(mixed[0], mixed[size_t(k)]) << "p0 is the best constant";
  EXPECT_NEAR(task.chance(), mixed[0], 1e-12);
  EXPECT_GT(task.chance(), 0.2);
  const auto counts = final_answer_counts(task, 20000, lo, hi);
  EXPECT_NEAR(counts[CycleNavigationTask::kPosition0] / 20000.0, task.chance(), 0.015);
}

TEST(CycleNavigation, LabelRejectsPositionTokensAndPadNamingThePosition) {
  CycleNavigationTask task;
  expect_rejected_at(task, task.encode("+1 p2 0"), 2);
  expect_rejected_at(task, {CycleNavigationTask::kLeft, CycleNavigationTask::kStay, 0}, 3);
}

// ---------------------------------------------------------------------------------------------
// Modular arithmetic

// Recursive descent over decoded tokens [0, end): expr := term (('+'|'-') term)*,
// term := digit ('*' digit)*. Returns the value and the signed value of the last term.
struct ArithmeticParser {
  const std::vector<std::string>& s;
  size_t i = 0, end = 0;

  int digit() {
    const std::string& d = s.at(i++);
    EXPECT_TRUE(d.size() == 1 && d[0] >= '0' && d[0] <= '4') << "digit expected, got " << d;
    return d[0] - '0';
  }
  int term() {
    int v = digit();
    while (i < end && s[i] == "*") {
      ++i;
      v = mod5(v * digit());
    }
    return v;
  }
  std::pair<int, int> expr() {  // (value, last term signed)
    int last = term(), sum = 0;
    while (i < end && (s[i] == "+" || s[i] == "-")) {
      const bool minus = s[i++] == "-";
      sum = mod5(sum + last);
      last = mod5(minus ? -term() : term());
    }
    EXPECT_EQ(i, end) << "parser stopped early";
    return {mod5(sum + last), last};
  }
};

std::pair<int, int> evaluate_prefix(const std::vector<std::string>& s, size_t end) {
  ArithmeticParser p{s, 0, end};
  return p.expr();
}

TEST(ModularArithmetic, AcceptsEvenLengthsOnlyAndRefusesToGenerateOthers) {
  ModularArithmeticTask task;
  std::vector<int32_t> out(20);
  for (int length : {0, 1, 17, 499}) {
    EXPECT_FALSE(task.accepts_length(length)) << length;
    Rng rng(1, kStreamTrainData, 0);
    EXPECT_THROW(task.generate(rng, length, out.data()), ConfigError) << length;
  }
  for (int length : {2, 4, 40, 500}) EXPECT_TRUE(task.accepts_length(length)) << length;
  EXPECT_EQ(task.length_rule(), "even lengths >= 2");
}

TEST(ModularArithmetic, PublishedExamplesEvaluateWithPrecedence) {
  ModularArithmeticTask task;
  const std::pair<const char*, const char*> examples[] = {
      {"1 + 2 * 3 =", "2"}, {"1 - 1 - 1 =", "4"}, {"0 * 1 + 4 * 3 - 2 =", "0"}, {"3 =", "3"}};
  for (const auto& [text, value] : examples) {
    const auto tokens = task.encode(text);
    std::vector<int32_t> answers(tokens.size()), latent(tokens.size());
    task.label(tokens.data(), int(tokens.size()), answers.data(), latent.data());
    EXPECT_EQ(task.vocab().names[size_t(answers.back())], value) << text;
  }
}

TEST(ModularArithmetic, RunningAnswersAndEvaluatorStateMatchARecursiveDescentParser) {
  ModularArithmeticTask task;
  Batch batch;
  for (int length : {2, 4, 40, 500}) {
    Rng rng(31, kStreamTrainData, uint64_t(length));
    const int rows = length == 500 ? 60 : 1000;
    task.sample(rng, rows, length, Readout::per_token, batch);
    for (int b = 0; b < rows; ++b) {
      const auto s = row_symbols(task, batch, b);
      ASSERT_EQ(int(s.size()), length);
      ASSERT_EQ(s.back(), "=");
      for (int t = 0; t + 1 < length; ++t) {
        const std::string& sym = s[size_t(t)];
        if (t % 2 == 0) {  // digit: answer = value so far, latent = 5 * (earlier terms) + last
          const auto [value, last] = evaluate_prefix(s, size_t(t + 1));
          ASSERT_EQ(answer_name(task, batch, b, t), std::to_string(value));
          ASSERT_EQ(latent_at(batch, b, t), 5 * mod5(value - last) + last);
        } else {
          ASSERT_TRUE(sym == "+" || sym == "-" || sym == "*") << sym;
          ASSERT_EQ(answer_name(task, batch, b, t), "<ignore>");
          const auto [value, last] = evaluate_prefix(s, size_t(t));
          const int expected = sym == "*" ? 5 * mod5(value - last) + last
                                          : 5 * value + (sym == "+" ? 1 : 4);
          ASSERT_EQ(latent_at(batch, b, t), expected) << "after '" << sym << "'";
        }
      }
      const int value = evaluate_prefix(s, size_t(length - 1)).first;
      ASSERT_EQ(answer_name(task, batch, b, length - 1), std::to_string(value));
      ASSERT_EQ(latent_at(batch, b, length - 1), 5 * value);
    }
  }
}

TEST(ModularArithmetic, SymbolsAreUniformAndChanceIsTheMixedTrainingFrequencyOfTheBestValue) {
  ModularArithmeticTask task;
  Batch batch;
  Rng rng(32, kStreamTrainData, 0);
  task.sample(rng, 4000, 500, Readout::final, batch);
  std::vector<int> counts(size_t(task.vocab().size()), 0), finals(5, 0);
  for (int b = 0; b < 4000; ++b) {
    for (int t = 0; t < 499; ++t) ++counts[size_t(batch.tokens[size_t(b * 500 + t)])];
    ++finals[size_t(batch.targets[size_t(b * 500 + 499)] - ModularArithmeticTask::kDigit0)];
  }
  for (int d = 0; d < 5; ++d) {
    EXPECT_NEAR(counts[size_t(ModularArithmeticTask::kDigit0 + d)] / (4000.0 * 250), 0.2, 0.01);
    EXPECT_NEAR(finals[size_t(d)] / 4000.0, 0.2, 0.03) << "long expressions end uniformly";
  }
  for (int32_t op : {ModularArithmeticTask::kPlus, ModularArithmeticTask::kMinus,
                     ModularArithmeticTask::kTimes})
    EXPECT_NEAR(counts[size_t(op)] / (4000.0 * 249), 1.0 / 3, 0.01);

  const auto mixed = final_answer_counts(task, 20000, ModularArithmeticTask::kChanceLengthLo,
                                         ModularArithmeticTask::kChanceLengthHi);
  int best = 0;
  for (int d = 0; d < 5; ++d)
    best = std::max(best, mixed[size_t(ModularArithmeticTask::kDigit0 + d)]);
  EXPECT_NEAR(best / 20000.0, task.chance(), 0.015);
  EXPECT_GT(task.chance(), 0.2) << "products pull short expressions toward 0";
  EXPECT_LT(task.chance(), 0.3);
}

TEST(ModularArithmetic, LabelRejectsMisplacedSymbolsAndAMissingEqualsNamingThePosition) {
  ModularArithmeticTask task;
  expect_rejected_at(task, task.encode("1 + + 2 ="), 3);  // operator where a digit belongs
  expect_rejected_at(task, task.encode("1 + 2"), 3);      // no '=' at the end
  expect_rejected_at(task, task.encode("1 = 2 ="), 2);    // '=' before the end
  expect_rejected_at(task, task.encode("1 2 ="), 2);      // digit where an operator belongs
  expect_rejected_at(task, task.encode("="), 1);
}

// ---------------------------------------------------------------------------------------------
// Shared properties

TEST(RegularTasks, EncodeOfDecodeIsTheIdentityAndNamesAreUnique) {
  for (const auto& task : {make_even_pairs_task(), make_cycle_navigation_task(),
                           make_modular_arithmetic_task()}) {
    const auto& names = task->vocab().names;
    for (size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(names[i].find(' '), std::string::npos);
      for (size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
    }
    Batch batch;
    Rng rng(5, kStreamTrainData, 0);
    task->sample(rng, 20, 40, Readout::final, batch);
    for (int b = 0; b < 20; ++b) {
      const int32_t* row = &batch.tokens[size_t(b * 40)];
      EXPECT_EQ(task->encode(task->decode(row, 40)), std::vector<int32_t>(row, row + 40));
    }
    for (int32_t id : task->answer_tokens()) EXPECT_TRUE(id > 0 && id < task->vocab().size());
  }
}

TEST(RegularTasks, FactoriesMakeTheNamedTasks) {
  EXPECT_EQ(make_even_pairs_task()->name(), "even_pairs");
  EXPECT_EQ(make_cycle_navigation_task()->name(), "cycle_navigation");
  EXPECT_EQ(make_modular_arithmetic_task()->name(), "modular_arithmetic");
  for (const auto& task : {make_even_pairs_task(), make_cycle_navigation_task(),
                           make_modular_arithmetic_task()}) {
    EXPECT_EQ(task->family(), "state tracking");
    EXPECT_TRUE(task->has_running_answer());
  }
}

}  // namespace
}  // namespace statelab
