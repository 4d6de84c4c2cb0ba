// Axis maths: nice ticks, log ticks, pixel maps and data ranges (see scale.hpp).
// Every public function first turns its input into a finite, non-degenerate range, so nothing
// downstream divides by zero or loops on NaN; tests/gui/test_widgets.cpp checks those corners.
#include "gui/widgets/scale.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>

namespace statelab::widgets {
namespace {

constexpr double kHuge = 1e300;  // keeps hi - lo and the padding finite

// A range too narrow to tell its ends apart in double (or empty) becomes v +- |v| / 10.
std::pair<double, double> widen_degenerate(double lo, double hi) {
  if (hi - lo > 1e-12 * std::max(std::abs(lo), std::abs(hi))) return {lo, hi};
  double mid = 0.5 * (lo + hi);
  double d = mid == 0 ? 1.0 : std::abs(mid) / 10;
  return {mid - d, mid + d};
}

std::pair<double, double> finite_range(double lo, double hi) {
  if (!std::isfinite(lo) && !std::isfinite(hi)) return {0, 1};
  if (!std::isfinite(lo)) lo = hi;
  if (!std::isfinite(hi)) hi = lo;
  lo = std::clamp(lo, -kHuge, kHuge);
  hi = std::clamp(hi, -kHuge, kHuge);
  if (lo > hi) std::swap(lo, hi);
  return widen_degenerate(lo, hi);
}

// "2.50" -> "2.5", "1.0" -> "1", "1.50e+05" -> "1.5e+05": only zeros go, so distinct values
// keep distinct labels.
std::string trim_zeros(std::string s) {
  size_t e = s.find('e');
  std::string exponent = e == std::string::npos ? "" : s.substr(e);
  std::string mantissa = s.substr(0, e);
  if (mantissa.find('.') != std::string::npos) {
    mantissa.erase(mantissa.find_last_not_of('0') + 1);
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  return mantissa + exponent;
}

// Enough decimals to tell ticks a 10^step_exp step apart; scientific outside [1e-3, 1e5).
std::string format_tick(double v, int step_exp, double max_abs) {
  if (v == 0) return "0";
  char buf[48];
  if (max_abs >= 1e-3 && max_abs < 1e5) {
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, -step_exp), v);
  } else {
    int decimals = std::max(0, static_cast<int>(std::floor(std::log10(max_abs))) - step_exp);
    std::snprintf(buf, sizeof buf, "%.*e", decimals, v);
  }
  return trim_zeros(buf);
}

std::string format_log_tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool inside(double v, double lo, double hi) {
  double eps = 1e-9 * (hi - lo);
  return v >= lo - eps && v <= hi + eps;
}

// m x 10^k for each mantissa m and every stride-th decade k, inside [lo, hi].
std::vector<double> decade_values(double lo, double hi, std::initializer_list<int> mantissas,
                                  int stride) {
  std::vector<double> out;
  int k0 = static_cast<int>(std::floor(std::log10(lo)));
  int k1 = static_cast<int>(std::ceil(std::log10(hi)));
  for (int k = k0; k <= k1; ++k) {
    if (((k % stride) + stride) % stride != 0) continue;
    for (int m : mantissas) {
      double v = m * std::pow(10.0, k);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
    }
  }
  return out;
}

Ticks log_labelled(std::vector<double> values) {
  Ticks t;
  for (double v : values) t.labels.push_back(format_log_tick(v));
  t.values = std::move(values);
  return t;
}

struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();

  void add(double v, bool log) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    v = std::clamp(v, -kHuge, kHuge);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }

  std::pair<double, double> padded(bool log, double pad) const {
    if (lo > hi) return log ? std::pair{1.0, 10.0} : std::pair{0.0, 1.0};
    if (log) {
      auto [l, h] = hi > lo * (1 + 1e-12) ? std::pair{lo, hi} : std::pair{lo / 2, hi * 2};
      double k = std::pow(10.0, pad * std::log10(h / l));
      return {std::max(l / k, std::numeric_limits<double>::min()), std::min(h * k, kHuge)};
    }
    auto [l, h] = widen_degenerate(lo, hi);
    double d = pad * (h - l);
    return {l - d, h + d};
  }
};

// The axis ends in the mapped space (log10 for a log axis).
std::pair<double, double> transformed_ends(const AxisMap& a) {
  if (!a.log) return {a.lo, a.hi};
  double h = a.hi > 0 ? a.hi : 1;
  double l = a.lo > 0 ? a.lo : h * 1e-6;
  return {std::log10(l), std::log10(h)};
}

}  // namespace

Ticks nice_ticks(double lo, double hi, int max_ticks) {
  std::tie(lo, hi) = finite_range(lo, hi);
  int max_t = std::clamp(max_ticks, 3, 100);
  int exp0 = static_cast<int>(std::floor(std::log10((hi - lo) / (max_t - 1))));
  constexpr int kMantissa[] = {1, 2, 5};
  // Terminates: once the step exceeds |lo| and |hi| at most three multiples enclose the range.
  for (int i = 0;; ++i) {
    int exp = exp0 + i / 3;
    double step = kMantissa[i % 3] * std::pow(10.0, exp);
    double first = std::floor(lo / step), last = std::ceil(hi / step);
    if (last - first + 1 > max_t) continue;
    Ticks t;
    for (double k = first; k <= last; ++k) t.values.push_back(k * step + 0.0);  // no "-0"
    double max_abs = std::max(std::abs(t.values.front()), std::abs(t.values.back()));
    for (double v : t.values) t.labels.push_back(format_tick(v, exp, max_abs));
    return t;
  }
}

Ticks log_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(hi) || hi <= 0) return log_ticks(1, 10, max_ticks);
  if (!std::isfinite(lo) || lo <= 0) lo = hi * 1e-6;
  if (lo > hi) std::swap(lo, hi);
  if (hi <= lo * (1 + 1e-12)) return log_ticks(lo / 2, hi * 2, max_ticks);
  int max_t = std::clamp(max_ticks, 3, 100);
  int decades = static_cast<int>(std::ceil(std::log10(hi / lo)));
  std::vector<double> powers =
      decade_values(lo, hi, {1}, std::max(1, (decades + max_t - 1) / max_t));
  if (powers.size() >= 3) return log_labelled(std::move(powers));
  for (auto mantissas : {std::initializer_list<int>{1, 2, 5}, {1, 5}}) {
    std::vector<double> v = decade_values(lo, hi, mantissas, 1);
    if (v.size() >= 2 && static_cast<int>(v.size()) <= max_t) return log_labelled(std::move(v));
  }
  if (powers.size() == 2) return log_labelled(std::move(powers));
  Ticks linear = nice_ticks(lo, hi, max_t), t;
  for (size_t i = 0; i < linear.values.size(); ++i) {
    if (linear.values[i] > 0 && inside(linear.values[i], lo, hi)) {
      t.values.push_back(linear.values[i]);
      t.labels.push_back(linear.labels[i]);
    }
  }
  return t;
}

float AxisMap::to_px(double v) const {
  if (std::isnan(v)) return std::numeric_limits<float>::quiet_NaN();
  if (log && v <= 0) return px_lo;
  auto [a, b] = transformed_ends(*this);
  double u = log ? std::log10(v) : v;
  double t = b == a ? 0.5 : std::clamp((u - a) / (b - a), -1e4, 1e4);
  return static_cast<float>(px_lo + t * (px_hi - px_lo));
}

double AxisMap::from_px(float px) const {
  auto [a, b] = transformed_ends(*this);
  double t = px_hi == px_lo ? 0.0 : (double(px) - px_lo) / (double(px_hi) - px_lo);
  double u = a + t * (b - a);
  return log ? std::pow(10.0, u) : u;
}

// Up to two enclosing ticks fall off the axis, so ask for two more first and fall back to
// max_ticks only when all of them landed on it.
Ticks axis_ticks(const AxisMap& axis, int max_ticks) {
  double lo = std::min(axis.lo, axis.hi), hi = std::max(axis.lo, axis.hi);
  if (axis.log) return log_ticks(lo, hi, max_ticks);
  for (int request = max_ticks + 2;; --request) {
    Ticks all = nice_ticks(lo, hi, request), t;
    for (size_t i = 0; i < all.values.size(); ++i) {
      if (!inside(all.values[i], lo, hi)) continue;
      t.values.push_back(all.values[i]);
      t.labels.push_back(all.labels[i]);
    }
    if (static_cast<int>(t.values.size()) <= max_ticks || request <= max_ticks) return t;
  }
}

std::pair<double, double> data_range(const std::vector<const std::vector<double>*>& arrays,
                                     bool log, double pad) {
  Extent e;
  for (const std::vector<double>* a : arrays) {
    if (a == nullptr) continue;
    for (double v : *a) e.add(v, log);
  }
  return e.padded(log, pad);
}

std::pair<double, double> data_range(const float* values, int64_t count, int64_t stride, bool log,
                                     double pad) {
  Extent e;
  for (int64_t i = 0; values != nullptr && i < count; ++i) e.add(values[i * stride], log);
  return e.padded(log, pad);
}

}  // namespace statelab::widgets
