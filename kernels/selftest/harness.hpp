// The one harness that checks every CUDA kernel against its CPU twin (the test-backend-ops
// way): each family registers cases; a case draws fresh random inputs, runs the CPU twin in
// double as the reference and the CUDA kernel in float on the same (float-rounded) inputs,
// and compares every output, saved state and gradient by rel-RMS error and max-abs error.
// Outputs are poisoned (NaN) before the CUDA run, so an element never written fails.
// `lab selftest` prints these results and the `gpu` tests assert them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/rng.hpp"

namespace statelab::selftest {

struct TensorCheck {
  std::string name;         // e.g. "y", "dq", "boundary"
  double rel_rms = 0;       // ‖gpu − ref‖ / max(‖ref‖, √n·FLT_MIN) (‖gpu − ref‖ if ref is 0)
  double max_abs = 0;       // worst |gpu − ref|
  int64_t worst = -1;       // its index
  int64_t non_finite = 0;   // NaN / Inf elements in the GPU result (never passes)
  double limit = 0;         // the rel-RMS allowed
  bool passed() const { return non_finite == 0 && rel_rms <= limit; }
};

struct CaseResult {
  std::vector<TensorCheck> checks;
  bool passed() const {
    for (const auto& c : checks)
      if (!c.passed()) return false;
    return !checks.empty();
  }
};

struct Case {
  std::string op;     // e.g. "linear_recurrence chunkwise fwd+bwd"
  std::string shape;  // e.g. "B=2 T=65 H=3 Dk=7 Dv=5 gdn pm1"
  std::function<CaseResult(const cuda::Context&)> run;
};

// rel-RMS limits of STYLE.md against a double reference: fp32 arithmetic 1e-5; products
// through tf32 2e-3, bf16 1e-2, gate gradients through bf16 2e-2.
double limit_for(Precision p, bool matmul = true, bool gate_gradient = false);

// n values uniform in [lo, hi) from (seed, stream 0, index = salt): reproducible per case.
std::vector<double> uniform_values(uint64_t seed, uint64_t salt, int64_t n, double lo, double hi);
// The same values rounded to float, and back: the reference sees exactly what the GPU sees.
std::vector<float> to_float(const std::vector<double>& x);
std::vector<double> to_double(const std::vector<float>& x);
// Rounds x to float precision in place and returns it (for reference inputs).
std::vector<double> rounded(std::vector<double> x);

TensorCheck compare(const std::string& name, const std::vector<float>& gpu,
                    const std::vector<double>& ref, double limit);

// A device copy of host values.
template <typename T>
cuda::DeviceBuffer<T> to_device(const cuda::Context& ctx, const std::vector<T>& host) {
  cuda::DeviceBuffer<T> d(int64_t(host.size()));
  d.upload(ctx, host);
  return d;
}
// A poisoned device buffer for an output of n elements.
cuda::DeviceBuffer<float> output_buffer(const cuda::Context& ctx, int64_t n);

// A device copy that starts `offset` floats into its buffer: offset 1 puts the pointer 4 bytes
// past a 16-byte boundary (a kernel's scalar paths), 16 on a 64-byte one (the arena's slots).
struct Placed {
  cuda::DeviceBuffer<float> buf;
  int64_t offset = 0;
  float* ptr() { return buf.data() + offset; }
  std::vector<float> get(const cuda::Context& ctx) const {
    const auto all = buf.download(ctx);
    return {all.begin() + offset, all.end()};
  }
};
Placed place(const cuda::Context& ctx, const std::vector<double>& host, int64_t offset = 0);
// A poisoned output of n elements placed the same way.
Placed place_output(const cuda::Context& ctx, int64_t n, int64_t offset = 0);

// Every family's cases; the families are defined one file each beside this one.
std::vector<Case> dense_cases();
std::vector<Case> pointwise_cases();
std::vector<Case> norm_cases();
std::vector<Case> loss_optim_cases();
std::vector<Case> attention_cases();
std::vector<Case> nonlinear_recurrence_cases();
std::vector<Case> linear_recurrence_cases();
std::vector<Case> all_cases();

}  // namespace statelab::selftest
