// `lab bench`: per-op and per-model benchmarks. Ops (each cell's core recurrence and the
// attention, forward + backward) run at the S, M and L configs of the CUDA issue on a GPU: one
// op call sequence is captured into a CUDA graph and replayed, timed with CUDA events after
// warm-up, median of many repetitions; the eager (uncaptured) median is reported beside it.
// Models: a whole training step of a 2-block model of every cell, as `lab train` runs it, and
// the cost of evaluating at 10x the training length. Bytes and FLOPs are counted from shapes
// (inputs and outputs once through memory; the state updates' multiply-adds).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/compute_device.hpp"
#include "lab/files.hpp"
#include "lab/step_runner.hpp"
#include "tasks/registry.hpp"
#include "statelab_commit.hpp"  // STATELAB_COMMIT, generated at build time

#ifdef STATELAB_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/linear_recurrence.hpp"
#include "kernels/cuda/nonlinear_recurrence.hpp"
#include "kernels/selftest/harness.hpp"
#endif


namespace statelab {

namespace {

using json = nlohmann::json;

#ifdef STATELAB_HAVE_CUDA

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

struct OpShape {
  std::string config;  // "S", "M", "L"
  int64_t B, T, d, H;
  bool backward;
};

const std::vector<OpShape>& op_shapes() {
  static const std::vector<OpShape> shapes = {{"S", 128, 64, 128, 4, true},
                                              {"M", 64, 256, 512, 8, true},
                                              {"L", 16, 16384, 128, 4, false}};
  return shapes;
}

// Device memory filled with uniform values in [lo, hi): the benches never time zeros.
struct Filled {
  cuda::DeviceBuffer<float> buf;
  Filled(const cuda::Context& ctx, int64_t n, double lo, double hi, uint64_t salt) : buf(n) {
    buf.upload(ctx, selftest::to_float(selftest::uniform_values(17, salt, n, lo, hi)));
  }
  float* data() { return buf.data(); }
};

struct Timing {
  double graph_ms = NAN, eager_ms = NAN;
};

// Warms up, then times `run` eagerly and as a replayed graph with CUDA events.
Timing time_op(const cuda::Context& ctx, const std::function<void()>& run, int reps) {
  for (int i = 0; i < 3; ++i) run();
  SL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  cudaEvent_t start, stop;
  SL_CUDA_CHECK(cudaEventCreate(&start));
  SL_CUDA_CHECK(cudaEventCreate(&stop));
  auto measure = [&](const std::function<void()>& once) {
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      SL_CUDA_CHECK(cudaEventRecord(start, ctx.stream));
      once();
      SL_CUDA_CHECK(cudaEventRecord(stop, ctx.stream));
      SL_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0;
      SL_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
    return median(ms);
  };
  Timing t;
  t.eager_ms = measure(run);
  cudaGraph_t graph = nullptr;
  SL_CUDA_CHECK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal));
  run();
  SL_CUDA_CHECK(cudaStreamEndCapture(ctx.stream, &graph));
  cudaGraphExec_t exec = nullptr;
  SL_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  SL_CUDA_CHECK(cudaGraphLaunch(exec, ctx.stream));  // warm the graph itself
  t.graph_ms = measure([&] { SL_CUDA_CHECK(cudaGraphLaunch(exec, ctx.stream)); });
  SL_CUDA_CHECK(cudaGraphExecDestroy(exec));
  SL_CUDA_CHECK(cudaGraphDestroy(graph));
  SL_CUDA_CHECK(cudaEventDestroy(start));
  SL_CUDA_CHECK(cudaEventDestroy(stop));
  return t;
}

// One benchmarked op at one shape: what it runs, and what it must move and compute.
struct OpBench {
  std::string op;
  double bytes = 0, flops = 0;
  std::function<void()> run;
  std::vector<std::shared_ptr<void>> keep;  // the buffers run() uses
};

template <typename T>
T* hold(OpBench& b, std::shared_ptr<T> p) {
  b.keep.push_back(p);
  return p.get();
}

float* filled(OpBench& b, const cuda::Context& ctx, int64_t n, double lo, double hi) {
  auto f = std::make_shared<Filled>(ctx, n, lo, hi, uint64_t(b.keep.size() + 1));
  b.keep.push_back(f);
  return f->data();
}

float* scratch(OpBench& b, int64_t n) {
  return hold(b, std::make_shared<cuda::DeviceBuffer<float>>(std::max<int64_t>(n, 1)))->data();
}

OpBench nonlinear_bench(const cuda::Context& ctx, const OpShape& s, cpu::NonlinearCell cell,
                        cuda::NonlinearKernel kernel) {
  OpBench b;
  b.op = cell == cpu::NonlinearCell::lstm ? "lstm" : "slstm";
  const int64_t H = cell == cpu::NonlinearCell::lstm ? 1 : s.H, Dh = s.d / H, N = s.B * s.T;
  cpu::NonlinearRecurrence<float> r;
  r.cell = cell, r.B = s.B, r.T = s.T, r.H = H, r.Dh = Dh;
  r.pre = filled(b, ctx, N * 4 * s.d, -1, 1);
  r.R = filled(b, ctx, H * Dh * 4 * Dh, -0.1, 0.1);
  // As the blocks run it: only the sLSTM saves its pre-activations (raw), and a forward-only
  // shape is an evaluation, which saves nothing but h.
  const bool slstm = cell == cpu::NonlinearCell::slstm, saves = s.backward;
  r.h = scratch(b, N * s.d);
  if (saves) {
    r.gates = scratch(b, N * 4 * s.d);
    if (slstm) r.raw = scratch(b, N * 4 * s.d);
    for (float** out : {&r.c, &r.n, &r.m}) *out = scratch(b, N * s.d);
  }
  const float* dh = filled(b, ctx, N * s.d, -1, 1);
  float* dpre = scratch(b, N * 4 * s.d);
  float* dR = scratch(b, H * Dh * 4 * Dh);
  float* work = scratch(b, cuda::nonlinear_recurrence_work_size(r));
  // Forward: pre and R in; h, and where it saves (raw,) gates, c (n, m) out. Backward: those and
  // dh in, dpre out.
  const double saved = saves ? (slstm ? 4 + 2 : 0) + 4 + 1 : 0;
  b.bytes = 4.0 * N * s.d * (4 + saved + 1 + (s.backward ? saved + 2 + 4 : 0));
  b.flops = 2.0 * N * 4 * Dh * s.d * (s.backward ? 3 : 1);
  const bool bwd = s.backward;
  b.run = [&ctx, r, dh, dpre, dR, work, bwd, kernel] {
    cuda::nonlinear_recurrence_fwd(ctx, r, kernel);
    if (bwd) cuda::nonlinear_recurrence_bwd(ctx, r, dh, dpre, dR, work, kernel);
  };
  return b;
}

enum class LinearCell { mlstm, mamba2, gdn };

OpBench linear_bench(const cuda::Context& ctx, const OpShape& s, LinearCell cell,
                     cuda::LinearKernel kernel) {
  OpBench b;
  b.op = cell == LinearCell::mlstm ? "mlstm" : cell == LinearCell::mamba2 ? "mamba2" : "gdn";
  const int64_t H = s.H, Dv = s.d / H, N = s.B * s.T;
  // Mamba-2's state has N = 64 columns per head, B and C shared by the heads (one group).
  const int64_t Dk = cell == LinearCell::mamba2 ? 64 : Dv;
  const bool shared = cell == LinearCell::mamba2;
  cpu::LinearRecurrence<float> r;
  r.B = s.B, r.T = s.T, r.H = H, r.Dk = Dk, r.Dv = Dv, r.chunk = 64;
  const int64_t qk_row = shared ? Dk : H * Dk, qk_head = shared ? 0 : Dk;
  // GDN's keys are L2-normalised; the others' are scaled like mLSTM's k / √d.
  const double k_mag = cell == LinearCell::gdn ? 1.0 / std::sqrt(double(Dk)) : 0.5;
  r.q = {filled(b, ctx, N * qk_row, -0.5, 0.5), qk_row, qk_head};
  r.k = {filled(b, ctx, N * qk_row, -k_mag, k_mag), qk_row, qk_head};
  r.v = {filled(b, ctx, N * H * Dv, -1, 1), H * Dv, Dv};
  r.a = filled(b, ctx, N * H, 0.9, 1.0);
  r.c = filled(b, ctx, N * H, 0.1, 1.0);
  if (cell == LinearCell::gdn) r.b = r.c;
  if (cell == LinearCell::mlstm) r.floor = filled(b, ctx, N * H, 0.01, 0.1), r.eps = 1e-6f;
  r.y = {scratch(b, N * H * Dv), H * Dv, Dv};
  r.boundary = scratch(b, cpu::linear_recurrence_boundary_size(r));
  cpu::LinearRecurrenceGrads<float> g;
  g.dy = {filled(b, ctx, N * H * Dv, -1, 1), H * Dv, Dv};
  g.dq = {scratch(b, N * qk_row), qk_row, qk_head};
  g.dk = {scratch(b, N * qk_row), qk_row, qk_head};
  g.dv = {scratch(b, N * H * Dv), H * Dv, Dv};
  g.da = scratch(b, N * H);
  g.dc = scratch(b, N * H);
  if (r.b) g.db = scratch(b, N * H);
  float* work = scratch(b, cuda::linear_recurrence_work_size(r));
  float* fwd_work = scratch(b, cuda::linear_recurrence_fwd_work_size(ctx, r, kernel));
  const double per_token_io = 2.0 * qk_row + 2.0 * H * Dv + 3.0 * H;
  b.bytes = 4.0 * N * (s.backward ? 3 * per_token_io : per_token_io);
  b.flops = 2.0 * N * H * Dk * Dv * (r.b ? 4 : 2) * (s.backward ? 3 : 1);
  const bool bwd = s.backward;
  b.run = [&ctx, r, g, work, fwd_work, bwd, kernel] {
    cuda::linear_recurrence_fwd(ctx, r, fwd_work, kernel);
    if (bwd) cuda::linear_recurrence_bwd(ctx, r, g, work, kernel);
  };
  return b;
}

OpBench attention_bench(const cuda::Context& ctx, const OpShape& s) {
  OpBench b;
  b.op = "attention";
  const int64_t Dh = s.d / s.H, N = s.B * s.T;
  cpu::CausalAttention<float> a;
  a.B = s.B, a.T = s.T, a.H = s.H, a.Dh = Dh;
  a.q = filled(b, ctx, N * s.d, -1, 1);
  a.k = filled(b, ctx, N * s.d, -1, 1);
  a.v = filled(b, ctx, N * s.d, -1, 1);
  a.o = scratch(b, N * s.d);
  a.lse = scratch(b, N * s.H);
  const float* dout = filled(b, ctx, N * s.d, -1, 1);
  float* dq = scratch(b, N * s.d);
  float* dk = scratch(b, N * s.d);
  float* dv = scratch(b, N * s.d);
  float* work = scratch(b, cuda::causal_attention_work_size(s.B, s.T, s.H));
  b.bytes = 4.0 * N * s.d * (s.backward ? 4 + 4 + 4 : 4);
  b.flops = 2.0 * s.B * s.H * double(s.T) * double(s.T) * Dh * (s.backward ? 3.5 : 1);
  const bool bwd = s.backward;
  b.run = [&ctx, a, dout, dq, dk, dv, work, bwd] {
    cuda::causal_attention_fwd(ctx, a);
    if (bwd) cuda::causal_attention_bwd(ctx, a, dout, dq, dk, dv, work);
  };
  return b;
}

double peak_bandwidth(const cuda::Context& ctx) {
  int khz = 0, bits = 0;
  SL_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, ctx.device));
  SL_CUDA_CHECK(cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, ctx.device));
  return 2.0 * khz * 1e3 * bits / 8;  // bytes/s, double data rate
}

json bench_ops(const cuda::Context& ctx, const std::string& filter, int reps,
               cuda::LinearKernel linear, cuda::NonlinearKernel nonlinear) {
  json rows = json::array();
  const double peak = peak_bandwidth(ctx);
  std::printf("%-10s %-3s %10s %10s %12s %9s %9s %7s\n", "op", "cfg", "graph ms", "eager ms",
              "tokens/s", "GB/s", "TFLOP/s", "HBM %");
  for (const OpShape& s : op_shapes()) {
    std::vector<std::function<OpBench()>> makers = {
        [&] { return nonlinear_bench(ctx, s, cpu::NonlinearCell::lstm, nonlinear); },
        [&] { return nonlinear_bench(ctx, s, cpu::NonlinearCell::slstm, nonlinear); },
        [&] { return linear_bench(ctx, s, LinearCell::mlstm, linear); },
        [&] { return linear_bench(ctx, s, LinearCell::mamba2, linear); },
        [&] { return linear_bench(ctx, s, LinearCell::gdn, linear); },
        [&] { return attention_bench(ctx, s); }};
    for (const auto& make : makers) {
      json row = {{"config", s.config}, {"B", s.B}, {"T", s.T}, {"d", s.d}, {"H", s.H},
                  {"backward", s.backward}};
      std::string op;
      try {
        OpBench b = make();
        op = b.op;
        row["op"] = op;
        if (!filter.empty() && (op + " " + s.config).find(filter) == std::string::npos) continue;
        const Timing t = time_op(ctx, b.run, reps);
        const double sec = t.graph_ms * 1e-3;
        row["median_ms"] = t.graph_ms;
        row["eager_median_ms"] = t.eager_ms;
        row["tokens_per_s"] = double(s.B * s.T) / sec;
        row["gb_per_s"] = b.bytes / sec * 1e-9;
        row["tflop_per_s"] = b.flops / sec * 1e-12;
        row["hbm_roofline_fraction"] = b.bytes / sec / peak;
        std::printf("%-10s %-3s %10.3f %10.3f %12.3g %9.1f %9.2f %6.1f%%\n", op.c_str(),
                    s.config.c_str(), t.graph_ms, t.eager_ms, row["tokens_per_s"].get<double>(),
                    row["gb_per_s"].get<double>(), row["tflop_per_s"].get<double>(),
                    100 * row["hbm_roofline_fraction"].get<double>());
      } catch (const std::exception& e) {
        row["error"] = e.what();
        std::printf("%-10s %-3s failed: %s\n", op.c_str(), s.config.c_str(), e.what());
      }
      std::fflush(stdout);
      rows.push_back(row);
    }
  }
  return rows;
}

#endif  // STATELAB_HAVE_CUDA

// What --linear-kernel and --nonlinear-kernel take, in the order of cuda::LinearKernel and
// cuda::NonlinearKernel.
const std::vector<std::string>& linear_kernel_names() {
  static const std::vector<std::string> names = {"automatic", "recurrent", "chunkwise",
                                                 "chunk-parallel"};
  return names;
}

const std::vector<std::string>& nonlinear_kernel_names() {
  static const std::vector<std::string> names = {"automatic", "fma", "tensor-core"};
  return names;
}

// The position of `value` among `names`, or a ConfigError naming the option and the choices.
int choice_index(const std::string& option, const std::string& value,
                 const std::vector<std::string>& names) {
  const auto named = std::find(names.begin(), names.end(), value);
  if (named != names.end()) return int(named - names.begin());
  std::string expected;
  for (size_t i = 0; i < names.size(); ++i)
    expected += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + ("\"" + names[i] + "\"");
  throw ConfigError(option + " " + value + ": expected " + expected);
}

// A training step of a 2-block model of each cell at the S config, as lab train runs it.
json bench_models(const ComputeDevice& device, const std::string& filter, int steps) {
  json rows = json::array();
  const auto task = make_task("parity");
  struct Cell {
    std::string name, blocks, range;
  };
  const std::vector<Cell> cells = {{"lstm", "ll", "01"},       {"slstm", "ss", "01"},
                                   {"mlstm", "mm", "01"},      {"mamba2", "MM", "01"},
                                   {"gdn", "gg", "01"},        {"transformer", "tt", "01"},
                                   {"xlstm[1:1]", "ms", "01"}, {"mamba2_pm1", "MM", "pm1"}};
  const int B = 128, T = 64;
  std::printf("\n%-12s %12s %14s %16s %16s\n", "model", "step ms", "tokens/s", "eval T=40 ms",
              "eval T=400 ms");
  for (const Cell& c : cells) {
    if (!filter.empty() && ("model " + c.name).find(filter) == std::string::npos) continue;
    json row = {{"model", c.name}, {"blocks", c.blocks}, {"B", B}, {"T", T}, {"d_model", 128},
                {"heads", 4}};
    try {
      ModelConfig cfg;
      cfg.blocks = c.blocks;
      cfg.d_model = 128;
      cfg.heads = c.blocks == "ll" ? 1 : 4;
      cfg.eigen_range = c.range;
      TrainConfig tc;
      tc.batch = B;
      Model<float> model(cfg, task->vocab().size(), int64_t(B) * 400, int64_t(B) * T,
                         device.exec);
      model.params().initialize(1);
      auto runner = make_step_runner(model, tc);
      Batch batch;
      Rng rng(1, kStreamTrainData, 0);
      task->sample(rng, B, T, Readout::final, batch);
      // Two warm-up steps: the first runs eagerly, the second captures the step's graph.
      for (int i = 1; i <= 2; ++i) runner->submit(i, batch, 1e-4);
      runner->collect();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < steps; ++i) runner->submit(3 + i, batch, 1e-4);
      runner->collect();
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
              .count() /
          steps;
      row["step_ms"] = ms;
      row["tokens_per_s"] = B * T / (ms * 1e-3);
      // Eval forwards of 128 sequences at the training length and at 10x it.
      for (int L : {40, 400}) {
        Batch e;
        task->sample(rng, B, L, Readout::final, e);
        model.forward(e.tokens.data(), Pass::evaluation(B, L));
        model.loss(e.targets.data(), false);
        const auto t1 = std::chrono::steady_clock::now();
        const int reps = 5;
        for (int i = 0; i < reps; ++i) {
          model.forward(e.tokens.data(), Pass::evaluation(B, L));
          model.loss(e.targets.data(), false);  // waits for the device
        }
        row["eval_ms_T" + std::to_string(L)] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1)
                .count() /
            reps;
      }
      row["eval_ratio_10x"] = row["eval_ms_T400"].get<double>() / row["eval_ms_T40"].get<double>();
      std::printf("%-12s %12.3f %14.3g %16.3f %16.3f\n", c.name.c_str(), ms,
                  row["tokens_per_s"].get<double>(), row["eval_ms_T40"].get<double>(),
                  row["eval_ms_T400"].get<double>());
    } catch (const std::exception& e) {
      row["error"] = e.what();
      std::printf("%-12s failed: %s\n", c.name.c_str(), e.what());
    }
    std::fflush(stdout);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

int run_bench(const BenchOptions& o) {
  if (o.reps < 1) throw ConfigError("--reps " + std::to_string(o.reps) + ": expected >= 1");
  // Checked on every device, used on CUDA only.
  [[maybe_unused]] const int linear_index =
      choice_index("--linear-kernel", o.linear_kernel, linear_kernel_names());
  [[maybe_unused]] const int nonlinear_index =
      choice_index("--nonlinear-kernel", o.nonlinear_kernel, nonlinear_kernel_names());
  const ComputeDevice device =
      open_device(o.device, precision_from_name(o.precision), "--device");
  std::printf("bench on %s, commit %s\n", device.description.c_str(), STATELAB_COMMIT);
  json out = {{"device", device.description}, {"commit", STATELAB_COMMIT},
              {"precision", o.precision}, {"linear_kernel", o.linear_kernel},
              {"nonlinear_kernel", o.nonlinear_kernel}};
#ifdef STATELAB_HAVE_CUDA
  static_assert(int(cuda::LinearKernel::recurrent) == 1 && int(cuda::LinearKernel::chunkwise) == 2 &&
                    int(cuda::LinearKernel::chunk_parallel) == 3,
                "linear_kernel_names() lists the kernels in the enum's order");
  static_assert(int(cuda::NonlinearKernel::fma) == 1 &&
                    int(cuda::NonlinearKernel::tensor_core) == 2,
                "nonlinear_kernel_names() lists the kernels in the enum's order");
  if (device.on_cuda())
    out["ops"] = bench_ops(*device.exec.cuda, o.filter, o.reps,
                           static_cast<cuda::LinearKernel>(linear_index),
                           static_cast<cuda::NonlinearKernel>(nonlinear_index));
#endif
  if (!device.on_cuda()) std::printf("(per-op benchmarks need a CUDA device; models only)\n");
  out["models"] = bench_models(device, o.filter, device.on_cuda() ? 50 : 3);
  if (!o.json_out.empty()) {
    write_file_atomic(o.json_out, out.dump(2) + "\n");
    std::printf("wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

}  // namespace statelab
