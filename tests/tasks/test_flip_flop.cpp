// The flip-flop generator against a direct simulation of the 1-bit register on the decoded
// text: the layout (instruction/bit pairs, first w, final r), every read bit, the answer at
// every r and the latent register; the FFL(0.8) instruction mix, balanced answers, odd-only
// lengths, determinism, round trips and the rejection of malformed inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "tasks/flip_flop.hpp"

namespace statelab {
namespace {

std::vector<std::string> split(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

std::string label_error(const Task& task, const std::string& text) {
  const auto tokens = task.encode(text);
  std::vector<int32_t> answers(tokens.size()), latent(tokens.size());
  try {
    task.label(tokens.data(), int(tokens.size()), answers.data(), latent.data());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(FlipFlop, AnswersAtEveryReadMatchASimulatedRegister) {
  const auto task = make_flip_flop_task();
  for (int length : {3, 7, 41, 501}) {
    const int rows = length == 501 ? 300 : 1500;
    Rng rng(21, kStreamTrainData, uint64_t(length));
    Batch batch;
    task->sample(rng, rows, length, Readout::per_token, batch);
    for (int b = 0; b < rows; ++b) {
      const size_t base = size_t(b) * size_t(length);
      const auto words = split(task->decode(&batch.tokens[base], length));
      ASSERT_EQ(int(words.size()), length);
      ASSERT_EQ(words.front(), "w") << "starts with a write";
      ASSERT_EQ(words.back(), "r") << "ends with the read to answer";
      int reg = -1;
      for (int t = 0; t < length; ++t) {
        const std::string& w = words[size_t(t)];
        int32_t expected_answer = Batch::kIgnore;
        if (t % 2 == 0) {
          ASSERT_TRUE(w == "w" || w == "i" || w == "r") << "instruction at " << t << ": " << w;
          if (w == "r") expected_answer = task->vocab().id(reg == 1 ? "1" : "0");
        } else {
          ASSERT_TRUE(w == "0" || w == "1") << "bit at " << t << ": " << w;
          const int bit = w == "1";
          if (words[size_t(t - 1)] == "w") reg = bit;
          if (words[size_t(t - 1)] == "r") {
            ASSERT_EQ(bit, reg) << "a read bit is the register";
          }
        }
        ASSERT_EQ(batch.targets[base + size_t(t)], expected_answer)
            << "length " << length << " t " << t;
        ASSERT_EQ(batch.latent[base + size_t(t)], reg) << "length " << length << " t " << t;
      }
      ASSERT_NE(reg, -1);
    }
  }
}

TEST(FlipFlop, AHandWrittenSequenceIsLabelledAsTheRegisterReads) {
  const auto task = make_flip_flop_task();
  const auto tokens = task->encode("w 1 i 0 r 1 w 0 i 1 r");
  std::vector<int32_t> answers(tokens.size()), latent(tokens.size());
  task->label(tokens.data(), int(tokens.size()), answers.data(), latent.data());
  const int32_t zero = task->vocab().id("0"), one = task->vocab().id("1"), x = Batch::kIgnore;
  EXPECT_EQ(answers, (std::vector<int32_t>{x, x, x, x, one, x, x, x, x, x, zero}));
  EXPECT_EQ(latent, (std::vector<int32_t>{-1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}));
}

TEST(FlipFlop, AcceptsOnlyOddLengthsOfAtLeastThree) {
  const auto task = make_flip_flop_task();
  for (int length : {-1, 0, 1, 2, 4, 10, 500}) EXPECT_FALSE(task->accepts_length(length)) << length;
  for (int length : {3, 5, 41, 501}) EXPECT_TRUE(task->accepts_length(length)) << length;
  EXPECT_EQ(task->length_rule(), "odd lengths >= 3");
  EXPECT_EQ(task->lengths_in(1, 10), (std::vector<int>{3, 5, 7, 9}));
  std::vector<int32_t> tokens(500);
  Rng rng(1, kStreamTrainData, 0);
  try {
    task->generate(rng, 500, tokens.data());
    FAIL() << "generated an even length";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("odd lengths >= 3"), std::string::npos) << e.what();
  }
  Batch batch;
  Rng mixed(2, kStreamTrainData, 0);
  task->sample_mixed(mixed, 200, 1, 40, Readout::final, batch);
  for (int n : batch.lengths) EXPECT_TRUE(n >= 3 && n % 2 == 1) << n;
}

TEST(FlipFlop, InnerInstructionsFollowFFL08AndBitsAreUniform) {
  const auto task = make_flip_flop_task();
  const int rows = 2000, length = 257;  // 128 pairs and the final r: 127 inner instructions
  Rng rng(8, kStreamTrainData, 0);
  Batch batch;
  task->sample(rng, rows, length, Readout::final, batch);
  double writes = 0, reads = 0, ignores = 0, free_ones = 0, free_bits = 0;
  for (int b = 0; b < rows; ++b)
    for (int t = 2; t + 1 < length; t += 2) {
      const int32_t op = batch.tokens[size_t(b * length + t)];
      writes += op == FlipFlopTask::kWriteOp;
      reads += op == FlipFlopTask::kReadOp;
      ignores += op == FlipFlopTask::kIgnoreOp;
      if (op != FlipFlopTask::kReadOp) {
        free_bits += 1;
        free_ones += batch.tokens[size_t(b * length + t + 1)] == FlipFlopTask::kBit1;
      }
    }
  const double inner = writes + reads + ignores;
  EXPECT_DOUBLE_EQ(inner, double(rows) * 127);
  EXPECT_NEAR(ignores / inner, FlipFlopTask::kIgnoreProbability, 0.005);
  EXPECT_NEAR(writes / inner, FlipFlopTask::kWriteProbability, 0.005);
  EXPECT_NEAR(reads / inner, FlipFlopTask::kReadProbability, 0.005);
  EXPECT_DOUBLE_EQ(FlipFlopTask::kIgnoreProbability, 0.8);
  EXPECT_NEAR(free_ones / free_bits, 0.5, 0.005) << "write and ignore bits are uniform";
}

TEST(FlipFlop, FinalAnswersAreBalanced) {
  const auto task = make_flip_flop_task();
  for (int length : {3, 41, 257}) {
    const int rows = 4000;
    Rng rng(9, kStreamTrainData, uint64_t(length));
    Batch batch;
    task->sample(rng, rows, length, Readout::final, batch);
    int ones = 0;
    for (int b = 0; b < rows; ++b) {
      const int32_t answer = batch.targets[size_t(b * length + length - 1)];
      ASSERT_TRUE(answer == FlipFlopTask::kBit0 || answer == FlipFlopTask::kBit1);
      ones += answer == FlipFlopTask::kBit1;
    }
    EXPECT_NEAR(ones / double(rows), 0.5, 0.03) << "length " << length;
  }
  EXPECT_DOUBLE_EQ(task->chance(), 0.5);
  EXPECT_EQ(task->answer_tokens(),
            (std::vector<int32_t>{FlipFlopTask::kBit0, FlipFlopTask::kBit1}));
  EXPECT_EQ(task->vocab().size(), 6);
  EXPECT_EQ(task->name(), "flip_flop");
  EXPECT_EQ(task->family(), "memory");
  EXPECT_TRUE(task->has_running_answer());
}

TEST(FlipFlop, LabelRejectsMalformedSequencesNamingThePosition) {
  const auto task = make_flip_flop_task();
  const auto expect_error = [&](const std::string& text, const std::string& part) {
    const std::string msg = label_error(*task, text);
    EXPECT_NE(msg.find(part), std::string::npos) << "'" << text << "' gave: " << msg;
  };
  expect_error("i 1 r", "position 1 holds 'i'");  // no leading write
  expect_error("w 1 0 1 r", "position 3 holds '0'");  // bit in an instruction slot
  expect_error("w r r", "position 2 holds 'r'");  // instruction in a bit slot
  expect_error("w 1 r 0 r", "position 4 holds '0'");  // read bit is not the register
  expect_error("w 1 i 0 w", "position 5 holds 'w'");  // no final read
  expect_error("w 1 r 1", "position 4 holds '1'");  // even length: ends on a bit
  expect_error("w", "position 1 holds 'w'");  // too short to end on r
  const std::vector<int32_t> pad = {FlipFlopTask::kWriteOp, 0, FlipFlopTask::kReadOp};
  std::vector<int32_t> answers(3), latent(3);
  EXPECT_THROW(task->label(pad.data(), 3, answers.data(), latent.data()), ConfigError);
  EXPECT_EQ(label_error(*task, "w 0 i 1 r 0 w 1 r"), "") << "a valid sequence is accepted";
}

}  // namespace
}  // namespace statelab
