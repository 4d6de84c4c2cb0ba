// ProbeSummary: streaming statistics of probe series.
#include "probes/summary.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "probes/decoding.hpp"

namespace statelab {

void ProbeSummary::add(const std::vector<ProbeSeries>& series) {
  for (const auto& s : series) {
    if (s.kind == ProbeKind::label || s.axes.size() < 2 || s.axes[1] != "time") continue;
    auto [it, fresh] = stats_.try_emplace(s.name);
    Stats& st = it->second;
    if (fresh) {
      order_.push_back(s.name);
      st.kind = s.kind;
      st.min = std::numeric_limits<double>::infinity();
      st.max = -st.min;
    }
    const int64_t n = int64_t(s.values.size()), T = s.shape[1];
    const int64_t inner = n / std::max<int64_t>(s.shape[0] * T, 1);  // heads (and units) per step
    if (int64_t(st.time_sum.size()) < T) {
      st.time_sum.resize(size_t(T), 0.0);
      st.time_count.resize(size_t(T), 0.0);
    }
    for (int64_t i = 0; i < n; ++i) {
      const double v = s.values[size_t(i)];
      st.sum += v;
      st.sum_sq += v * v;
      st.min = std::min(st.min, v);
      st.max = std::max(st.max, v);
      const int64_t t = (i / inner) % T;
      st.time_sum[size_t(t)] += v;
      st.time_count[size_t(t)] += 1;
    }
    st.count += double(n);
    if (s.kind == ProbeKind::gate) st.saturated += saturated_fraction(s.values.data(), n) * n;
    if (s.kind == ProbeKind::eigenvalue) st.negative += negative_fraction(s.values.data(), n) * n;
  }
}

nlohmann::json ProbeSummary::stats_json(const Stats& s, bool compact) const {
  nlohmann::json j;
  const double mean = s.sum / std::max(s.count, 1.0);
  auto finite_or_null = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
  };
  if (!compact) {
    j["kind"] = probe_kind_name(s.kind);
    j["mean"] = finite_or_null(mean);
    j["std"] =
        finite_or_null(std::sqrt(std::max(s.sum_sq / std::max(s.count, 1.0) - mean * mean, 0.0)));
    j["min"] = finite_or_null(s.min);
    j["max"] = finite_or_null(s.max);
  }
  switch (s.kind) {
    case ProbeKind::gate:
      j["saturated_fraction"] = s.saturated / std::max(s.count, 1.0);
      break;
    case ProbeKind::eigenvalue:
      j["negative_fraction"] = s.negative / std::max(s.count, 1.0);
      if (compact) j["mean"] = finite_or_null(mean);
      break;
    case ProbeKind::norm: {
      std::vector<float> per_t(s.time_sum.size());
      for (size_t t = 0; t < per_t.size(); ++t)
        per_t[t] = float(s.time_sum[t] / std::max(s.time_count[t], 1.0));
      j["growth_exponent"] =
          finite_or_null(growth_exponent(per_t.data(), 1, int64_t(per_t.size())));
      if (compact) {
        j["mean"] = finite_or_null(mean);
        j["max"] = finite_or_null(s.max);
      }
      if (!per_t.empty()) {
        j["mean_at_start"] = finite_or_null(per_t.front());
        j["mean_at_end"] = finite_or_null(per_t.back());
      }
      break;
    }
    case ProbeKind::indicator:
      if (compact) j["mean"] = finite_or_null(mean);
      break;
    default:
      break;
  }
  return j;
}

nlohmann::json ProbeSummary::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& name : order_) j[name] = stats_json(stats_.at(name), false);
  return j;
}

nlohmann::json ProbeSummary::key_figures() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& name : order_) {
    const Stats& s = stats_.at(name);
    if (s.kind == ProbeKind::value) continue;
    j[name] = stats_json(s, true);
  }
  return j;
}

std::string ProbeSummary::csv() const {
  std::ostringstream out;
  out.precision(9);
  out << "series,kind,statistic,value\n";
  for (const auto& name : order_) {
    const Stats& s = stats_.at(name);
    const nlohmann::json figures = stats_json(s, false);
    for (const auto& [key, value] : figures.items()) {
      if (key == "kind") continue;
      out << name << ',' << probe_kind_name(s.kind) << ',' << key << ',';
      if (value.is_number()) out << value.get<double>();
      out << '\n';
    }
  }
  return out.str();
}

}  // namespace statelab
