// A sum over a group of `lanes` consecutive threads, for kernels that give each row (or row
// segment) a power-of-two group of lanes: within a warp an xor butterfly, so every lane of the
// group gets the same value; a whole block of kWarps warps through shared memory. Shared by
// the loss, the norms and the chunkwise linear recurrence.
#pragma once

namespace statelab::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

// Within a warp, lanes <= 32: all 32 lanes must call it, as the shuffles name the whole warp.
__device__ __forceinline__ float lane_sum(float v, int lanes) {
  for (int m = lanes / 2; m > 0; m /= 2) v += __shfl_xor_sync(kFullMask, v, m);
  return v;
}

// All threads of the block must call it: the shuffles name the whole warp, and a block-wide
// group synchronises the block. red holds kWarps floats of shared memory.
template <int kWarps>
__device__ float lane_group_sum(float v, int lanes, float* red) {
  v = lane_sum(v, min(lanes, 32));
  if (lanes <= 32) return v;
  __syncthreads();  // an earlier call's readers of red are done
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float s = 0.f;
  for (int w = 0; w < kWarps; ++w) s += red[w];
  return s;
}

}  // namespace statelab::cuda
