// Seeded, fixed-budget mutation fuzz of the typed task strings (Task::encode, Task::label): a
// malformed string is refused with a ConfigError and never crashes or throws anything else; what
// is accepted labels, and every generated input survives decode then encode. The shared
// machinery is tests/support/fuzz.hpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/rng.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"
#include "tests/support/fuzz.hpp"

namespace statelab {
namespace {

using namespace testing::fuzz;  // the shared fuzz machinery

// Pieces of a typed string: the task's own symbols (most often), PAD, words of no task, other
// tasks' symbols, and separators that are whitespace, nothing or control characters.
std::string random_task_text(const Task& task, const std::vector<std::string>& foreign,
                             Chooser& c) {
  static const std::vector<std::string> unknown = {
      "x", "00", "01", "ab", "A", "=", "+", "(", "p5", "r3", "-2", "+1+1", "<PAD>", "<pad",
      "pad", "<unk>", "<-1>", "<3>", "\xc3\xa9", "\xff", std::string("0\0", 2), "1\x7f",
      std::string(5000, '1')};
  static const std::vector<std::string> separators = {
      " ", " ", " ", "  ", "\t", "\n", "\r\n", "\v", "\f", " \t ", "", "\x01", "\x1b",
      std::string(1, '\0')};
  const std::vector<std::string>& names = task.vocab().names;
  std::string out;
  if (c.one_in(4)) out += c.pick(separators);
  for (size_t k = c.below(16); k > 0; --k) {
    const size_t kind = c.below(20);
    if (kind < 14) {
      out += names[c.in(1, names.size() - 1)];
    } else if (kind < 15) {
      out += "<pad>";
    } else if (kind < 17) {
      out += c.pick(unknown);
    } else {
      out += c.pick(foreign);
    }
    out += c.pick(separators);
  }
  return out;
}

// A task's own input, then damaged a token at a time: most edits keep it well-formed text,
// many make it an invalid input of the task.
std::string mutated_task_input(const Task& task, Chooser& c, uint64_t index) {
  const std::vector<int> lengths = task.lengths_in(1, 24);
  const int length = lengths[c.below(lengths.size())];
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  Rng rng(20240611, 7, index);
  task.generate(rng, length, tokens.data());
  std::vector<std::string> words;
  for (int32_t t : tokens) words.push_back(task.vocab().names[static_cast<size_t>(t)]);
  const auto& names = task.vocab().names;
  switch (c.below(8)) {
    case 0: words[c.below(words.size())] = names[c.in(1, names.size() - 1)]; break;
    case 1: words.erase(words.begin() + static_cast<std::ptrdiff_t>(c.below(words.size()))); break;
    case 2: {
      const size_t at = c.below(words.size());
      words.insert(words.begin() + static_cast<std::ptrdiff_t>(at), words[at]);
      break;
    }
    case 3:
      if (words.size() >= 2) {
        const size_t at = c.below(words.size() - 1);
        std::swap(words[at], words[at + 1]);
      }
      break;
    case 4: words.push_back(names[c.in(1, names.size() - 1)]); break;
    case 5:
      words.insert(words.begin() + static_cast<std::ptrdiff_t>(c.below(words.size() + 1)),
                   "<pad>");
      break;
    default: break;  // unchanged words, only the spacing below differs
  }
  static const std::vector<std::string> spaces = {" ", "  ", "\t", "\n", " \r\n "};
  std::string out = c.one_in(3) ? "  " : "";
  for (size_t i = 0; i < words.size(); ++i) out += (i ? c.pick(spaces) : "") + words[i];
  if (c.one_in(3)) out += "\n";
  return out;
}

TEST(InputFuzz, TaskDecoderRejectsEveryMalformedStringWithAConfigErrorOrLabelsIt) {
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<std::string> foreign;  // every task's symbols, to mix into the others
  for (const auto& name : task_names()) {
    tasks.push_back(make_task(name));
    const auto& names = tasks.back()->vocab().names;
    foreign.insert(foreign.end(), names.begin() + 1, names.end());
  }
  ASSERT_FALSE(tasks.empty());

  Chooser c(0x5eed0004u);
  constexpr int kPerTask = 500;
  Tally encoded_total, labelled_total;
  for (const auto& task : tasks) {
    Tally encoded, labelled;
    for (int iter = 0; iter < kPerTask; ++iter) {
      const uint64_t index = static_cast<uint64_t>(iter);
      const std::string text = iter == 0   ? std::string()
                               : iter == 1 ? std::string(" \t\n ")
                               : iter % 2  ? random_task_text(*task, foreign, c)
                                           : mutated_task_input(*task, c, index);
      std::vector<int32_t> ids;
      const std::string what = task->name() + ": encode";
      if (!accepts<ConfigError>([&] { ids = task->encode(text); }, what, text, encoded,
                                [&](const std::string& msg) {
                                  EXPECT_EQ(msg.rfind(task->name() + ": ", 0), 0u) << msg;
                                }))
        continue;
      for (int32_t id : ids)
        ASSERT_TRUE(id >= 1 && id < task->vocab().size())
            << what << " produced id " << id << " for \"" << escaped(text) << "\"";
      const int n = static_cast<int>(ids.size());
      EXPECT_EQ(task->encode(task->decode(ids.data(), n)), ids) << escaped(text);
      if (n == 0) continue;
      std::vector<int32_t> answers(ids.size(), -7), latent(ids.size(), -7);
      if (accepts<ConfigError>(
              [&] { task->label(ids.data(), n, answers.data(), latent.data()); },
              task->name() + ": label", text, labelled,
              [&](const std::string& msg) {
                EXPECT_TRUE(contains(msg, task->name())) << msg;
              })) {
        EXPECT_NE(answers.back(), Batch::kIgnore)
            << task->name() << ": no answer at the last position of \"" << escaped(text) << "\"";
        for (int32_t a : answers) EXPECT_NE(a, -7) << task->name() << ": answer left unwritten";
      }
    }
    std::printf(
        "[   fuzz   ] %-28s %d strings: %d rejected by encode; %d encoded non-empty: %d labelled, "
        "%d rejected by label\n",
        task->name().c_str(), encoded.total(), encoded.rejected, labelled.total(),
        labelled.accepted, labelled.rejected);
    EXPECT_GT(encoded.rejected, 0) << task->name();
    EXPECT_GT(labelled.accepted, 0) << task->name();
    encoded_total.accepted += encoded.accepted;
    encoded_total.rejected += encoded.rejected;
    labelled_total.accepted += labelled.accepted;
    labelled_total.rejected += labelled.rejected;
  }
  EXPECT_EQ(encoded_total.total(), kPerTask * static_cast<int>(tasks.size()));
  EXPECT_GT(labelled_total.rejected, 0) << "damaged inputs of structured tasks must be refused";
}

TEST(InputFuzz, TaskGeneratedInputsLabelAndSurviveDecodeThenEncode) {
  Chooser c(0x5eed0005u);
  int checked = 0;
  for (const auto& name : task_names()) {
    const auto task = make_task(name);
    const std::vector<int> lengths = task->lengths_in(1, 64);
    ASSERT_FALSE(lengths.empty()) << name;
    std::vector<int> draws;
    for (int k = 0; k < 40; ++k) draws.push_back(lengths[c.below(lengths.size())]);
    draws.push_back(task->lengths_in(19990, 20010).back());  // one long input
    for (size_t k = 0; k < draws.size(); ++k) {
      const int length = draws[k];
      std::vector<int32_t> tokens(static_cast<size_t>(length)), answers(tokens.size()),
          latent(tokens.size());
      Rng rng(99, 11, k);
      task->generate(rng, length, tokens.data());
      const std::string text = task->decode(tokens.data(), length);
      try {
        task->label(tokens.data(), length, answers.data(), latent.data());
        EXPECT_NE(answers.back(), Batch::kIgnore) << name << ": " << escaped(text);
        EXPECT_EQ(task->encode(text), tokens) << name << ": " << escaped(text);
        ++checked;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " refused its own input of length " << length << " ("
                      << type_name(typeid(e)) << ": " << e.what() << "): " << escaped(text);
      }
    }
  }
  std::printf("[   fuzz   ] generated inputs: %d labelled and re-encoded exactly\n", checked);
  EXPECT_EQ(checked, 41 * static_cast<int>(task_names().size()));
}

}  // namespace
}  // namespace statelab
