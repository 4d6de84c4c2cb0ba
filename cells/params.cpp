// ParamStore layout and initialisation.
#include "cells/params.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/error.hpp"

namespace statelab {

namespace init {
InitFn zeros() {
  return [](Rng&, int64_t) { return 0.0; };
}
InitFn constant(double value) {
  return [value](Rng&, int64_t) { return value; };
}
InitFn normal(double stddev) {
  return [stddev](Rng& r, int64_t) { return stddev * r.normal(); };
}
InitFn uniform(double lo, double hi) {
  return [lo, hi](Rng& r, int64_t) { return lo + (hi - lo) * r.uniform(); };
}
}  // namespace init

template <typename S>
ParamId ParamStore<S>::add(const std::string& name, Shape shape, InitFn init_fn, bool decay) {
  SL_CHECK(!allocated_, "parameter '" + name + "' declared after allocation");
  for (const auto& p : infos_) SL_CHECK(p.name != name, "duplicate parameter name '" + name + "'");
  infos_.push_back({name, shape, std::move(init_fn), decay, -1});
  return ParamId(infos_.size() - 1);
}

template <typename S>
void ParamStore<S>::allocate(const Exec& ex, bool trainable) {
  SL_CHECK(!allocated_, "ParamStore allocated twice");
  int64_t offset = 0;
  for (bool decay : {true, false}) {
    for (auto& p : infos_)
      if (p.decay == decay) {
        p.offset = offset;
        offset += aligned_count<S>(p.shape.numel());
      }
    if (decay) decay_size_ = offset;
  }
  trainable_ = trainable;
  for (Buffer<S>* b : buffers()) b->allocate(ex, offset);
  if (ex.on_cuda())
    for (size_t i = 0; i < buffers().size(); ++i) mirrors_[i].assign(size_t(offset), S(0));
  allocated_ = true;
}

template <typename S>
void ParamStore<S>::initialize(uint64_t seed) {
  SL_CHECK(allocated_, "ParamStore::initialize before allocate");
  S* values = host_values();
  std::fill_n(values, size(), S(0));
  for (size_t id = 0; id < infos_.size(); ++id) {
    const auto& p = infos_[id];
    Rng rng(seed, kStreamInit, id);
    S* v = values + p.offset;
    for (int64_t i = 0; i < p.shape.numel(); ++i) v[i] = S(p.init(rng, i));
  }
  if (values_.on_cuda()) values_.from_host(values, size());
  for (Buffer<S>* b : {&grads_, &m_, &v_}) b->zero();
  if (values_.on_cuda())
    for (int which : {1, 2, 3}) std::fill(mirrors_[which].begin(), mirrors_[which].end(), S(0));
}

template <typename S>
void ParamStore<S>::to_host() {
  if (!values_.on_cuda()) return;
  int which = 0;
  for (Buffer<S>* b : buffers()) b->to_host(mirrors_[which++].data(), size());
}

template <typename S>
void ParamStore<S>::to_device() {
  if (!values_.on_cuda()) return;
  int which = 0;
  for (Buffer<S>* b : buffers()) b->from_host(mirrors_[which++].data(), size());
}

template <typename S>
int64_t ParamStore<S>::count() const {
  int64_t n = 0;
  for (const auto& p : infos_) n += p.shape.numel();
  return n;
}

template <typename S>
void ParamStore<S>::zero_grads() {
  SL_CHECK(trainable_, "zero_grads on a forward-only ParamStore");
  grads_.zero();
}

template <typename S>
std::vector<Buffer<S>*> ParamStore<S>::buffers() {
  if (!trainable_) return {&values_};
  return {&values_, &grads_, &m_, &v_};
}

template class ParamStore<float>;
template class ParamStore<double>;

}  // namespace statelab
