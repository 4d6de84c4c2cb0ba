// Checkpoint files: tensors "param.*", "adam_m.*", "adam_v.*" plus metadata holding the format,
// the run's config and the TrainState as JSON (doubles round-trip exactly through it).
#include "lab/checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "lab/safetensors.hpp"

namespace statelab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "statelab-checkpoint-1";

// Metadata values are small flat JSON documents; a crafted deep one is refused while parsing.
nlohmann::json parse_metadata(const std::string& text, const std::string& source) {
  constexpr int kMaxDepth = 8;
  return nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) throw IoError(source + ": metadata nests deeper than a checkpoint's");
    return true;
  });
}

nlohmann::json state_json(const TrainState& s) {
  return {{"step", s.step},
          {"optimizer_steps", s.optimizer_steps},
          {"good_checks", s.good_checks},
          {"skipped_steps", s.skipped_steps},
          {"interval_loss", s.interval_loss},
          {"interval_correct", s.interval_correct},
          {"interval_count", s.interval_count},
          {"interval_tokens", s.interval_tokens},
          {"elapsed_s", s.elapsed_s},
          {"metrics_lines", s.metrics_lines},
          {"checks_lines", s.checks_lines}};
}

// A counter of the training state: an integer in [0, INT_MAX], never coerced from another type.
int64_t read_count(const nlohmann::json& j, const char* key, const std::string& source) {
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
    throw IoError(source + ": training state '" + key + "' must be an integer in [0, 2^31), got " +
                  v.dump());
  return v.get<int64_t>();
}

double read_amount(const nlohmann::json& j, const char* key, const std::string& source) {
  const auto& v = j.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    throw IoError(source + ": training state '" + key +
                  "' must be a finite number >= 0, got " + v.dump());
  return v.get<double>();
}

TrainState state_from_json(const std::string& text, const std::string& source) {
  try {
    const auto j = parse_metadata(text, source);
    TrainState s;
    s.step = int(read_count(j, "step", source));
    s.optimizer_steps = read_count(j, "optimizer_steps", source);
    s.good_checks = int(read_count(j, "good_checks", source));
    s.skipped_steps = int(read_count(j, "skipped_steps", source));
    // The loss sum of the open interval may be any finite number a model produced.
    if (!j.at("interval_loss").is_number() || !std::isfinite(j.at("interval_loss").get<double>()))
      throw IoError(source + ": training state 'interval_loss' must be a finite number");
    s.interval_loss = j.at("interval_loss").get<double>();
    s.interval_correct = read_amount(j, "interval_correct", source);
    s.interval_count = read_amount(j, "interval_count", source);
    s.interval_tokens = read_amount(j, "interval_tokens", source);
    s.elapsed_s = read_amount(j, "elapsed_s", source);
    s.metrics_lines = read_count(j, "metrics_lines", source);
    s.checks_lines = read_count(j, "checks_lines", source);
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw IoError(source + ": training state metadata is malformed: " + e.what());
  }
}

const std::string& metadata(const safetensors::Contents& c, const std::string& key,
                            const std::string& source) {
  const auto it = c.metadata.find(key);
  if (it == c.metadata.end()) throw IoError(source + ": not a checkpoint (no '" + key + "' metadata)");
  return it->second;
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int step) {
  char name[40];
  std::snprintf(name, sizeof name, "step-%09d.safetensors", step);
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> found;
  std::error_code ec;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("step-", 0) == 0 && it->path().extension() == ".safetensors")
      found.push_back(it->path().string());
  }
  std::sort(found.rbegin(), found.rend());  // zero-padded step numbers sort as text
  return found;
}

void save_checkpoint(const std::string& run_dir, Model<float>& model, const TrainState& state,
                     const RunConfig& cfg) {
  ensure_directory((fs::path(run_dir) / "checkpoints").string());
  auto& ps = model.params();
  ps.to_host();
  auto refs = parameter_refs(ps, ps.host_values(), "param.");
  for (auto& r : parameter_refs(ps, ps.host_moment1(), "adam_m.")) refs.push_back(r);
  for (auto& r : parameter_refs(ps, ps.host_moment2(), "adam_v.")) refs.push_back(r);
  safetensors::save(checkpoint_path(run_dir, state.step), refs,
                    {{"format", kFormat},
                     {"config", to_json(cfg).dump()},
                     {"state", state_json(state).dump()}});
}

TrainState load_checkpoint(const std::string& path, Model<float>& model, const RunConfig& cfg) {
  const auto contents = safetensors::load(path);
  if (metadata(contents, "format", path) != kFormat)
    throw IoError(path + ": checkpoint format '" + metadata(contents, "format", path) +
                  "', expected " + kFormat);
  nlohmann::json saved_cfg;
  try {
    saved_cfg = parse_metadata(metadata(contents, "config", path), path);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": config metadata is malformed: " + e.what());
  }
  if (saved_cfg != to_json(cfg))
    throw IoError(path + ": written by a run with another config than " +
                  "this run's config.json; refusing to mix them");
  auto& ps = model.params();
  load_parameters(contents, ps, ps.host_values(), "param.", path);
  if (ps.trainable()) {  // a forward-only model takes the parameters alone
    load_parameters(contents, ps, ps.host_moment1(), "adam_m.", path);
    load_parameters(contents, ps, ps.host_moment2(), "adam_v.", path);
  }
  ps.to_device();
  return state_from_json(metadata(contents, "state", path), path);
}

void prune_checkpoints(const std::string& run_dir, int keep) {
  const auto all = list_checkpoints(run_dir);
  std::error_code ec;
  for (size_t i = size_t(keep); i < all.size(); ++i) fs::remove(all[i], ec);
}

Resumed load_newest_checkpoint(const std::string& run_dir, Model<float>& model,
                               const RunConfig& cfg,
                               const std::function<void(const std::string&)>& warn) {
  const auto all = list_checkpoints(run_dir);
  if (all.empty()) throw IoError(run_dir + ": no checkpoint to resume from (checkpoints/ is empty)");
  for (const auto& path : all) {
    try {
      return {path, load_checkpoint(path, model, cfg)};
    } catch (const IoError& e) {
      warn(std::string(e.what()) + "; trying an older checkpoint");
    }
  }
  throw IoError(run_dir + ": none of the " + std::to_string(all.size()) +
                " checkpoints could be read");
}

}  // namespace statelab
