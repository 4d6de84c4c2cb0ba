// Pointwise work on CUDA: activations, the gated unit, causal depthwise conv1d, sums, strided
// row copies and the skip/gate helpers, twins of kernels/cpu/elementwise.cpp (same formulas in
// fp32, GELU in its exact erf form). All of it is memory-bound, so one grid-stride kernel with a
// runtime op code serves the flat maps (float4 when every pointer is 16-byte aligned, a scalar
// tail) instead of a template per op; row-shaped ops use a 2-D grid over (rows, columns).
// Checked against the CPU twins by kernels/selftest/pointwise.cpp.
#include "kernels/cuda/elementwise.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace statelab::cuda {

namespace {

constexpr int kThreads = 256;
// 8 blocks of 256 threads fill an SM's 2048 thread slots; grid-stride loops cover the rest.
constexpr int kBlocksPerSm = 8;

int64_t block_cap(const Context& ctx) { return int64_t(std::max(ctx.sm_count, 1)) * kBlocksPerSm; }

int grid_for(const Context& ctx, int64_t items) {
  return int(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, block_cap(ctx)));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__device__ float act(Activation a, float x) {
  switch (a) {
    case Activation::identity: return x;
    case Activation::silu: return x * sigmoid(x);
    case Activation::gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case Activation::tanh: return tanhf(x);
    case Activation::sigmoid: return sigmoid(x);
  }
  return x;
}

__device__ float act_grad(Activation a, float x) {
  switch (a) {
    case Activation::identity: return 1.f;
    case Activation::silu: {
      const float s = sigmoid(x);
      return s * (1.f + x * (1.f - s));
    }
    case Activation::gelu: {
      const float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;  // φ(x)
      return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * pdf;
    }
    case Activation::tanh: {
      const float t = tanhf(x);
      return 1.f - t * t;
    }
    case Activation::sigmoid: {
      const float s = sigmoid(x);
      return s * (1.f - s);
    }
  }
  return 1.f;
}

// ---- flat maps: up to three inputs and two outputs of n elements ----------------------------

enum class MapOp {
  act_fwd,
  act_bwd,
  add,
  affine,
  silu_gate_fwd,
  silu_gate_bwd,
  sigmoid_fwd,
  sigmoid_bwd
};

// A null input reads as zeros (scaled_sigmoid_bwd's optional dy2); a null output is not
// written. Pointers may alias element for element (add_inplace, affine in place), so none is
// __restrict__ and every element is read before it is written by the same thread.
struct MapParams {
  float* out0 = nullptr;
  float* out1 = nullptr;
  const float* in0 = nullptr;
  const float* in1 = nullptr;
  const float* in2 = nullptr;
  int64_t n = 0;
  MapOp op = MapOp::add;
  Activation act = Activation::identity;
  float alpha = 1, beta = 0;
  bool vec = false;  // every pointer 16-byte aligned: a float4 body
};

__device__ void map_one(const MapParams& p, float a, float b, float c, float& y0, float& y1) {
  y1 = 0;
  switch (p.op) {
    case MapOp::act_fwd: y0 = act(p.act, a); break;           // a = x
    case MapOp::act_bwd: y0 = a * act_grad(p.act, b); break;  // a = dy, b = x
    case MapOp::add: y0 = a + b; break;
    case MapOp::affine: y0 = p.alpha * a + p.beta; break;
    case MapOp::silu_gate_fwd: y0 = a * act(Activation::silu, b); break;  // a = x, b = g
    case MapOp::silu_gate_bwd:                                            // a = dy, b = x, c = g
      y0 = a * act(Activation::silu, c);
      y1 = a * b * act_grad(Activation::silu, c);
      break;
    case MapOp::sigmoid_fwd: y0 = p.alpha * sigmoid(a); break;
    case MapOp::sigmoid_bwd: {  // a = dy1, b = dy2, c = x
      const float s = sigmoid(c);
      y0 = (a + b) * p.alpha * s * (1.f - s);
      break;
    }
  }
}

__device__ float4 load4(const float* p, int64_t i) {
  return p ? reinterpret_cast<const float4*>(p)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
}
__device__ float load1(const float* p, int64_t i) { return p ? p[i] : 0.f; }

__global__ void __launch_bounds__(kThreads) map_kernel(MapParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n4 = p.vec ? p.n / 4 : 0;
  for (int64_t i = first; i < n4; i += stride) {
    const float4 a = load4(p.in0, i), b = load4(p.in1, i), c = load4(p.in2, i);
    float4 y0, y1;
    map_one(p, a.x, b.x, c.x, y0.x, y1.x);
    map_one(p, a.y, b.y, c.y, y0.y, y1.y);
    map_one(p, a.z, b.z, c.z, y0.z, y1.z);
    map_one(p, a.w, b.w, c.w, y0.w, y1.w);
    if (p.out0) reinterpret_cast<float4*>(p.out0)[i] = y0;
    if (p.out1) reinterpret_cast<float4*>(p.out1)[i] = y1;
  }
  for (int64_t i = 4 * n4 + first; i < p.n; i += stride) {
    float y0, y1;
    map_one(p, load1(p.in0, i), load1(p.in1, i), load1(p.in2, i), y0, y1);
    if (p.out0) p.out0[i] = y0;
    if (p.out1) p.out1[i] = y1;
  }
}

void launch_map(const Context& ctx, MapParams p, const char* what) {
  SL_CHECK_SHAPE(p.n >= 0, std::string(what) + ": n = " + std::to_string(p.n) + " < 0");
  if (p.n == 0) return;
  p.vec = aligned16(p.out0) && aligned16(p.out1) && aligned16(p.in0) && aligned16(p.in1) &&
          aligned16(p.in2);
  const int64_t items = p.vec ? p.n / 4 + (p.n % 4 != 0) : p.n;
  map_kernel<<<grid_for(ctx, items), kThreads, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

// ---- row-shaped ops: a 2-D grid, x over column units (float4 or scalar), y over rows --------

struct RowGrid {
  dim3 grid, block;
};

// bx threads across a row (a power of two, 32..256, no wider than the row needs) and
// 256 / bx rows per block. cover_units: one thread per column unit (no grid-stride in x), for
// kernels that keep per-column partial sums.
RowGrid row_grid(const Context& ctx, int64_t rows, int64_t units, bool cover_units) {
  int bx = 32;
  while (bx < units && bx < kThreads) bx *= 2;
  const int by = kThreads / bx;
  int64_t gx = (units + bx - 1) / bx;
  if (!cover_units) gx = std::min(gx, block_cap(ctx));
  const int64_t gy =
      std::min<int64_t>({(rows + by - 1) / by, std::max<int64_t>(1, block_cap(ctx) / gx), 65535});
  return {dim3(unsigned(gx), unsigned(gy)), dim3(unsigned(bx), unsigned(by))};
}

template <typename F>
__device__ void for_each_row_unit(int64_t rows, int64_t units, F&& f) {
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
       r += int64_t(gridDim.y) * blockDim.y)
    for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < units;
         k += int64_t(gridDim.x) * blockDim.x)
      f(r, k);
}

struct GatedParams {
  float* y;         // [N, F] (forward)
  float* du;        // [N, 2F] (backward)
  const float* dy;  // [N, F] (backward)
  const float* u;   // [N, 2F] rows [gate | value]
  int64_t N, F;
  Activation act;
  bool vec;  // F % 4 == 0 and every pointer 16-byte aligned
};

__global__ void __launch_bounds__(kThreads) gated_fwd_kernel(GatedParams p) {
  for_each_row_unit(p.N, p.vec ? p.F / 4 : p.F, [&](int64_t r, int64_t k) {
    const float* g = p.u + r * 2 * p.F;
    float* y = p.y + r * p.F;
    if (p.vec) {
      const float4 a = reinterpret_cast<const float4*>(g)[k];
      const float4 v = reinterpret_cast<const float4*>(g + p.F)[k];
      reinterpret_cast<float4*>(y)[k] = make_float4(act(p.act, a.x) * v.x, act(p.act, a.y) * v.y,
                                                    act(p.act, a.z) * v.z, act(p.act, a.w) * v.w);
    } else {
      y[k] = act(p.act, g[k]) * g[p.F + k];
    }
  });
}

__global__ void __launch_bounds__(kThreads) gated_bwd_kernel(GatedParams p) {
  for_each_row_unit(p.N, p.vec ? p.F / 4 : p.F, [&](int64_t r, int64_t k) {
    const float* g = p.u + r * 2 * p.F;
    float* dg = p.du + r * 2 * p.F;
    const float* dy = p.dy + r * p.F;
    if (p.vec) {
      const float4 a = reinterpret_cast<const float4*>(g)[k];
      const float4 v = reinterpret_cast<const float4*>(g + p.F)[k];
      const float4 d = reinterpret_cast<const float4*>(dy)[k];
      reinterpret_cast<float4*>(dg)[k] =
          make_float4(d.x * v.x * act_grad(p.act, a.x), d.y * v.y * act_grad(p.act, a.y),
                      d.z * v.z * act_grad(p.act, a.z), d.w * v.w * act_grad(p.act, a.w));
      reinterpret_cast<float4*>(dg + p.F)[k] =
          make_float4(d.x * act(p.act, a.x), d.y * act(p.act, a.y), d.z * act(p.act, a.z),
                      d.w * act(p.act, a.w));
    } else {
      const float d = dy[k];
      dg[k] = d * g[p.F + k] * act_grad(p.act, g[k]);
      dg[p.F + k] = d * act(p.act, g[k]);
    }
  });
}

void launch_gated(const Context& ctx, GatedParams p, bool forward) {
  SL_CHECK_SHAPE(p.N >= 0 && p.F >= 0, "gated: N = " + std::to_string(p.N) +
                                           ", F = " + std::to_string(p.F) + " must be >= 0");
  if (p.N == 0 || p.F == 0) return;
  p.vec = p.F % 4 == 0 && aligned16(p.y) && aligned16(p.du) && aligned16(p.dy) && aligned16(p.u);
  const RowGrid g = row_grid(ctx, p.N, p.vec ? p.F / 4 : p.F, false);
  if (forward)
    gated_fwd_kernel<<<g.grid, g.block, 0, ctx.stream>>>(p);
  else
    gated_bwd_kernel<<<g.grid, g.block, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

struct CopyRowsParams {
  float* dst;
  const float* src;
  int64_t dst_stride, src_stride, rows, width;
  float alpha;
  bool accumulate;  // axpy_rows: dst += alpha·src; copy_rows: dst = alpha·src
  bool vec;         // width and both strides multiples of 4, both pointers 16-byte aligned
};

__global__ void __launch_bounds__(kThreads) copy_rows_kernel(CopyRowsParams p) {
  for_each_row_unit(p.rows, p.vec ? p.width / 4 : p.width, [&](int64_t r, int64_t k) {
    float* d = p.dst + r * p.dst_stride;
    const float* s = p.src + r * p.src_stride;
    if (p.vec) {
      const float4 x = reinterpret_cast<const float4*>(s)[k];
      float4& o = reinterpret_cast<float4*>(d)[k];
      if (p.accumulate) {
        const float4 old = o;
        o = make_float4(old.x + p.alpha * x.x, old.y + p.alpha * x.y, old.z + p.alpha * x.z,
                        old.w + p.alpha * x.w);
      } else {
        o = make_float4(p.alpha * x.x, p.alpha * x.y, p.alpha * x.z, p.alpha * x.w);
      }
    } else {
      d[k] = p.accumulate ? d[k] + p.alpha * s[k] : p.alpha * s[k];
    }
  });
}

void copy_rows_launch(const Context& ctx, CopyRowsParams p, const char* what) {
  SL_CHECK_SHAPE(p.rows >= 0 && p.width >= 0 && p.dst_stride >= p.width && p.src_stride >= p.width,
                 std::string(what) + ": rows = " + std::to_string(p.rows) + ", width = " +
                     std::to_string(p.width) + ", strides " + std::to_string(p.dst_stride) + " / " +
                     std::to_string(p.src_stride) + " (need sizes >= 0 and strides >= width)");
  if (p.rows == 0 || p.width == 0) return;
  p.vec = p.width % 4 == 0 && p.dst_stride % 4 == 0 && p.src_stride % 4 == 0 && aligned16(p.dst) &&
          aligned16(p.src);
  const RowGrid g = row_grid(ctx, p.rows, p.vec ? p.width / 4 : p.width, false);
  copy_rows_kernel<<<g.grid, g.block, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

struct SkipParams {
  float* y;           // [N, I] (forward)
  float* dx;          // rows of I at stride x_stride (backward)
  float* dskip;       // [ceil(I / group)] (backward, accumulated)
  const float* a;     // [N, I] (forward)
  const float* dy;    // [N, I] (backward)
  const float* skip;  // [ceil(I / group)]
  const float* x;     // rows of I at stride x_stride
  int64_t x_stride, N, I, group;
  bool vec;  // I and x_stride multiples of 4, row pointers 16-byte aligned
};

__global__ void __launch_bounds__(kThreads) skip_add_fwd_kernel(SkipParams p) {
  for_each_row_unit(p.N, p.vec ? p.I / 4 : p.I, [&](int64_t r, int64_t k) {
    const float* a = p.a + r * p.I;
    const float* x = p.x + r * p.x_stride;
    float* y = p.y + r * p.I;
    if (p.vec) {
      const float4 av = reinterpret_cast<const float4*>(a)[k];
      const float4 xv = reinterpret_cast<const float4*>(x)[k];
      const int i = 4 * int(k), group = int(p.group);
      reinterpret_cast<float4*>(y)[k] =
          make_float4(av.x + p.skip[i / group] * xv.x, av.y + p.skip[(i + 1) / group] * xv.y,
                      av.z + p.skip[(i + 2) / group] * xv.z, av.w + p.skip[(i + 3) / group] * xv.w);
    } else {
      y[k] = a[k] + p.skip[int(k) / int(p.group)] * x[k];
    }
  });
}

// Each thread owns one column unit (row_grid with cover_units) and walks rows grid-strided,
// writing dx and keeping Σ dy·x per column in registers. The block then folds its columns into
// the skip entries they share (shared-memory atomics: group columns meet in one entry), and
// adds each entry to dskip once, so global atomics per block are ≤ the entries it touches.
__global__ void __launch_bounds__(kThreads) skip_add_bwd_kernel(SkipParams p) {
  __shared__ float entry_sum[4 * kThreads];
  const int per = p.vec ? 4 : 1, group = int(p.group);
  const int tid = threadIdx.x + threadIdx.y * blockDim.x;
  const int nthreads = blockDim.x * blockDim.y;
  const int col0 = int(blockIdx.x * blockDim.x) * per;
  const int col_end = min(col0 + int(blockDim.x) * per, int(p.I));
  const int base = col0 / group;
  const int entries = (col_end - 1) / group - base + 1;
  for (int e = tid; e < entries; e += nthreads) entry_sum[e] = 0.f;
  __syncthreads();

  const int k = int(blockIdx.x * blockDim.x + threadIdx.x);
  const int units = int(p.vec ? p.I / 4 : p.I);
  if (k < units) {
    float s[4] = {0.f, 0.f, 0.f, 0.f}, acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int l = 0; l < 4; ++l)
      if (l < per) s[l] = p.skip[(k * per + l) / group];
    for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < p.N;
         r += int64_t(gridDim.y) * blockDim.y) {
      const float* dy = p.dy + r * p.I;
      const float* x = p.x + r * p.x_stride;
      float* dx = p.dx + r * p.x_stride;
      if (p.vec) {
        const float4 d = reinterpret_cast<const float4*>(dy)[k];
        const float4 xv = reinterpret_cast<const float4*>(x)[k];
        acc[0] += d.x * xv.x;
        acc[1] += d.y * xv.y;
        acc[2] += d.z * xv.z;
        acc[3] += d.w * xv.w;
        reinterpret_cast<float4*>(dx)[k] =
            make_float4(d.x * s[0], d.y * s[1], d.z * s[2], d.w * s[3]);
      } else {
        const float d = dy[k];
        acc[0] += d * x[k];
        dx[k] = d * s[0];
      }
    }
#pragma unroll
    for (int l = 0; l < 4; ++l)
      if (l < per) atomicAdd(&entry_sum[(k * per + l) / group - base], acc[l]);
  }
  __syncthreads();
  for (int e = tid; e < entries; e += nthreads) atomicAdd(&p.dskip[base + e], entry_sum[e]);
}

void skip_add_check(const SkipParams& p, const char* what) {
  SL_CHECK_SHAPE(
      p.N >= 0 && p.I >= 0 && p.I < (int64_t(1) << 30) && p.x_stride >= p.I && p.group >= 1,
      std::string(what) + ": N = " + std::to_string(p.N) + ", I = " + std::to_string(p.I) +
          ", x_stride = " + std::to_string(p.x_stride) + ", group = " + std::to_string(p.group) +
          " (need N >= 0, 0 <= I < 2^30, x_stride >= I, group >= 1)");
}

// ---- causal depthwise conv1d ----------------------------------------------------------------

// A block covers kConvC channels (threadIdx.x) of one kConvT-step time tile of one sequence,
// kConvRows rows of threads walking the tile. The x window (tile plus K - 1 steps of history,
// zero before t = 0), dy window and w [K] per channel are staged in shared memory, so global
// memory sees each element once per tile plus a K - 1 step halo, and the K taps read shared
// memory. kConvMaxK keeps the backward's staging under the 48 KiB of dynamic shared memory
// every launch may use without an opt-in.
constexpr int kConvC = 32, kConvRows = 8, kConvT = 32, kConvMaxK = 64;
constexpr int kConvThreads = kConvC * kConvRows;

struct ConvParams {
  float* y;           // [B, T, C] (forward)
  float* dx;          // [B, T, C] (backward, overwritten)
  float* dw;          // [C, K] (backward, accumulated)
  float* dbias;       // [C] (backward, accumulated; may be null)
  const float* x;     // [B, T, C]
  const float* w;     // [C, K]
  const float* bias;  // [C] (forward; may be null)
  const float* dy;    // [B, T, C] (backward)
  int64_t B, T, C;
  int K;
};

constexpr size_t conv_fwd_shared_bytes(int K) {
  return size_t(kConvT + K - 1 + K) * kConvC * sizeof(float);
}
constexpr size_t conv_bwd_shared_bytes(int K) {
  return size_t(2 * (kConvT + K - 1) + 2 * K + kConvRows) * kConvC * sizeof(float);
}
static_assert(conv_fwd_shared_bytes(kConvMaxK) <= 48 * 1024 &&
                  conv_bwd_shared_bytes(kConvMaxK) <= 48 * 1024,
              "the conv staging must fit the default dynamic shared memory limit");

__global__ void __launch_bounds__(kConvThreads) causal_conv1d_fwd_kernel(ConvParams p) {
  extern __shared__ float smem[];
  const int K = p.K, win = kConvT + K - 1;
  float* xs = smem;                 // [win][kConvC]: x at steps t0 - K + 1 .. t0 + kConvT - 1
  float* ws = smem + win * kConvC;  // [K][kConvC]
  const int cx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kConvC + cx;
  const bool c_ok = c < p.C;
  for (int j = ty; j < K; j += kConvRows) ws[j * kConvC + cx] = c_ok ? p.w[c * K + j] : 0.f;
  const float b0 = c_ok && p.bias ? p.bias[c] : 0.f;
  const int64_t tiles_t = (p.T + kConvT - 1) / kConvT;
  for (int64_t tile = blockIdx.y; tile < p.B * tiles_t; tile += gridDim.y) {
    const int64_t b = tile / tiles_t, t0 = (tile % tiles_t) * kConvT;
    __syncthreads();  // the previous tile's reads of xs are done (and ws is visible)
    for (int r = ty; r < win; r += kConvRows) {
      const int64_t s = t0 - (K - 1) + r;
      xs[r * kConvC + cx] = c_ok && s >= 0 && s < p.T ? p.x[(b * p.T + s) * p.C + c] : 0.f;
    }
    __syncthreads();
    if (!c_ok) continue;
    for (int i = ty; i < kConvT && t0 + i < p.T; i += kConvRows) {
      float acc = b0;
      for (int j = 0; j < K; ++j) acc += ws[j * kConvC + cx] * xs[(i + j) * kConvC + cx];
      p.y[(b * p.T + t0 + i) * p.C + c] = acc;
    }
  }
}

// dx[s] = Σ_j dy[s + K - 1 - j]·w[j] over the tile's steps s (dy zero from T on);
// dw[j] += Σ_t dy[t]·x[t - K + 1 + j] and dbias += Σ_t dy[t] over the tile's steps t. The block
// keeps its dw partials in shared memory, entry (j, c) owned by the thread row j % kConvRows,
// so they need no atomics until the one atomicAdd per (c, j) per block at the end.
__global__ void __launch_bounds__(kConvThreads) causal_conv1d_bwd_kernel(ConvParams p) {
  extern __shared__ float smem[];
  const int K = p.K, win = kConvT + K - 1;
  float* dys = smem;               // [win][kConvC]: dy at steps t0 .. t0 + win - 1
  float* xs = dys + win * kConvC;  // [win][kConvC]: x at steps t0 - K + 1 .. t0 + kConvT - 1
  float* ws = xs + win * kConvC;   // [K][kConvC]
  float* dws = ws + K * kConvC;    // [K][kConvC]: this block's Σ for dw
  float* dbs = dws + K * kConvC;   // [kConvRows][kConvC]: per thread row Σ for dbias
  const int cx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kConvC + cx;
  const bool c_ok = c < p.C;
  for (int j = ty; j < K; j += kConvRows) {
    ws[j * kConvC + cx] = c_ok ? p.w[c * K + j] : 0.f;
    dws[j * kConvC + cx] = 0.f;
  }
  float db = 0.f;
  const int64_t tiles_t = (p.T + kConvT - 1) / kConvT;
  for (int64_t tile = blockIdx.y; tile < p.B * tiles_t; tile += gridDim.y) {
    const int64_t b = tile / tiles_t, t0 = (tile % tiles_t) * kConvT;
    __syncthreads();  // the previous tile's reads of dys and xs are done (and ws is visible)
    for (int r = ty; r < win; r += kConvRows) {
      const int64_t t = t0 + r, s = t0 - (K - 1) + r;
      dys[r * kConvC + cx] = c_ok && t < p.T ? p.dy[(b * p.T + t) * p.C + c] : 0.f;
      xs[r * kConvC + cx] = c_ok && s >= 0 && s < p.T ? p.x[(b * p.T + s) * p.C + c] : 0.f;
    }
    __syncthreads();
    if (!c_ok) continue;
    for (int i = ty; i < kConvT && t0 + i < p.T; i += kConvRows) {
      float acc = 0.f;
      for (int j = 0; j < K; ++j) acc += dys[(i + K - 1 - j) * kConvC + cx] * ws[j * kConvC + cx];
      p.dx[(b * p.T + t0 + i) * p.C + c] = acc;
      db += dys[i * kConvC + cx];
    }
    for (int j = ty; j < K; j += kConvRows) {
      float acc = 0.f;
      for (int i = 0; i < kConvT; ++i) acc += dys[i * kConvC + cx] * xs[(i + j) * kConvC + cx];
      dws[j * kConvC + cx] += acc;
    }
  }
  dbs[ty * kConvC + cx] = db;
  __syncthreads();
  if (!c_ok) return;
  for (int j = ty; j < K; j += kConvRows) atomicAdd(&p.dw[c * K + j], dws[j * kConvC + cx]);
  if (p.dbias && ty == 0) {
    float sum = 0.f;
    for (int r = 0; r < kConvRows; ++r) sum += dbs[r * kConvC + cx];
    atomicAdd(&p.dbias[c], sum);
  }
}

void conv_check(int64_t B, int64_t T, int64_t C, int64_t K, const char* what) {
  SL_CHECK_SHAPE(B >= 0 && T >= 0 && C >= 0 && K >= 1 && K <= kConvMaxK,
                 std::string(what) + ": B = " + std::to_string(B) + ", T = " + std::to_string(T) +
                     ", C = " + std::to_string(C) + ", K = " + std::to_string(K) +
                     " (need sizes >= 0 and 1 <= K <= " + std::to_string(kConvMaxK) + ")");
}

}  // namespace

void activation_fwd(const Context& ctx, Activation a, float* y, const float* x, int64_t n) {
  MapParams p;
  p.op = MapOp::act_fwd;
  p.act = a;
  p.out0 = y;
  p.in0 = x;
  p.n = n;
  launch_map(ctx, p, "activation_fwd");
}

void activation_bwd(const Context& ctx, Activation a, float* dx, const float* dy, const float* x,
                    int64_t n) {
  MapParams p;
  p.op = MapOp::act_bwd;
  p.act = a;
  p.out0 = dx;
  p.in0 = dy;
  p.in1 = x;
  p.n = n;
  launch_map(ctx, p, "activation_bwd");
}

void gated_fwd(const Context& ctx, Activation a, float* y, const float* u, int64_t N, int64_t F) {
  launch_gated(ctx, GatedParams{y, nullptr, nullptr, u, N, F, a, false}, true);
}

void gated_bwd(const Context& ctx, Activation a, float* du, const float* dy, const float* u,
               int64_t N, int64_t F) {
  launch_gated(ctx, GatedParams{nullptr, du, dy, u, N, F, a, false}, false);
}

void causal_conv1d_fwd(const Context& ctx, float* y, const float* x, const float* w,
                       const float* bias, int64_t B, int64_t T, int64_t C, int64_t K) {
  conv_check(B, T, C, K, "causal_conv1d_fwd");
  if (B == 0 || T == 0 || C == 0) return;
  ConvParams p{y, nullptr, nullptr, nullptr, x, w, bias, nullptr, B, T, C, int(K)};
  const int64_t tiles = B * ((T + kConvT - 1) / kConvT);
  const dim3 grid(unsigned((C + kConvC - 1) / kConvC), unsigned(std::min<int64_t>(tiles, 65535)));
  causal_conv1d_fwd_kernel<<<grid, dim3(kConvC, kConvRows), conv_fwd_shared_bytes(p.K),
                             ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void causal_conv1d_bwd(const Context& ctx, float* dx, float* dw, float* dbias, const float* dy,
                       const float* x, const float* w, int64_t B, int64_t T, int64_t C, int64_t K) {
  conv_check(B, T, C, K, "causal_conv1d_bwd");
  if (B == 0 || T == 0 || C == 0) return;
  ConvParams p{nullptr, dx, dw, dbias, x, w, nullptr, dy, B, T, C, int(K)};
  const int64_t gx = (C + kConvC - 1) / kConvC;
  const int64_t tiles = B * ((T + kConvT - 1) / kConvT);
  // Enough blocks to fill the GPU; more would only add dw atomics.
  const int64_t gy = std::min<int64_t>({tiles, std::max<int64_t>(1, block_cap(ctx) / gx), 65535});
  causal_conv1d_bwd_kernel<<<dim3(unsigned(gx), unsigned(gy)), dim3(kConvC, kConvRows),
                             conv_bwd_shared_bytes(p.K), ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void add_inplace(const Context& ctx, float* y, const float* x, int64_t n) {
  MapParams p;
  p.op = MapOp::add;
  p.out0 = y;
  p.in0 = y;
  p.in1 = x;
  p.n = n;
  launch_map(ctx, p, "add_inplace");
}

void add(const Context& ctx, float* y, const float* a, const float* b, int64_t n) {
  MapParams p;
  p.op = MapOp::add;
  p.out0 = y;
  p.in0 = a;
  p.in1 = b;
  p.n = n;
  launch_map(ctx, p, "add");
}

void affine(const Context& ctx, float* y, const float* x, double alpha, double beta, int64_t n) {
  MapParams p;
  p.op = MapOp::affine;
  p.out0 = y;
  p.in0 = x;
  p.alpha = float(alpha);
  p.beta = float(beta);
  p.n = n;
  launch_map(ctx, p, "affine");
}

void fill_zero(const Context& ctx, float* y, int64_t n) {
  SL_CHECK_SHAPE(n >= 0, "fill_zero: n = " + std::to_string(n) + " < 0");
  if (n == 0) return;
  SL_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(n) * sizeof(float), ctx.stream));
}

void copy_rows(const Context& ctx, float* dst, int64_t dst_stride, const float* src,
               int64_t src_stride, int64_t rows, int64_t width, double scale) {
  copy_rows_launch(
      ctx,
      CopyRowsParams{dst, src, dst_stride, src_stride, rows, width, float(scale), false, false},
      "copy_rows");
}

void axpy_rows(const Context& ctx, float* dst, int64_t dst_stride, const float* src,
               int64_t src_stride, int64_t rows, int64_t width, double alpha) {
  copy_rows_launch(
      ctx, CopyRowsParams{dst, src, dst_stride, src_stride, rows, width, float(alpha), true, false},
      "axpy_rows");
}

void silu_gate_fwd(const Context& ctx, float* y, const float* x, const float* g, int64_t n) {
  MapParams p;
  p.op = MapOp::silu_gate_fwd;
  p.out0 = y;
  p.in0 = x;
  p.in1 = g;
  p.n = n;
  launch_map(ctx, p, "silu_gate_fwd");
}

void silu_gate_bwd(const Context& ctx, float* dx, float* dg, const float* dy, const float* x,
                   const float* g, int64_t n) {
  MapParams p;
  p.op = MapOp::silu_gate_bwd;
  p.out0 = dx;
  p.out1 = dg;
  p.in0 = dy;
  p.in1 = x;
  p.in2 = g;
  p.n = n;
  launch_map(ctx, p, "silu_gate_bwd");
}

void skip_add_fwd(const Context& ctx, float* y, const float* a, const float* skip, const float* x,
                  int64_t x_stride, int64_t N, int64_t I, int64_t group) {
  SkipParams p{y, nullptr, nullptr, a, nullptr, skip, x, x_stride, N, I, group, false};
  skip_add_check(p, "skip_add_fwd");
  if (N == 0 || I == 0) return;
  p.group = std::min(group, I);  // the same i / group for every i < I, and it fits an int
  p.vec = I % 4 == 0 && x_stride % 4 == 0 && aligned16(y) && aligned16(a) && aligned16(x);
  const RowGrid g = row_grid(ctx, N, p.vec ? I / 4 : I, false);
  skip_add_fwd_kernel<<<g.grid, g.block, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void skip_add_bwd(const Context& ctx, float* dx, float* dskip, const float* dy, const float* skip,
                  const float* x, int64_t x_stride, int64_t N, int64_t I, int64_t group) {
  SkipParams p{nullptr, dx, dskip, nullptr, dy, skip, x, x_stride, N, I, group, false};
  skip_add_check(p, "skip_add_bwd");
  if (N == 0 || I == 0) return;
  p.group = std::min(group, I);
  p.vec = I % 4 == 0 && x_stride % 4 == 0 && aligned16(dx) && aligned16(dy) && aligned16(x);
  const RowGrid g = row_grid(ctx, N, p.vec ? I / 4 : I, true);
  skip_add_bwd_kernel<<<g.grid, g.block, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void scaled_sigmoid_fwd(const Context& ctx, float* y, const float* x, double scale, int64_t n) {
  MapParams p;
  p.op = MapOp::sigmoid_fwd;
  p.out0 = y;
  p.in0 = x;
  p.alpha = float(scale);
  p.n = n;
  launch_map(ctx, p, "scaled_sigmoid_fwd");
}

void scaled_sigmoid_bwd(const Context& ctx, float* dx, const float* dy1, const float* dy2,
                        const float* x, double scale, int64_t n) {
  MapParams p;
  p.op = MapOp::sigmoid_bwd;
  p.out0 = dx;
  p.in0 = dy1;
  p.in1 = dy2;
  p.in2 = x;
  p.alpha = float(scale);
  p.n = n;
  launch_map(ctx, p, "scaled_sigmoid_bwd");
}

}  // namespace statelab::cuda
