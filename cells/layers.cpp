// Layer forward/backward over the kernels' dispatch (CPU or CUDA by the pass); instantiated
// for float and double.
#include "cells/layers.hpp"

#include <cmath>

#include "kernels/ops.hpp"

namespace statelab {

namespace {
constexpr double kNormEps = 1e-5;
}

template <typename S>
Linear<S>::Linear(ParamStore<S>& ps, const std::string& name, int64_t in, int64_t out, bool bias,
                  InitFn weight_init, InitFn bias_init)
    : in_(in), out_(out) {
  w_ = ps.add(name + ".weight", {out, in}, std::move(weight_init), true);
  if (bias) b_ = ps.add(name + ".bias", {out}, std::move(bias_init), false);
}

template <typename S>
void Linear<S>::forward(ParamStore<S>& ps, Pass p, const S* x, S* y, const S* residual) const {
  ops::linear_fwd(p.exec(), y, x, ps.value(w_), b_ >= 0 ? ps.value(b_) : nullptr, p.tokens(), in_,
                  out_, residual);
}

template <typename S>
void Linear<S>::backward(ParamStore<S>& ps, Pass p, const S* x, const S* dy, S* dx,
                         cpu::Into into) const {
  ops::linear_bwd(p.exec(), dx, ps.grad(w_), b_ >= 0 ? ps.grad(b_) : nullptr, dy, x, ps.value(w_),
                  p.tokens(), in_, out_, into);
}

template <typename S>
Embedding<S>::Embedding(ParamStore<S>& ps, const std::string& name, int64_t vocab, int64_t dim)
    : vocab_(vocab), dim_(dim) {
  // The xLSTM "small init", std = sqrt(2 / (5 d)): keeps the residual stream near unit scale.
  e_ = ps.add(name + ".weight", {vocab, dim}, init::normal(std::sqrt(2.0 / (5.0 * dim))), true);
}

template <typename S>
void Embedding<S>::forward(ParamStore<S>& ps, Pass p, const int32_t* tokens, S* y) const {
  ops::embedding_fwd(p.exec(), y, tokens, ps.value(e_), p.tokens(), dim_);
}

template <typename S>
void Embedding<S>::backward(ParamStore<S>& ps, Pass p, const int32_t* tokens, const S* dy) const {
  ops::embedding_bwd(p.exec(), ps.grad(e_), tokens, dy, p.tokens(), vocab_, dim_);
}

template <typename S>
GroupLayerNorm<S>::GroupLayerNorm(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                                  int64_t groups, int64_t group, bool bias)
    : groups_(groups), group_(group) {
  w_ = ps.add(name + ".weight", {groups * group}, init::constant(1.0), false);
  if (bias) b_ = ps.add(name + ".bias", {groups * group}, init::zeros(), false);
  mean_ = arena.reserve(groups);
  rstd_ = arena.reserve(groups);
}

template <typename S>
void GroupLayerNorm<S>::forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x,
                                S* y) const {
  ops::group_layernorm_fwd(p.exec(), y, arena(mean_), arena(rstd_), x, ps.value(w_),
                           b_ >= 0 ? ps.value(b_) : nullptr, p.tokens(), groups_, group_,
                           kNormEps);
}

template <typename S>
void GroupLayerNorm<S>::backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x,
                                 const S* dy, S* dx, const S* skip) const {
  ops::group_layernorm_bwd(p.exec(), dx, ps.grad(w_), b_ >= 0 ? ps.grad(b_) : nullptr, dy, x,
                           arena(mean_), arena(rstd_), ps.value(w_), p.tokens(), groups_, group_,
                           skip);
}

template <typename S>
RmsNorm<S>::RmsNorm(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, int64_t dim,
                    int64_t groups)
    : dim_(dim), groups_(groups) {
  w_ = ps.add(name + ".weight", {dim}, init::constant(1.0), false);
  rstd_ = arena.reserve(groups);
}

template <typename S>
void RmsNorm<S>::forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, S* y) const {
  ops::rmsnorm_fwd(p.exec(), y, arena(rstd_), x, ps.value(w_), p.tokens() * groups_, dim_, kNormEps);
}

template <typename S>
void RmsNorm<S>::backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, const S* dy,
                          S* dx, const S* skip) const {
  ops::rmsnorm_bwd(p.exec(), dx, ps.grad(w_), dy, x, arena(rstd_), ps.value(w_),
                   p.tokens() * groups_, dim_, skip);
}

template <typename S>
CausalConv<S>::CausalConv(ParamStore<S>& ps, const std::string& name, int64_t channels,
                          int64_t kernel, bool bias)
    : channels_(channels), kernel_(kernel) {
  const double bound = 1.0 / std::sqrt(double(kernel));  // PyTorch's Conv1d default range
  w_ = ps.add(name + ".weight", {channels, kernel}, init::uniform(-bound, bound), true);
  if (bias) b_ = ps.add(name + ".bias", {channels}, init::zeros(), false);
}

template <typename S>
void CausalConv<S>::forward(ParamStore<S>& ps, Pass p, const S* x, S* y) const {
  ops::causal_conv1d_fwd(p.exec(), y, x, ps.value(w_), b_ >= 0 ? ps.value(b_) : nullptr, p.B, p.T, channels_,
                         kernel_);
}

template <typename S>
void CausalConv<S>::backward(ParamStore<S>& ps, Pass p, const S* x, const S* dy, S* dx) const {
  ops::causal_conv1d_bwd(p.exec(), dx, ps.grad(w_), b_ >= 0 ? ps.grad(b_) : nullptr, dy, x, ps.value(w_), p.B,
                         p.T, channels_, kernel_);
}

template <typename S>
GatedFfn<S>::GatedFfn(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, int64_t dim,
                      int64_t hidden, cpu::Activation act, double down_init_scale)
    : hidden_(hidden),
      act_(act),
      up_(ps, name + ".up", dim, 2 * hidden, false, init::normal(1.0 / std::sqrt(double(dim)))),
      down_(ps, name + ".down", hidden, dim, false,
            init::normal(down_init_scale / std::sqrt(double(hidden)))) {
  u_ = arena.reserve(2 * hidden);
  a_ = arena.reserve(hidden);
  du_ = arena.reserve(2 * hidden, SlotUse::backward);
  da_ = arena.reserve(hidden, SlotUse::backward);
}

template <typename S>
void GatedFfn<S>::forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, S* y,
                          const S* residual) const {
  up_.forward(ps, p, x, arena(u_));
  ops::gated_fwd(p.exec(), act_, arena(a_), arena(u_), p.tokens(), hidden_);
  down_.forward(ps, p, arena(a_), y, residual);
}

template <typename S>
void GatedFfn<S>::backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, const S* dy,
                           S* dx) const {
  down_.backward(ps, p, arena(a_), dy, arena(da_));
  ops::gated_bwd(p.exec(), act_, arena(du_), arena(da_), arena(u_), p.tokens(), hidden_);
  up_.backward(ps, p, x, arena(du_), dx);
}

#define SL_INSTANTIATE(S)           \
  template class Linear<S>;         \
  template class Embedding<S>;      \
  template class GroupLayerNorm<S>; \
  template class RmsNorm<S>;        \
  template class CausalConv<S>;     \
  template class GatedFfn<S>;
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab
