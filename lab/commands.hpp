// The `lab` subcommands as functions, so main.cpp only parses arguments and reports errors.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace statelab {

class Trainer;

struct TrainOptions {
  std::string preset;
  std::vector<std::string> overrides;  // --set KEY=VALUE, in order
  std::string out;                     // empty: runs/<name>-<timestamp>
  bool force = false;
  std::string device;  // empty: the preset's (config.json's on --resume)
  std::string resume;  // a run directory to continue from its newest checkpoint
  int stop_after = 0;  // > 0: stop resumably after this step
  bool no_selftest = false;  // skip the once-per-build check of the CUDA kernels
  // Builds the per-eval probe summary for metrics.jsonl (probes/training_summary; main.cpp
  // wires it in, since the lab library sits below probes/). Empty: no summaries.
  std::function<std::function<nlohmann::json(int)>(Trainer&)> make_summarizer;
};
// Exit status: 0 when the run finished or stopped as asked (--stop-after), 130 when a signal
// interrupted it (checkpoint written, resumable).
int run_train(const TrainOptions& o);

struct EvalOptions {
  std::string run_dir;
  std::string lengths;  // "lo:hi[:step]"; empty: the run's eval config
  int64_t seed = -1;    // < 0: the run's eval seed
  int samples = 0;      // 0: the run's
  std::string json_out;
  bool force = false;
  std::string device;  // empty: the run's
};
int run_eval(const EvalOptions& o);

struct TasksOptions {
  std::string task;  // empty: list every task
  int samples = 3;
  int length = 12;
  uint64_t seed = 1234;  // the default eval seed: samples are the held-out set's first rows
  bool json = false;
};
int run_tasks(const TasksOptions& o);

int run_devices();

struct SelftestOptions {
  std::string device = "auto";
  std::string precision = "fp32";
  std::string filter;  // run only the cases whose "op [shape]" contains it
};
// Exit status 1 when any case fails; every failure names the op, the shape and the error.
int run_selftest(const SelftestOptions& o);

struct BenchOptions {
  std::string device = "auto";
  std::string precision = "fp32";
  std::string filter;    // only benchmarks whose name contains it ("slstm", "M", "model")
  std::string json_out;  // also write every figure here
  int reps = 30;         // timed repetitions per op (the median is reported)
  std::string linear_kernel = "automatic";     // the linear cells' op benchmarks' kernel
  std::string nonlinear_kernel = "automatic";  // LSTM's and sLSTM's op benchmarks' kernels
};
int run_bench(const BenchOptions& o);

struct ComputeDevice;
// Runs the selftest on a CUDA device unless this build already passed it there at the
// device's precision; throws Error listing every failing case. Nothing on the CPU.
void ensure_selftest(const ComputeDevice& device);

// Throws ConfigError unless `device` is empty or "auto", "cpu" or "cuda:N"; whether the device
// exists is checked when it is opened.
void check_device(const std::string& device);

// "40:256" or "1:512:4" -> {lo, hi, step}; throws ConfigError naming `what` otherwise.
std::vector<int> parse_length_range(const std::string& spec, const std::string& what);

}  // namespace statelab
