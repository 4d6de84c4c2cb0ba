// Config drafts of the Run window, validated by lab/config.
#include "gui/config_draft.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "kernels/error.hpp"
#include "lab/files.hpp"

namespace statelab::gui {

namespace fs = std::filesystem;

namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The keys the fields stand for (ConfigDraft::overrides lists them in this order).
const char* const kFieldKeys[] = {
    "model.blocks",     "task.name",   "model.d_model", "model.heads",        "model.eigen_range",
    "train.steps",      "train.batch", "train.lr",      "task.train_lengths", "eval.lengths",
    "train.eval_every", "train.seed",  "device"};

}  // namespace

void ConfigDraft::show(const RunConfig& cfg) {
  ConfigDraft& d = *this;
  d.blocks = cfg.model.blocks;
  d.task = cfg.task.name;
  d.d_model = std::to_string(cfg.model.d_model);
  d.heads = std::to_string(cfg.model.heads);
  d.eigen_range = cfg.model.eigen_range;
  d.steps = std::to_string(cfg.train.steps);
  d.batch = std::to_string(cfg.train.batch);
  d.lr = number(cfg.train.lr);
  d.train_lo = std::to_string(cfg.task.train_lengths[0]);
  d.train_hi = std::to_string(cfg.task.train_lengths[1]);
  d.eval_lo = std::to_string(cfg.eval.lengths[0]);
  d.eval_hi = std::to_string(cfg.eval.lengths[1]);
  d.eval_every = std::to_string(cfg.train.eval_every);
  d.seed = std::to_string(cfg.train.seed);
  d.device = cfg.device;
}

void ConfigDraft::fold_overrides() {
  if (!validate()) return;
  show(*config);
  std::istringstream lines(extra);
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    const std::string key = line.substr(0, line.find('='));
    if (std::find(std::begin(kFieldKeys), std::end(kFieldKeys), key) == std::end(kFieldKeys))
      kept += line + "\n";
  }
  extra = kept;
  validate();
}

ConfigDraft draft_from_config(const RunConfig& cfg, const std::string& source) {
  ConfigDraft d;
  d.source = source;
  d.base = to_json(cfg);
  d.show(cfg);
  d.validate();
  return d;
}

ConfigDraft draft_from_file(const std::string& path) {
  const std::string file = fs::is_directory(path) ? path + "/config.json" : path;
  const RunConfig cfg = load_config(file);
  ConfigDraft d = draft_from_config(cfg, file);
  // The file as written, so that what it leaves to defaults (warmup_steps = steps / 10) follows
  // the edits, as it would on the command line.
  d.base = nlohmann::json::parse(read_file(file));
  d.base["name"] = cfg.name;
  d.validate();
  return d;
}

std::vector<std::string> ConfigDraft::overrides() const {
  // Numbers go in as typed: apply_override parses JSON, so "12x" stays a string and the
  // schema refuses it with the field's pointer.
  std::vector<std::string> out = {"model.blocks=" + blocks,
                                  "task.name=" + task,
                                  "model.d_model=" + d_model,
                                  "model.heads=" + heads,
                                  "model.eigen_range=" + eigen_range,
                                  "train.steps=" + steps,
                                  "train.batch=" + batch,
                                  "train.lr=" + lr,
                                  "task.train_lengths=[" + train_lo + "," + train_hi + "]",
                                  "eval.lengths=[" + eval_lo + "," + eval_hi + "]",
                                  "train.eval_every=" + eval_every,
                                  "train.seed=" + seed,
                                  "device=" + device};
  std::istringstream lines(extra);
  for (std::string line; std::getline(lines, line);)
    if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(line);
  return out;
}

bool ConfigDraft::validate() {
  config.reset();
  error.clear();
  try {
    nlohmann::json j = base;
    const std::string where = source.empty() ? "dashboard" : source + " (edited)";
    for (const auto& o : overrides()) apply_override(j, o, where);
    config = config_from_json(j, where);
  } catch (const std::exception& e) {
    error = e.what();
  }
  return config.has_value();
}

std::vector<std::string> list_presets(const std::string& presets_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(presets_dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> list_runs(const std::string& runs_dir) {
  std::vector<std::pair<fs::file_time_type, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(runs_dir, ec))
    if (e.is_directory() && fs::exists(e.path() / "config.json"))
      found.push_back({fs::last_write_time(e.path() / "config.json"), e.path().string()});
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

}  // namespace statelab::gui
