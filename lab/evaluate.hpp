// The length-generalization protocol: accuracy at every evaluated length the task accepts on a
// fixed held-out set, and the summary figures every report uses (mean and chance-corrected
// accuracy beyond the training maximum, solved_up_to). The held-out sequences of length L come
// from (eval.seed, eval stream, L), so they never depend on batch size or on which lengths are
// asked, and never meet the training stream.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cells/model.hpp"
#include "lab/config.hpp"
#include "tasks/task.hpp"

namespace statelab {

struct LengthAccuracy {
  int length = 0;
  double accuracy = 0;        // over the answers the readout scores
  int64_t n = 0;              // answers scored
  double loss = 0;
  double final_accuracy = 0;  // the answer at the last position alone (= accuracy for "final")
};

struct EvalResult {
  std::string task, cell, family, readout;
  std::vector<int> train_lengths;  // [lo, hi]
  double chance = 0;
  std::vector<LengthAccuracy> per_length;
  double mean_accuracy_beyond_train = 0;    // NaN when no evaluated length exceeds hi
  double scaled_accuracy_beyond_train = 0;  // (acc − chance) / (1 − chance), same mean
  int solved_up_to = 0;  // largest L with accuracy >= 0.99 at every evaluated length <= L
};

constexpr double kSolvedAccuracy = 0.99;

EvalResult evaluate(Model<float>& model, const Task& task, Readout readout, const EvalConfig& e,
                    const std::vector<int>& train_lengths);

// Fills the summary fields from per_length.
void summarize(EvalResult& r);

nlohmann::json to_json(const EvalResult& r);
// Accuracy per bucket of 40 lengths (1–40, 41–80, …) and the summary, for the terminal.
std::string format_eval_table(const EvalResult& r);

}  // namespace statelab
