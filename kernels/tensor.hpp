// Tensor: a typed view of memory (pointer, shape, device), never an owner.
// Row-major, batch-major: activations are [B, T, ...]. Buffers are owned by the ParamStore
// and the activation Arena; everything else passes views, so nothing allocates in a step.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "kernels/error.hpp"

namespace statelab {

enum class Device { cpu, cuda };

class Shape {
 public:
  static constexpr int kMaxRank = 6;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    SL_CHECK_SHAPE(dims.size() <= kMaxRank, "rank above " + std::to_string(kMaxRank));
    for (int64_t d : dims) {
      SL_CHECK_SHAPE(d >= 0, "negative dimension");
      dims_[rank_++] = d;
    }
  }
  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i < 0 ? rank_ + i : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[i] != o.dims_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

template <typename S>
struct Tensor {
  S* data = nullptr;
  Shape shape;
  Device device = Device::cpu;

  int64_t numel() const { return shape.numel(); }
  S& operator[](int64_t i) const { return data[i]; }
};

}  // namespace statelab
