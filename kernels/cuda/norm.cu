// LayerNorm (headwise: G groups of Dg per row), RMSNorm and L2 normalisation on CUDA, twins of
// kernels/cpu/norm.cpp. The three share one forward and one backward kernel: each normalises a
// segment (a row, or a group of a row) with L lanes, a power of two up to a warp for short
// segments (several segments per warp) or the whole block for segments over 1024. Segments of
// at most 512 elements in aligned float4 take register-resident twins of the two kernels,
// which read their inputs once. Statistics are fp32 and two-pass (mean, then Σ(x − mean)²) for
// stability. Parameter gradients come from a column-parallel kernel with per-block partial sums
// and one atomicAdd per column per block (non-deterministic summation order). Checked by
// kernels/selftest/norm.cpp.
#include "kernels/cuda/norm.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "kernels/cuda/lane_sum.cuh"

namespace statelab::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kBlocksPerSm = 8;

int64_t block_cap(const Context& ctx) { return int64_t(std::max(ctx.sm_count, 1)) * kBlocksPerSm; }

// Lanes per segment: a power of two covering the segment up to a warp, or the whole block for
// long segments, where a warp alone would loop too often per element.
int lanes_for(int64_t len) {
  if (len > 1024) return kThreads;
  int lanes = 1;
  while (lanes < len && lanes < 32) lanes *= 2;
  return lanes;
}

// Forward of the three norms over segments of len elements, segment s at x + s·len, its
// parameters at (s % G)·len: LayerNorm centres and averages the squares, RMSNorm averages
// them, the L2 norm sums them. y = (x − μ)·rstd·w + b with w, b optional (1 and 0).
struct NormFwdParams {
  float* y;        // [segments, len]
  float* mean;     // [segments] (LayerNorm) or null
  float* rstd;     // [segments]
  const float* x;  // [segments, len]
  const float* w;  // [G·len] or null
  const float* b;  // [G·len] or null
  int64_t segments, len, G;
  float eps;
  bool centre;       // subtract the mean (LayerNorm)
  bool mean_square;  // divide Σ by len (LayerNorm, RMSNorm; not L2)
  int lanes;
};

__global__ void __launch_bounds__(kThreads) norm_fwd_kernel(NormFwdParams p) {
  __shared__ float red[kWarps];
  const int lanes = p.lanes, lane = threadIdx.x % lanes;
  const int per_block = kThreads / lanes;
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < p.segments;
       first += int64_t(gridDim.x) * per_block) {
    const int64_t s = first + threadIdx.x / lanes;
    const int64_t len = s < p.segments ? p.len : 0;  // dead lanes still join the reductions
    const float* x = p.x + (len ? s : 0) * p.len;
    float mu = 0.f;
    if (p.centre) {
      float sum = 0.f;
      for (int64_t d = lane; d < len; d += lanes) sum += x[d];
      mu = lane_group_sum<kWarps>(sum, lanes, red) / float(p.len);
    }
    float sq = 0.f;
    for (int64_t d = lane; d < len; d += lanes) sq += (x[d] - mu) * (x[d] - mu);
    sq = lane_group_sum<kWarps>(sq, lanes, red);
    const float rs = 1.f / sqrtf((p.mean_square ? sq / float(p.len) : sq) + p.eps);
    if (len == 0) continue;
    if (lane == 0) {
      if (p.mean) p.mean[s] = mu;
      p.rstd[s] = rs;
    }
    const int64_t k0 = (s % p.G) * p.len;
    float* y = p.y + s * p.len;
    for (int64_t d = lane; d < len; d += lanes) {
      const float w = p.w ? p.w[k0 + d] : 1.f;
      const float b = p.b ? p.b[k0 + d] : 0.f;
      y[d] = (x[d] - mu) * rs * w + b;
    }
  }
}

// Backward of the three: with x̂ = (x − μ)·rstd (or x̂ given: the L2 norm's saved output) and
// g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) (+ skip), mean(g) only when centring and
// "mean" a plain sum for the L2 norm.
struct NormBwdParams {
  float* dx;          // [segments, len]
  const float* skip;  // [segments, len] or null: added to dx (a residual path's gradient)
  const float* dy;    // [segments, len]
  const float* x;     // [segments, len]: the input, or x̂ when normalised
  const float* mean;  // [segments] or null (μ = 0)
  const float* rstd;  // [segments]
  const float* w;     // [G·len] or null
  int64_t segments, len, G;
  bool centre, mean_square, normalised;
  int lanes;
};

__global__ void __launch_bounds__(kThreads) norm_bwd_kernel(NormBwdParams p) {
  __shared__ float red[kWarps];
  const int lanes = p.lanes, lane = threadIdx.x % lanes;
  const int per_block = kThreads / lanes;
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < p.segments;
       first += int64_t(gridDim.x) * per_block) {
    const int64_t s = first + threadIdx.x / lanes;
    const bool live = s < p.segments;
    const int64_t len = live ? p.len : 0;
    const int64_t row = (live ? s : 0) * p.len, k0 = (live ? s % p.G : 0) * p.len;
    const float mu = live && p.mean ? p.mean[s] : 0.f;
    const float rs = live ? p.rstd[s] : 0.f;
    auto xhat = [&](int64_t d) { return p.normalised ? p.x[row + d] : (p.x[row + d] - mu) * rs; };
    auto grad = [&](int64_t d) { return p.w ? p.dy[row + d] * p.w[k0 + d] : p.dy[row + d]; };
    float sg = 0.f, sgx = 0.f;
    for (int64_t d = lane; d < len; d += lanes) {
      const float g = grad(d);
      sg += g;
      sgx += g * xhat(d);
    }
    const float mg = p.centre ? lane_group_sum<kWarps>(sg, lanes, red) / float(p.len) : 0.f;
    const float sum_gx = lane_group_sum<kWarps>(sgx, lanes, red);
    const float mgx = p.mean_square ? sum_gx / float(p.len) : sum_gx;
    for (int64_t d = lane; d < len; d += lanes)
      p.dx[row + d] = rs * (grad(d) - mg - xhat(d) * mgx) + (p.skip ? p.skip[row + d] : 0.f);
  }
}

// The register-resident twins, for segments of at most kVecLen elements, a multiple of four,
// every buffer 16-byte aligned: a segment's group of `lanes` lanes (a power of two, at most a
// warp) holds it in kVec float4 per lane, so each input is read from memory once. The generic
// kernels re-read x for every pass and give a 32-unit head one warp that loads a float a lane.
constexpr int kVec = 4;
constexpr int64_t kVecLen = 4 * kVec * 32;

__device__ float4 zero4() { return make_float4(0.f, 0.f, 0.f, 0.f); }
__device__ float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

__global__ void __launch_bounds__(kThreads) norm_fwd_vec_kernel(NormFwdParams p) {
  const int lanes = p.lanes, lane = threadIdx.x % lanes;
  const int per_block = kThreads / lanes;
  const int64_t quads = p.len / 4;
  const auto* x4 = reinterpret_cast<const float4*>(p.x);
  const auto* w4 = reinterpret_cast<const float4*>(p.w);
  const auto* b4 = reinterpret_cast<const float4*>(p.b);
  auto* y4 = reinterpret_cast<float4*>(p.y);
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < p.segments;
       first += int64_t(gridDim.x) * per_block) {
    const int64_t s = first + threadIdx.x / lanes;
    const bool live = s < p.segments;  // dead lanes still join the reductions
    float4 v[kVec];
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const int64_t c = lane + int64_t(i) * lanes;
      v[i] = live && c < quads ? x4[s * quads + c] : zero4();
      sum += sum4(v[i]);
    }
    const float mu = p.centre ? lane_group_sum<kWarps>(sum, lanes, nullptr) / float(p.len) : 0.f;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      if (lane + int64_t(i) * lanes < quads) {
        const float4 d = make_float4(v[i].x - mu, v[i].y - mu, v[i].z - mu, v[i].w - mu);
        sq += (d.x * d.x + d.y * d.y) + (d.z * d.z + d.w * d.w);
      }
    sq = lane_group_sum<kWarps>(sq, lanes, nullptr);
    const float rs = 1.f / sqrtf((p.mean_square ? sq / float(p.len) : sq) + p.eps);
    if (!live) continue;
    if (lane == 0) {
      if (p.mean) p.mean[s] = mu;
      p.rstd[s] = rs;
    }
    const int64_t k0 = (s % p.G) * quads;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const int64_t c = lane + int64_t(i) * lanes;
      if (c >= quads) break;
      const float4 w = w4 ? w4[k0 + c] : make_float4(1.f, 1.f, 1.f, 1.f);
      const float4 b = b4 ? b4[k0 + c] : zero4();
      y4[s * quads + c] =
          make_float4((v[i].x - mu) * rs * w.x + b.x, (v[i].y - mu) * rs * w.y + b.y,
                      (v[i].z - mu) * rs * w.z + b.z, (v[i].w - mu) * rs * w.w + b.w);
    }
  }
}

__global__ void __launch_bounds__(kThreads) norm_bwd_vec_kernel(NormBwdParams p) {
  const int lanes = p.lanes, lane = threadIdx.x % lanes;
  const int per_block = kThreads / lanes;
  const int64_t quads = p.len / 4;
  const auto* x4 = reinterpret_cast<const float4*>(p.x);
  const auto* dy4 = reinterpret_cast<const float4*>(p.dy);
  const auto* w4 = reinterpret_cast<const float4*>(p.w);
  auto* dx4 = reinterpret_cast<float4*>(p.dx);
  const auto* skip4 = reinterpret_cast<const float4*>(p.skip);
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < p.segments;
       first += int64_t(gridDim.x) * per_block) {
    const int64_t s = first + threadIdx.x / lanes;
    const bool live = s < p.segments;
    const int64_t row = (live ? s : 0) * quads, k0 = (live ? s % p.G : 0) * quads;
    const float mu = live && p.mean ? p.mean[s] : 0.f;
    const float rs = live ? p.rstd[s] : 0.f;
    float4 g[kVec], xh[kVec];
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const int64_t c = lane + int64_t(i) * lanes;
      g[i] = xh[i] = zero4();
      if (!live || c >= quads) continue;
      const float4 dy = dy4[row + c], x = x4[row + c];
      const float4 w = w4 ? w4[k0 + c] : make_float4(1.f, 1.f, 1.f, 1.f);
      g[i] = make_float4(dy.x * w.x, dy.y * w.y, dy.z * w.z, dy.w * w.w);
      xh[i] = p.normalised
                  ? x
                  : make_float4((x.x - mu) * rs, (x.y - mu) * rs, (x.z - mu) * rs, (x.w - mu) * rs);
      sg += sum4(g[i]);
      sgx += (g[i].x * xh[i].x + g[i].y * xh[i].y) + (g[i].z * xh[i].z + g[i].w * xh[i].w);
    }
    const float mg = p.centre ? lane_group_sum<kWarps>(sg, lanes, nullptr) / float(p.len) : 0.f;
    const float sum_gx = lane_group_sum<kWarps>(sgx, lanes, nullptr);
    const float mgx = p.mean_square ? sum_gx / float(p.len) : sum_gx;
    if (!live) continue;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const int64_t c = lane + int64_t(i) * lanes;
      if (c >= quads) break;
      const float4 s = skip4 ? skip4[row + c] : zero4();
      dx4[row + c] = make_float4(
          rs * (g[i].x - mg - xh[i].x * mgx) + s.x, rs * (g[i].y - mg - xh[i].y * mgx) + s.y,
          rs * (g[i].z - mg - xh[i].z * mgx) + s.z, rs * (g[i].w - mg - xh[i].w * mgx) + s.w);
    }
  }
}

// dw[k] += Σ_n dy·x̂, db[k] += Σ_n dy over rows of D = G·Dg columns, column k in group k / Dg.
// Block (32 columns, 8 row lanes) walks its rows grid-strided, reduces the 8 row lanes in
// shared memory and adds once per column.
struct NormParamGradParams {
  float* dw;          // [D]
  float* db;          // [D] or null
  const float* dy;    // [N, D]
  const float* x;     // [N, D]
  const float* mean;  // [N, G] or null (μ = 0: RMSNorm)
  const float* rstd;  // [N, G]
  int64_t N, G, Dg;
};

constexpr int kColumns = 32, kRowLanes = kThreads / kColumns;

__global__ void __launch_bounds__(kThreads) norm_param_grad_kernel(NormParamGradParams p) {
  __shared__ float sdw[kRowLanes][kColumns], sdb[kRowLanes][kColumns];
  const int64_t D = p.G * p.Dg;
  const int64_t k = int64_t(blockIdx.x) * kColumns + threadIdx.x;
  float dw = 0.f, db = 0.f;
  if (k < D) {
    const int64_t g = k / p.Dg;
    for (int64_t n = int64_t(blockIdx.y) * kRowLanes + threadIdx.y; n < p.N;
         n += int64_t(gridDim.y) * kRowLanes) {
      const int64_t s = n * p.G + g;
      const float mu = p.mean ? p.mean[s] : 0.f;
      const float d = p.dy[n * D + k];
      dw += d * ((p.x[n * D + k] - mu) * p.rstd[s]);
      db += d;
    }
  }
  sdw[threadIdx.y][threadIdx.x] = dw;
  sdb[threadIdx.y][threadIdx.x] = db;
  __syncthreads();
  if (threadIdx.y != 0 || k >= D) return;
  for (int r = 1; r < kRowLanes; ++r) {
    dw += sdw[r][threadIdx.x];
    db += sdb[r][threadIdx.x];
  }
  atomicAdd(&p.dw[k], dw);
  if (p.db) atomicAdd(&p.db[k], db);
}

void check_sizes(int64_t N, int64_t G, int64_t Dg, const char* what) {
  SL_CHECK_SHAPE(N >= 0 && G >= 1 && Dg >= 1,
                 std::string(what) + ": N = " + std::to_string(N) + ", G = " + std::to_string(G) +
                     ", D = " + std::to_string(Dg) + " (need N >= 0, G >= 1, D >= 1)");
}

int segment_grid(const Context& ctx, int64_t segments, int lanes) {
  const int64_t per_block = kThreads / lanes;
  return int(std::clamp<int64_t>((segments + per_block - 1) / per_block, 1, block_cap(ctx)));
}

// Whether segments of len elements over these buffers (null ones ignored) fit the
// register-resident kernels.
bool vec_fits(int64_t len, std::initializer_list<const void*> buffers) {
  if (len % 4 != 0 || len > kVecLen) return false;
  for (const void* b : buffers)
    if (reinterpret_cast<uintptr_t>(b) % 16 != 0) return false;
  return true;
}

// Lanes per segment in the register-resident kernels: kVec float4 a lane.
int vec_lanes(int64_t len) {
  int lanes = 1;
  while (lanes * 4 * kVec < len) lanes *= 2;
  return lanes;
}

void launch_fwd(const Context& ctx, NormFwdParams p) {
  const bool vec = vec_fits(p.len, {p.y, p.x, p.w, p.b});
  p.lanes = vec ? vec_lanes(p.len) : lanes_for(p.len);
  const int grid = segment_grid(ctx, p.segments, p.lanes);
  if (vec)
    norm_fwd_vec_kernel<<<grid, kThreads, 0, ctx.stream>>>(p);
  else
    norm_fwd_kernel<<<grid, kThreads, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void launch_bwd(const Context& ctx, NormBwdParams p) {
  const bool vec = vec_fits(p.len, {p.dx, p.skip, p.dy, p.x, p.w});
  p.lanes = vec ? vec_lanes(p.len) : lanes_for(p.len);
  const int grid = segment_grid(ctx, p.segments, p.lanes);
  if (vec)
    norm_bwd_vec_kernel<<<grid, kThreads, 0, ctx.stream>>>(p);
  else
    norm_bwd_kernel<<<grid, kThreads, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void launch_param_grad(const Context& ctx, const NormParamGradParams& p) {
  const int64_t gx = (p.G * p.Dg + kColumns - 1) / kColumns;
  const int64_t gy = std::min<int64_t>(
      {(p.N + kRowLanes - 1) / kRowLanes, std::max<int64_t>(1, block_cap(ctx) / gx), 65535});
  norm_param_grad_kernel<<<dim3(unsigned(gx), unsigned(gy)), dim3(kColumns, kRowLanes), 0,
                           ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void group_layernorm_fwd(const Context& ctx, float* y, float* mean, float* rstd, const float* x,
                         const float* w, const float* b, int64_t N, int64_t G, int64_t Dg,
                         double eps) {
  check_sizes(N, G, Dg, "group_layernorm_fwd");
  if (N == 0) return;
  launch_fwd(ctx, NormFwdParams{y, mean, rstd, x, w, b, N * G, Dg, G, float(eps), true, true, 0});
}

void group_layernorm_bwd(const Context& ctx, float* dx, float* dw, float* db, const float* dy,
                         const float* x, const float* mean, const float* rstd, const float* w,
                         int64_t N, int64_t G, int64_t Dg, const float* skip) {
  check_sizes(N, G, Dg, "group_layernorm_bwd");
  if (N == 0) return;
  launch_bwd(ctx,
             NormBwdParams{dx, skip, dy, x, mean, rstd, w, N * G, Dg, G, true, true, false, 0});
  launch_param_grad(ctx, NormParamGradParams{dw, db, dy, x, mean, rstd, N, G, Dg});
}

void rmsnorm_fwd(const Context& ctx, float* y, float* rstd, const float* x, const float* w,
                 int64_t N, int64_t D, double eps) {
  check_sizes(N, 1, D, "rmsnorm_fwd");
  if (N == 0) return;
  launch_fwd(ctx,
             NormFwdParams{y, nullptr, rstd, x, w, nullptr, N, D, 1, float(eps), false, true, 0});
}

void rmsnorm_bwd(const Context& ctx, float* dx, float* dw, const float* dy, const float* x,
                 const float* rstd, const float* w, int64_t N, int64_t D, const float* skip) {
  check_sizes(N, 1, D, "rmsnorm_bwd");
  if (N == 0) return;
  launch_bwd(ctx,
             NormBwdParams{dx, skip, dy, x, nullptr, rstd, w, N, D, 1, false, true, false, 0});
  launch_param_grad(ctx, NormParamGradParams{dw, nullptr, dy, x, nullptr, rstd, N, 1, D});
}

void l2norm_fwd(const Context& ctx, float* y, float* rnorm, const float* x, int64_t N, int64_t D,
                double eps) {
  check_sizes(N, 1, D, "l2norm_fwd");
  if (N == 0) return;
  launch_fwd(ctx, NormFwdParams{y, nullptr, rnorm, x, nullptr, nullptr, N, D, 1, float(eps), false,
                                false, 0});
}

void l2norm_bwd(const Context& ctx, float* dx, const float* dy, const float* y, const float* rnorm,
                int64_t N, int64_t D) {
  check_sizes(N, 1, D, "l2norm_bwd");
  if (N == 0) return;
  launch_bwd(ctx,
             NormBwdParams{dx, nullptr, dy, y, nullptr, rnorm, nullptr, N, D, 1, false, false, true,
                           0});
}

}  // namespace statelab::cuda
