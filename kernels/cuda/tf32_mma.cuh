// The tensor-core primitives the fp32 kernels share: rounding to TF32, the warp's m16n8k8 TF32
// product with fp32 accumulation and ldmatrix's fragment loads. Used by the chunkwise linear
// recurrence's tiles and by the non-linear recurrences' R·h.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace statelab::cuda {

// x rounded to the nearest TF32, its low 13 bits cleared (what 3xTF32's split needs). sm_90 has
// an instruction for it (cvt.rn: ties to even); before it, cvt.rna (ties away) is three.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
#if __CUDA_ARCH__ >= 900
  asm("cvt.rn.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
#else
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
#endif
  return r;
}

// A TF32 operand. The tensor cores read the top 19 bits of an operand's register and drop the
// rest, so before sm_90 rounding only adds half a TF32 unit to a finite value's bits (inf and NaN
// keep theirs), two instructions where cvt.rna takes three. On sm_90 the one instruction of
// to_tf32 does it, half the instructions of the rounding that made up about a third of the
// chunkwise kernels' product phases.
__device__ __forceinline__ uint32_t tf32_round(float x) {
#if __CUDA_ARCH__ >= 900
  return to_tf32(x);
#else
  const uint32_t bits = __float_as_uint(x);
  return fabsf(x) < INFINITY ? bits + 0x1000u : bits;
#endif
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

// Four 8 × 4 fp32 blocks in one ldmatrix: r[i] gets word lane % 4 of row lane / 4 of block i,
// whose rows start at the addresses lanes 8·i .. 8·i + 7 pass.
__device__ __forceinline__ void load_blocks_x4(float (&r)[4], const float* row) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  uint32_t x[4];
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(x[0]), "=r"(x[1]), "=r"(x[2]), "=r"(x[3])
               : "r"(address));
#pragma unroll
  for (int i = 0; i < 4; ++i) r[i] = __uint_as_float(x[i]);
}

}  // namespace statelab::cuda
