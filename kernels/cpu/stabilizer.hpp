// The mLSTM gate scan: raw input and forget gates -> the stabilized scalars the unified linear
// recurrence consumes (DESIGN §3): a_t = sign(f_t)·exp(log|f_t| + m_{t-1} − m_t),
// c_t = exp(ĩ_t − m_t), floor_t = exp(−m_t), with m_t = max(log|f_t| + m_{t-1}, ĩ_t) and
// m_0 = −∞ (as the sLSTM kernel does), so every exponent but the floor's is ≤ 0. The floor is
// capped at the largest finite value of the type: for ĩ_t below about −88, exp(−m_t) overflows
// float, and although the output (divided by it) is then about 0, the chain rule's 0 · ∞ made
// every gate gradient NaN.
// Without the divisor's eps the cell's output would not depend on m; with the reference's
// eps it does, slightly, so backward carries the gradient through m's max-scan as well and
// stays exact. Checked by finite differences through the whole mLSTM in tests/kernels and
// tests/cells.
#pragma once

#include <cstdint>

namespace statelab::cpu {

// sigmoid: f = σ(f̃) (published); exp: f = exp(f̃); signed_sigmoid: f = 2σ(f̃) − 1 ∈ (−1, 1),
// the "pm1" eigenvalue range, its magnitude through the stabilizer and its sign applied in
// linear space.
enum class ForgetGate { sigmoid, exp, signed_sigmoid };

// All tensors [B, T, H]; writes m, a, c, floor.
template <typename S>
void stabilized_gates_fwd(ForgetGate kind, int64_t B, int64_t T, int64_t H, const S* igate,
                          const S* fgate, S* m, S* a, S* c, S* floor);
// da, dc, dfloor: gradients w.r.t. a, c and floor (dfloor may be null: zero); dig, dfg
// overwritten. igate tells which branch of each max the forward took.
template <typename S>
void stabilized_gates_bwd(ForgetGate kind, int64_t B, int64_t T, int64_t H, const S* igate,
                          const S* fgate, const S* m, const S* a, const S* c, const S* floor,
                          const S* da, const S* dc, const S* dfloor, S* dig, S* dfg);

}  // namespace statelab::cpu
