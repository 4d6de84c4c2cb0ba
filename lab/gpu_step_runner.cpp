// The GPU step runner (see step_runner.hpp). Each (batch, length) shape runs eagerly the first
// time it occurs, which makes every lazily created resource (cuBLASLt plans, kernel scratch)
// exist, and is captured into a CUDA graph the second time; every later step of that shape is
// one graph launch. The batch travels through one of two pinned staging slots: the host fills
// one while the graph that reads the other runs. Nothing in a step waits for the host; the
// host waits only in collect().
#ifdef STATELAB_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/optim.hpp"
#include "kernels/cuda/step.hpp"
#include "kernels/memory.hpp"
#include "lab/step_runner.hpp"

namespace statelab {

namespace {

// Steps whose records the device ring holds; collect() is due well before it wraps.
constexpr int kRing = 1024;
constexpr int kDue = 256;

// Host memory the GPU can copy from inside a graph: one batch and its per-step scalars.
struct Staging {
  int32_t* tokens = nullptr;
  int32_t* targets = nullptr;
  float* lr = nullptr;
  int32_t* step = nullptr;
};

class GpuStepRunner final : public StepRunner {
 public:
  GpuStepRunner(Model<float>& model, const TrainConfig& tc)
      : model_(model), ctx_(*model.exec().cuda), halt_on_non_finite_(tc.on_nan == "stop") {
    hyper_.beta1 = tc.beta1;
    hyper_.beta2 = tc.beta2;
    hyper_.eps = tc.eps;
    hyper_.weight_decay = tc.weight_decay;
    hyper_.grad_clip = tc.grad_clip;
    state_.resize(1);
    state_.zero(ctx_);
    ring_.resize(kRing);
    ring_.zero(ctx_);
    SL_CUDA_CHECK(cudaMallocHost(&ring_host_, sizeof(cuda::StepRecord) * kRing));
    for (auto& e : consumed_) SL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }

  ~GpuStepRunner() override {
    cudaStreamSynchronize(ctx_.stream);
    for (auto& [key, graph] : graphs_) cudaGraphExecDestroy(graph);
    for (auto& s : staging_) cudaFreeHost(s.tokens);
    for (auto& e : consumed_) cudaEventDestroy(e);
    cudaFreeHost(ring_host_);
  }

  void submit(int step, const Batch& batch, double lr) override {
    const int64_t n = int64_t(batch.batch) * batch.length;
    ensure_capacity(n);
    for (int64_t i = 0; i < n; ++i)
      SL_CHECK(batch.tokens[size_t(i)] >= 0 && batch.tokens[size_t(i)] < model_.vocab(),
               "token id out of the vocabulary");
    const int slot = step & 1;
    // The graph that last read this slot must have copied it before the host overwrites it.
    SL_CUDA_CHECK(cudaEventSynchronize(consumed_[slot]));
    Staging& st = staging_[slot];
    std::memcpy(st.tokens, batch.tokens.data(), size_t(n) * sizeof(int32_t));
    std::memcpy(st.targets, batch.targets.data(), size_t(n) * sizeof(int32_t));
    *st.lr = float(lr);
    *st.step = step;
    // A block's scratch grows on the first step of a longer sequence, freeing the old one that
    // earlier graphs still point into: from then on those graphs would write into memory that
    // may belong to another buffer, so they are all captured anew.
    if (device_memory_frees() != frees_seen_) {
      drop_graphs();
      frees_seen_ = device_memory_frees();
    }
    const Pass p{batch.batch, batch.length, &model_.exec()};
    const auto key = std::make_tuple(p.B, p.T, slot);
    if (auto it = graphs_.find(key); it != graphs_.end()) {
      SL_CUDA_CHECK(cudaGraphLaunch(it->second, ctx_.stream));
    } else if (seen_.count({p.B, p.T})) {
      graphs_[key] = capture(slot, p);
      SL_CUDA_CHECK(cudaGraphLaunch(graphs_[key], ctx_.stream));
    } else {
      seen_.insert({p.B, p.T});
      record_step(slot, p);
    }
    SL_CUDA_CHECK(cudaEventRecord(consumed_[slot], ctx_.stream));
    pending_.push_back({step, n, lr});
  }

  std::vector<StepResult> collect() override {
    std::vector<StepResult> out;
    if (pending_.empty()) return out;
    SL_CUDA_CHECK(cudaMemcpyAsync(ring_host_, ring_.data(), sizeof(cuda::StepRecord) * kRing,
                                  cudaMemcpyDeviceToHost, ctx_.stream));
    cuda::StepState state{};
    SL_CUDA_CHECK(
        cudaMemcpyAsync(&state, state_.data(), sizeof state, cudaMemcpyDeviceToHost, ctx_.stream));
    SL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    steps_taken_ = state.steps_taken;
    for (const auto& [step, tokens, lr] : pending_) {
      const cuda::StepRecord& rec = ring_host_[step % kRing];
      SL_CHECK(rec.step == step, "step record " + std::to_string(step) + " was overwritten");
      StepResult r;
      r.step = step;
      r.lr = lr;
      r.tokens = tokens;
      r.loss_sum = rec.loss_sum;
      r.count = int64_t(rec.count);
      r.correct = int64_t(rec.correct);
      r.grad_norm = rec.grad_norm;
      r.applied = rec.applied != 0;
      out.push_back(r);
    }
    pending_.clear();
    return out;
  }

  bool due() const override { return int(pending_.size()) >= kDue; }
  int64_t optimizer_steps() const override { return steps_taken_; }
  void set_optimizer_steps(int64_t steps) override {
    steps_taken_ = steps;
    SL_CUDA_CHECK(cudaMemcpyAsync(&state_.data()->steps_taken, &steps_taken_, sizeof steps_taken_,
                                  cudaMemcpyHostToDevice, ctx_.stream));
    SL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }

 private:
  // The staging and device batch buffers grow (outside any capture, dropping the graphs that
  // point into them) when a batch is larger than any before.
  void ensure_capacity(int64_t n) {
    if (n <= allocated_) return;
    drop_graphs();
    seen_.clear();
    for (auto& s : staging_) {
      if (s.tokens) SL_CUDA_CHECK(cudaFreeHost(s.tokens));
      // tokens, targets, then the two scalars, in one pinned block
      void* block = nullptr;
      SL_CUDA_CHECK(cudaMallocHost(&block, size_t(2 * n + 2) * sizeof(int32_t)));
      s.tokens = static_cast<int32_t*>(block);
      s.targets = s.tokens + n;
      s.lr = reinterpret_cast<float*>(s.targets + n);
      s.step = s.targets + n + 1;
    }
    tokens_.resize(n);
    targets_.resize(n);
    allocated_ = n;
  }

  // Destroys every graph once the device has finished with them; each shape is captured again
  // at its next step.
  void drop_graphs() {
    SL_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    for (auto& [key, graph] : graphs_) SL_CUDA_CHECK(cudaGraphExecDestroy(graph));
    graphs_.clear();
  }

  // The whole step on the stream: what one graph replays.
  void record_step(int slot, Pass p) {
    const Staging& st = staging_[slot];
    cuda::StepState* state = state_.data();
    const size_t bytes = size_t(p.tokens()) * sizeof(int32_t);
    SL_CUDA_CHECK(
        cudaMemcpyAsync(tokens_.data(), st.tokens, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    SL_CUDA_CHECK(
        cudaMemcpyAsync(targets_.data(), st.targets, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    SL_CUDA_CHECK(
        cudaMemcpyAsync(&state->lr, st.lr, sizeof(float), cudaMemcpyHostToDevice, ctx_.stream));
    SL_CUDA_CHECK(cudaMemcpyAsync(&state->step, st.step, sizeof(int32_t), cudaMemcpyHostToDevice,
                                  ctx_.stream));
    SL_CUDA_CHECK(cudaMemsetAsync(&state->totals, 0, sizeof(LossTotals), ctx_.stream));
    SL_CUDA_CHECK(cudaMemsetAsync(&state->grad_norm_sq, 0, sizeof(double), ctx_.stream));
    auto& ps = model_.params();
    ps.zero_grads();
    model_.forward_on_device(tokens_.data(), p);
    model_.loss_on_device(targets_.data(), true, &state->totals);
    model_.backward();
    cuda::sum_squares(ctx_, ps.grads(), ps.size(), &state->grad_norm_sq);
    cuda::step_guard(ctx_, state, ring_.data(), kRing, halt_on_non_finite_);
    cuda::adamw_update(ctx_, ps.values(), ps.grads(), ps.moment1(), ps.moment2(), ps.size(),
                       ps.decay_size(), hyper_,
                       {&state->lr, &state->grad_norm_sq, &state->steps_taken});
    cuda::step_advance(ctx_, state, ring_.data(), kRing);
  }

  cudaGraphExec_t capture(int slot, Pass p) {
    cudaGraph_t graph = nullptr;
    SL_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream, cudaStreamCaptureModeThreadLocal));
    try {
      record_step(slot, p);
    } catch (...) {
      cudaStreamEndCapture(ctx_.stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    SL_CUDA_CHECK(cudaStreamEndCapture(ctx_.stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    SL_CUDA_CHECK(err);
    return exec;
  }

  Model<float>& model_;
  const cuda::Context& ctx_;
  const bool halt_on_non_finite_;
  cuda::AdamWHyper hyper_;
  int64_t allocated_ = 0;
  cuda::DeviceBuffer<int32_t> tokens_, targets_;
  cuda::DeviceBuffer<cuda::StepState> state_;
  cuda::DeviceBuffer<cuda::StepRecord> ring_;
  cuda::StepRecord* ring_host_ = nullptr;
  Staging staging_[2];
  cudaEvent_t consumed_[2] = {nullptr, nullptr};
  std::map<std::tuple<int64_t, int64_t, int>, cudaGraphExec_t> graphs_;
  std::set<std::pair<int64_t, int64_t>> seen_;
  struct Pending {
    int step;
    int64_t tokens;
    double lr;
  };
  std::vector<Pending> pending_;  // submitted steps
  int64_t steps_taken_ = 0;
  uint64_t frees_seen_ = 0;  // device_memory_frees() when the graphs were last checked
};

}  // namespace

std::unique_ptr<StepRunner> make_gpu_step_runner(Model<float>& model, const TrainConfig& tc) {
  return std::make_unique<GpuStepRunner>(model, tc);
}

}  // namespace statelab

#endif  // STATELAB_HAVE_CUDA
