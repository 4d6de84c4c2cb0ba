// Dispatch of every op in ops.hpp to its CPU or CUDA twin. CUDA computes in float only: a
// double pass on a CUDA Exec is refused rather than silently run on the CPU with device memory.
#include "kernels/ops.hpp"

#include <type_traits>

#include "kernels/cpu/decay.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cpu/loss.hpp"
#include "kernels/cpu/norm.hpp"
#include "kernels/error.hpp"

#ifdef STATELAB_HAVE_CUDA
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/dense.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/linear_recurrence.hpp"
#include "kernels/cuda/loss.hpp"
#include "kernels/cuda/nonlinear_recurrence.hpp"
#include "kernels/cuda/norm.hpp"
// Runs `call` and returns when the pass is on a CUDA device.
#define SL_ON_CUDA(ex, call)                                      \
  if constexpr (std::is_same_v<S, float>) {                       \
    if ((ex).cuda) {                                              \
      call;                                                       \
      return;                                                     \
    }                                                             \
  } else {                                                        \
    SL_CHECK(!(ex).cuda, "the CUDA path computes in float only"); \
  }
#else
#define SL_ON_CUDA(ex, call) SL_CHECK(!(ex).cuda, "this build has no CUDA backend")
#endif

namespace statelab::ops {

template <typename S>
void linear_fwd(const Exec& ex, S* y, const S* x, const S* W, const S* b, int64_t N, int64_t I,
                int64_t O, const S* residual) {
  SL_ON_CUDA(ex, cuda::linear_fwd(*ex.cuda, y, x, W, b, N, I, O, residual));
  cpu::linear_fwd(y, x, W, b, N, I, O, residual);
}

template <typename S>
void linear_bwd(const Exec& ex, S* dx, S* dW, S* db, const S* dy, const S* x, const S* W, int64_t N,
                int64_t I, int64_t O, cpu::Into into) {
  SL_ON_CUDA(ex, cuda::linear_bwd(*ex.cuda, dx, dW, db, dy, x, W, N, I, O, into));
  cpu::linear_bwd(dx, dW, db, dy, x, W, N, I, O, into);
}

template <typename S>
void embedding_fwd(const Exec& ex, S* y, const int32_t* tokens, const S* E, int64_t N, int64_t D) {
  SL_ON_CUDA(ex, cuda::embedding_fwd(*ex.cuda, y, tokens, E, N, D));
  cpu::embedding_fwd(y, tokens, E, N, D);
}

template <typename S>
void embedding_bwd(const Exec& ex, S* dE, const int32_t* tokens, const S* dy, int64_t N,
                   int64_t V, int64_t D) {
  SL_ON_CUDA(ex, cuda::embedding_bwd(*ex.cuda, dE, tokens, dy, N, V, D));
  cpu::embedding_bwd(dE, tokens, dy, N, D);
}

template <typename S>
void activation_fwd(const Exec& ex, Activation a, S* y, const S* x, int64_t n) {
  SL_ON_CUDA(ex, cuda::activation_fwd(*ex.cuda, a, y, x, n));
  cpu::activation_fwd(a, y, x, n);
}

template <typename S>
void activation_bwd(const Exec& ex, Activation a, S* dx, const S* dy, const S* x, int64_t n) {
  SL_ON_CUDA(ex, cuda::activation_bwd(*ex.cuda, a, dx, dy, x, n));
  cpu::activation_bwd(a, dx, dy, x, n);
}

template <typename S>
void gated_fwd(const Exec& ex, Activation a, S* y, const S* u, int64_t N, int64_t F) {
  SL_ON_CUDA(ex, cuda::gated_fwd(*ex.cuda, a, y, u, N, F));
  cpu::gated_fwd(a, y, u, N, F);
}

template <typename S>
void gated_bwd(const Exec& ex, Activation a, S* du, const S* dy, const S* u, int64_t N, int64_t F) {
  SL_ON_CUDA(ex, cuda::gated_bwd(*ex.cuda, a, du, dy, u, N, F));
  cpu::gated_bwd(a, du, dy, u, N, F);
}

template <typename S>
void causal_conv1d_fwd(const Exec& ex, S* y, const S* x, const S* w, const S* bias, int64_t B,
                       int64_t T, int64_t C, int64_t K) {
  SL_ON_CUDA(ex, cuda::causal_conv1d_fwd(*ex.cuda, y, x, w, bias, B, T, C, K));
  cpu::causal_conv1d_fwd(y, x, w, bias, B, T, C, K);
}

template <typename S>
void causal_conv1d_bwd(const Exec& ex, S* dx, S* dw, S* dbias, const S* dy, const S* x, const S* w,
                       int64_t B, int64_t T, int64_t C, int64_t K) {
  SL_ON_CUDA(ex, cuda::causal_conv1d_bwd(*ex.cuda, dx, dw, dbias, dy, x, w, B, T, C, K));
  cpu::causal_conv1d_bwd(dx, dw, dbias, dy, x, w, B, T, C, K);
}

template <typename S>
void add_inplace(const Exec& ex, S* y, const S* x, int64_t n) {
  SL_ON_CUDA(ex, cuda::add_inplace(*ex.cuda, y, x, n));
  cpu::add_inplace(y, x, n);
}

template <typename S>
void add(const Exec& ex, S* y, const S* a, const S* b, int64_t n) {
  SL_ON_CUDA(ex, cuda::add(*ex.cuda, y, a, b, n));
  cpu::add(y, a, b, n);
}

template <typename S>
void affine(const Exec& ex, S* y, const S* x, double alpha, double beta, int64_t n) {
  SL_ON_CUDA(ex, cuda::affine(*ex.cuda, y, x, alpha, beta, n));
  cpu::affine(y, x, alpha, beta, n);
}

template <typename S>
void fill_zero(const Exec& ex, S* y, int64_t n) {
  SL_ON_CUDA(ex, cuda::fill_zero(*ex.cuda, y, n));
  cpu::fill_zero(y, n);
}

template <typename S>
void copy_rows(const Exec& ex, S* dst, int64_t dst_stride, const S* src, int64_t src_stride,
               int64_t rows, int64_t width, double scale) {
  SL_ON_CUDA(ex, cuda::copy_rows(*ex.cuda, dst, dst_stride, src, src_stride, rows, width, scale));
  cpu::copy_rows(dst, dst_stride, src, src_stride, rows, width, scale);
}

template <typename S>
void axpy_rows(const Exec& ex, S* dst, int64_t dst_stride, const S* src, int64_t src_stride,
               int64_t rows, int64_t width, double alpha) {
  SL_ON_CUDA(ex, cuda::axpy_rows(*ex.cuda, dst, dst_stride, src, src_stride, rows, width, alpha));
  cpu::axpy_rows(dst, dst_stride, src, src_stride, rows, width, alpha);
}

template <typename S>
void silu_gate_fwd(const Exec& ex, S* y, const S* x, const S* g, int64_t n) {
  SL_ON_CUDA(ex, cuda::silu_gate_fwd(*ex.cuda, y, x, g, n));
  cpu::silu_gate_fwd(y, x, g, n);
}

template <typename S>
void silu_gate_bwd(const Exec& ex, S* dx, S* dg, const S* dy, const S* x, const S* g, int64_t n) {
  SL_ON_CUDA(ex, cuda::silu_gate_bwd(*ex.cuda, dx, dg, dy, x, g, n));
  cpu::silu_gate_bwd(dx, dg, dy, x, g, n);
}

template <typename S>
void skip_add_fwd(const Exec& ex, S* y, const S* a, const S* skip, const S* x, int64_t x_stride,
                  int64_t N, int64_t I, int64_t group) {
  SL_ON_CUDA(ex, cuda::skip_add_fwd(*ex.cuda, y, a, skip, x, x_stride, N, I, group));
  cpu::skip_add_fwd(y, a, skip, x, x_stride, N, I, group);
}

template <typename S>
void skip_add_bwd(const Exec& ex, S* dx, S* dskip, const S* dy, const S* skip, const S* x,
                  int64_t x_stride, int64_t N, int64_t I, int64_t group) {
  SL_ON_CUDA(ex, cuda::skip_add_bwd(*ex.cuda, dx, dskip, dy, skip, x, x_stride, N, I, group));
  cpu::skip_add_bwd(dx, dskip, dy, skip, x, x_stride, N, I, group);
}

template <typename S>
void scaled_sigmoid_fwd(const Exec& ex, S* y, const S* x, double scale, int64_t n) {
  SL_ON_CUDA(ex, cuda::scaled_sigmoid_fwd(*ex.cuda, y, x, scale, n));
  cpu::scaled_sigmoid_fwd(y, x, scale, n);
}

template <typename S>
void scaled_sigmoid_bwd(const Exec& ex, S* dx, const S* dy1, const S* dy2, const S* x, double scale,
                        int64_t n) {
  SL_ON_CUDA(ex, cuda::scaled_sigmoid_bwd(*ex.cuda, dx, dy1, dy2, x, scale, n));
  cpu::scaled_sigmoid_bwd(dx, dy1, dy2, x, scale, n);
}

template <typename S>
void group_layernorm_fwd(const Exec& ex, S* y, S* mean, S* rstd, const S* x, const S* w, const S* b,
                         int64_t N, int64_t G, int64_t Dg, double eps) {
  SL_ON_CUDA(ex, cuda::group_layernorm_fwd(*ex.cuda, y, mean, rstd, x, w, b, N, G, Dg, eps));
  cpu::group_layernorm_fwd(y, mean, rstd, x, w, b, N, G, Dg, eps);
}

template <typename S>
void group_layernorm_bwd(const Exec& ex, S* dx, S* dw, S* db, const S* dy, const S* x,
                         const S* mean, const S* rstd, const S* w, int64_t N, int64_t G,
                         int64_t Dg, const S* skip) {
  SL_ON_CUDA(ex,
             cuda::group_layernorm_bwd(*ex.cuda, dx, dw, db, dy, x, mean, rstd, w, N, G, Dg, skip));
  cpu::group_layernorm_bwd(dx, dw, db, dy, x, mean, rstd, w, N, G, Dg, skip);
}

template <typename S>
void rmsnorm_fwd(const Exec& ex, S* y, S* rstd, const S* x, const S* w, int64_t N, int64_t D,
                 double eps) {
  SL_ON_CUDA(ex, cuda::rmsnorm_fwd(*ex.cuda, y, rstd, x, w, N, D, eps));
  cpu::rmsnorm_fwd(y, rstd, x, w, N, D, eps);
}

template <typename S>
void rmsnorm_bwd(const Exec& ex, S* dx, S* dw, const S* dy, const S* x, const S* rstd, const S* w,
                 int64_t N, int64_t D, const S* skip) {
  SL_ON_CUDA(ex, cuda::rmsnorm_bwd(*ex.cuda, dx, dw, dy, x, rstd, w, N, D, skip));
  cpu::rmsnorm_bwd(dx, dw, dy, x, rstd, w, N, D, skip);
}

template <typename S>
void l2norm_fwd(const Exec& ex, S* y, S* rnorm, const S* x, int64_t N, int64_t D, double eps) {
  SL_ON_CUDA(ex, cuda::l2norm_fwd(*ex.cuda, y, rnorm, x, N, D, eps));
  cpu::l2norm_fwd(y, rnorm, x, N, D, eps);
}

template <typename S>
void l2norm_bwd(const Exec& ex, S* dx, const S* dy, const S* y, const S* rnorm, int64_t N,
                int64_t D) {
  SL_ON_CUDA(ex, cuda::l2norm_bwd(*ex.cuda, dx, dy, y, rnorm, N, D));
  cpu::l2norm_bwd(dx, dy, y, rnorm, N, D);
}

template <typename S>
void rope_fwd(const Exec& ex, S* y, const S* x, int64_t B, int64_t T, int64_t H, int64_t Dh,
              double base) {
  SL_ON_CUDA(ex, cuda::rope_fwd(*ex.cuda, y, x, B, T, H, Dh, base));
  cpu::rope_fwd(y, x, B, T, H, Dh, base);
}

template <typename S>
void rope_bwd(const Exec& ex, S* dx, const S* dy, int64_t B, int64_t T, int64_t H, int64_t Dh,
              double base) {
  SL_ON_CUDA(ex, cuda::rope_bwd(*ex.cuda, dx, dy, B, T, H, Dh, base));
  cpu::rope_bwd(dx, dy, B, T, H, Dh, base);
}

template <typename S>
void nonlinear_recurrence_fwd(const Exec& ex, const cpu::NonlinearRecurrence<S>& p) {
  SL_ON_CUDA(ex, cuda::nonlinear_recurrence_fwd(*ex.cuda, p));
  cpu::nonlinear_recurrence_fwd(p);
}

template <typename S>
void nonlinear_recurrence_bwd(const Exec& ex, const cpu::NonlinearRecurrence<S>& p, const S* dh,
                              S* dpre, S* dR, S* work) {
  SL_ON_CUDA(ex, cuda::nonlinear_recurrence_bwd(*ex.cuda, p, dh, dpre, dR, work));
  cpu::nonlinear_recurrence_bwd(p, dh, dpre, dR, work);
}

template <typename S>
void linear_recurrence_bwd(const Exec& ex, const cpu::LinearRecurrence<S>& p,
                           const cpu::LinearRecurrenceGrads<S>& g, S* work) {
  SL_ON_CUDA(ex, cuda::linear_recurrence_bwd(*ex.cuda, p, g, work));
  cpu::linear_recurrence_bwd(p, g, work);
}

template <typename S>
void stabilized_gates_fwd(const Exec& ex, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const S* igate, const S* fgate, S* m, S* a, S* c, S* floor) {
  SL_ON_CUDA(ex, cuda::stabilized_gates_fwd(*ex.cuda, kind, B, T, H, igate, fgate, m, a, c, floor));
  cpu::stabilized_gates_fwd(kind, B, T, H, igate, fgate, m, a, c, floor);
}

template <typename S>
void stabilized_gates_bwd(const Exec& ex, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const S* igate, const S* fgate, const S* m, const S* a, const S* c,
                          const S* floor, const S* da, const S* dc, const S* dfloor, S* dig,
                          S* dfg) {
  SL_ON_CUDA(ex, cuda::stabilized_gates_bwd(*ex.cuda, kind, B, T, H, igate, fgate, m, a, c, floor,
                                            da, dc, dfloor, dig, dfg));
  cpu::stabilized_gates_bwd(kind, B, T, H, igate, fgate, m, a, c, floor, da, dc, dfloor, dig, dfg);
}

template <typename S>
void selective_decay_fwd(const Exec& ex, int64_t N, int64_t H, const S* raw, const S* A_log,
                         const S* dt_bias, S* dt, S* decay) {
  SL_ON_CUDA(ex, cuda::selective_decay_fwd(*ex.cuda, N, H, raw, A_log, dt_bias, dt, decay));
  cpu::selective_decay_fwd(N, H, raw, A_log, dt_bias, dt, decay);
}

template <typename S>
void selective_decay_bwd(const Exec& ex, int64_t N, int64_t H, const S* raw, const S* A_log,
                         const S* dt_bias, const S* dt, const S* decay, const S* d_decay,
                         const S* d_dt, S* d_raw, S* dA_log, S* ddt_bias) {
  SL_ON_CUDA(ex, cuda::selective_decay_bwd(*ex.cuda, N, H, raw, A_log, dt_bias, dt, decay, d_decay,
                                           d_dt, d_raw, dA_log, ddt_bias));
  cpu::selective_decay_bwd(N, H, raw, A_log, dt_bias, dt, decay, d_decay, d_dt, d_raw, dA_log,
                           ddt_bias);
}
template <typename S>
void cross_entropy(const Exec& ex, S* dlogits, const S* logits, const int32_t* targets, int64_t N,
                   int64_t V, LossTotals* totals) {
  SL_ON_CUDA(ex, cuda::cross_entropy(*ex.cuda, dlogits, logits, targets, N, V, totals));
  const cpu::LossStats s = cpu::cross_entropy(dlogits, logits, targets, N, V);
  totals->loss_sum += s.loss_sum;
  totals->count += static_cast<unsigned long long>(s.count);
  totals->correct += static_cast<unsigned long long>(s.correct);
}

int64_t causal_attention_work_size(const Exec& ex, int64_t B, int64_t T, int64_t H) {
#ifdef STATELAB_HAVE_CUDA
  if (ex.cuda) return cuda::causal_attention_work_size(B, T, H);
#endif
  return cpu::causal_attention_work_size(T);
}

template <typename S>
void causal_attention_fwd(const Exec& ex, const cpu::CausalAttention<S>& a, S* work) {
  SL_ON_CUDA(ex, cuda::causal_attention_fwd(*ex.cuda, a));
  cpu::causal_attention_fwd(a, work);
}

template <typename S>
void causal_attention_bwd(const Exec& ex, const cpu::CausalAttention<S>& a, const S* dout, S* dq,
                          S* dk, S* dv, S* work) {
  SL_ON_CUDA(ex, cuda::causal_attention_bwd(*ex.cuda, a, dout, dq, dk, dv, work));
  cpu::causal_attention_bwd(a, dout, dq, dk, dv, work);
}

template <typename S>
void causal_attention_probe(const Exec& ex, const cpu::CausalAttention<S>& a, S* entropy, S* map,
                            S* work) {
  SL_ON_CUDA(ex, cuda::causal_attention_probe(*ex.cuda, a, entropy, map));
  cpu::causal_attention_probe(a, entropy, map, work);
}

template <typename S>
void linear_recurrence_probe(const Exec& ex, const cpu::LinearRecurrence<S>& p,
                             const cpu::LinearRecurrenceProbe<S>& probe, S* work) {
  SL_ON_CUDA(ex, cuda::linear_recurrence_probe(*ex.cuda, p, probe));
  cpu::linear_recurrence_probe(p, probe, work);
}

template <typename S>
int64_t nonlinear_recurrence_work_size(const Exec& ex, const cpu::NonlinearRecurrence<S>& p) {
#ifdef STATELAB_HAVE_CUDA
  if constexpr (std::is_same_v<S, float>)
    if (ex.cuda) return cuda::nonlinear_recurrence_work_size(p);
#endif
  return 3 * p.B * p.H * p.Dh;  // kernels/cpu/nonlinear_recurrence.hpp
}

template <typename S>
int64_t linear_recurrence_fwd_work_size(const Exec& ex, const cpu::LinearRecurrence<S>& p) {
#ifdef STATELAB_HAVE_CUDA
  if constexpr (std::is_same_v<S, float>)
    if (ex.cuda) return cuda::linear_recurrence_fwd_work_size(*ex.cuda, p);
#endif
  return 0;
}

template <typename S>
void linear_recurrence_fwd(const Exec& ex, const cpu::LinearRecurrence<S>& p, S* work) {
  SL_ON_CUDA(ex, cuda::linear_recurrence_fwd(*ex.cuda, p, work));
  cpu::linear_recurrence_fwd(p);
}

template <typename S>
int64_t linear_recurrence_work_size(const Exec& ex, const cpu::LinearRecurrence<S>& p) {
#ifdef STATELAB_HAVE_CUDA
  if constexpr (std::is_same_v<S, float>)
    if (ex.cuda) return cuda::linear_recurrence_work_size(p);
#endif
  return cpu::linear_recurrence_work_size(p);
}

#define SL_INSTANTIATE(S)                                                                          \
  template void cross_entropy<S>(const Exec&, S*, const S*, const int32_t*, int64_t, int64_t,      \
                                 LossTotals*);                                                     \
  template void linear_fwd<S>(const Exec&, S*, const S*, const S*, const S*, int64_t, int64_t,     \
                              int64_t, const S*);                                                  \
  template void linear_bwd<S>(const Exec&, S*, S*, S*, const S*, const S*, const S*, int64_t,      \
                              int64_t, int64_t, cpu::Into);                                        \
  template void embedding_fwd<S>(const Exec&, S*, const int32_t*, const S*, int64_t, int64_t);     \
  template void embedding_bwd<S>(const Exec&, S*, const int32_t*, const S*, int64_t, int64_t,      \
                                 int64_t);                                                         \
  template void activation_fwd<S>(const Exec&, Activation, S*, const S*, int64_t);                 \
  template void activation_bwd<S>(const Exec&, Activation, S*, const S*, const S*, int64_t);       \
  template void gated_fwd<S>(const Exec&, Activation, S*, const S*, int64_t, int64_t);             \
  template void gated_bwd<S>(const Exec&, Activation, S*, const S*, const S*, int64_t, int64_t);   \
  template void causal_conv1d_fwd<S>(const Exec&, S*, const S*, const S*, const S*, int64_t,       \
                                     int64_t, int64_t, int64_t);                                   \
  template void causal_conv1d_bwd<S>(const Exec&, S*, S*, S*, const S*, const S*, const S*,        \
                                     int64_t, int64_t, int64_t, int64_t);                          \
  template void add_inplace<S>(const Exec&, S*, const S*, int64_t);                                \
  template void add<S>(const Exec&, S*, const S*, const S*, int64_t);                              \
  template void affine<S>(const Exec&, S*, const S*, double, double, int64_t);                     \
  template void fill_zero<S>(const Exec&, S*, int64_t);                                            \
  template void copy_rows<S>(const Exec&, S*, int64_t, const S*, int64_t, int64_t, int64_t,        \
                             double);                                                              \
  template void axpy_rows<S>(const Exec&, S*, int64_t, const S*, int64_t, int64_t, int64_t,        \
                             double);                                                              \
  template void silu_gate_fwd<S>(const Exec&, S*, const S*, const S*, int64_t);                    \
  template void silu_gate_bwd<S>(const Exec&, S*, S*, const S*, const S*, const S*, int64_t);      \
  template void skip_add_fwd<S>(const Exec&, S*, const S*, const S*, const S*, int64_t, int64_t,   \
                                int64_t, int64_t);                                                 \
  template void skip_add_bwd<S>(const Exec&, S*, S*, const S*, const S*, const S*, int64_t,        \
                                int64_t, int64_t, int64_t);                                        \
  template void scaled_sigmoid_fwd<S>(const Exec&, S*, const S*, double, int64_t);                 \
  template void scaled_sigmoid_bwd<S>(const Exec&, S*, const S*, const S*, const S*, double,       \
                                      int64_t);                                                    \
  template void group_layernorm_fwd<S>(const Exec&, S*, S*, S*, const S*, const S*, const S*,      \
                                       int64_t, int64_t, int64_t, double);                         \
  template void group_layernorm_bwd<S>(const Exec&, S*, S*, S*, const S*, const S*, const S*,      \
                                       const S*, const S*, int64_t, int64_t, int64_t, const S*);   \
  template void rmsnorm_fwd<S>(const Exec&, S*, S*, const S*, const S*, int64_t, int64_t, double); \
  template void rmsnorm_bwd<S>(const Exec&, S*, S*, const S*, const S*, const S*, const S*,        \
                               int64_t, int64_t, const S*);                                        \
  template void l2norm_fwd<S>(const Exec&, S*, S*, const S*, int64_t, int64_t, double);            \
  template void l2norm_bwd<S>(const Exec&, S*, const S*, const S*, const S*, int64_t, int64_t);    \
  template void rope_fwd<S>(const Exec&, S*, const S*, int64_t, int64_t, int64_t, int64_t,         \
                            double);                                                               \
  template void rope_bwd<S>(const Exec&, S*, const S*, int64_t, int64_t, int64_t, int64_t,         \
                            double);                                                               \
  template void causal_attention_fwd<S>(const Exec&, const cpu::CausalAttention<S>&, S*);          \
  template void causal_attention_bwd<S>(const Exec&, const cpu::CausalAttention<S>&, const S*, S*, \
                                        S*, S*, S*);                                               \
  template void causal_attention_probe<S>(const Exec&, const cpu::CausalAttention<S>&, S*, S*,     \
                                          S*);                                                     \
  template void linear_recurrence_probe<S>(const Exec&, const cpu::LinearRecurrence<S>&,           \
                                           const cpu::LinearRecurrenceProbe<S>&, S*);              \
  template void nonlinear_recurrence_fwd<S>(const Exec&, const cpu::NonlinearRecurrence<S>&);      \
  template int64_t nonlinear_recurrence_work_size<S>(const Exec&,                                  \
                                                     const cpu::NonlinearRecurrence<S>&);          \
  template void nonlinear_recurrence_bwd<S>(const Exec&, const cpu::NonlinearRecurrence<S>&,       \
                                            const S*, S*, S*, S*);                                 \
  template int64_t linear_recurrence_fwd_work_size<S>(const Exec&,                                 \
                                                      const cpu::LinearRecurrence<S>&);           \
  template void linear_recurrence_fwd<S>(const Exec&, const cpu::LinearRecurrence<S>&, S*);        \
  template int64_t linear_recurrence_work_size<S>(const Exec&, const cpu::LinearRecurrence<S>&);   \
  template void linear_recurrence_bwd<S>(const Exec&, const cpu::LinearRecurrence<S>&,             \
                                         const cpu::LinearRecurrenceGrads<S>&, S*);                \
  template void stabilized_gates_fwd<S>(const Exec&, cpu::ForgetGate, int64_t, int64_t, int64_t,   \
                                        const S*, const S*, S*, S*, S*, S*);                       \
  template void stabilized_gates_bwd<S>(const Exec&, cpu::ForgetGate, int64_t, int64_t, int64_t,   \
                                        const S*, const S*, const S*, const S*, const S*,          \
                                        const S*, const S*, const S*, const S*, S*, S*);           \
  template void selective_decay_fwd<S>(const Exec&, int64_t, int64_t, const S*, const S*,          \
                                       const S*, S*, S*);                                          \
  template void selective_decay_bwd<S>(const Exec&, int64_t, int64_t, const S*, const S*,          \
                                       const S*, const S*, const S*, const S*, const S*, S*, S*,   \
                                       S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE
#undef SL_ON_CUDA

}  // namespace statelab::ops
