// One step of the LSTM / sLSTM cell for one (batch row, unit), as the CUDA forward kernels
// (nonlinear_recurrence.cu, nonlinear_recurrence_mma.cu) run it after R·h: the gate
// non-linearities, the state update and the stores of what backward reads. The equations are
// kernels/cpu/nonlinear_recurrence.cpp's.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace statelab::cuda {

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// log σ(x) without overflow for large |x|
__device__ __forceinline__ float log_sigmoid(float x) {
  return -(fmaxf(-x, 0.f) + log1pf(expf(-fabsf(x))));
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
// the states (n and m only for sLSTM).
struct CellOutputs {
  float *raw, *gates, *c, *n, *m, *h;

  // Moves every pointer on: raw and gates by `gates_by` floats, the states by `states_by`.
  __device__ __forceinline__ void advance(int64_t gates_by, int64_t states_by) {
    raw += gates_by;
    gates += gates_by;
    c += states_by;
    h += states_by;
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
  o.raw[gi] = raw.x;
  o.raw[gi + Dh] = raw.y;
  o.raw[gi + 2 * Dh] = raw.z;
  o.raw[gi + 3 * Dh] = raw.w;
  o.gates[gi] = step.i;
  o.gates[gi + Dh] = step.f;
  o.gates[gi + 2 * Dh] = step.z;
  o.gates[gi + 3 * Dh] = step.o;
  o.c[si] = s.c;
  if (slstm) {
    o.n[si] = s.n;
    o.m[si] = s.m;
  }
  o.h[si] = step.h;
}

}  // namespace statelab::cuda
