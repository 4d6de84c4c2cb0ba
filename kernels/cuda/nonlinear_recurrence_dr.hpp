// The weight gradient of the LSTM / sLSTM recurrence on CUDA (nonlinear_recurrence_dr.cu):
// dR += Σ over all steps and rows of h_{t-1}ᵀ dpre_t, as cuBLAS GEMMs after the backward loop of
// either kernel has written dpre.
#pragma once

#include <cstdint>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda::nonlinear_dr {

// The scratch accumulate uses: h shifted by one step (B·T·H·Dh), then, when the rows are
// summed in more than one slice, the slices' partial dR (H · slices · 4·Dh · Dh) and the
// batched GEMM's pointer arrays. work must be aligned for pointers.
int64_t work_size(const cpu::NonlinearRecurrence<float>& p);

// dR [H, Dh, 4, Dh] += the GEMMs in ctx.precision, from p.h and dpre ([2, B, T, H, 2, Dh], as
// the backward writes it); needs T >= 2.
void accumulate(const Context& ctx, const cpu::NonlinearRecurrence<float>& p, const float* dpre,
                float* dR, float* work);

}  // namespace statelab::cuda::nonlinear_dr
