// Buffer<S>: owning memory on the CPU (64-byte aligned, see aligned.hpp) or on the current
// CUDA device (cudaMalloc), zero-filled, with the copies a host needs around it. The
// ParamStore, the activation Arena and a model's token and loss buffers are built from these,
// so a model lives entirely on one device and the step loop never allocates. Instantiated for
// float, double, int32_t and LossTotals.
#pragma once

#include <cstdint>

#include "kernels/aligned.hpp"
#include "kernels/exec.hpp"

namespace statelab {

template <typename S>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  // Replaces the contents with `count` zeros on the device ex names.
  void allocate(const Exec& ex, int64_t count);
  S* data() { return data_; }
  const S* data() const { return data_; }
  int64_t size() const { return count_; }
  bool on_cuda() const { return ctx_ != nullptr; }

  // Synchronous copies of [offset, offset + count), ordered after the work already queued on
  // the device's stream (setup, checkpoints and diagnostics only).
  void to_host(S* dst, int64_t count, int64_t offset = 0) const;
  void from_host(const S* src, int64_t count, int64_t offset = 0);
  void zero();

 private:
  void release();
  S* data_ = nullptr;
  int64_t count_ = 0;
  const cuda::Context* ctx_ = nullptr;  // the device's context; null on the CPU
  AlignedVector<S> host_;
};

// How many blocks of device memory this process has freed so far. A captured CUDA graph holds
// raw device pointers, so a graph captured before this count last changed may point into
// memory that now belongs to something else, and must be captured again.
uint64_t device_memory_frees();
namespace detail {
void count_device_free();  // called by every owner of device memory when it frees a block
}  // namespace detail

}  // namespace statelab
