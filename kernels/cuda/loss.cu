// Masked softmax cross-entropy on CUDA, the twin of kernels/cpu/loss.cpp, in one launch with
// its totals kept in device memory. The gradient is of the mean over this call's counted rows,
// so every block first counts the targets >= 0 itself (N int32 from L2): that costs a re-read
// per block but needs no scratch memory and no second launch. A row is L lanes (a power of two
// up to a warp for V <= 1024, the whole block beyond), two passes (max with first argmax, then
// Σ exp) and a third writing the gradient; loss sums in double. Checked by
// kernels/selftest/loss_optim.cpp.
#include "kernels/cuda/loss.hpp"

#include <algorithm>
#include <climits>
#include <cub/block/block_reduce.cuh>
#include <string>

#include "kernels/cuda/lane_sum.cuh"

namespace statelab::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Few blocks keep the per-block target count cheap; each still walks its rows grid-strided.
constexpr int kBlocksPerSm = 4;

struct CrossEntropyParams {
  float* dlogits;          // [N, V] or null
  const float* logits;     // [N, V]
  const int32_t* targets;  // [N]
  LossTotals* totals;
  int64_t N, V;
  int lanes;  // threads per row
};

// (v, i) beats (best, at) when larger, or equal at a lower index: std::max_element's choice.
__device__ void take_if_better(float& best, int& at, float v, int i) {
  if (v > best || (v == best && i < at)) {
    best = v;
    at = i;
  }
}

// Max and its first index over a row's lanes, the same in every lane; all threads must call it.
__device__ void row_argmax(float& best, int& at, int lanes, float* red_v, int* red_i) {
  for (int m = min(lanes, 32) / 2; m > 0; m /= 2) {
    const float v = __shfl_xor_sync(kFullMask, best, m);
    const int i = __shfl_xor_sync(kFullMask, at, m);
    take_if_better(best, at, v, i);
  }
  if (lanes <= 32) return;
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    red_v[threadIdx.x / 32] = best;
    red_i[threadIdx.x / 32] = at;
  }
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) take_if_better(best, at, red_v[w], red_i[w]);
}

__global__ void __launch_bounds__(kThreads) cross_entropy_kernel(CrossEntropyParams p) {
  using SumCount = cub::BlockReduce<unsigned long long, kThreads>;
  using SumLoss = cub::BlockReduce<double, kThreads>;
  __shared__ union {
    SumCount::TempStorage count;
    SumLoss::TempStorage loss;
  } temp;
  __shared__ float red_v[kWarps];
  __shared__ int red_i[kWarps];
  __shared__ unsigned long long block_count;

  unsigned long long mine = 0;
  for (int64_t i = threadIdx.x; i < p.N; i += kThreads) mine += p.targets[i] >= 0;
  const unsigned long long total = SumCount(temp.count).Sum(mine);
  if (threadIdx.x == 0) block_count = total;
  __syncthreads();
  const unsigned long long count = block_count;
  const float inv_count = count ? 1.f / float(count) : 0.f;

  const int lanes = p.lanes, lane = threadIdx.x % lanes;
  const int per_block = kThreads / lanes;
  double loss = 0;
  unsigned long long correct = 0;
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < p.N;
       first += int64_t(gridDim.x) * per_block) {
    const int64_t n = first + threadIdx.x / lanes;
    const bool live = n < p.N;
    const int target = live ? p.targets[n] : -1;
    // Ignored and dead rows still join the reductions (with nothing to reduce).
    const int len = target >= 0 ? int(p.V) : 0;
    const float* row = p.logits + (live ? n : 0) * p.V;
    float mx = -INFINITY;
    int arg = INT_MAX;
    for (int v = lane; v < len; v += lanes) take_if_better(mx, arg, row[v], v);
    row_argmax(mx, arg, lanes, red_v, red_i);
    float z = 0.f;
    for (int v = lane; v < len; v += lanes) z += expf(row[v] - mx);
    z = lane_group_sum<kWarps>(z, lanes, red_v);
    if (target >= 0 && lane == 0) {
      loss += log(double(z)) + double(mx) - double(row[target]);
      correct += arg == target;
    }
    if (!p.dlogits || !live) continue;
    float* drow = p.dlogits + n * p.V;
    for (int v = lane; v < int(p.V); v += lanes) {
      float d = 0.f;
      if (target >= 0) {
        d = expf(row[v] - mx) / z * inv_count;
        if (v == target) d -= inv_count;
      }
      drow[v] = d;
    }
  }

  const double block_loss = SumLoss(temp.loss).Sum(loss);
  __syncthreads();  // temp is reused
  const unsigned long long block_correct = SumCount(temp.count).Sum(correct);
  if (threadIdx.x == 0) {
    atomicAdd(&p.totals->loss_sum, block_loss);
    atomicAdd(&p.totals->correct, block_correct);
    if (blockIdx.x == 0) atomicAdd(&p.totals->count, count);
  }
}

}  // namespace

void cross_entropy(const Context& ctx, float* dlogits, const float* logits, const int32_t* targets,
                   int64_t N, int64_t V, LossTotals* totals) {
  SL_CHECK_SHAPE(N >= 0 && V >= 1 && V <= INT32_MAX, "cross_entropy: N = " + std::to_string(N) +
                                                         ", V = " + std::to_string(V) +
                                                         " (need N >= 0 and 1 <= V < 2^31)");
  if (N == 0) return;
  int lanes = kThreads;
  if (V <= 1024) {
    lanes = 1;
    while (lanes < V && lanes < 32) lanes *= 2;
  }
  const int64_t per_block = kThreads / lanes;
  const int64_t cap = int64_t(std::max(ctx.sm_count, 1)) * kBlocksPerSm;
  const int blocks = int(std::clamp<int64_t>((N + per_block - 1) / per_block, 1, cap));
  cross_entropy_kernel<<<blocks, kThreads, 0, ctx.stream>>>(
      CrossEntropyParams{dlogits, logits, targets, totals, N, V, lanes});
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
