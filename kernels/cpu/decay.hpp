// The selective decay of Mamba-2 and Gated DeltaNet, per token and head:
//   dt = softplus(raw + dt_bias),  decay = exp(−exp(A_log)·dt)  ∈ (0, 1).
// Mamba-2 also uses dt as the input scale of its recurrence, so backward takes a second
// gradient w.r.t. dt. Checked by finite differences through both blocks (tests/cells).
#pragma once

#include <cstdint>

namespace statelab::cpu {

// raw, dt, decay: [N, H]; A_log, dt_bias: [H].
template <typename S>
void selective_decay_fwd(int64_t N, int64_t H, const S* raw, const S* A_log, const S* dt_bias,
                         S* dt, S* decay);

// d_decay: the loss gradient w.r.t. decay; d_dt: a further gradient w.r.t. dt, or null.
// Overwrites d_raw; adds into dA_log and ddt_bias.
template <typename S>
void selective_decay_bwd(int64_t N, int64_t H, const S* raw, const S* A_log, const S* dt_bias,
                         const S* dt, const S* decay, const S* d_decay, const S* d_dt, S* d_raw,
                         S* dA_log, S* ddt_bias);

}  // namespace statelab::cpu
