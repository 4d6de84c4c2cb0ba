// Pointwise work on the CPU: activations, the gated unit act(g) ⊙ v of the gated FFN, the
// causal depthwise conv1d that feeds the recurrent cells, and in-place sums. Backward functions
// take the forward *input* and overwrite the input gradient.
#pragma once

#include <cstdint>
#include <string>

namespace statelab::cpu {

enum class Activation { identity, silu, gelu, tanh, sigmoid };
Activation activation_from_name(const std::string& name);  // throws on unknown

template <typename S>
void activation_fwd(Activation a, S* y, const S* x, int64_t n);
template <typename S>
void activation_bwd(Activation a, S* dx, const S* dy, const S* x, int64_t n);

// u: [N, 2F] rows laid out [gate | value]; y: [N, F] = act(gate) ⊙ value
template <typename S>
void gated_fwd(Activation a, S* y, const S* u, int64_t N, int64_t F);
template <typename S>
void gated_bwd(Activation a, S* du, const S* dy, const S* u, int64_t N, int64_t F);

// Causal depthwise convolution over time: x, y: [B, T, C]; w: [C, K]; bias: [C] (may be null).
// y[b,t,c] = bias[c] + Σ_j w[c,j] · x[b, t-K+1+j, c], zero before t = 0.
template <typename S>
void causal_conv1d_fwd(S* y, const S* x, const S* w, const S* bias, int64_t B, int64_t T,
                       int64_t C, int64_t K);
// dx overwritten; dw, dbias accumulated (dbias may be null)
template <typename S>
void causal_conv1d_bwd(S* dx, S* dw, S* dbias, const S* dy, const S* x, const S* w, int64_t B,
                       int64_t T, int64_t C, int64_t K);

// y[i] += x[i]
template <typename S>
void add_inplace(S* y, const S* x, int64_t n);
// y[i] = a[i] + b[i]
template <typename S>
void add(S* y, const S* a, const S* b, int64_t n);
// y[i] = alpha·x[i] + beta (y may equal x)
template <typename S>
void affine(S* y, const S* x, double alpha, double beta, int64_t n);
// y[i] = 0
template <typename S>
void fill_zero(S* y, int64_t n);

// Strided rows: row r of dst starts at dst + r·dst_stride, of src at src + r·src_stride; each
// row has `width` elements. copy_rows writes dst = scale·src; axpy_rows adds dst += alpha·src.
// They pack and unpack the column blocks of fused projections (e.g. [q | k | v] per token).
template <typename S>
void copy_rows(S* dst, int64_t dst_stride, const S* src, int64_t src_stride, int64_t rows,
               int64_t width, double scale = 1);
template <typename S>
void axpy_rows(S* dst, int64_t dst_stride, const S* src, int64_t src_stride, int64_t rows,
               int64_t width, double alpha);

// The SiLU output gate y = x ⊙ SiLU(g) and its backward (dx, dg overwritten). x, g, y: [n].
template <typename S>
void silu_gate_fwd(S* y, const S* x, const S* g, int64_t n);
template <typename S>
void silu_gate_bwd(S* dx, S* dg, const S* dy, const S* x, const S* g, int64_t n);

// A learnable skip y[r, i] = a[r, i] + skip[i / group] · x[r·x_stride + i] over N rows of I:
// group = 1 is mLSTM's per-unit skip, group = P Mamba-2's per-head D. x may be a column block
// of a wider buffer (x_stride >= I). Backward: dy flows to a unchanged (the caller reuses it),
// dx[r·x_stride + i] = dy · skip is overwritten, dskip accumulates Σ dy · x.
template <typename S>
void skip_add_fwd(S* y, const S* a, const S* skip, const S* x, int64_t x_stride, int64_t N,
                  int64_t I, int64_t group);
template <typename S>
void skip_add_bwd(S* dx, S* dskip, const S* dy, const S* skip, const S* x, int64_t x_stride,
                  int64_t N, int64_t I, int64_t group);

// A scaled sigmoid gate y = scale·σ(x) (Gated DeltaNet's β, 2σ in the pm1 range) and its
// backward dx = (dy1 + dy2)·scale·σ'(x), dx overwritten; dy2 may be null (β is both the b and
// the c of the recurrence, so two gradients meet here).
template <typename S>
void scaled_sigmoid_fwd(S* y, const S* x, double scale, int64_t n);
template <typename S>
void scaled_sigmoid_bwd(S* dx, const S* dy1, const S* dy2, const S* x, double scale, int64_t n);

}  // namespace statelab::cpu
