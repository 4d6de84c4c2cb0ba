// ParamStore: every parameter of a model in one contiguous buffer on the model's device, with
// one buffer each for gradients and the two AdamW moments, and named views for export and
// checkpoints (which read host copies: the buffers themselves on the CPU, mirrors on a GPU).
// Parameters with weight decay are laid out first and those without (norms, biases, gate
// biases) after them, so the optimizer treats each group as one flat region. Each parameter
// starts on a 64-byte boundary; the padding between them stays zero.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/aligned.hpp"
#include "kernels/exec.hpp"
#include "kernels/memory.hpp"
#include "kernels/rng.hpp"
#include "kernels/tensor.hpp"

namespace statelab {

// Initial value of element `index` of a parameter, drawn from the parameter's own stream.
using InitFn = std::function<double(Rng&, int64_t index)>;

namespace init {
InitFn zeros();
InitFn constant(double value);
InitFn normal(double stddev);
InitFn uniform(double lo, double hi);
}  // namespace init

struct ParamInfo {
  std::string name;  // stable dotted name, e.g. "blocks.0.slstm.R"
  Shape shape;
  InitFn init;
  bool decay = true;
  int64_t offset = -1;  // into the flat buffers, once allocated
};

using ParamId = int;

template <typename S>
class ParamStore {
 public:
  // Declares a parameter; names must be unique. Valid only before allocate().
  ParamId add(const std::string& name, Shape shape, InitFn init, bool decay);
  // Lays out and zero-fills every buffer on ex's device; after this, views are stable. A store
  // that is not `trainable` (a forward-only model: probes, evaluation copies) holds the values
  // alone: no gradients, no optimizer moments.
  void allocate(const Exec& ex = {}, bool trainable = true);
  // Fills parameters from (seed, kStreamInit, parameter number) and zeroes the rest.
  void initialize(uint64_t seed);

  bool allocated() const { return allocated_; }
  bool trainable() const { return trainable_; }
  bool on_cuda() const { return values_.on_cuda(); }
  int64_t size() const { return values_.size(); }  // buffer length, padding included
  int64_t count() const;                           // parameters, padding excluded
  int64_t decay_size() const { return decay_size_; }  // elements [0, decay_size) decay
  const std::vector<ParamInfo>& infos() const { return infos_; }
  const ParamInfo& info(ParamId id) const { return infos_.at(size_t(id)); }

  // On the model's device.
  S* value(ParamId id) { return values_.data() + info(id).offset; }
  const S* value(ParamId id) const { return values_.data() + info(id).offset; }
  S* grad(ParamId id) { return grads_.data() + info(id).offset; }
  S* values() { return values_.data(); }
  const S* values() const { return values_.data(); }
  S* grads() { return grads_.data(); }
  S* moment1() { return m_.data(); }
  S* moment2() { return v_.data(); }
  void zero_grads();

  // Host copies of all four buffers: on the CPU the buffers themselves; on a GPU, mirrors that
  // to_host() refreshes from the device and to_device() sends back.
  S* host_values() { return host(values_, 0); }
  const S* host_values() const { return host(values_, 0); }
  S* host_grads() { return host(grads_, 1); }
  S* host_moment1() { return host(m_, 2); }
  const S* host_moment1() const { return host(m_, 2); }
  S* host_moment2() { return host(v_, 3); }
  const S* host_moment2() const { return host(v_, 3); }
  void to_host();
  void to_device();

 private:
  S* host(Buffer<S>& b, int which) { return b.on_cuda() ? mirrors_[which].data() : b.data(); }
  const S* host(const Buffer<S>& b, int which) const {
    return b.on_cuda() ? mirrors_[which].data() : b.data();
  }
  std::vector<Buffer<S>*> buffers();  // the allocated ones, values first
  std::vector<ParamInfo> infos_;
  Buffer<S> values_, grads_, m_, v_;  // 64-byte aligned on the CPU: see kernels/aligned.hpp
  std::vector<S> mirrors_[4];         // host copies of values, grads, m, v on a GPU
  int64_t decay_size_ = 0;
  bool allocated_ = false;
  bool trainable_ = true;
};

}  // namespace statelab
