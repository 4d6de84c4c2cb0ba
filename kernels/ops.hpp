// The ops the cells compute with, dispatched on where the pass runs: the CPU twin in
// kernels/cpu/ (any scalar) or the CUDA twin in kernels/cuda/ (float). Same arguments and
// contracts as the CPU twins, after the Exec. Cells call compute only through here, so a model
// runs on either device with the same wiring.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cpu/stabilizer.hpp"
#include "kernels/exec.hpp"
#include "kernels/loss_totals.hpp"

namespace statelab::ops {

using cpu::Activation;

// --- dense -------------------------------------------------------------------------------------
template <typename S>
void linear_fwd(const Exec& ex, S* y, const S* x, const S* W, const S* b, int64_t N, int64_t I,
                int64_t O, const S* residual = nullptr);
template <typename S>
void linear_bwd(const Exec& ex, S* dx, S* dW, S* db, const S* dy, const S* x, const S* W,
                int64_t N, int64_t I, int64_t O, cpu::Into into = cpu::Into::overwrite);
template <typename S>
void embedding_fwd(const Exec& ex, S* y, const int32_t* tokens, const S* E, int64_t N, int64_t D);
template <typename S>
void embedding_bwd(const Exec& ex, S* dE, const int32_t* tokens, const S* dy, int64_t N,
                   int64_t V, int64_t D);  // dE: [V, D]

// Masked cross-entropy (kernels/cpu/loss.hpp) adding its sums into *totals, which lives on
// the pass's device (device memory on CUDA).
template <typename S>
void cross_entropy(const Exec& ex, S* dlogits, const S* logits, const int32_t* targets, int64_t N,
                   int64_t V, LossTotals* totals);

// --- pointwise ---------------------------------------------------------------------------------
template <typename S>
void activation_fwd(const Exec& ex, Activation a, S* y, const S* x, int64_t n);
template <typename S>
void activation_bwd(const Exec& ex, Activation a, S* dx, const S* dy, const S* x, int64_t n);
template <typename S>
void gated_fwd(const Exec& ex, Activation a, S* y, const S* u, int64_t N, int64_t F);
template <typename S>
void gated_bwd(const Exec& ex, Activation a, S* du, const S* dy, const S* u, int64_t N, int64_t F);
template <typename S>
void causal_conv1d_fwd(const Exec& ex, S* y, const S* x, const S* w, const S* bias, int64_t B,
                       int64_t T, int64_t C, int64_t K);
template <typename S>
void causal_conv1d_bwd(const Exec& ex, S* dx, S* dw, S* dbias, const S* dy, const S* x,
                       const S* w, int64_t B, int64_t T, int64_t C, int64_t K);
template <typename S>
void add_inplace(const Exec& ex, S* y, const S* x, int64_t n);
template <typename S>
void add(const Exec& ex, S* y, const S* a, const S* b, int64_t n);
template <typename S>
void affine(const Exec& ex, S* y, const S* x, double alpha, double beta, int64_t n);
template <typename S>
void fill_zero(const Exec& ex, S* y, int64_t n);
template <typename S>
void copy_rows(const Exec& ex, S* dst, int64_t dst_stride, const S* src, int64_t src_stride,
               int64_t rows, int64_t width, double scale = 1);
template <typename S>
void axpy_rows(const Exec& ex, S* dst, int64_t dst_stride, const S* src, int64_t src_stride,
               int64_t rows, int64_t width, double alpha);
template <typename S>
void silu_gate_fwd(const Exec& ex, S* y, const S* x, const S* g, int64_t n);
template <typename S>
void silu_gate_bwd(const Exec& ex, S* dx, S* dg, const S* dy, const S* x, const S* g, int64_t n);
template <typename S>
void skip_add_fwd(const Exec& ex, S* y, const S* a, const S* skip, const S* x, int64_t x_stride,
                  int64_t N, int64_t I, int64_t group);
template <typename S>
void skip_add_bwd(const Exec& ex, S* dx, S* dskip, const S* dy, const S* skip, const S* x,
                  int64_t x_stride, int64_t N, int64_t I, int64_t group);
template <typename S>
void scaled_sigmoid_fwd(const Exec& ex, S* y, const S* x, double scale, int64_t n);
template <typename S>
void scaled_sigmoid_bwd(const Exec& ex, S* dx, const S* dy1, const S* dy2, const S* x,
                        double scale, int64_t n);

// --- norms -------------------------------------------------------------------------------------
template <typename S>
void group_layernorm_fwd(const Exec& ex, S* y, S* mean, S* rstd, const S* x, const S* w,
                         const S* b, int64_t N, int64_t G, int64_t Dg, double eps);
template <typename S>
void group_layernorm_bwd(const Exec& ex, S* dx, S* dw, S* db, const S* dy, const S* x,
                         const S* mean, const S* rstd, const S* w, int64_t N, int64_t G,
                         int64_t Dg, const S* skip = nullptr);
template <typename S>
void rmsnorm_fwd(const Exec& ex, S* y, S* rstd, const S* x, const S* w, int64_t N, int64_t D,
                 double eps);
template <typename S>
void rmsnorm_bwd(const Exec& ex, S* dx, S* dw, const S* dy, const S* x, const S* rstd, const S* w,
                 int64_t N, int64_t D, const S* skip = nullptr);
template <typename S>
void l2norm_fwd(const Exec& ex, S* y, S* rnorm, const S* x, int64_t N, int64_t D, double eps);
template <typename S>
void l2norm_bwd(const Exec& ex, S* dx, const S* dy, const S* y, const S* rnorm, int64_t N,
                int64_t D);

// --- attention ---------------------------------------------------------------------------------
template <typename S>
void rope_fwd(const Exec& ex, S* y, const S* x, int64_t B, int64_t T, int64_t H, int64_t Dh,
              double base);
template <typename S>
void rope_bwd(const Exec& ex, S* dx, const S* dy, int64_t B, int64_t T, int64_t H, int64_t Dh,
              double base);
// Scratch elements the attention of these shapes needs (forward and backward share it).
int64_t causal_attention_work_size(const Exec& ex, int64_t B, int64_t T, int64_t H);
template <typename S>
void causal_attention_fwd(const Exec& ex, const cpu::CausalAttention<S>& a, S* work);
template <typename S>
void causal_attention_bwd(const Exec& ex, const cpu::CausalAttention<S>& a, const S* dout, S* dq,
                          S* dk, S* dv, S* work);
// entropy [B, T, H] and map [B, H, T, T] (when non-null) on the pass's device; work as forward's
// (unused on CUDA).
template <typename S>
void causal_attention_probe(const Exec& ex, const cpu::CausalAttention<S>& a, S* entropy, S* map,
                            S* work);

// --- recurrences -------------------------------------------------------------------------------
template <typename S>
void nonlinear_recurrence_fwd(const Exec& ex, const cpu::NonlinearRecurrence<S>& p);
template <typename S>
int64_t nonlinear_recurrence_work_size(const Exec& ex, const cpu::NonlinearRecurrence<S>& p);
template <typename S>
void nonlinear_recurrence_bwd(const Exec& ex, const cpu::NonlinearRecurrence<S>& p, const S* dh,
                              S* dpre, S* dR, S* work);

// work: linear_recurrence_fwd_work_size elements (the CUDA delta rule's chunk inverses at long
// sequences; 0 on the CPU), null where that is 0.
template <typename S>
int64_t linear_recurrence_fwd_work_size(const Exec& ex, const cpu::LinearRecurrence<S>& p);
template <typename S>
void linear_recurrence_fwd(const Exec& ex, const cpu::LinearRecurrence<S>& p, S* work);
template <typename S>
int64_t linear_recurrence_work_size(const Exec& ex, const cpu::LinearRecurrence<S>& p);
template <typename S>
void linear_recurrence_bwd(const Exec& ex, const cpu::LinearRecurrence<S>& p,
                           const cpu::LinearRecurrenceGrads<S>& g, S* work);
// The read-outs into buffers on the pass's device; work as backward's (unused on CUDA, whose
// recurrent kernel needs no boundary states either).
template <typename S>
void linear_recurrence_probe(const Exec& ex, const cpu::LinearRecurrence<S>& p,
                             const cpu::LinearRecurrenceProbe<S>& probe, S* work);
template <typename S>
void stabilized_gates_fwd(const Exec& ex, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const S* igate, const S* fgate, S* m, S* a, S* c, S* floor);
template <typename S>
void stabilized_gates_bwd(const Exec& ex, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const S* igate, const S* fgate, const S* m, const S* a, const S* c,
                          const S* floor, const S* da, const S* dc, const S* dfloor, S* dig,
                          S* dfg);
template <typename S>
void selective_decay_fwd(const Exec& ex, int64_t N, int64_t H, const S* raw, const S* A_log,
                         const S* dt_bias, S* dt, S* decay);
template <typename S>
void selective_decay_bwd(const Exec& ex, int64_t N, int64_t H, const S* raw, const S* A_log,
                         const S* dt_bias, const S* dt, const S* decay, const S* d_decay,
                         const S* d_dt, S* d_raw, S* dA_log, S* ddt_bias);

}  // namespace statelab::ops
