// Comparison, tolerances and random inputs shared by every selftest family.
#include "kernels/selftest/harness.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace statelab::selftest {

double limit_for(Precision p, bool matmul, bool gate_gradient) {
  if (!matmul || p == Precision::fp32) return 1e-5;
  if (p == Precision::tf32) return 2e-3;
  return gate_gradient ? 2e-2 : 1e-2;
}

std::vector<double> uniform_values(uint64_t seed, uint64_t salt, int64_t n, double lo, double hi) {
  Rng rng(seed, 0, salt);
  std::vector<double> x(static_cast<size_t>(n));
  for (auto& v : x) v = lo + (hi - lo) * rng.uniform();
  return rounded(std::move(x));
}

std::vector<float> to_float(const std::vector<double>& x) { return {x.begin(), x.end()}; }
std::vector<double> to_double(const std::vector<float>& x) { return {x.begin(), x.end()}; }

std::vector<double> rounded(std::vector<double> x) {
  for (auto& v : x) v = double(float(v));
  return x;
}

TensorCheck compare(const std::string& name, const std::vector<float>& gpu,
                    const std::vector<double>& ref, double limit) {
  TensorCheck c;
  c.name = name;
  c.limit = limit;
  if (gpu.size() != ref.size()) {
    c.non_finite = -1;
    c.rel_rms = INFINITY;
    return c;
  }
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    if (!std::isfinite(gpu[i])) {
      ++c.non_finite;
      if (c.worst < 0) c.worst = int64_t(i);
      continue;
    }
    const double d = double(gpu[i]) - ref[i];
    err2 += d * d;
    ref2 += ref[i] * ref[i];
    if (std::abs(d) > c.max_abs) c.max_abs = std::abs(d), c.worst = int64_t(i);
  }
  // No float holds a reference below its smallest normal to float's relative precision (a decay
  // of e^-150 is 0 in float), so the reference's RMS counts as at least FLT_MIN: only errors that
  // float could have avoided fail.
  const double floor2 = double(gpu.size()) * double(FLT_MIN) * double(FLT_MIN);
  c.rel_rms = ref2 > 0 ? std::sqrt(err2 / std::max(ref2, floor2)) : std::sqrt(err2);
  if (c.non_finite) c.rel_rms = INFINITY;
  return c;
}

cuda::DeviceBuffer<float> output_buffer(const cuda::Context& ctx, int64_t n) {
  cuda::DeviceBuffer<float> d(n);
  d.poison(ctx);
  return d;
}

Placed place(const cuda::Context& ctx, const std::vector<double>& host, int64_t offset) {
  std::vector<float> f(static_cast<size_t>(offset), 0.f);
  f.insert(f.end(), host.begin(), host.end());
  return Placed{to_device(ctx, f), offset};
}

Placed place_output(const cuda::Context& ctx, int64_t n, int64_t offset) {
  return Placed{output_buffer(ctx, n + offset), offset};
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {dense_cases, pointwise_cases, norm_cases, loss_optim_cases, attention_cases,
                      nonlinear_recurrence_cases, linear_recurrence_cases}) {
    auto cases = family();
    all.insert(all.end(), cases.begin(), cases.end());
  }
  return all;
}

}  // namespace statelab::selftest
