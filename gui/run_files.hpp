// Reading what run and sweep directories hold, for the dashboard: a finished run's curves,
// checks and final eval, and accuracy-against-length curves to overlay. A run with missing or
// unreadable files opens with what it has, and says what is missing and what that hides.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gui/snapshot.hpp"

namespace statelab::gui {

struct RunFiles {
  RunConfig config;
  std::vector<CurvePoint> intervals;              // metrics.jsonl
  std::vector<std::pair<int, double>> checks;     // checks.jsonl
  std::shared_ptr<const LengthCurve> final_eval;  // eval.json
  bool has_parameters = false;                    // model.safetensors or a checkpoint
  std::vector<std::string> missing;
};

// IoError only when `dir` holds no readable config.json (then nothing can be shown).
RunFiles read_run_files(const std::string& dir);

// eval.json's per-length accuracy as a curve.
LengthCurve eval_curve(const nlohmann::json& eval, const std::string& label);
// A run directory gives its eval.json's curve; a sweep directory (results.jsonl) one curve per
// grid cell without the seed: the mean over seeds with a min-max band. IoError otherwise.
std::vector<LengthCurve> overlay_curves(const std::string& path);

}  // namespace statelab::gui
