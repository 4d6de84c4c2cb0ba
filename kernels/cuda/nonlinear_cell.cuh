// One step of the LSTM / sLSTM cell for one (batch row, unit), as the CUDA kernels
// (nonlinear_recurrence.cu, nonlinear_recurrence_mma*.cu) run it beside R·h: forward, the gate
// non-linearities, the state update and the stores of what backward reads; backward, the step's
// pre-activation gradient from those. The equations are kernels/cpu/nonlinear_recurrence.cpp's.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace statelab::cuda {

// The quotient by the fast reciprocal (2 ulp): the IEEE division's range checks and slow path,
// three per cell, cost the LSTM and sLSTM forwards at L 4% of their time. exp(−x) as __expf,
// within 2 + 1.2·|x| ulp, an error that 1 / (1 + e) shrinks again: expf's range reduction cost
// six instructions a gate, and the LSTM at L 5% (22.9 against 21.7 ms on an H200).
__device__ __forceinline__ float sigmoid(float x) { return __fdividef(1.f, 1.f + __expf(-x)); }

// log σ(x) without overflow for large |x|
__device__ __forceinline__ float log_sigmoid(float x) {
  return -(fmaxf(-x, 0.f) + log1pf(expf(-fabsf(x))));
}

// Where one (batch row, head, unit)'s input pre-activations sit in pre and dpre, which are
// [2, B, T, H, 2, Dh]: the (ĩ, f̃) halves of all gate rows, then the (z̃, õ) halves, as the
// two input projections write them. `at` is step 0's ĩ, `step` the distance between steps and
// `half` the one from (ĩ, f̃) to (z̃, õ).
struct PreIndex {
  int64_t at = 0, step = 0, half = 0;
};

__device__ __forceinline__ PreIndex pre_index(int b, int hd, int j, int B, int T, int H, int Dh) {
  const int64_t width = 2 * int64_t(Dh);
  return {(int64_t(b) * T * H + hd) * width + j, H * width, int64_t(B) * T * H * width};
}

__device__ __forceinline__ float4 load_pre_step(const float* pre, const PreIndex& x, int t,
                                                int Dh) {
  const float* q = pre + x.at + t * x.step;
  return make_float4(q[0], q[Dh], q[x.half], q[x.half + Dh]);
}

__device__ __forceinline__ void store_pre_step(float* dpre, const PreIndex& x, int t, int Dh,
                                               const float4& d) {
  float* q = dpre + x.at + t * x.step;
  q[0] = d.x;
  q[Dh] = d.y;
  q[x.half] = d.z;
  q[x.half + Dh] = d.w;
}

// The carried state of one (row, unit): c, and for sLSTM the normalizer n and stabilizer m.
struct CellState {
  float c = 0.f, n = 0.f, m = 0.f;
};

// The activated gates and the output of one step.
struct CellStep {
  float i, f, z, o, h;
};

// raw = (ĩ, f̃, z̃, õ), the pre-activations with R·h added; `first` is step 0.
__device__ __forceinline__ CellStep cell_step(bool slstm, bool exp_forget, bool first,
                                              const float4& raw, CellState& s) {
  CellStep out;
  out.z = tanhf(raw.z);
  out.o = sigmoid(raw.w);
  if (!slstm) {
    out.i = sigmoid(raw.x);
    out.f = sigmoid(raw.y);
    s.c = out.f * s.c + out.i * out.z;
    out.h = out.o * tanhf(s.c);
    return out;
  }
  // m_0 = −∞: the first step takes i' = 1, f' = 0 (the CPU twin's rule).
  const float log_f = exp_forget ? raw.y : log_sigmoid(raw.y);
  if (first) {
    s.m = raw.x;
    out.i = 1.f;
    out.f = 0.f;
  } else {
    const float m_new = fmaxf(log_f + s.m, raw.x);
    out.i = expf(raw.x - m_new);
    out.f = expf(log_f + s.m - m_new);
    s.m = m_new;
  }
  s.c = out.f * s.c + out.i * out.z;
  s.n = out.f * s.n + out.i;
  out.h = out.o * s.c / s.n;
  return out;
}

// Where a forward kernel writes one step: [B, T, H, 4, Dh] for raw and gates, [B, T, H, Dh] for
// the states (n and m only for sLSTM). raw is null where nobody reads it back; gates null is an
// evaluation's forward, which stores h alone (raw, c, n and m null too).
struct CellOutputs {
  float *raw, *gates, *c, *n, *m, *h;

  // Moves every pointer on: raw and gates by `gates_by` floats, the states by `states_by`.
  __device__ __forceinline__ void advance(int64_t gates_by, int64_t states_by) {
    h += states_by;
    if (!gates) return;
    if (raw) raw += gates_by;
    gates += gates_by;
    c += states_by;
    if (n) {  // sLSTM only
      n += states_by;
      m += states_by;
    }
  }
};

// gi: the (row, step, head, gate i, unit) index into raw and gates; si: the state index.
__device__ __forceinline__ void store_step(const CellOutputs& o, int64_t gi, int64_t si, int Dh,
                                           bool slstm, const float4& raw, const CellStep& step,
                                           const CellState& s) {
  o.h[si] = step.h;
  if (!o.gates) return;
  if (o.raw) {
    o.raw[gi] = raw.x;
    o.raw[gi + Dh] = raw.y;
    o.raw[gi + 2 * Dh] = raw.z;
    o.raw[gi + 3 * Dh] = raw.w;
  }
  o.gates[gi] = step.i;
  o.gates[gi + Dh] = step.f;
  o.gates[gi + 2 * Dh] = step.z;
  o.gates[gi + 3 * Dh] = step.o;
  o.c[si] = s.c;
  if (slstm) {
    o.n[si] = s.n;
    o.m[si] = s.m;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward

// The saved tensors backward reads, in CellOutputs' layouts; dh is [B, T, H, Dh].
struct CellSaved {
  const float *raw, *gates, *c, *n, *dh;
};

// What step t of one (row, unit) reads besides the carried state.
struct StepInputs {
  float dh = 0.f, i = 0.f, f = 0.f, z = 0.f, o = 0.f;
  float c_prev = 0.f, n_prev = 0.f;
  float rf = 0.f;  // raw forget pre-activation (sLSTM with σ forget gate)
};

// gi, si as store_step's; D: the state stride of a step (H · Dh); `first`: step 0, which has no
// previous state.
__device__ __forceinline__ StepInputs load_step_inputs(const CellSaved& s, int64_t gi, int64_t si,
                                                       int64_t D, int Dh, bool first, bool slstm,
                                                       bool exp_forget) {
  StepInputs in;
  in.dh = s.dh[si];
  in.i = s.gates[gi];
  in.f = s.gates[gi + Dh];
  in.z = s.gates[gi + 2 * Dh];
  in.o = s.gates[gi + 3 * Dh];
  if (!first) in.c_prev = s.c[si - D];
  if (slstm && !first) in.n_prev = s.n[si - D];
  if (slstm && !exp_forget) in.rf = s.raw[gi + Dh];
  return in;
}

// ∂L/∂c and ∂L/∂n carried into the step before.
struct CellCarry {
  float dc = 0.f, dn = 0.f;
};

// ∂L/∂(ĩ, f̃, z̃, õ) of one step from gh = ∂L/∂h_t (external and recurrent), the step's inputs and
// its states c_t, n_t; updates the carry for step t − 1.
__device__ __forceinline__ float4 cell_step_backward(bool slstm, bool exp_forget, float gh,
                                                     const StepInputs& in, float c_t, float n_t,
                                                     CellCarry& carry) {
  float4 d;
  if (!slstm) {
    const float tc = tanhf(c_t);
    const float dc = carry.dc + gh * in.o * (1.f - tc * tc);
    d.x = dc * in.z * in.i * (1.f - in.i);
    d.y = dc * in.c_prev * in.f * (1.f - in.f);
    d.z = dc * in.i * (1.f - in.z * in.z);
    d.w = gh * tc * in.o * (1.f - in.o);
    carry.dc = dc * in.f;
    return d;
  }
  const float dc = carry.dc + gh * in.o / n_t;
  const float dn = carry.dn - gh * in.o * c_t / (n_t * n_t);
  const float d_f = dc * in.c_prev + dn * in.n_prev;
  const float d_i = dc * in.z + dn;
  const float d_log_f = d_f * in.f;
  d.x = d_i * in.i;
  // 1 − σ(f̃) as σ(−f̃): no cancellation when the gate saturates
  d.y = exp_forget ? d_log_f : d_log_f * sigmoid(-in.rf);
  d.z = dc * in.i * (1.f - in.z * in.z);
  d.w = gh * (c_t / n_t) * in.o * (1.f - in.o);
  carry.dc = dc * in.f;
  carry.dn = dn * in.f;
  return d;
}

}  // namespace statelab::cuda
