// The Run window's editable config: a preset (or a run's config.json) plus the user's edits,
// validated exactly as `lab train PRESET --set …` would validate them (lab/config), so a draft the
// dashboard accepts is a run the CLI accepts, and an error names the same JSON pointer.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lab/config.hpp"

namespace statelab::gui {

struct ConfigDraft {
  std::string source;   // the preset file or run directory it came from
  nlohmann::json base;  // the config it started from, as its file has it
  // The fields the window shows, as text so any input can be typed and then refused.
  std::string blocks, task, d_model, heads, eigen_range, steps, batch, lr, train_lo, train_hi,
      eval_lo, eval_hi, eval_every, seed, device;
  std::string extra;  // further "key=value" overrides, one per line

  // The resolved config, or the error message of the first field that fails.
  std::optional<RunConfig> config;
  std::string error;

  // Validates again after an edit; returns whether the draft is a valid config.
  bool validate();
  // The fields as `cfg` has them.
  void show(const RunConfig& cfg);
  // When the draft is valid, moves the lines of `extra` that set a shown field into that field
  // (the --set overrides `lab gui` was started with), so the fields show what will run.
  void fold_overrides();
  // The overrides the fields stand for, in the CLI's --set form.
  std::vector<std::string> overrides() const;
};

// A draft from a preset file or from a run directory's config.json (source names which);
// ConfigError/IoError as load_config throws them.
ConfigDraft draft_from_file(const std::string& path);
ConfigDraft draft_from_config(const RunConfig& cfg, const std::string& source);

// Presets under `presets_dir` (*.json, sorted; sweeps excluded) and run directories under
// `runs_dir` that hold a config.json (newest first). Missing folders give empty lists.
std::vector<std::string> list_presets(const std::string& presets_dir);
std::vector<std::string> list_runs(const std::string& runs_dir);

}  // namespace statelab::gui
