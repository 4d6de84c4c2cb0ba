// The LSTM / sLSTM recurrence with its products on the tensor cores: heads of up to 128 units
// over a cluster (nonlinear_recurrence_mma.cu and its _bwd twin), wider heads of up to 512 units
// over a cooperative grid (nonlinear_recurrence_wide.cu and its _bwd twin). What
// nonlinear_recurrence_fwd and _bwd run when the shapes fit, the FFMA kernels of
// nonlinear_recurrence.cu otherwise.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda::nonlinear_mma {

// Whether automatic selection takes the tensor-core kernels: heads wider than 64 units. Below
// that the FFMA thread's chain of 4·Dh FMAs is short and the FFMA forward measured as fast or
// faster (H200, tf32, sLSTM op fwd+bwd: Dh = 32 at L 16.2 against 19.5 ms and at S 0.187 against
// 0.197; Dh = 64 at M 1.18 against 1.17).
bool pays(const cpu::NonlinearRecurrence<float>& p);

// Empty when the tensor-core forward runs these shapes on this GPU, else why not.
std::string unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& p);

// R·h in TF32 (tf32 and bf16 precision) or 3xTF32 (fp32: products to fp32 accuracy); the gates
// and states in fp32. Needs unfit_reason(ctx, p) empty and non-empty shapes.
void forward(const Context& ctx, const cpu::NonlinearRecurrence<float>& p);

// The backward's counterparts: dpre (overwritten) from dh and the saved raw, gates, c (and n),
// the recurrent product dpre · Rᵀ in the forward's precision. dR is left to the caller.
std::string backward_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& p);
void backward(const Context& ctx, const cpu::NonlinearRecurrence<float>& p, const float* dh,
              float* dpre);

// Heads of 129 to kWideMaxDh units: a CTA owns 16 batch rows and 16 units, and h_t (forward) or
// the dh_rec shares (backward) cross the grid through L2 behind a grid barrier per step. R·h in
// TF32 (tf32 and bf16 precision; fp32 would need 3xTF32's second set of R fragments, which do not
// fit in registers). The backward's shares take `work` (work_floats of it), as the FFMA grid
// exchange does; (head, batch tile) groups beyond what is resident at once run in passes.
constexpr int kWideMaxDh = 512;
std::string wide_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& p);
void wide_forward(const Context& ctx, const cpu::NonlinearRecurrence<float>& p);
std::string wide_backward_unfit_reason(const Context& ctx, const cpu::NonlinearRecurrence<float>& p,
                                       int64_t work_floats);
void wide_backward(const Context& ctx, const cpu::NonlinearRecurrence<float>& p, const float* dh,
                   float* dpre, float* work, int64_t work_floats);

}  // namespace statelab::cuda::nonlinear_mma
