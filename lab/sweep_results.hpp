// results.jsonl of a sweep: one JSON line per finished run (ok or failed), appended with one
// write each, so a kill never leaves half a line behind except a torn last one, which reading
// drops (and cuts off the file, so the next append starts a line of its own). results.csv is
// rebuilt from it for pandas.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lab/sweep_spec.hpp"

namespace statelab {

// Every complete line. IoError naming the file and the line for a line that is not JSON
// (other than a torn last one).
std::vector<nlohmann::json> read_results(const std::string& path);

// The line of a run that finished: its axes, the eval summary and per-length accuracy from
// run_dir/eval.json, the last probe summary of its metrics.jsonl, wall time and device.
nlohmann::json ok_result(const SweepSpec& spec, const GridCell& cell, const std::string& run_dir,
                         double wall_s);
// The line of a run that failed, with the reason (its error message).
nlohmann::json failed_result(const SweepSpec& spec, const GridCell& cell,
                             const std::string& run_dir, const std::string& reason, double wall_s);

// The axes a results line is grouped by: the sweep's axes plus task.name and train.seed.
nlohmann::json result_axes(const GridCell& cell);

std::string results_csv(const std::vector<nlohmann::json>& lines);

}  // namespace statelab
