// Run and sweep directories read for the dashboard.
#include "gui/run_files.hpp"

#include <filesystem>
#include <fstream>
#include <map>

#include "kernels/error.hpp"
#include "lab/checkpoint.hpp"
#include "lab/files.hpp"
#include "lab/sweep_results.hpp"

namespace statelab::gui {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Every line of a JSON-lines file that parses; a bad line is reported once and skipped.
std::vector<json> json_lines(const std::string& path, std::vector<std::string>& missing) {
  std::vector<json> out;
  std::ifstream in(path);
  int number = 0;
  bool reported = false;
  for (std::string line; std::getline(in, line);) {
    ++number;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      if (!reported)
        missing.push_back(path + " line " + std::to_string(number) + " is not JSON (skipped)");
      reported = true;
    }
  }
  return out;
}

}  // namespace

LengthCurve eval_curve(const json& eval, const std::string& label) {
  LengthCurve c;
  c.label = label;
  for (const auto& p : eval.at("per_length")) {
    c.lengths.push_back(p.at("length").get<double>());
    c.accuracy.push_back(p.at("accuracy").get<double>());
  }
  if (eval.contains("train_lengths")) {
    c.train_lo = eval.at("train_lengths").at(0).get<int>();
    c.train_hi = eval.at("train_lengths").at(1).get<int>();
  }
  if (eval.contains("training")) c.step = eval.at("training").value("steps_run", 0);
  return c;
}

RunFiles read_run_files(const std::string& dir) {
  if (!fs::is_directory(dir)) throw IoError(dir + ": no such run directory");
  if (!fs::exists(dir + "/config.json"))
    throw IoError(dir + ": not a run directory (no config.json)");
  RunFiles f;
  f.config = load_config(dir + "/config.json");
  const std::string metrics = dir + "/metrics.jsonl", checks = dir + "/checks.jsonl";
  if (fs::exists(metrics)) {
    for (const auto& j : json_lines(metrics, f.missing))
      if (j.contains("loss"))
        f.intervals.push_back({j.value("step", 0), j.value("loss", 0.0),
                               j.value("train_accuracy", 0.0), j.value("lr", 0.0)});
  } else {
    f.missing.push_back("metrics.jsonl: no training curves");
  }
  if (fs::exists(checks)) {
    for (const auto& j : json_lines(checks, f.missing))
      f.checks.push_back({j.value("step", 0), j.value("accuracy", 0.0)});
  } else if (f.config.train.eval_every > 0 && !f.intervals.empty() &&
             f.intervals.back().step > f.config.train.eval_every) {
    f.missing.push_back("checks.jsonl: no held-out checks during training");
  }
  const std::string eval = dir + "/eval.json";
  if (fs::exists(eval)) {
    try {
      f.final_eval = std::make_shared<LengthCurve>(
          eval_curve(json::parse(read_file(eval)), fs::path(dir).filename().string()));
    } catch (const json::exception& e) {
      f.missing.push_back(eval + " is unreadable (" + e.what() + "): no length curve");
    }
  } else {
    f.missing.push_back("eval.json: no length-generalization curve (lab eval " + dir +
                        " writes one)");
  }
  f.has_parameters = fs::exists(dir + "/model.safetensors") || !list_checkpoints(dir).empty();
  if (!f.has_parameters)
    f.missing.push_back("model.safetensors and checkpoints: no gates, memory or state space");
  return f;
}

std::vector<LengthCurve> overlay_curves(const std::string& path) {
  if (fs::exists(path + "/eval.json")) {
    try {
      return {eval_curve(json::parse(read_file(path + "/eval.json")),
                         fs::path(path).filename().string())};
    } catch (const json::exception& e) {
      throw IoError(path + "/eval.json: " + e.what());
    }
  }
  if (!fs::exists(path + "/results.jsonl"))
    throw IoError(path + ": neither a finished run (eval.json) nor a sweep (results.jsonl)");
  // Grid cells without the seed: the runs that differ only by seed form one curve.
  struct Group {
    std::string label;
    std::map<double, std::vector<double>> by_length;
    int train_lo = 0, train_hi = 0;
  };
  std::map<std::string, Group> groups;
  for (const json& line : read_results(path + "/results.jsonl")) {
    if (line.value("status", "") != "ok") continue;
    json axes = line.value("axes", json::object());
    axes.erase("train.seed");
    std::string label;
    for (const auto& [key, value] : axes.items())
      label += (label.empty() ? "" : " ") +
               (value.is_string() ? value.get<std::string>() : value.dump());
    Group& g = groups[axes.dump()];
    g.label = label;
    if (line.contains("train_lengths")) {
      g.train_lo = line["train_lengths"][0].get<int>();
      g.train_hi = line["train_lengths"][1].get<int>();
    }
    for (const auto& p : line.at("per_length"))
      g.by_length[p.at("length").get<double>()].push_back(p.at("accuracy").get<double>());
  }
  std::vector<LengthCurve> out;
  for (auto& [key, g] : groups) {
    LengthCurve c;
    c.label = g.label;
    c.train_lo = g.train_lo;
    c.train_hi = g.train_hi;
    for (const auto& [length, values] : g.by_length) {
      double sum = 0, lo = values[0], hi = values[0];
      for (double v : values) {
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      c.lengths.push_back(length);
      c.accuracy.push_back(sum / double(values.size()));
      c.lo.push_back(lo);
      c.hi.push_back(hi);
    }
    out.push_back(std::move(c));
  }
  if (out.empty()) throw IoError(path + "/results.jsonl: no finished run yet");
  return out;
}

}  // namespace statelab::gui
