// Result lines of a sweep: reading (torn-line tolerant), building from a run directory, CSV.
#include "lab/sweep_results.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "kernels/error.hpp"
#include "lab/files.hpp"

namespace statelab {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<json> read_results(const std::string& path) {
  std::vector<json> out;
  if (!fs::exists(path)) return out;
  const std::string text = read_file(path);
  size_t start = 0, number = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      // A torn last line: a write the kill interrupted. Cut it off so appends stay whole lines.
      if (::truncate(path.c_str(), off_t(start)) != 0)
        throw IoError(path + ": cannot drop the torn last line: " + std::strerror(errno));
      std::fprintf(stderr, "lab: warning: %s: dropped a torn last line (%zu bytes)\n", path.c_str(),
                   text.size() - start);
      break;
    }
    ++number;
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::parse_error& e) {
      throw IoError(path + ": line " + std::to_string(number) + " is not JSON: " + e.what());
    }
  }
  return out;
}

json result_axes(const GridCell& cell) {
  json axes = cell.axes;
  if (!axes.contains("task.name")) axes["task.name"] = cell.config.task.name;
  if (!axes.contains("train.seed")) axes["train.seed"] = cell.config.train.seed;
  return axes;
}

namespace {

json common(const SweepSpec& spec, const GridCell& cell, const std::string& run_dir,
            double wall_s) {
  const RunConfig& c = cell.config;
  return {{"sweep", spec.name},       {"id", cell.id},
          {"label", cell.label},      {"axes", result_axes(cell)},
          {"run_dir", run_dir},       {"task", c.task.name},
          {"blocks", c.model.blocks}, {"eigen_range", c.model.eigen_range},
          {"seed", c.train.seed},     {"train_lengths", c.task.train_lengths},
          {"wall_s", wall_s}};
}

// The "probes" object of the last probe summary line in metrics.jsonl, or null.
json last_probe_summary(const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  json last;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"probes\"") == std::string::npos) continue;
    try {
      last = json::parse(line).at("probes");
    } catch (const json::exception&) {
      // A torn line of a killed run: the earlier summary stands.
    }
  }
  return last;
}

}  // namespace

json ok_result(const SweepSpec& spec, const GridCell& cell, const std::string& run_dir,
               double wall_s) {
  const std::string eval_path = run_dir + "/eval.json";
  json eval;
  try {
    eval = json::parse(read_file(eval_path));
  } catch (const json::parse_error& e) {
    throw IoError(eval_path + ": not JSON: " + e.what());
  }
  json line = common(spec, cell, run_dir, wall_s);
  line["status"] = "ok";
  json per_length = json::array();
  double worst = 1;
  for (const auto& l : eval.at("per_length")) {
    per_length.push_back({{"length", l.at("length")}, {"accuracy", l.at("accuracy")}});
    worst = std::min(worst, l.at("accuracy").get<double>());
  }
  line["per_length"] = per_length;
  line["chance"] = eval.at("chance");
  for (const char* key :
       {"mean_accuracy_beyond_train", "scaled_accuracy_beyond_train", "solved_up_to"})
    line[key] = eval.at(key);
  line["solved"] = worst >= 0.99;
  line["steps_run"] = eval.at("training").at("steps_run");
  line["stop_reason"] = eval.at("training").at("stop_reason");
  line["train_s"] = eval.at("training").at("seconds");
  line["eval_s"] = eval.value("eval_seconds", 0.0);
  line["device"] = eval.value("device", "");
  if (json probes = last_probe_summary(run_dir + "/metrics.jsonl"); !probes.is_null())
    line["probes"] = probes;
  return line;
}

json failed_result(const SweepSpec& spec, const GridCell& cell, const std::string& run_dir,
                   const std::string& reason, double wall_s) {
  json line = common(spec, cell, run_dir, wall_s);
  line["status"] = "failed";
  line["reason"] = reason;
  return line;
}

namespace {

std::string csv_field(const json& v) {
  std::string s = v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string results_csv(const std::vector<json>& lines) {
  std::vector<std::string> axes;
  std::set<int> lengths;
  for (const auto& l : lines) {
    for (const auto& [name, _] : l.at("axes").items())
      if (std::find(axes.begin(), axes.end(), name) == axes.end()) axes.push_back(name);
    for (const auto& p : l.value("per_length", json::array()))
      lengths.insert(p.at("length").get<int>());
  }
  const std::vector<std::string> fields = {"status",
                                           "task",
                                           "blocks",
                                           "eigen_range",
                                           "seed",
                                           "scaled_accuracy_beyond_train",
                                           "mean_accuracy_beyond_train",
                                           "solved_up_to",
                                           "solved",
                                           "steps_run",
                                           "stop_reason",
                                           "wall_s",
                                           "device",
                                           "reason",
                                           "id",
                                           "run_dir"};
  std::ostringstream out;
  out << "label";
  for (const auto& a : axes) out << ',' << csv_field(a);
  for (const auto& f : fields) out << ',' << f;
  for (int L : lengths) out << ",acc_" << L;
  out << '\n';
  for (const auto& l : lines) {
    out << csv_field(l.at("label"));
    for (const auto& a : axes) out << ',' << csv_field(l.at("axes").value(a, json()));
    for (const auto& f : fields) out << ',' << csv_field(l.value(f, json()));
    std::map<int, double> acc;
    for (const auto& p : l.value("per_length", json::array()))
      acc[p.at("length").get<int>()] = p.at("accuracy").get<double>();
    for (int L : lengths) {
      out << ',';
      if (acc.count(L)) out << acc[L];
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace statelab
