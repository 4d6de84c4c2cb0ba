// The tensor-core primitive the fp32 kernels share: rounding to TF32 and the warp's m16n8k8
// TF32 product with fp32 accumulation. Used by the chunkwise linear recurrence's tiles and by the
// non-linear recurrences' R·h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace statelab::cuda {

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

// d[0..3] += A (16 × 8, row-major fragment a) · B (8 × 8, column fragment b0, b1).
// d[i] holds row g + 8·(i >> 1), column 2·t + (i & 1); a = {A(g, t), A(g + 8, t), A(g, t + 4),
// A(g + 8, t + 4)}; b0 = B(t, g), b1 = B(t + 4, g); with g = lane / 4 and t = lane % 4.
__device__ __forceinline__ void mma_tf32(float* d, const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace statelab::cuda
