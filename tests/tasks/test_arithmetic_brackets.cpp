// Modular arithmetic with brackets against a recursive-descent evaluator of the decoded text
// (which never calls label()), bracket depth counted from the text, exact lengths for every n
// (sentinels around the buffer), deep inputs that would overflow a recursive parser, the exact
// chance against sampled answers, determinism, round trips, and rejection of ill-formed input.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "tasks/arithmetic_brackets.hpp"

namespace statelab {
namespace {

using Brackets = ModularArithmeticBracketsTask;

int mod5(int x) { return ((x % 5) + 5) % 5; }

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// E := d | - d | ( E ) | ( E op E ), evaluated mod 5; a superset of the generator's language,
// so whatever the generator writes must parse here to the full length.
struct Evaluator {
  const std::vector<std::string>& s;
  size_t i = 0;

  const std::string& next() { return s.at(i++); }
  int digit() {
    const std::string& d = next();
    EXPECT_TRUE(d.size() == 1 && d[0] >= '0' && d[0] <= '4') << "digit expected, got " << d;
    return d[0] - '0';
  }
  int expr() {
    if (s.at(i) == "-") {
      ++i;
      return mod5(-digit());
    }
    if (s.at(i) != "(") return digit();
    ++i;
    const int left = expr();
    if (s.at(i) == ")") {
      ++i;
      return left;
    }
    const std::string op = next();
    const int right = expr();
    EXPECT_EQ(next(), ")");
    if (op == "+") return mod5(left + right);
    if (op == "-") return mod5(left - right);
    EXPECT_EQ(op, "*");
    return mod5(left * right);
  }
};

std::vector<int32_t> labelled(const Task& task, const std::vector<int32_t>& tokens,
                              std::vector<int32_t>* latent = nullptr) {
  std::vector<int32_t> answers(tokens.size()), states(tokens.size());
  task.label(tokens.data(), int(tokens.size()), answers.data(), states.data());
  if (latent) *latent = states;
  return answers;
}

void expect_rejected_at(const Task& task, const std::vector<int32_t>& tokens, int position) {
  try {
    labelled(task, tokens);
    ADD_FAILURE() << "accepted '" << task.decode(tokens.data(), int(tokens.size())) << "'";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("modular_arithmetic_brackets"), std::string::npos) << what;
    EXPECT_NE(what.find("position " + std::to_string(position) + " "), std::string::npos) << what;
  }
}

TEST(ModularArithmeticBrackets, FinalAnswerMatchesARecursiveEvaluatorAndLatentIsTheBracketDepth) {
  Brackets task;
  EXPECT_FALSE(task.accepts_length(1));
  EXPECT_FALSE(task.accepts_length(0));
  Batch batch;
  for (int length : {2, 3, 17, 40, 500}) {
    ASSERT_TRUE(task.accepts_length(length));
    Rng rng(41, kStreamTrainData, uint64_t(length));
    const int rows = length == 500 ? 400 : 1000;
    task.sample(rng, rows, length, Readout::per_token, batch);
    for (int b = 0; b < rows; ++b) {
      const size_t row = size_t(b) * size_t(length);
      const auto s = words(task.decode(&batch.tokens[row], length));
      ASSERT_EQ(int(s.size()), length);
      Evaluator eval{s};
      const int value = eval.expr();
      ASSERT_EQ(int(eval.i), length - 1) << "the expression fills all but the last token";
      ASSERT_EQ(s.back(), "=");
      int depth = 0;
      for (int t = 0; t < length; ++t) {
        depth += (s[size_t(t)] == "(") - (s[size_t(t)] == ")");
        ASSERT_EQ(batch.latent[row + size_t(t)], depth);
        if (t < length - 1) {
          ASSERT_EQ(batch.targets[row + size_t(t)], Batch::kIgnore);
        }
      }
      ASSERT_EQ(task.vocab().names[size_t(batch.targets[row + size_t(length - 1)])],
                std::to_string(value));
    }
  }
}

TEST(ModularArithmeticBrackets, SmallExpressionsHaveTheChomskyShapes) {
  Brackets task;
  const char* shapes[] = {"", "", "d =", "- d =", "( d ) =", "( - d ) ="};
  Batch batch;
  for (int length = 2; length <= 5; ++length) {
    Rng rng(42, kStreamTrainData, uint64_t(length));
    task.sample(rng, 50, length, Readout::final, batch);
    for (int b = 0; b < 50; ++b) {
      std::string shape = task.decode(&batch.tokens[size_t(b * length)], length);
      for (char& c : shape)
        if (c >= '0' && c <= '4') c = 'd';
      EXPECT_EQ(shape, shapes[length]);
    }
  }
  // n = 5 is always "( d op d )".
  Rng rng(43, kStreamTrainData, 0);
  task.sample(rng, 300, 6, Readout::final, batch);
  int ops[3] = {0, 0, 0};
  for (int b = 0; b < 300; ++b) {
    const auto s = words(task.decode(&batch.tokens[size_t(b * 6)], 6));
    EXPECT_EQ(s[0], "(");
    EXPECT_EQ(s[4], ")");
    ops[0] += s[2] == "+", ops[1] += s[2] == "-", ops[2] += s[2] == "*";
  }
  for (int n : ops) EXPECT_GT(n, 60) << "all three operators occur";
  EXPECT_EQ(ops[0] + ops[1] + ops[2], 300);
}

TEST(ModularArithmeticBrackets, GeneratorWritesExactlyTheRequestedLengthForEveryLength) {
  Brackets task;
  constexpr int32_t kSentinel = 12345;
  std::vector<int> lengths;
  for (int n = 2; n <= 600; ++n) lengths.push_back(n);
  lengths.push_back(2048);
  lengths.push_back(100001);
  for (int length : lengths) {
    const int samples = length > 600 ? 3 : 5;
    for (int k = 0; k < samples; ++k) {
      std::vector<int32_t> buffer(size_t(length) + 8, kSentinel);
      Rng rng(44, kStreamTrainData, uint64_t(length) * 16 + uint64_t(k));
      task.generate(rng, length, buffer.data() + 4);
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(buffer[size_t(i)], kSentinel) << "wrote before the buffer at length " << length;
        ASSERT_EQ(buffer[size_t(length) + 4 + size_t(i)], kSentinel)
            << "wrote past the end at length " << length;
      }
      for (int t = 0; t < length; ++t)
        ASSERT_NE(buffer[size_t(t) + 4], kSentinel) << "position " << t + 1 << " of " << length;
      const std::vector<int32_t> tokens(buffer.begin() + 4, buffer.begin() + 4 + length);
      if (length <= 2048) {
        const auto s = words(task.decode(tokens.data(), length));
        Evaluator eval{s};
        const int value = eval.expr();
        ASSERT_EQ(int(eval.i), length - 1);
        EXPECT_EQ(labelled(task, tokens).back(), Brackets::kDigit0 + value);
      } else {
        EXPECT_NO_THROW(labelled(task, tokens)) << "label parses a very long expression";
      }
    }
  }
}

TEST(ModularArithmeticBrackets, LabelHandlesNestingFarBeyondTheCallStack) {
  Brackets task;
  const int depth = 200000;
  // "( ( ... ( 1 + 1 ) + 1 ) ... + 1 ) =": depth brackets, value (depth + 1) mod 5.
  std::vector<int32_t> tokens(size_t(depth), Brackets::kOpen);
  tokens.push_back(Brackets::kDigit0 + 1);
  for (int k = 0; k < depth; ++k)
    tokens.insert(tokens.end(), {Brackets::kPlus, Brackets::kDigit0 + 1, Brackets::kClose});
  tokens.push_back(Brackets::kEquals);
  std::vector<int32_t> latent;
  const auto answers = labelled(task, tokens, &latent);
  EXPECT_EQ(answers.back(), Brackets::kDigit0 + (depth + 1) % 5);
  EXPECT_EQ(latent[size_t(depth - 1)], depth);
  EXPECT_EQ(latent[latent.size() - 2], 0);
}

TEST(ModularArithmeticBrackets, ChanceIsTheExactBestAnswerFrequencyOverTrainingLengths) {
  Brackets task;
  Batch batch;
  Rng rng(45, kStreamTrainData, 0);
  const int rows = 20000;
  task.sample_mixed(rng, rows, Brackets::kChanceLengthLo, Brackets::kChanceLengthHi,
                    Readout::final, batch);
  std::vector<int> counts(5, 0);
  for (int b = 0; b < rows; ++b) {
    const size_t row = size_t(b) * size_t(batch.length);
    const int n = batch.lengths[size_t(b)];
    const auto s = words(task.decode(&batch.tokens[row], n));
    Evaluator eval{s};
    ++counts[size_t(eval.expr())];
  }
  const int best = *std::max_element(counts.begin(), counts.end());
  EXPECT_EQ(best, counts[0]) << "products pull values toward 0";
  EXPECT_NEAR(best / double(rows), task.chance(), 0.015);
  EXPECT_GT(task.chance(), 0.2);
  EXPECT_LT(task.chance(), 0.3);
}

TEST(ModularArithmeticBrackets, PublishedStyleExamplesEvaluate) {
  Brackets task;
  const std::pair<const char*, const char*> examples[] = {
      {"3 =", "3"},
      {"- 2 =", "3"},
      {"( - 4 ) =", "1"},
      {"( 3 - - 2 ) =", "0"},
      {"( ( 1 + 2 ) * ( - 3 ) ) =", "1"},
      {"( ( 4 ) * ( 2 - 3 ) ) =", "1"}};
  for (const auto& [text, value] : examples)
    EXPECT_EQ(task.vocab().names[size_t(labelled(task, task.encode(text)).back())], value) << text;
}

TEST(ModularArithmeticBrackets, LabelRejectsUnbalancedAndIllFormedInputNamingThePosition) {
  Brackets task;
  expect_rejected_at(task, task.encode("( 1 + 2 ="), 5);      // unclosed '('
  expect_rejected_at(task, task.encode("1 ) ="), 2);          // unopened ')'
  expect_rejected_at(task, task.encode("( 1 + 2 )"), 5);      // no '='
  expect_rejected_at(task, task.encode("1 + 2 ="), 2);        // operator outside brackets
  expect_rejected_at(task, task.encode("( ( 1 + 2 ) ) ="), 7);  // bracket around a bracket
  expect_rejected_at(task, task.encode("- ( 1 ) ="), 2);      // unary minus on a bracket
  expect_rejected_at(task, task.encode("( 1 + 2 ) = 3"), 7);  // input after '='
  expect_rejected_at(task, task.encode("="), 1);
  expect_rejected_at(task, {Brackets::kDigit0, 0}, 2);        // PAD inside the input
}

TEST(ModularArithmeticBrackets, SameSeedAndIndexGiveTheSameTokensAndRoundTripThroughText) {
  auto task = make_modular_arithmetic_brackets_task();
  EXPECT_EQ(task->name(), "modular_arithmetic_brackets");
  EXPECT_EQ(task->family(), "context-free");
  EXPECT_FALSE(task->has_running_answer());
  Batch a, b, c;
  Rng r1(3, kStreamTrainData, 10), r2(3, kStreamTrainData, 10), r3(3, kStreamTrainData, 11);
  task->sample(r1, 16, 41, Readout::final, a);
  task->sample(r2, 16, 41, Readout::final, b);
  task->sample(r3, 16, 41, Readout::final, c);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_NE(a.tokens, c.tokens);
  for (int r = 0; r < 16; ++r) {
    const int32_t* row = &a.tokens[size_t(r * 41)];
    EXPECT_EQ(task->encode(task->decode(row, 41)), std::vector<int32_t>(row, row + 41));
  }
  const auto& names = task->vocab().names;
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
}

}  // namespace
}  // namespace statelab
