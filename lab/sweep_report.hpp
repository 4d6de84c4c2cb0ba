// The report of a length-generalization sweep: pure functions from the runner's results (one
// JSON object per finished run, ok or failed, as in results.jsonl) to a terminal table, report.md
// and report.html (one self-contained file: inline CSS and SVG, nothing fetched). Results are
// read tolerantly — a missing or non-finite figure shows as "-" or is left out of a chart — since
// a half-finished sweep or one from an older runner is still worth reading; only a result that is
// not a JSON object is an error.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace statelab {

struct SweepReportInput {
  std::string name;                     // the sweep's name
  std::vector<nlohmann::json> results;  // results.jsonl lines, ok and failed
  // Axes whose value labels, joined with " ", name a row ({"cell"}, {"cell",
  // "task.train_lengths"}); none: a single row "all".
  std::vector<std::string> row_axes;
  // One column per value, in first-seen order. A result without this axis (a sweep that fixes
  // the task) is put in the column named by its "task" field, or "all" without one.
  std::string column_axis = "task.name";
  // The axis the cells aggregate over; named in captions ("mean ± std over train.seed"). Cells
  // also pool any other axis that is neither a row nor the column axis.
  std::string seed_axis = "train.seed";
  int64_t grid_size = 0;  // cells in the grid, for "41/48 runs done"; 0 if unknown
};

// A cell of the matrix: "mean ± std (k/n solved[, f failed])" of scaled_accuracy_beyond_train
// over the cell's ok runs — std is the sample std (n - 1), omitted with one run — where n counts
// every run of the cell, failed ones included, so a failure reads as unsolved; "-" with no runs.

// Aligned plain-text table, the runs-done line and the failures (label: reason), for a terminal.
std::string format_sweep_table(const SweepReportInput& in);

// report.md: title, counts, the matrix as a Markdown table and the failure list.
std::string sweep_report_markdown(const SweepReportInput& in);

// report.html: counts; the solved matrix coloured red→green by solved fraction; per column an SVG
// chart of accuracy against evaluated length (per row: mean over runs, min–max band, training
// range, chance line, legend); per column a table of probe figures (mean over runs of the mean
// over layers) when any result has "probes"; and the failures. All input text is escaped.
std::string sweep_report_html(const SweepReportInput& in);

}  // namespace statelab
