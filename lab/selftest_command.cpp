// `lab selftest`: every CUDA kernel against its CPU twin (kernels/selftest), and the check
// `lab train` runs once per build and device before it trusts a GPU. A pass is recorded as an
// empty marker file named after the executable's identity (size and modification time) and the
// device's UUID and precision, under $XDG_CACHE_HOME/statelab (or ~/.cache/statelab).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/compute_device.hpp"

#ifdef STATELAB_HAVE_CUDA
#include "kernels/cuda/context.hpp"
#include "kernels/selftest/harness.hpp"
#endif

namespace statelab {

namespace {

#ifdef STATELAB_HAVE_CUDA

std::string describe_check(const selftest::TensorCheck& c) {
  char line[200];
  if (c.non_finite)
    std::snprintf(line, sizeof line, "%s: %lld non-finite elements (first at %lld)",
                  c.name.c_str(), static_cast<long long>(c.non_finite),
                  static_cast<long long>(c.worst));
  else
    std::snprintf(line, sizeof line, "%s rel-RMS %.2e (limit %.0e), max-abs %.2e at %lld",
                  c.name.c_str(), c.rel_rms, c.limit, c.max_abs, static_cast<long long>(c.worst));
  return line;
}

struct Tally {
  int passed = 0;
  std::vector<std::string> failures;  // "op [shape]: what"
};

Tally run_cases(const cuda::Context& ctx, const std::string& filter, bool verbose) {
  Tally t;
  for (const auto& c : selftest::all_cases()) {
    const std::string name = c.op + " [" + c.shape + "]";
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    const auto start = std::chrono::steady_clock::now();
    std::string failure;
    std::string worst;
    try {
      const selftest::CaseResult r = c.run(ctx);
      double worst_ratio = -1;
      for (const auto& check : r.checks) {
        if (!check.passed()) failure += (failure.empty() ? "" : "; ") + describe_check(check);
        const double ratio = check.rel_rms / check.limit;
        if (ratio > worst_ratio) worst_ratio = ratio, worst = describe_check(check);
      }
      if (r.checks.empty()) failure = "the case compared nothing";
    } catch (const std::exception& e) {
      failure = std::string("threw: ") + e.what();
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (failure.empty()) {
      ++t.passed;
      if (verbose) std::printf("  ok    %-44s %s  (%.0f ms)\n", name.c_str(), worst.c_str(), ms);
    } else {
      t.failures.push_back(name + ": " + failure);
      std::printf("  FAIL  %-44s %s\n", name.c_str(), failure.c_str());
    }
    std::fflush(stdout);
  }
  return t;
}

std::string marker_path(const cuda::Context& ctx) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path dir = xdg && *xdg ? std::filesystem::path(xdg) / "statelab"
                              : home && *home ? std::filesystem::path(home) / ".cache" / "statelab"
                                              : std::filesystem::path();
  if (dir.empty()) return "";
  struct stat st {};
  if (stat("/proc/self/exe", &st) != 0) return "";
  return (dir / ("selftest-" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtime) +
                 "-" + ctx.uuid + "-" + precision_name(ctx.precision) + ".passed"))
      .string();
}

#endif  // STATELAB_HAVE_CUDA

}  // namespace

int run_selftest(const SelftestOptions& o) {
  const ComputeDevice device =
      open_device(o.device, precision_from_name(o.precision), "--device");
  if (!device.on_cuda())
    throw ConfigError("lab selftest checks CUDA kernels against the CPU, and " + o.device +
                      " resolved to the CPU: no CUDA device to check (lab devices says why)");
#ifdef STATELAB_HAVE_CUDA
  std::printf("selftest on %s\n", device.description.c_str());
  const Tally t = run_cases(*device.exec.cuda, o.filter, true);
  std::printf("%d passed, %zu failed\n", t.passed, t.failures.size());
  if (t.passed == 0 && t.failures.empty())
    throw ConfigError("--filter " + o.filter + ": no selftest case matches");
  return t.failures.empty() ? 0 : 1;
#else
  return 1;
#endif
}

void ensure_selftest(const ComputeDevice& device) {
#ifdef STATELAB_HAVE_CUDA
  if (!device.on_cuda()) return;
  const cuda::Context& ctx = *device.exec.cuda;
  const std::string marker = marker_path(ctx);
  if (!marker.empty() && std::filesystem::exists(marker)) return;
  std::printf("selftest of this build on %s (once per build and device; --no-selftest skips)\n",
              device.description.c_str());
  std::fflush(stdout);
  const Tally t = run_cases(ctx, "", false);
  if (!t.failures.empty()) {
    std::string all;
    for (const auto& f : t.failures) all += "\n  " + f;
    throw Error("the CUDA kernels disagree with the CPU reference on " + device.description +
                " in " + std::to_string(t.failures.size()) + " selftest case(s):" + all +
                "\nrun `lab selftest --device " + device.spec + "` for the full table, or train "
                "with --device cpu");
  }
  std::printf("selftest: %d cases passed\n", t.passed);
  if (marker.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(marker).parent_path(), ec);
  std::ofstream(marker).flush();  // a cache: failing to write it only means checking again
#else
  (void)device;
#endif
}

}  // namespace statelab
