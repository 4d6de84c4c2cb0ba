// Arena: the activation memory of a model, allocated once on the model's device and carved into
// named slots. A slot holds `per_token` elements for every token of the largest batch × length
// it must serve, so a forward or backward pass never allocates (and the GPU step can be
// graph-captured). Forward slots are sized for the largest forward (long eval sequences);
// backward slots only for the largest training batch, which is much smaller. Diagnostics and
// probes read a host copy (download(), then host()), which on the CPU is the arena itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/aligned.hpp"
#include "kernels/error.hpp"
#include "kernels/exec.hpp"
#include "kernels/memory.hpp"

namespace statelab {

enum class SlotUse { forward, backward };

template <typename S>
class Arena {
 public:
  using Slot = int;

  Slot reserve(int64_t per_token, SlotUse use = SlotUse::forward) {
    SL_CHECK(buffer_.size() == 0, "Arena::reserve after allocate");
    slots_.push_back({per_token, use, 0});
    return Slot(slots_.size() - 1);
  }

  void allocate(const Exec& ex, int64_t max_forward_tokens, int64_t max_backward_tokens) {
    SL_CHECK(buffer_.size() == 0, "Arena allocated twice");
    max_forward_tokens_ = max_forward_tokens;
    max_backward_tokens_ = max_backward_tokens;
    int64_t total = 0;
    for (auto& s : slots_) {
      s.offset = total;
      total += aligned_count<S>(s.per_token * (s.use == SlotUse::forward ? max_forward_tokens
                                                                          : max_backward_tokens));
    }
    buffer_.allocate(ex, total);
  }

  S* operator()(Slot s) { return buffer_.data() + slots_[size_t(s)].offset; }
  int64_t max_forward_tokens() const { return max_forward_tokens_; }
  int64_t max_backward_tokens() const { return max_backward_tokens_; }
  int64_t bytes() const { return int64_t(buffer_.size() * int64_t(sizeof(S))); }

  // Copies the first `count` elements of slot s to dst (the slot itself on the CPU, one
  // transfer on a GPU).
  void to_host(Slot s, int64_t count, S* dst) const {
    buffer_.to_host(dst, count, slots_[size_t(s)].offset);
  }
  // Refreshes the host copy of every slot (a no-op on the CPU); host(s) then reads slot s.
  void download() {
    if (!buffer_.on_cuda()) return;
    mirror_.resize(size_t(buffer_.size()));
    buffer_.to_host(mirror_.data(), buffer_.size());
  }
  const S* host(Slot s) const { return host_base() + slots_[size_t(s)].offset; }
  // The host copy of what `inside` points at in the arena (the kernels' argument structs hold
  // arena pointers).
  const S* host_of(const S* inside) const {
    const std::ptrdiff_t at = inside - buffer_.data();
    SL_CHECK(at >= 0 && at < buffer_.size(), "Arena::host_of: the pointer is not in the arena");
    return host_base() + at;
  }

 private:
  const S* host_base() const { return buffer_.on_cuda() ? mirror_.data() : buffer_.data(); }
  struct SlotInfo {
    int64_t per_token;
    SlotUse use;
    int64_t offset;
  };
  std::vector<SlotInfo> slots_;
  Buffer<S> buffer_;  // 64-byte aligned slots on the CPU: see kernels/aligned.hpp
  std::vector<S> mirror_;
  int64_t max_forward_tokens_ = 0, max_backward_tokens_ = 0;
};

// Scratch memory whose size depends on the pass's shape in ways a per-token slot cannot bound
// (a recurrence kernel's work buffer): grown on the first pass that needs more, on the pass's
// device, and reused after; a fixed shape never allocates again.
template <typename S>
class Scratch {
 public:
  S* get(const Exec& ex, int64_t count) {
    if (count > buffer_.size()) buffer_.allocate(ex, count);
    return buffer_.data();
  }

 private:
  Buffer<S> buffer_;
};

// What one pass works on: B sequences of T steps, and where (null: the CPU).
struct Pass {
  int64_t B = 0, T = 0;
  const Exec* ex = nullptr;
  // False for an evaluation: a block may then store only what the next layer reads (the LSTM /
  // sLSTM keep h, not their gates and states), and the model refuses backward and probes.
  bool saves_activations = true;
  int64_t tokens() const { return B * T; }
  static Pass evaluation(int64_t B, int64_t T) { return {B, T, nullptr, false}; }
  const Exec& exec() const {
    static const Exec kCpu;
    return ex ? *ex : kCpu;
  }
};

}  // namespace statelab
