// Arena: the activation memory of a model, allocated once and carved into named slots.
// A slot holds `per_token` elements for every token of the largest batch × length it must
// serve, so a forward or backward pass never allocates (and the GPU step can be graph-captured).
// Forward slots are sized for the largest forward (long eval sequences); backward slots only for
// the largest training batch, which is much smaller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/aligned.hpp"
#include "kernels/error.hpp"

namespace statelab {

enum class SlotUse { forward, backward };

template <typename S>
class Arena {
 public:
  using Slot = int;

  Slot reserve(int64_t per_token, SlotUse use = SlotUse::forward) {
    SL_CHECK(buffer_.empty(), "Arena::reserve after allocate");
    slots_.push_back({per_token, use, 0});
    return Slot(slots_.size() - 1);
  }

  void allocate(int64_t max_forward_tokens, int64_t max_backward_tokens) {
    SL_CHECK(buffer_.empty(), "Arena allocated twice");
    max_forward_tokens_ = max_forward_tokens;
    max_backward_tokens_ = max_backward_tokens;
    int64_t total = 0;
    for (auto& s : slots_) {
      s.offset = total;
      total += aligned_count<S>(s.per_token * (s.use == SlotUse::forward ? max_forward_tokens
                                                                          : max_backward_tokens));
    }
    buffer_.assign(size_t(total), S(0));
  }

  S* operator()(Slot s) { return buffer_.data() + slots_[size_t(s)].offset; }
  int64_t max_forward_tokens() const { return max_forward_tokens_; }
  int64_t max_backward_tokens() const { return max_backward_tokens_; }
  int64_t bytes() const { return int64_t(buffer_.size() * sizeof(S)); }

 private:
  struct SlotInfo {
    int64_t per_token;
    SlotUse use;
    int64_t offset;
  };
  std::vector<SlotInfo> slots_;
  AlignedVector<S> buffer_;  // 64-byte aligned slots: see kernels/aligned.hpp
  int64_t max_forward_tokens_ = 0, max_backward_tokens_ = 0;
};

// What one pass works on: B sequences of T steps.
struct Pass {
  int64_t B = 0, T = 0;
  int64_t tokens() const { return B * T; }
};

}  // namespace statelab
