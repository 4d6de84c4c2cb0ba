// The unified linear recurrence on CUDA (twin of kernels/cpu/linear_recurrence.cpp): the fused
// recurrent kernels and the dispatch to the chunkwise ones (the gate scans that feed both are in
// gate_scans.cu). The recurrent kernels keep S on chip for the whole sequence: a thread owns a
// 2 × 8 tile of S, so every row reduction is a few shuffles inside a warp, and block barriers
// come once per staged visit of 8 or more steps, never per step. Backward recomputes each chunk
// from the saved boundary states through √chunk checkpoints: a second forward pass bought
// instead of storing every state. The checkpoints live in global scratch (written and read back
// by the same warp, so they stay in L1/L2) and only a visit's recomputed history in shared
// memory, which keeps a CTA small enough for one wave at short sequences. Checked against the
// CPU twins in double by kernels/selftest/linear_recurrence.cpp.
#include "kernels/cuda/linear_recurrence.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cuda/linear_recurrence_chunkwise.hpp"
#include "kernels/error.hpp"

namespace statelab::cuda {

namespace {

using cpu::LinearRecurrence;
using cpu::LinearRecurrenceGrads;
using cpu::Rows;

// ---- the recurrent kernels' tiling ------------------------------------------------------------
// A warp is G row groups of Lc lanes (Lc = 32 / G, the smallest power of two with 8·Lc >= Dk);
// lane lc of group g owns rows (r·G + g, r < kTileRows) and columns (j·Lc + lc, j < kTileCols) of
// the warp's rows. Columns strided by Lc make every load of k and q one contiguous run per group;
// two rows per thread halve the shuffles of the column sums backward needs.
constexpr int kTileRows = 2;
constexpr int kTileCols = 8;
constexpr int kMaxWarps = 8;                    // warps per CTA, all along rows
constexpr int kMaxStateWidth = 32 * kTileCols;  // the widest Dk the recurrent kernels handle
constexpr int kForwardVisit = 8;                // steps forward stages per block barrier
// Backward stages at least this many steps per barrier (more when √chunk is larger).
constexpr int kMinBackwardVisit = 8;
constexpr int64_t kMaxGridY = 65535;  // row blocks; gridDim.x holds the B·H sequences

// ---- dispatch --------------------------------------------------------------------------------
// The recurrent kernels cost T dependent steps (about 0.3 µs each forward and 1 µs backward,
// which runs a sweep and two recomputations); the chunkwise kernels cost T/chunk dependent state
// hand-offs of a few µs plus intra-chunk products that run in parallel, and a fixed cost of
// several launches. Per chunk that is about chunk·0.3 µs against a few µs, so chunkwise wins
// once chunks are at least 16 long and there are enough of them to amortise its fixed cost:
// automatic dispatch takes it from four chunks on.
constexpr int64_t kChunkwiseMinChunk = 16;
constexpr int64_t kChunkwiseMinChunks = 4;

// One staged visit of `steps` steps in shared memory, laid out [gates | k, q | v | dy]:
//   gates [steps][4] (a, b, c, floor; absent ones stay 0); k and q [steps][2][dkp] with lane lc's
//   columns j·Lc + lc as float4 number (j/4)·Lc + lc, so that a warp's 128-bit loads of them hit
//   consecutive 16-byte words (no bank conflicts); v and dy [steps][rows].
struct StageLayout {
  int steps = 0, dkp = 0, rows = 0;
  bool with_dy = false;
  __host__ __device__ int kq() const { return 4 * steps; }
  __host__ __device__ int v() const { return kq() + 2 * steps * dkp; }
  __host__ __device__ int dy() const { return v() + steps * rows; }
  __host__ __device__ int size() const {
    return (dy() + (with_dy ? steps * rows : 0) + 3) / 4 * 4;  // keeps the next buffer 16-B aligned
  }
};

// Everything a recurrent kernel reads, by value. Offsets into [B, T, ...] tensors are int64.
struct RecurrentArgs {
  int64_t T = 0, H = 0;
  int Dk = 0, Dv = 0, chunk = 0;
  Rows<const float> q, k;        // [B, T, H, Dk]
  Rows<const float> v;           // [B, T, H, Dv]
  const float* a = nullptr;      // [B, T, H]
  const float* b = nullptr;      // [B, T, H] or null
  const float* c = nullptr;      // [B, T, H]
  const float* floor = nullptr;  // [B, T, H] or null
  float eps = 0;
  Rows<float> y;                 // [B, T, H, Dv]
  float* boundary = nullptr;     // [B, H, ceil(T/chunk) − 1, Dv·Dk (+ Dk)]
  float* final_state = nullptr;  // [B, H, Dv·Dk (+ Dk)]
  Rows<const float> dy;          // [B, T, H, Dv]
  Rows<float> dq, dk;            // [B, T, H, Dk]
  Rows<float> dv;                // [B, T, H, Dv]
  float* da = nullptr;           // [B, T, H]
  float* db = nullptr;           // [B, T, H] or null
  float* dc = nullptr;           // [B, T, H]
  float* dfloor = nullptr;       // [B, T, H] or null
  float* checkpoints = nullptr;  // backward: per warp of the grid, `subchunks` state slots
  // Probe read-outs [B, T, H], forward only, each when non-null: squared norms summed over the
  // tiles (zeroed before, square-rooted after), and |nᵀq| written once.
  float* state_sq = nullptr;       // ‖S_t‖²_F
  float* normalizer_sq = nullptr;  // ‖n_t‖²
  float* n_dot_q = nullptr;        // |n_tᵀ q_t|
  float* error_sq = nullptr;       // ‖S_{t−1} k_t − v_t‖²
  int lanes_log2 = 0;            // log2 Lc
  int rows_per_cta = 0;          // warps · G · kTileRows
  int visit = 0;                 // steps per staged visit
  int subchunks = 0;             // backward: checkpoints per chunk, ceil(min(chunk, T) / visit)
};

// Where this thread sits in the tiling.
struct Lane {
  int lane, warp, lanes, groups, lc, g;
  __device__ explicit Lane(int lanes_log2)
      : lane(int(threadIdx.x) & 31),
        warp(int(threadIdx.x) >> 5),
        lanes(1 << lanes_log2),
        groups(32 >> lanes_log2),
        lc(lane & ((1 << lanes_log2) - 1)),
        g(lane >> lanes_log2) {}
  template <int R>
  __device__ int row(int r) const {  // in the CTA
    return (warp * R + r) * groups + g;
  }
  __device__ int col(int j) const { return j * lanes + lc; }
  // Every lane of a group holds a row's reductions; lane r % Lc writes row r's outputs.
  __device__ bool writes(int r) const { return lc == (r & (lanes - 1)); }
};

template <int R, int C>
using Tile = float[R][C];

__device__ __forceinline__ void cp_async4(float* dst, const float* src) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

// Sums each of x[0 .. count) over the Lc lanes of a row group; every lane of the group gets the
// totals. count is the same for the whole warp.
template <int N>
__device__ __forceinline__ void group_sum(float (&x)[N], int lanes, int count = N) {
  for (int o = 1; o < lanes; o <<= 1)
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i < count) x[i] += __shfl_xor_sync(0xffffffffu, x[i], o);
}

// Two accumulators halve the dependent FMA chain.
template <int C>
__device__ __forceinline__ float dot(const float (&x)[C], const float (&y)[C]) {
  float s0 = 0.f, s1 = 0.f;
#pragma unroll
  for (int j = 0; j < C; j += 2) {
    s0 = fmaf(x[j], y[j], s0);
    s1 = fmaf(x[j + 1], y[j + 1], s1);
  }
  return s0 + s1;
}

// Sums this thread's C column partials over the warp's row groups and adds each column's total
// into red[col] once. Transposed exchange: at each stage a lane keeps half of its values and
// trades the other half, so C values cost C − C/G shuffles rather than C·log2 G.
template <int C>
__device__ __forceinline__ void add_columns(float (&x)[C], float* red, const Lane& ln) {
  int first = 0, count = C;
  bool owner = true;
#pragma unroll
  for (int m = 0; m < 5; ++m) {
    const int o = ln.lanes << m;
    if (o < 32) {
      const bool upper = (ln.lane & o) != 0;
      const int half = C >> (m + 1);
      if (half >= 1) {
#pragma unroll
        for (int i = 0; i < C / 2; ++i)
          if (i < half) {
            const float send = upper ? x[i] : x[i + half];
            const float keep = upper ? x[i + half] : x[i];
            x[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
          }
        if (upper) first += half;
        count = half;
      } else {
        x[0] += __shfl_xor_sync(0xffffffffu, x[0], o);
        owner = owner && !upper;
      }
    }
  }
  if (owner)
#pragma unroll
    for (int i = 0; i < C; ++i)
      if (i < count) atomicAdd(red + (first + i) * ln.lanes + ln.lc, x[i]);
}

// Sums four per-thread partials over the warp the same way; lane 8·i adds the total of x[i].
__device__ __forceinline__ void add_scalars(const float (&x)[4], float* red, int lane) {
  const bool u16 = (lane & 16) != 0, u8 = (lane & 8) != 0;
  const float y0 = (u16 ? x[2] : x[0]) + __shfl_xor_sync(0xffffffffu, u16 ? x[0] : x[2], 16);
  const float y1 = (u16 ? x[3] : x[1]) + __shfl_xor_sync(0xffffffffu, u16 ? x[1] : x[3], 16);
  float z = (u8 ? y1 : y0) + __shfl_xor_sync(0xffffffffu, u8 ? y0 : y1, 8);
  z += __shfl_xor_sync(0xffffffffu, z, 4);
  z += __shfl_xor_sync(0xffffffffu, z, 2);
  z += __shfl_xor_sync(0xffffffffu, z, 1);
  if ((lane & 7) == 0) atomicAdd(red + (lane >> 3), z);
}

// Adds the warp's total of x into *dst once (every lane of the warp must call it).
__device__ __forceinline__ void add_warp_total(float x, float* dst, int lane) {
  for (int o = 16; o >= 1; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  if (lane == 0) atomicAdd(dst, x);
}

__device__ __forceinline__ int64_t state_size(const RecurrentArgs& p) {
  return int64_t(p.Dv) * p.Dk + (p.floor ? p.Dk : 0);
}

template <typename P>
__device__ __forceinline__ P* row_at(const Rows<P>& r, int64_t T, int64_t b, int64_t t, int64_t h) {
  return r.data + (b * T + t) * r.row + h * r.head;
}

// Stages steps [t_begin, t_begin + n) of (b, h) for the CTA's rows from row0 with 4-byte
// cp.async (the Rows strides promise no alignment). `outputs` adds what only backward's sweep
// and forward's output read: q, dy and the floor.
__device__ void stage_steps(const RecurrentArgs& p, float* buf, const StageLayout& L,
                            int lanes_log2, int64_t b, int64_t h, int row0, int64_t t_begin, int n,
                            bool outputs) {
  const int tid = int(threadIdx.x), nt = int(blockDim.x), Dk = p.Dk;
  const int lanes = 1 << lanes_log2;
  for (int e = tid; e < n * Dk; e += nt) {
    const int st = e / Dk, col = e - st * Dk, j = col >> lanes_log2;
    const int pos = ((j >> 2) * lanes + (col & (lanes - 1))) * 4 + (j & 3);
    float* dst = buf + L.kq() + 2 * st * L.dkp + pos;
    const int64_t t = t_begin + st;
    cp_async4(dst, row_at(p.k, p.T, b, t, h) + col);
    if (outputs) cp_async4(dst + L.dkp, row_at(p.q, p.T, b, t, h) + col);
  }
  const int rows = std::min(L.rows, p.Dv - row0);
  for (int e = tid; e < n * rows; e += nt) {
    const int st = e / rows, r = e - st * rows;
    const int64_t t = t_begin + st;
    cp_async4(buf + L.v() + st * L.rows + r, row_at(p.v, p.T, b, t, h) + row0 + r);
    if (outputs && L.with_dy)
      cp_async4(buf + L.dy() + st * L.rows + r, row_at(p.dy, p.T, b, t, h) + row0 + r);
  }
  for (int st = tid; st < n; st += nt) {
    const int64_t i = (b * p.T + t_begin + st) * p.H + h;
    float* g = buf + 4 * st;
    cp_async4(g, p.a + i);
    if (p.b) cp_async4(g + 1, p.b + i);
    cp_async4(g + 2, p.c + i);
    if (outputs && p.floor) cp_async4(g + 3, p.floor + i);
  }
}

// This lane's C columns of one staged k or q row.
template <int C>
__device__ __forceinline__ void load_staged(const float* row, const Lane& ln, float (&x)[C]) {
  const float4* s4 = reinterpret_cast<const float4*>(row);
#pragma unroll
  for (int i = 0; i < C / 4; ++i) {
    const float4 f = s4[i * ln.lanes + ln.lc];
    x[4 * i] = f.x, x[4 * i + 1] = f.y, x[4 * i + 2] = f.z, x[4 * i + 3] = f.w;
  }
}

// A state tile (and n's columns) from a [Dv·Dk (+ Dk)] slot in global memory, or zero.
template <int R, int C>
__device__ void load_state(const float* src, Tile<R, C>& X, float (&n)[C], bool norm,
                           const Lane& ln, int row0, int Dk, int Dv) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      X[r][j] = src && row < Dv && col < Dk ? src[int64_t(row) * Dk + col] : 0.f;
    }
  }
#pragma unroll
  for (int j = 0; j < C; ++j) {
    const int col = ln.col(j);
    n[j] = src && norm && col < Dk ? src[int64_t(Dv) * Dk + col] : 0.f;
  }
}

// The inverse; n is written once, by the first row group of the first warp of row block 0.
template <int R, int C>
__device__ void store_state(float* dst, const Tile<R, C>& X, const float (&n)[C], bool norm,
                            const Lane& ln, int row0, int Dk, int Dv) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      if (row < Dv && col < Dk) dst[int64_t(row) * Dk + col] = X[r][j];
    }
  }
  if (norm && row0 == 0 && ln.warp == 0 && ln.g == 0)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = ln.col(j);
      if (col < Dk) dst[int64_t(Dv) * Dk + col] = n[j];
    }
}

// A checkpoint slot in shared memory, per warp: the warp's tiles as [R·C/4][32 lanes] float4
// (conflict-free), then n by column, written by row group 0 and read by every group.
template <int R, int C>
__device__ __forceinline__ void store_slot(float* slot, const Tile<R, C>& X, const float (&n)[C],
                                           bool norm, const Lane& ln) {
  float4* s4 = reinterpret_cast<float4*>(slot);
#pragma unroll
  for (int e = 0; e < R * C; e += 4)
    s4[(e / 4) * 32 + ln.lane] =
        make_float4(X[e / C][e % C], X[(e + 1) / C][(e + 1) % C], X[(e + 2) / C][(e + 2) % C],
                    X[(e + 3) / C][(e + 3) % C]);
  if (norm && ln.g == 0)
#pragma unroll
    for (int j = 0; j < C; ++j) slot[32 * R * C + ln.col(j)] = n[j];
}

template <int R, int C>
__device__ __forceinline__ void load_slot(const float* slot, Tile<R, C>& X, float (&n)[C],
                                          bool norm, const Lane& ln) {
  const float4* s4 = reinterpret_cast<const float4*>(slot);
#pragma unroll
  for (int e = 0; e < R * C; e += 4) {
    const float4 f = s4[(e / 4) * 32 + ln.lane];
    X[e / C][e % C] = f.x, X[(e + 1) / C][(e + 1) % C] = f.y;
    X[(e + 2) / C][(e + 2) % C] = f.z, X[(e + 3) / C][(e + 3) % C] = f.w;
  }
#pragma unroll
  for (int j = 0; j < C; ++j) n[j] = norm ? slot[32 * R * C + ln.col(j)] : 0.f;
}

// One step of the recurrence on a tile, as the CPU does it: w = c v − (a b) S k, S = a S + w kᵀ,
// n = a n + c k.
template <int R, int C>
__device__ __forceinline__ void advance(Tile<R, C>& X, float (&n)[C], const float (&kk)[C],
                                        const float (&vv)[R], float a, float bb, float c,
                                        bool delta, bool norm, int lanes) {
  float w[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w[r] = c * vv[r];
  if (delta) {
    float u[R];
#pragma unroll
    for (int r = 0; r < R; ++r) u[r] = dot(X[r], kk);
    group_sum(u, lanes);
    const float ab = a * bb;
#pragma unroll
    for (int r = 0; r < R; ++r) w[r] = fmaf(-ab, u[r], w[r]);
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) X[r][j] = fmaf(w[r], kk[j], a * X[r][j]);
  if (norm)
#pragma unroll
    for (int j = 0; j < C; ++j) n[j] = fmaf(c, kk[j], a * n[j]);
}

// The step inputs a tile needs from a staged visit.
template <int R, int C>
__device__ __forceinline__ void read_step(const float* sb, const StageLayout& L, int st,
                                          const Lane& ln, float (&kk)[C], float (&vv)[R],
                                          float4& gates) {
  load_staged(sb + L.kq() + 2 * st * L.dkp, ln, kk);
#pragma unroll
  for (int r = 0; r < R; ++r) vv[r] = sb[L.v() + st * L.rows + ln.template row<R>(r)];
  gates = reinterpret_cast<const float4*>(sb)[st];
}

// Probe: ‖S_{t−1} k_t − v_t‖² over this warp's rows, before step t writes (each row counted by
// the one lane that owns its outputs; padding rows have S = 0 and v = 0).
template <int R, int C>
__device__ __forceinline__ void probe_write_error(const RecurrentArgs& p, const Lane& ln,
                                                  const Tile<R, C>& X, const float (&kk)[C],
                                                  const float (&vv)[R], int row0, float* dst) {
  float u[R];
#pragma unroll
  for (int r = 0; r < R; ++r) u[r] = dot(X[r], kk);
  group_sum(u, ln.lanes);
  float sq = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (ln.writes(r) && row0 + ln.template row<R>(r) < p.Dv) {
      const float d = u[r] - vv[r];
      sq = fmaf(d, d, sq);
    }
  add_warp_total(sq, dst, ln.lane);
}

// Probe: ‖S_t‖²_F from every tile entry; n is held whole by every row group of every warp, so
// ‖n_t‖² and |n_tᵀ q_t| come from row group 0 of warp 0 of row block 0 alone.
template <int R, int C>
__device__ __forceinline__ void probe_state(const RecurrentArgs& p, const Lane& ln,
                                            const Tile<R, C>& X, const float (&n)[C],
                                            float n_dot_q, int64_t gi) {
  const bool n_owner = blockIdx.y == 0 && ln.warp == 0;
  if (p.state_sq) {
    float sq = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < C; ++j) sq = fmaf(X[r][j], X[r][j], sq);
    add_warp_total(sq, p.state_sq + gi, ln.lane);
  }
  if (p.normalizer_sq && n_owner) {
    float sq = 0.f;
    if (ln.g == 0)
#pragma unroll
      for (int j = 0; j < C; ++j) sq = fmaf(n[j], n[j], sq);
    add_warp_total(sq, p.normalizer_sq + gi, ln.lane);
  }
  if (p.n_dot_q && n_owner && ln.lane == 0) p.n_dot_q[gi] = fabsf(n_dot_q);
}

// kProbe: the probe pass (y, boundary and final state null, the probe read-outs set); a separate
// instantiation so that training's forward carries none of its branches.
template <int R, int C, bool kProbe>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) recurrent_fwd_kernel(const RecurrentArgs p) {
  static_assert(C % 4 == 0 && C >= 4 && R >= 1 && R * C % 4 == 0, "tiles are whole float4");
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const Lane ln(p.lanes_log2);
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int row0 = int(blockIdx.y) * p.rows_per_cta;
  const StageLayout L{p.visit, ln.lanes * C, p.rows_per_cta, false};
  auto stage = [&](int i) { return smem + i * L.size(); };
  // Padding (columns >= Dk, rows >= Dv, absent gates) is never staged and must read as 0.
  for (int e = int(threadIdx.x); e < 2 * L.size(); e += int(blockDim.x)) smem[e] = 0.f;
  __syncthreads();
  const bool norm = p.floor != nullptr, delta = p.b != nullptr;
  const int64_t nch = (p.T + p.chunk - 1) / p.chunk, ssize = state_size(p);
  Tile<R, C> X = {};
  float n[C] = {};
  const int visits = int((p.T + p.visit - 1) / p.visit);
  stage_steps(p, stage(0), L, p.lanes_log2, b, h, row0, 0, int(std::min<int64_t>(p.visit, p.T)),
              true);
  cp_async_commit();
  for (int vi = 0; vi < visits; ++vi) {
    cp_async_wait_all();
    __syncthreads();  // visit vi is staged and everyone is done with visit vi − 1's buffer
    const int64_t t_begin = int64_t(vi) * p.visit;
    if (vi + 1 < visits)
      stage_steps(p, stage((vi + 1) & 1), L, p.lanes_log2, b, h, row0, t_begin + p.visit,
                  int(std::min<int64_t>(p.visit, p.T - t_begin - p.visit)), true);
    cp_async_commit();
    const float* sb = stage(vi & 1);
    const int steps = int(std::min<int64_t>(p.visit, p.T - t_begin));
    for (int st = 0; st < steps; ++st) {
      const int64_t t = t_begin + st;
      if (p.boundary && t > 0 && t % p.chunk == 0)
        store_state(p.boundary + ((b * p.H + h) * (nch - 1) + t / p.chunk - 1) * ssize, X, n, norm,
                    ln, row0, p.Dk, p.Dv);
      float kk[C], qq[C], vv[R];
      float4 gt;
      read_step(sb, L, st, ln, kk, vv, gt);
      load_staged(sb + L.kq() + (2 * st + 1) * L.dkp, ln, qq);
      const int64_t gi = (b * p.T + t) * p.H + h;
      if constexpr (kProbe)
        if (p.error_sq) probe_write_error(p, ln, X, kk, vv, row0, p.error_sq + gi);
      advance(X, n, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
      float o[R + 1];
#pragma unroll
      for (int r = 0; r < R; ++r) o[r] = dot(X[r], qq);
      o[R] = norm ? dot(n, qq) : 0.f;
      group_sum(o, ln.lanes, norm ? R + 1 : R);
      if constexpr (kProbe) {
        probe_state(p, ln, X, n, o[R], gi);
        continue;  // a probe pass leaves y as forward wrote it
      }
      const float den = norm ? fmaxf(fabsf(o[R]), gt.w) + p.eps : 1.f;
      float* y = row_at(p.y, p.T, b, t, h);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int row = row0 + ln.template row<R>(r);
        if (ln.writes(r) && row < p.Dv) y[row] = norm ? o[r] / den : o[r];
      }
    }
  }
  if (p.final_state)
    store_state(p.final_state + (b * p.H + h) * ssize, X, n, norm, ln, row0, p.Dk, p.Dv);
}

// Adds one visit's reduced gradients (red: [steps][dq dkp | dk dkp | da db dc dfloor]) into
// the outputs and clears them. Several CTAs (row blocks, heads sharing q and k) add into the
// same elements, so every add is atomic; with one adder per element the sum stays exact.
__device__ void flush(const RecurrentArgs& p, float* red, int dkp, int64_t b, int64_t h,
                      int64_t t_begin, int n) {
  const int tid = int(threadIdx.x), nt = int(blockDim.x), Dk = p.Dk, stride = 2 * dkp + 4;
  for (int e = tid; e < n * Dk; e += nt) {
    const int st = e / Dk, col = e - st * Dk;
    float* r = red + st * stride;
    atomicAdd(row_at(p.dq, p.T, b, t_begin + st, h) + col, r[col]);
    atomicAdd(row_at(p.dk, p.T, b, t_begin + st, h) + col, r[dkp + col]);
    r[col] = 0.f;
    r[dkp + col] = 0.f;
  }
  for (int st = tid; st < n; st += nt) {
    float* r = red + st * stride + 2 * dkp;
    const int64_t i = (b * p.T + t_begin + st) * p.H + h;
    atomicAdd(p.da + i, r[0]);
    if (p.db) atomicAdd(p.db + i, r[1]);
    atomicAdd(p.dc + i, r[2]);
    if (p.dfloor) atomicAdd(p.dfloor + i, r[3]);
    r[0] = r[1] = r[2] = r[3] = 0.f;
  }
}

// One reverse step (the CPU's loop body, per tile): P = S_{t−1} from its slot, St = S_t, and the
// carried G = ∂L/∂S_t, nu = ∂L/∂n_t (this thread's rows' share). Column and scalar gradients go
// to red_step reduced over the warp; dv, owned per row, straight to global memory.
template <int R, int C>
__device__ __forceinline__ void backward_step(const RecurrentArgs& p, const Lane& ln,
                                              const float* sb, const StageLayout& L, int st,
                                              const float* slot, Tile<R, C>& St, float (&nS)[C],
                                              Tile<R, C>& G, float (&nu)[C], float* red_step,
                                              float* dv, int row0, bool norm, bool delta) {
  Tile<R, C> P;
  float nP[C], kk[C], qq[C], vv[R], dyv[R];
  float4 gt;
  load_slot(slot, P, nP, norm, ln);
  read_step(sb, L, st, ln, kk, vv, gt);
  load_staged(sb + L.kq() + (2 * st + 1) * L.dkp, ln, qq);
#pragma unroll
  for (int r = 0; r < R; ++r) dyv[r] = sb[L.dy() + st * L.rows + ln.template row<R>(r)];
  const float a = gt.x, bb = gt.y, c = gt.z;
  float dout[R], dq[C], dk[C], sc[4] = {0.f, 0.f, 0.f, 0.f};  // sc: da, db, dc, dfloor
  if (norm) {
    // y = S q / den: the divisor's gradient reaches n (or the floor) through the max's branch.
    float o[R + 1];
#pragma unroll
    for (int r = 0; r < R; ++r) o[r] = dot(St[r], qq);
    o[R] = dot(nS, qq);
    group_sum(o, ln.lanes);
    const bool through_n = fabsf(o[R]) >= gt.w;
    const float den = (through_n ? fabsf(o[R]) : gt.w) + p.eps;
    float dy_o = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      dout[r] = dyv[r] / den;
      dy_o = fmaf(dyv[r], o[r], dy_o);
    }
    const float d_den = -dy_o / (den * den);
    const float s = through_n ? (o[R] < 0.f ? -d_den : d_den) : 0.f;
#pragma unroll
    for (int j = 0; j < C; ++j) {
      nu[j] = fmaf(s, qq[j], nu[j]);
      dq[j] = s * nS[j];
    }
    if (!through_n && ln.lc == 0) sc[3] = d_den;
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) dout[r] = dyv[r];
#pragma unroll
    for (int j = 0; j < C; ++j) dq[j] = 0.f;
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      G[r][j] = fmaf(dout[r], qq[j], G[r][j]);
      dq[j] = fmaf(St[r][j], dout[r], dq[j]);
    }
  // Step S_t = a P + w kᵀ: g = G k (and u = P k for the delta term), one reduction for both.
  float gu[2 * R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    gu[r] = dot(G[r], kk);
    gu[R + r] = delta ? dot(P[r], kk) : 0.f;
  }
  group_sum(gu, ln.lanes, delta ? 2 * R : R);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) sc[0] = fmaf(G[r][j], P[r][j], sc[0]);
  float w[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w[r] = c * vv[r];
#pragma unroll
  for (int j = 0; j < C; ++j) dk[j] = 0.f;
  if (delta) {
    float g_dot_u = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) g_dot_u = fmaf(gu[r], gu[R + r], g_dot_u);
    if (ln.lc != 0) g_dot_u = 0.f;  // every lane of a group holds it; count it once
    sc[0] = fmaf(-bb, g_dot_u, sc[0]);
    sc[1] = -a * g_dot_u;
    const float ab = a * bb;
#pragma unroll
    for (int r = 0; r < R; ++r) w[r] = fmaf(-ab, gu[R + r], w[r]);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      float s = 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) s = fmaf(P[r][j], gu[r], s);
      dk[j] = -ab * s;
    }
  }
  if (ln.lc == 0)
#pragma unroll
    for (int r = 0; r < R; ++r) sc[2] = fmaf(vv[r], gu[r], sc[2]);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + ln.template row<R>(r);
    if (ln.writes(r) && row < p.Dv) atomicAdd(dv + row, c * gu[r]);
  }
#pragma unroll
  for (int j = 0; j < C; ++j)
#pragma unroll
    for (int r = 0; r < R; ++r) dk[j] = fmaf(G[r][j], w[r], dk[j]);
  if (norm)
#pragma unroll
    for (int j = 0; j < C; ++j) {
      sc[0] = fmaf(nu[j], nP[j], sc[0]);
      sc[2] = fmaf(nu[j], kk[j], sc[2]);
      dk[j] = fmaf(c, nu[j], dk[j]);
      nu[j] *= a;
    }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) G[r][j] = a * (delta ? fmaf(-bb * gu[r], kk[j], G[r][j]) : G[r][j]);
  add_columns(dq, red_step, ln);
  add_columns(dk, red_step + L.dkp, ln);
  add_scalars(sc, red_step + 2 * L.dkp, ln.lane);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < C; ++j) St[r][j] = P[r][j];
#pragma unroll
  for (int j = 0; j < C; ++j) nS[j] = nP[j];
}

// Backward per (b, h, row block). Per chunk, last to first, a sequence of visits of `visit`
// steps: forward visits over subchunks 0 .. m−2 that save the state at each subchunk start
// (checkpoint slots 0 .. m−1, in global scratch), then reverse visits m−1 .. 0 that recompute
// their subchunk's states into history slots (shared memory) from the checkpoint and sweep back
// through them. Each visit's inputs are staged one visit ahead; one block barrier per visit
// orders staging, slots and the reduction buffers, whose sums are flushed to global memory after
// the next barrier.
template <int R, int C>
__global__ void __launch_bounds__(kMaxWarps * 32) recurrent_bwd_kernel(const RecurrentArgs p) {
  static_assert(C % 4 == 0 && C >= 4 && R >= 1 && R * C % 4 == 0, "tiles are whole float4");
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const Lane ln(p.lanes_log2);
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int row0 = int(blockIdx.y) * p.rows_per_cta;
  const bool norm = p.floor != nullptr, delta = p.b != nullptr;
  const int dkp = ln.lanes * C;
  const StageLayout L{p.visit, dkp, p.rows_per_cta, true};
  const int red_size = p.visit * (2 * dkp + 4);
  auto stage = [&](int i) { return smem + i * L.size(); };
  auto red = [&](int i) { return smem + 2 * L.size() + i * red_size; };
  const int slot_warp = 32 * R * C + (norm ? dkp : 0);
  const int warps = int(blockDim.x) >> 5;
  float* checkpoints =
      p.checkpoints + ((int64_t(blockIdx.x) * gridDim.y + blockIdx.y) * warps + ln.warp) *
                          p.subchunks * slot_warp;
  auto slot = [&](int i) { return checkpoints + i * slot_warp; };
  float* histories = smem + 2 * L.size() + 2 * red_size + ln.warp * slot_warp;
  // History slot i = 1 .. visit − 1 of this warp: the recomputed S before step t0 + i.
  auto history = [&](int i) { return histories + (i - 1) * warps * slot_warp; };
  for (int e = int(threadIdx.x); e < 2 * (L.size() + red_size); e += int(blockDim.x)) smem[e] = 0.f;
  __syncthreads();

  const int64_t nch = (p.T + p.chunk - 1) / p.chunk, ssize = state_size(p);
  auto chunk_len = [&](int64_t ci) { return int(std::min<int64_t>(p.chunk, p.T - ci * p.chunk)); };
  auto subchunks = [&](int64_t ci) { return (chunk_len(ci) + p.visit - 1) / p.visit; };
  // Visit u of chunk ci: forward visits u < m − 1 cover subchunk u, reverse ones 2m − 2 − u.
  auto stage_visit = [&](float* buf, int64_t ci, int u) {
    const int m = subchunks(ci), j = u < m - 1 ? u : 2 * m - 2 - u;
    const int t0 = j * p.visit, t1 = std::min(t0 + p.visit, chunk_len(ci));
    stage_steps(p, buf, L, p.lanes_log2, b, h, row0, ci * p.chunk + t0, t1 - t0, u >= m - 1);
  };

  Tile<R, C> G = {}, St = {}, X = {};
  float nu[C] = {}, nS[C] = {}, nX[C] = {};
  int64_t ci = nch - 1;
  int u = 0, buf = 0, rbuf = 0, pending = 0;
  int64_t pending_t = 0;
  stage_visit(stage(0), ci, 0);
  cp_async_commit();
  while (true) {
    const int m = subchunks(ci), len = chunk_len(ci);
    const bool reverse = u >= m - 1;
    const int j = reverse ? 2 * m - 2 - u : u;
    const int t0 = j * p.visit, t1 = std::min(t0 + p.visit, len);
    cp_async_wait_all();
    __syncthreads();
    if (pending) flush(p, red(rbuf ^ 1), dkp, b, h, pending_t, pending);
    pending = 0;
    int64_t next_ci = ci;
    int next_u = u + 1;
    if (next_u == 2 * m - 1) next_ci = ci - 1, next_u = 0;
    if (next_ci >= 0) stage_visit(stage(buf ^ 1), next_ci, next_u);
    cp_async_commit();
    const float* sb = stage(buf);
    if (u == 0)
      load_state(ci > 0 ? p.boundary + ((b * p.H + h) * (nch - 1) + ci - 1) * ssize : nullptr, X,
                 nX, norm, ln, row0, p.Dk, p.Dv);
    float kk[C], vv[R];
    float4 gt;
    if (!reverse) {
      store_slot(slot(j), X, nX, norm, ln);
      for (int t = t0; t < t1; ++t) {
        read_step(sb, L, t - t0, ln, kk, vv, gt);
        advance(X, nX, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
      }
    } else {
      // The last subchunk starts where the forward visits stopped; the others from their slot.
      const bool last = j == m - 1;
      if (last)
        store_slot(slot(j), X, nX, norm, ln);
      else
        load_slot(slot(j), X, nX, norm, ln);
      for (int t = t0; t < t1; ++t) {
        if (t > t0) store_slot(history(t - t0), X, nX, norm, ln);
        if (t + 1 < t1 || last) {
          read_step(sb, L, t - t0, ln, kk, vv, gt);
          advance(X, nX, kk, vv, gt.x, gt.y, gt.z, delta, norm, ln.lanes);
        }
      }
      if (last) {  // S at the chunk's end; otherwise St is the previous sweep's last P
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int jj = 0; jj < C; ++jj) St[r][jj] = X[r][jj];
#pragma unroll
        for (int jj = 0; jj < C; ++jj) nS[jj] = nX[jj];
      }
      // X is dead until the next visit loads it (from a slot, or the boundary at u = 0); saying
      // so frees its registers for the sweep.
#pragma unroll
      for (int jj = 0; jj < C; ++jj) {
#pragma unroll
        for (int r = 0; r < R; ++r) X[r][jj] = 0.f;
        nX[jj] = 0.f;
      }
      __syncwarp();  // n in the slots is written by row group 0 and read by every group
      const int64_t s0 = ci * p.chunk;
      for (int t = t1 - 1; t >= t0; --t)
        backward_step(p, ln, sb, L, t - t0, t == t0 ? slot(j) : history(t - t0), St, nS, G, nu,
                      red(rbuf) + (t - t0) * (2 * dkp + 4), row_at(p.dv, p.T, b, s0 + t, h), row0,
                      norm, delta);
      pending = t1 - t0;
      pending_t = s0 + t0;
      rbuf ^= 1;
    }
    buf ^= 1;
    if (next_ci < 0) break;
    ci = next_ci;
    u = next_u;
  }
  __syncthreads();
  if (pending) flush(p, red(rbuf ^ 1), dkp, b, h, pending_t, pending);
}

// ---- host side ---------------------------------------------------------------------------------

void check(const LinearRecurrence<float>& p) {
  cpu::linear_recurrence_check(p);
  SL_CHECK_SHAPE(
      p.Dv < (int64_t(1) << 30) && p.chunk < (int64_t(1) << 30) && p.B * p.H < (int64_t(1) << 31),
      "linear recurrence: CUDA needs Dv and chunk below 2^30 and B·H below 2^31");
}

void check_backward(const LinearRecurrence<float>& p, const LinearRecurrenceGrads<float>& g) {
  check(p);
  cpu::linear_recurrence_check_backward(p, g);
}

struct Plan {
  int lanes_log2 = 0, warps = 0, row_blocks = 0, rows_per_cta = 0, visit = 0, subchunks = 0;
  size_t smem = 0;
};

int lanes_log2_for(int64_t Dk) {
  int l = 0;
  while ((int64_t(kTileCols) << l) < Dk) ++l;
  return l;
}

using Kernel = void (*)(RecurrentArgs);

// The CTA height with the most concurrently useful warps (idle warps of a last, partial row
// block count against it); ties go to taller CTAs, which stage k and q for more rows at once and
// split the column sums over fewer atomic adders. Returns false when not even one warp fits.
template <typename SmemFn>
bool choose_warps(const Context& ctx, Kernel kernel, const LinearRecurrence<float>& p, Plan& plan,
                  SmemFn smem_for) {
  SL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(ctx.max_shared_per_block)));
  const int rows_per_warp = (32 >> plan.lanes_log2) * kTileRows;
  const int64_t warps_per_head = (p.Dv + rows_per_warp - 1) / rows_per_warp;
  double best = -1;
  for (int w = 1; w <= std::min<int64_t>(kMaxWarps, warps_per_head); ++w) {
    const size_t smem = smem_for(w * rows_per_warp, w);
    if (smem > ctx.max_shared_per_block) break;
    int blocks = 0;
    SL_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, w * 32, smem));
    if (blocks == 0) break;
    const int64_t row_blocks = (warps_per_head + w - 1) / w;
    if (row_blocks > kMaxGridY) continue;
    const double launched = double(p.B * p.H * row_blocks * w);
    const double useful = double(warps_per_head) / double(row_blocks * w);
    const double score = std::min(double(blocks) * w * ctx.sm_count, launched) * useful;
    if (score >= best) {
      best = score;
      plan.warps = w;
      plan.row_blocks = int(row_blocks);
      plan.rows_per_cta = w * rows_per_warp;
      plan.smem = smem;
    }
  }
  return best >= 0;
}

template <bool kProbe>
bool plan_forward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan) {
  if (p.Dk > kMaxStateWidth) return false;
  plan.lanes_log2 = lanes_log2_for(p.Dk);
  plan.visit = kForwardVisit;
  const int dkp = kTileCols << plan.lanes_log2;
  return choose_warps(
      ctx, recurrent_fwd_kernel<kTileRows, kTileCols, kProbe>, p, plan, [&](int rows, int) {
        return 2 * sizeof(float) * StageLayout{kForwardVisit, dkp, rows, false}.size();
      });
}

// Backward visits max(8, ⌈√L⌉) steps (at most L), L = min(chunk, T), and keeps m = ceil(L /
// visit) checkpoints per chunk: m + visit stays near its minimum 2√L.
void plan_checkpoints(const LinearRecurrence<float>& p, Plan& plan) {
  const int64_t L = std::min(p.chunk, p.T);
  const int64_t root = int64_t(std::ceil(std::sqrt(double(L))));
  plan.visit = int(std::min<int64_t>(L, std::max<int64_t>(kMinBackwardVisit, root)));
  plan.subchunks = int((L + plan.visit - 1) / plan.visit);
}

// One warp's state slot: its 2 × 8 tiles, and n's columns for a normalized recurrence.
int64_t slot_floats(const LinearRecurrence<float>& p, int lanes_log2) {
  return 32 * kTileRows * kTileCols + (p.floor ? int64_t(kTileCols) << lanes_log2 : 0);
}

// Backward's shared memory: two staged visits, two reduction buffers and, per warp, visit − 1
// history slots (about 15 KB per warp at L = 64); the m checkpoints per warp are global scratch.
// Long chunks (visits beyond about a hundred steps) do not fit.
bool plan_backward(const Context& ctx, const LinearRecurrence<float>& p, Plan& plan) {
  if (p.Dk > kMaxStateWidth) return false;
  plan.lanes_log2 = lanes_log2_for(p.Dk);
  plan_checkpoints(p, plan);
  const int dkp = kTileCols << plan.lanes_log2;
  const int64_t slots = plan.visit - 1;
  const int64_t slot_warp = slot_floats(p, plan.lanes_log2);
  return choose_warps(
      ctx, recurrent_bwd_kernel<kTileRows, kTileCols>, p, plan, [&](int rows, int warps) {
        const int64_t floats = 2 * int64_t(StageLayout{plan.visit, dkp, rows, true}.size()) +
                               2 * int64_t(plan.visit) * (2 * dkp + 4) + slots * warps * slot_warp;
        return size_t(floats) * sizeof(float);
      });
}

RecurrentArgs recurrent_args(const LinearRecurrence<float>& p, const Plan& plan) {
  RecurrentArgs a;
  a.T = p.T, a.H = p.H, a.Dk = int(p.Dk), a.Dv = int(p.Dv), a.chunk = int(p.chunk);
  a.q = p.q, a.k = p.k, a.v = p.v;
  a.a = p.a, a.b = p.b, a.c = p.c, a.floor = p.floor, a.eps = p.eps;
  a.y = p.y, a.boundary = p.boundary, a.final_state = p.final_state;
  a.lanes_log2 = plan.lanes_log2, a.rows_per_cta = plan.rows_per_cta;
  a.visit = plan.visit, a.subchunks = plan.subchunks;
  return a;
}

__global__ void square_root_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = sqrtf(x[i]);
}

dim3 grid_of(const LinearRecurrence<float>& p, const Plan& plan) {
  return dim3(unsigned(p.B * p.H), unsigned(plan.row_blocks));
}

// The recurrent path when forced, chunkwise when forced (a ShapeError where it cannot run), and
// otherwise the cost model above.
bool use_chunkwise(const LinearRecurrence<float>& p, LinearKernel kernel, bool recurrent_fits,
                   const char* what) {
  const bool chunk_ok = chunkwise::supports(p);
  const std::string shape = " (Dk=" + std::to_string(p.Dk) + " Dv=" + std::to_string(p.Dv) +
                            " T=" + std::to_string(p.T) + " chunk=" + std::to_string(p.chunk) + ")";
  switch (kernel) {
    case LinearKernel::recurrent:
      SL_CHECK_SHAPE(recurrent_fits,
                     std::string(what) +
                         ": the recurrent kernel handles Dk <= " + std::to_string(kMaxStateWidth) +
                         " and chunks whose checkpoints fit in shared memory" + shape);
      return false;
    case LinearKernel::chunkwise:
    case LinearKernel::chunk_parallel:
      SL_CHECK_SHAPE(chunk_ok,
                     std::string(what) + ": the chunkwise kernel does not handle" + shape);
      return true;
    case LinearKernel::automatic:
      break;
  }
  SL_CHECK_SHAPE(recurrent_fits || chunk_ok,
                 std::string(what) + ": no CUDA kernel handles" + shape);
  if (!recurrent_fits) return true;
  return chunk_ok && p.chunk >= kChunkwiseMinChunk && p.T >= kChunkwiseMinChunks * p.chunk;
}

chunkwise::Schedule schedule_of(LinearKernel kernel) {
  if (kernel == LinearKernel::chunkwise) return chunkwise::Schedule::sequential;
  if (kernel == LinearKernel::chunk_parallel) return chunkwise::Schedule::parallel;
  return chunkwise::Schedule::automatic;
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------

void linear_recurrence_fwd(const Context& ctx, const LinearRecurrence<float>& p,
                           LinearKernel kernel) {
  check(p);
  Plan plan;
  const bool fits = plan_forward<false>(ctx, p, plan);
  if (use_chunkwise(p, kernel, fits, "linear recurrence forward"))
    return chunkwise::forward(ctx, p, schedule_of(kernel));
  recurrent_fwd_kernel<kTileRows, kTileCols, false>
      <<<grid_of(p, plan), plan.warps * 32, plan.smem, ctx.stream>>>(recurrent_args(p, plan));
  SL_CUDA_LAUNCH_CHECK();
}

// One pass of the recurrent forward kernel over the whole sequence from the zero state, whatever
// form the forward took, so no boundary states are needed and any T works.
void linear_recurrence_probe(const Context& ctx, const LinearRecurrence<float>& p,
                             const cpu::LinearRecurrenceProbe<float>& probe) {
  check(p);
  SL_CHECK_SHAPE(p.floor || !(probe.normalizer_norm || probe.n_dot_q),
                 "linear recurrence probe: normalizer_norm and n_dot_q need a normalized "
                 "recurrence (floor set)");
  Plan plan;
  SL_CHECK_SHAPE(plan_forward<true>(ctx, p, plan),
                 "linear recurrence probe: the recurrent kernel handles Dk <= " +
                     std::to_string(kMaxStateWidth) + " (Dk=" + std::to_string(p.Dk) + ")");
  const int64_t n = p.B * p.T * p.H;
  float* sums[] = {probe.state_norm, probe.normalizer_norm, probe.write_error};
  for (float* out : sums)
    if (out) SL_CUDA_CHECK(cudaMemsetAsync(out, 0, size_t(n) * sizeof(float), ctx.stream));
  RecurrentArgs a = recurrent_args(p, plan);
  a.y.data = nullptr, a.boundary = nullptr, a.final_state = nullptr;
  a.state_sq = probe.state_norm, a.normalizer_sq = probe.normalizer_norm;
  a.n_dot_q = probe.n_dot_q, a.error_sq = probe.write_error;
  recurrent_fwd_kernel<kTileRows, kTileCols, true>
      <<<grid_of(p, plan), plan.warps * 32, plan.smem, ctx.stream>>>(a);
  SL_CUDA_LAUNCH_CHECK();
  for (float* out : sums)
    if (out) {
      square_root_kernel<<<unsigned((n + 255) / 256), 256, 0, ctx.stream>>>(out, n);
      SL_CUDA_LAUNCH_CHECK();
    }
}

// The larger of the chunkwise kernels' bound (stated in linear_recurrence_chunkwise.cu), where
// they apply, and the recurrent backward's checkpoints, where it can run: m slots for each warp
// of the grid, at most ⌈Dv / rows per warp⌉ + kMaxWarps − 1 warps per sequence (only the last
// row block has idle warps).
int64_t linear_recurrence_work_size(const LinearRecurrence<float>& p) {
  int64_t size = chunkwise::supports(p) ? chunkwise::work_size(p) : 0;
  if (p.Dk <= kMaxStateWidth && p.T >= 1 && p.chunk >= 1) {
    Plan plan;
    plan_checkpoints(p, plan);
    const int l = lanes_log2_for(p.Dk);
    const int64_t rows_per_warp = (32 >> l) * kTileRows;
    const int64_t warps = (p.Dv + rows_per_warp - 1) / rows_per_warp + kMaxWarps - 1;
    size = std::max(size, p.B * p.H * warps * plan.subchunks * slot_floats(p, l));
  }
  return size;
}

void linear_recurrence_bwd(const Context& ctx, const LinearRecurrence<float>& p,
                           const LinearRecurrenceGrads<float>& g, float* work,
                           LinearKernel kernel) {
  check_backward(p, g);
  Plan plan;
  const bool fits = plan_backward(ctx, p, plan);
  if (use_chunkwise(p, kernel, fits, "linear recurrence backward")) {
    SL_CHECK_SHAPE(work || chunkwise::work_size(p) == 0,
                   "linear recurrence backward: work is required");
    return chunkwise::backward(ctx, p, g, work);
  }
  SL_CHECK_SHAPE(work, "linear recurrence backward: work (the checkpoints) is required");
  RecurrentArgs a = recurrent_args(p, plan);
  a.dy = g.dy, a.dq = g.dq, a.dk = g.dk, a.dv = g.dv;
  a.da = g.da, a.db = g.db, a.dc = g.dc, a.dfloor = g.dfloor;
  a.checkpoints = work;
  recurrent_bwd_kernel<kTileRows, kTileCols>
      <<<grid_of(p, plan), plan.warps * 32, plan.smem, ctx.stream>>>(a);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
