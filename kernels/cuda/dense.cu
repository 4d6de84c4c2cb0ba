// Linear layers through cuBLASLt and the token embedding on CUDA. Row-major [N, I] activations
// and [O, I] weights are column-major transposes to cuBLAS, so y = x Wᵀ is yᵀ = W xᵀ with W
// read transposed; the bias rides in the GEMM's epilogue and a residual in its C operand. The
// precision picks the compute type: fp32 exact, tf32 or bf16 tensor cores on fp32 storage. Bias
// gradients and the embedding are small reductions of our own (atomics per block). Checked by
// kernels/selftest/dense.cpp.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cuda/dense.hpp"
#include "kernels/cuda/gemm_plans.hpp"

namespace statelab::cuda {

namespace {

cublasLtMatrixLayout_t layout(int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  SL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, uint64_t(rows), uint64_t(cols), ld));
  return l;
}

const GemmPlan& plan_for(const Context& ctx, const GemmKey& key) {
  auto& plans = ctx.gemm_plans->plans;
  if (auto it = plans.find(key); it != plans.end()) return it->second;
  GemmPlan plan;
  SL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, cublasComputeType_t(key.compute), CUDA_R_32F));
  const cublasOperation_t ta = key.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = key.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  SL_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  SL_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (key.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    SL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                   &epilogue, sizeof epilogue));
    const cudaDataType_t bias_type = CUDA_R_32F;
    SL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                   &bias_type, sizeof bias_type));
  }
  // Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k when transposed), C is m×n.
  plan.a = key.trans_a ? layout(key.k, key.m, key.lda) : layout(key.m, key.k, key.lda);
  plan.b = key.trans_b ? layout(key.n, key.k, key.ldb) : layout(key.k, key.n, key.ldb);
  plan.c = layout(key.m, key.n, key.ldc);
  cublasLtMatmulPreference_t pref = nullptr;
  SL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t workspace = ctx.lt_workspace_bytes;
  SL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c}};
  for (const auto& [attribute, bytes] : alignments)
    SL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &bytes, sizeof bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ctx.lt, plan.op, plan.a, plan.b, plan.c,
                                                           plan.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw CudaError("cuBLASLt has no algorithm for a " + std::to_string(key.m) + "x" +
                    std::to_string(key.n) + "x" + std::to_string(key.k) + " GEMM (" +
                    cublasGetStatusString(st) + ")");
  plan.algo = result.algo;
  return plans.emplace(key, plan).first->second;
}

// The largest power of two, up to 256, that divides the address.
uint32_t alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t bytes = 256;
  while (bytes > 4 && address % bytes) bytes /= 2;
  return bytes;
}

// Column-major D[m×n] = op(A) op(B) (+ beta C) (+ bias[m] per column when bias is set); C and D
// share one layout and may be one buffer (C is not read when beta is 0).
void gemm(const Context& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, const float* C,
          float* D, int64_t ldc, const float* bias) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: D = beta·C, which only matters unless it is D += 0
    SL_CHECK(beta == 1.0f && C == D && !bias, "empty GEMM that would have to write its output");
    return;
  }
  GemmKey key{trans_a, trans_b, bias != nullptr, m, n, k, lda, ldb, ldc, 0, 0, 0, 0};
  key.compute = int(cublas_compute_type(ctx.precision));
  key.align_a = alignment(A), key.align_b = alignment(B);
  key.align_c = std::min(alignment(C), alignment(D));
  const GemmPlan& plan = plan_for(ctx, key);
  if (bias)
    SL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                   &bias, sizeof bias));
  const float alpha = 1.0f;
  SL_CUBLAS_CHECK(cublasLtMatmul(ctx.lt, plan.op, &alpha, A, plan.a, B, plan.b, &beta, C, plan.c, D,
                                 plan.c, &plan.algo, ctx.lt_workspace, ctx.lt_workspace_bytes,
                                 ctx.stream));
}

constexpr int kColumnTile = 32;  // a warp reads one row's 32 consecutive columns
constexpr int kRowLanes = 8;     // warps per block, each on every 8th row of the block's rows
constexpr int64_t kMinRowsPerBlock = 64;

// db[o] += Σ_n dy[n, o]: a block sums `rows` rows of a 32-column tile, its warps over rows
// apart, then one atomic per column. Blocks split the rows as well as the columns: with the
// columns alone, a narrow layer (O = 128) would give the GPU a handful of blocks, each through
// every row.
__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    column_sums_kernel(float* db, const float* dy, int64_t N, int64_t O, int64_t rows) {
  __shared__ float partial[kRowLanes][kColumnTile];
  const int64_t o = int64_t(blockIdx.x) * kColumnTile + threadIdx.x;
  const int64_t first = int64_t(blockIdx.y) * rows, last = min(first + rows, N);
  float sum = 0;
  if (o < O)
    for (int64_t n = first + threadIdx.y; n < last; n += kRowLanes) sum += dy[n * O + o];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || o >= O) return;
  for (int y = 1; y < kRowLanes; ++y) sum += partial[y][threadIdx.x];
  atomicAdd(db + o, sum);
}

__global__ void embedding_fwd_kernel(float* y, const int32_t* tokens, const float* E, int64_t N,
                                     int64_t D) {
  const int64_t n = blockIdx.x;
  const float* row = E + int64_t(tokens[n]) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) y[n * D + d] = row[d];
}

// dE[tokens[n], :] += dy[n, :] for a small vocabulary: a block sums `rows` rows of a 32-column
// tile into a shared copy of the table's tile (its warps on rows apart), then adds the rows it
// touched once each. One global atomic per token and column would pile thousands onto the few
// rows of a task's vocabulary (25 µs for 8192 tokens of d128 at four symbols, ncu on an H200).
constexpr int64_t kSharedVocab = 256;  // 32 KB of shared memory for the tile
constexpr int64_t kMinEmbeddingRows = 256;

__global__ void __launch_bounds__(kColumnTile * kRowLanes)
    embedding_bwd_shared_kernel(float* dE, const int32_t* tokens, const float* dy, int64_t N,
                                int64_t V, int64_t D, int64_t rows) {
  __shared__ float tile[kSharedVocab][kColumnTile];
  __shared__ bool touched[kSharedVocab];
  const int lane = threadIdx.y * kColumnTile + threadIdx.x;
  for (int64_t i = lane; i < V * kColumnTile; i += kColumnTile * kRowLanes)
    tile[i / kColumnTile][i % kColumnTile] = 0.f;
  for (int64_t v = lane; v < V; v += kColumnTile * kRowLanes) touched[v] = false;
  __syncthreads();
  const int64_t d = int64_t(blockIdx.x) * kColumnTile + threadIdx.x;
  const int64_t first = int64_t(blockIdx.y) * rows, last = min(first + rows, N);
  for (int64_t n = first + threadIdx.y; n < last; n += kRowLanes) {
    const int32_t t = tokens[n];
    if (d < D) atomicAdd(&tile[t][threadIdx.x], dy[n * D + d]);
    touched[t] = true;
  }
  __syncthreads();
  for (int64_t i = lane; i < V * kColumnTile; i += kColumnTile * kRowLanes) {
    const int64_t v = i / kColumnTile, c = int64_t(blockIdx.x) * kColumnTile + i % kColumnTile;
    if (touched[v] && c < D) atomicAdd(dE + v * D + c, tile[v][i % kColumnTile]);
  }
}

// The large-vocabulary form: one block a token, atomics straight into dE (spread over many rows).
__global__ void embedding_bwd_kernel(float* dE, const int32_t* tokens, const float* dy, int64_t N,
                                     int64_t D) {
  const int64_t n = blockIdx.x;
  float* row = dE + int64_t(tokens[n]) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) atomicAdd(row + d, dy[n * D + d]);
}

int threads_for(int64_t D) { return int(std::min<int64_t>(256, (D + 31) / 32 * 32)); }

void check_dims(int64_t N, int64_t I, int64_t O) {
  SL_CHECK_SHAPE(N >= 0 && I >= 1 && O >= 1, "linear: N=" + std::to_string(N) + " I=" +
                                                 std::to_string(I) + " O=" + std::to_string(O));
}

}  // namespace

void linear_fwd(const Context& ctx, float* y, const float* x, const float* W, const float* b,
                int64_t N, int64_t I, int64_t O, const float* residual) {
  check_dims(N, I, O);
  // yᵀ[O×N] = W[O×I] · xᵀ[I×N] (+ residualᵀ); W's storage is the column-major I×O matrix Wᵀ.
  gemm(ctx, true, false, O, N, I, W, I, x, I, residual ? 1.0f : 0.0f, residual ? residual : y, y,
       O, b);
}

void linear_bwd(const Context& ctx, float* dx, float* dW, float* db, const float* dy,
                const float* x, const float* W, int64_t N, int64_t I, int64_t O, cpu::Into into) {
  check_dims(N, I, O);
  if (N == 0) return;
  // dxᵀ[I×N] (+)= Wᵀ[I×O] · dyᵀ[O×N]
  if (dx)
    gemm(ctx, false, false, I, N, O, W, I, dy, O, into == cpu::Into::add ? 1.0f : 0.0f, dx, dx,
         I, nullptr);
  // dWᵀ[I×O] += xᵀ[I×N] · dy[N×O]
  gemm(ctx, false, true, I, O, N, x, I, dy, O, 1.0f, dW, dW, I, nullptr);
  if (db) {
    // About four blocks per SM, of at least kMinRowsPerBlock rows each.
    const int64_t tiles = (O + kColumnTile - 1) / kColumnTile;
    const int64_t wanted = (4 * int64_t(std::max(ctx.sm_count, 1)) + tiles - 1) / tiles;
    const int64_t splits =
        std::max<int64_t>(1, std::min(wanted, (N + kMinRowsPerBlock - 1) / kMinRowsPerBlock));
    const int64_t rows = (N + splits - 1) / splits;
    const dim3 grid(unsigned(tiles), unsigned((N + rows - 1) / rows));
    column_sums_kernel<<<grid, dim3(kColumnTile, kRowLanes), 0, ctx.stream>>>(db, dy, N, O, rows);
    SL_CUDA_LAUNCH_CHECK();
  }
}

void embedding_fwd(const Context& ctx, float* y, const int32_t* tokens, const float* E, int64_t N,
                   int64_t D) {
  if (N == 0) return;
  embedding_fwd_kernel<<<unsigned(N), threads_for(D), 0, ctx.stream>>>(y, tokens, E, N, D);
  SL_CUDA_LAUNCH_CHECK();
}

void embedding_bwd(const Context& ctx, float* dE, const int32_t* tokens, const float* dy, int64_t N,
                   int64_t V, int64_t D) {
  if (N == 0) return;
  if (V > kSharedVocab) {
    embedding_bwd_kernel<<<unsigned(N), threads_for(D), 0, ctx.stream>>>(dE, tokens, dy, N, D);
  } else {
    // About two blocks per SM, each of at least kMinEmbeddingRows rows: every block adds its
    // touched rows once, so fewer, longer blocks mean fewer atomics on the same addresses.
    const int64_t tiles = (D + kColumnTile - 1) / kColumnTile;
    const int64_t wanted = (2 * int64_t(std::max(ctx.sm_count, 1)) + tiles - 1) / tiles;
    const int64_t splits = std::max<int64_t>(
        1, std::min(wanted, (N + kMinEmbeddingRows - 1) / kMinEmbeddingRows));
    const int64_t rows = (N + splits - 1) / splits;
    const dim3 grid(unsigned(tiles), unsigned((N + rows - 1) / rows));
    embedding_bwd_shared_kernel<<<grid, dim3(kColumnTile, kRowLanes), 0, ctx.stream>>>(
        dE, tokens, dy, N, V, D, rows);
  }
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
