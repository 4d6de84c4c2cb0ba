// Resolving and opening compute devices.
#include "lab/compute_device.hpp"

#include <cstdio>

#include "kernels/device.hpp"
#include "kernels/error.hpp"

#ifdef STATELAB_HAVE_CUDA
#include "kernels/cuda/context.hpp"
#endif

namespace statelab {

namespace {

// N of "cuda:N", or -1 when spec is not of that form.
int cuda_index(const std::string& spec) {
  if (spec.rfind("cuda:", 0) != 0) return -1;
  const std::string digits = spec.substr(5);
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoi(digits);
}

ComputeDevice cpu_device() {
  ComputeDevice d;
  d.spec = d.description = "cpu";
  return d;
}

}  // namespace

std::string device_spec_error(const std::string& spec) {
  if (spec == "auto" || spec == "cpu" || cuda_index(spec) >= 0) return "";
  return "\"auto\", \"cpu\" or \"cuda:N\" (N = 0, 1, ...)";
}

ComputeDevice open_device(const std::string& spec, Precision precision, const std::string& what) {
  if (const std::string rule = device_spec_error(spec); !rule.empty())
    throw ConfigError(what + ": expected " + rule + ", got \"" + spec + "\"");
  if (spec == "cpu") return cpu_device();
  const CudaProbe probe = probe_cuda_devices();
  int index = cuda_index(spec);
  if (spec == "auto") {
    if (probe.devices.empty()) return cpu_device();
    index = 0;
  }
  if (probe.devices.empty())
    throw ConfigError(what + " " + spec + ": no CUDA device is usable here (" + probe.why_none +
                      "); use \"cpu\" or \"auto\"");
  if (index >= int(probe.devices.size()))
    throw ConfigError(
        what + " " + spec + ": this machine has " + std::to_string(probe.devices.size()) +
        " CUDA device(s), cuda:0 to cuda:" + std::to_string(probe.devices.size() - 1));
#ifdef STATELAB_HAVE_CUDA
  std::shared_ptr<cuda::Context> ctx;
  try {
    ctx = cuda::make_context(index, precision);
  } catch (const CudaError& e) {
    throw ConfigError(what + " " + spec + ": cannot open the device: " + e.what());
  }
  ComputeDevice d;
  d.spec = "cuda:" + std::to_string(index);
  d.description = d.spec + " (" + ctx->name + ", " + std::to_string(ctx->sm_count) + " SMs, " +
                  precision_name(precision) + ")";
  d.exec.cuda = ctx.get();
  d.owner = std::move(ctx);
  return d;
#else
  throw ConfigError(what + " " + spec + ": this build has no CUDA backend");
#endif
}

}  // namespace statelab
