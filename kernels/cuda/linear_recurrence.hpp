// The unified linear recurrence (DESIGN §3) on CUDA, twin of kernels/cpu/linear_recurrence.hpp
// (same structs, same boundary-state layout), with the scalar gate scans that feed it: mLSTM's
// stabilizer (twin of kernels/cpu/stabilizer.hpp) and the selective decay of Mamba-2 and Gated
// DeltaNet (twin of kernels/cpu/decay.hpp). Two forward kernels: a fused recurrent one (state on
// chip, one pass over T) and a chunkwise one (intra-chunk matrix products, inter-chunk state
// passing, the UT/WY form for the delta rule), chosen by sequence length unless forced.
// Checked against the CPU twins by kernels/selftest/linear_recurrence.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/decay.hpp"
#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cpu/stabilizer.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

// chunkwise walks the chunks in order; chunk_parallel computes them all at once and scans their
// states (backward is the same for both); automatic chooses among all three.
enum class LinearKernel { automatic, recurrent, chunkwise, chunk_parallel };

// Scratch elements forward needs for these shapes and this choice of kernel: the delta rule's
// chunk-parallel schedule passes each chunk's triangular inverse between its kernels; 0 for
// every other form.
int64_t linear_recurrence_fwd_work_size(const Context& ctx, const cpu::LinearRecurrence<float>& p,
                                        LinearKernel kernel = LinearKernel::automatic);

// Writes p.y, and p.boundary / p.final_state when non-null, in the CPU twin's layout. work:
// linear_recurrence_fwd_work_size elements (16-byte aligned), null where that is 0.
void linear_recurrence_fwd(const Context& ctx, const cpu::LinearRecurrence<float>& p, float* work,
                           LinearKernel kernel = LinearKernel::automatic);

// cpu::linear_recurrence_probe's read-outs ([B, T, H] buffers on the device; null ones are
// skipped), written by the recurrent forward kernel in one pass from the zero state. y, the
// boundary and the final state are left as they are. Throws ShapeError for Dk > 256.
void linear_recurrence_probe(const Context& ctx, const cpu::LinearRecurrence<float>& p,
                             const cpu::LinearRecurrenceProbe<float>& probe);

// Scratch elements backward needs for these shapes (the bound is stated in the definition).
int64_t linear_recurrence_work_size(const cpu::LinearRecurrence<float>& p);

// Gradients ADDED to g's buffers, as on the CPU. Needs p.boundary as forward wrote it.
void linear_recurrence_bwd(const Context& ctx, const cpu::LinearRecurrence<float>& p,
                           const cpu::LinearRecurrenceGrads<float>& g, float* work,
                           LinearKernel kernel = LinearKernel::automatic);

void stabilized_gates_fwd(const Context& ctx, cpu::ForgetGate kind, int64_t B, int64_t T,
                          int64_t H, const float* igate, const float* fgate, float* m, float* a,
                          float* c, float* floor);
void stabilized_gates_bwd(const Context& ctx, cpu::ForgetGate kind, int64_t B, int64_t T,
                          int64_t H, const float* igate, const float* fgate, const float* m,
                          const float* a, const float* c, const float* floor, const float* da,
                          const float* dc, const float* dfloor, float* dig, float* dfg);

void selective_decay_fwd(const Context& ctx, int64_t N, int64_t H, const float* raw,
                         const float* A_log, const float* dt_bias, float* dt, float* decay);
void selective_decay_bwd(const Context& ctx, int64_t N, int64_t H, const float* raw,
                         const float* A_log, const float* dt_bias, const float* dt,
                         const float* decay, const float* d_decay, const float* d_dt,
                         float* d_raw, float* dA_log, float* ddt_bias);

}  // namespace statelab::cuda
