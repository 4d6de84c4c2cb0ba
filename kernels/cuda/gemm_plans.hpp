// The cuBLASLt plans of a context: for each GEMM shape (transposes, sizes, leading dimensions,
// bias epilogue, compute type) the operation and layout descriptors and the algorithm the
// heuristic chose, made once. Internal to dense.cu and the context's teardown.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>

namespace statelab::cuda {

struct GemmKey {
  bool trans_a, trans_b, bias;
  int64_t m, n, k, lda, ldb, ldc;
  int compute;  // cublasComputeType_t
  // Alignment of the A, B and C buffers in bytes (a power of two, at most 256): the heuristic
  // otherwise assumes 256 and may pick a kernel that misreads less aligned buffers.
  uint32_t align_a, align_b, align_c;
  auto tie() const {
    return std::tie(trans_a, trans_b, bias, m, n, k, lda, ldb, ldc, compute, align_a, align_b,
                    align_c);
  }
  bool operator<(const GemmKey& o) const { return tie() < o.tie(); }
};

struct GemmPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct GemmPlans {
  std::map<GemmKey, GemmPlan> plans;
  ~GemmPlans() {
    for (auto& [key, plan] : plans) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.c);
      cublasLtMatmulDescDestroy(plan.op);
    }
  }
};

}  // namespace statelab::cuda
