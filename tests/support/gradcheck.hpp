// Central finite-difference gradient checks in double, the oracle for every backward pass.
// Checks a capped, seeded sample of elements (ggml's test-grad0 style) and reports the
// scale-free rel-RMS error with the worst element, so a failure says where and how much.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace statelab::testing {

struct GradCheck {
  double rel_rms = 0;   // ‖analytic − numeric‖ / ‖numeric‖ over the checked elements
  double max_abs = 0;   // worst |analytic − numeric|
  int64_t worst = -1;   // its index
  int checked = 0;
};

// `loss` recomputes the scalar loss from the current contents of x[0..n).
inline GradCheck check_gradient(const std::function<double()>& loss, double* x,
                                const double* analytic, int64_t n, int max_samples = 64,
                                double eps = 1e-5, unsigned seed = 7) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (n > max_samples) {
    std::mt19937 rng(seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(size_t(max_samples));
  }
  GradCheck r;
  double err2 = 0, ref2 = 0;
  for (int64_t i : idx) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double up = loss();
    x[i] = saved - eps;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * eps);
    const double diff = std::abs(analytic[i] - numeric);
    err2 += diff * diff;
    ref2 += numeric * numeric;
    if (diff > r.max_abs) r.max_abs = diff, r.worst = i;
    ++r.checked;
  }
  r.rel_rms = std::sqrt(err2 / std::max(ref2, 1e-300));
  return r;
}

// Asserts rel-RMS <= tol, naming what was checked and the worst element.
inline void expect_gradient_close(const GradCheck& r, const std::string& what, double tol = 1e-6) {
  EXPECT_GT(r.checked, 0) << what;
  EXPECT_TRUE(std::isfinite(r.rel_rms)) << what << ": non-finite error";
  EXPECT_LE(r.rel_rms, tol) << what << ": rel-RMS " << r.rel_rms << ", max-abs " << r.max_abs
                            << " at element " << r.worst << " of " << r.checked << " checked";
}

inline std::vector<double> random_vector(int64_t n, unsigned seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline double dot(const std::vector<double>& a, const double* b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace statelab::testing
