// Summaries of probe series, accumulated over the groups of samples a probe run streams
// through: mean, range, and what each kind of series is read for — how often gates saturate,
// how norms grow with position, how often transition eigenvalues are negative. They go to the
// probe export's summary.csv and, per training eval, to metrics.jsonl.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cells/probe_sink.hpp"

namespace statelab {

class ProbeSummary {
 public:
  // Adds every series of a pass except labels and attention maps (which are not per step).
  void add(const std::vector<ProbeSeries>& series);
  // One object per series: kind, mean, std, min, max, and per kind saturated_fraction (gate),
  // negative_fraction (eigenvalue), growth_exponent, mean_at_end / mean_at_start (norm).
  nlohmann::json to_json() const;
  // The compact form logged per training eval: only the statistics the kind is read for.
  nlohmann::json key_figures() const;
  // Long format "series,kind,statistic,value" for pandas.
  std::string csv() const;

 private:
  struct Stats {
    ProbeKind kind = ProbeKind::value;
    double count = 0, sum = 0, sum_sq = 0, min = 0, max = 0;
    double saturated = 0, negative = 0;
    std::vector<double> time_sum, time_count;  // per position, over samples and heads
  };
  nlohmann::json stats_json(const Stats& s, bool compact) const;
  std::map<std::string, Stats> stats_;
  std::vector<std::string> order_;  // first-seen order
};

}  // namespace statelab
