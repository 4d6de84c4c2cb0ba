// Pointwise work on CUDA, twins of kernels/cpu/elementwise.hpp with the same arguments after
// the context and the same contracts (what is overwritten, what accumulates). fp32 throughout.
// Checked against the CPU twins by kernels/selftest/pointwise.cpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda {

using cpu::Activation;

void activation_fwd(const Context& ctx, Activation a, float* y, const float* x, int64_t n);
void activation_bwd(const Context& ctx, Activation a, float* dx, const float* dy, const float* x,
                    int64_t n);
void gated_fwd(const Context& ctx, Activation a, float* y, const float* u, int64_t N, int64_t F);
void gated_bwd(const Context& ctx, Activation a, float* du, const float* dy, const float* u,
               int64_t N, int64_t F);

void causal_conv1d_fwd(const Context& ctx, float* y, const float* x, const float* w,
                       const float* bias, int64_t B, int64_t T, int64_t C, int64_t K);
void causal_conv1d_bwd(const Context& ctx, float* dx, float* dw, float* dbias, const float* dy,
                       const float* x, const float* w, int64_t B, int64_t T, int64_t C, int64_t K);

void add_inplace(const Context& ctx, float* y, const float* x, int64_t n);
void add(const Context& ctx, float* y, const float* a, const float* b, int64_t n);
void affine(const Context& ctx, float* y, const float* x, double alpha, double beta, int64_t n);
void fill_zero(const Context& ctx, float* y, int64_t n);
void copy_rows(const Context& ctx, float* dst, int64_t dst_stride, const float* src,
               int64_t src_stride, int64_t rows, int64_t width, double scale = 1);
void axpy_rows(const Context& ctx, float* dst, int64_t dst_stride, const float* src,
               int64_t src_stride, int64_t rows, int64_t width, double alpha);

void silu_gate_fwd(const Context& ctx, float* y, const float* x, const float* g, int64_t n);
void silu_gate_bwd(const Context& ctx, float* dx, float* dg, const float* dy, const float* x,
                   const float* g, int64_t n);
void skip_add_fwd(const Context& ctx, float* y, const float* a, const float* skip, const float* x,
                  int64_t x_stride, int64_t N, int64_t I, int64_t group);
void skip_add_bwd(const Context& ctx, float* dx, float* dskip, const float* dy, const float* skip,
                  const float* x, int64_t x_stride, int64_t N, int64_t I, int64_t group);
void scaled_sigmoid_fwd(const Context& ctx, float* y, const float* x, double scale, int64_t n);
void scaled_sigmoid_bwd(const Context& ctx, float* dx, const float* dy1, const float* dy2,
                        const float* x, double scale, int64_t n);

}  // namespace statelab::cuda
