// The non-linear recurrences (LSTM, sLSTM) on CUDA, twins of kernels/cpu/nonlinear_recurrence
// (same struct, same saved tensors): one persistent kernel per direction loops over time with
// R and the state on chip, so a sequence costs one launch, not one per step. Checked against
// the CPU twin by kernels/selftest/nonlinear_recurrence.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

// Which kernels run. automatic: the tensor-core kernels for heads of 65 to 512 units where they
// fit, the FFMA kernels otherwise; fma and tensor_core force them, for tests and benches that
// compare them.
enum class NonlinearKernel { automatic, fma, tensor_core };
// The widest head the cluster's tensor-core kernels take; wider ones go over a cooperative grid.
constexpr int kTensorCoreMaxDh = 128;

// Writes raw (where it is given), gates, c, h (and n, m for sLSTM) as the CPU twin does, or h
// alone where gates is null (an evaluation); backward reads raw only for the sLSTM with a σ
// forget gate. On the tensor cores R·h is
// TF32 in tf32 and bf16 precision and 3xTF32 (fp32 accuracy) in fp32, where heads above 128 units
// take the FFMA kernels; FFMA is fp32. Throws
// ShapeError when a forced tensor_core kernel does not fit, saying why, and when a head's R
// cannot be kept on chip (Dh above 8 units per SM, 1056 on a 132-SM H100) rather than launching
// a grid that could not be co-resident.
void nonlinear_recurrence_fwd(const Context& ctx, const cpu::NonlinearRecurrence<float>& p,
                              NonlinearKernel kernel = NonlinearKernel::automatic);

// Scratch elements backward uses, what the blocks reserve: while the loop runs, the dh_rec
// partials of heads split over a cooperative grid (within (B·T + 3·B)·H·Dh + 4·H·Dh·Dh; the kernel
// runs as many groups at once as fit), then h shifted by one step for dR and the partial dR of
// each slice of its rows (H · slices · 4·Dh·Dh, up to 32 slices of at least 256 rows) with the
// batched GEMM's pointer arrays. work must be aligned for pointers.
int64_t nonlinear_recurrence_work_size(const cpu::NonlinearRecurrence<float>& p);

// dh [B, T, H, Dh] read-only; dpre [2, B, T, H, 2, Dh] overwritten (p.pre's layout: see
// cpu::NonlinearRecurrence); dR [H, Dh, 4, Dh] accumulated through cuBLAS GEMMs in
// ctx.precision (fp32: CUBLAS_COMPUTE_32F) over slices of the rows. The recurrent product
// dpre · Rᵀ is FFMA or on the tensor cores as in forward.
void nonlinear_recurrence_bwd(const Context& ctx, const cpu::NonlinearRecurrence<float>& p,
                              const float* dh, float* dpre, float* dR, float* work,
                              NonlinearKernel kernel = NonlinearKernel::automatic);

}  // namespace statelab::cuda
