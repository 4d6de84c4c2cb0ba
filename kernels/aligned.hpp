// Buffers aligned to 64 bytes, with every sub-buffer offset rounded to 64 bytes as well.
// Vectorized Eigen reductions peel to an alignment boundary, so the summation order — and the
// last bit of a float result — depends on where data sits. Fixed alignment makes the same seed
// give a bit-identical run whatever addresses the allocator hands out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace statelab {

constexpr size_t kAlignBytes = 64;

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    const size_t bytes = (n * sizeof(T) + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
    void* p = std::aligned_alloc(kAlignBytes, bytes ? bytes : kAlignBytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// `count` elements of T rounded up to a whole number of alignment blocks.
template <typename T>
int64_t aligned_count(int64_t count) {
  constexpr int64_t per_block = int64_t(kAlignBytes / sizeof(T));
  return (count + per_block - 1) / per_block * per_block;
}

}  // namespace statelab
