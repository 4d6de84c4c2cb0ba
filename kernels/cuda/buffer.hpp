// DeviceBuffer<T>: an owning block of device memory (cudaMalloc, never managed memory), with
// the copies a host needs around it. Allocation happens at setup; the step loop only uses
// pointers into buffers made before it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/cuda/context.hpp"
#include "kernels/memory.hpp"

namespace statelab::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t count) { resize(count); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(o.data_), count_(o.count_) {
    o.data_ = nullptr;
    o.count_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  ~DeviceBuffer() { release(); }

  // Discards the contents. A zero count holds no memory.
  void resize(int64_t count) {
    release();
    if (count <= 0) return;
    void* p = nullptr;
    SL_CUDA_CHECK(cudaMalloc(&p, size_t(count) * sizeof(T)));
    data_ = static_cast<T*>(p);
    count_ = count;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return count_; }
  size_t bytes() const { return size_t(count_) * sizeof(T); }

  // Synchronous copies on the context's stream (setup, tests and diagnostics only).
  void upload(const Context& ctx, const T* host, int64_t count) {
    SL_CHECK(count <= count_, "upload of " + std::to_string(count) + " elements into a buffer of " +
                                  std::to_string(count_));
    SL_CUDA_CHECK(cudaMemcpyAsync(data_, host, size_t(count) * sizeof(T), cudaMemcpyHostToDevice,
                                  ctx.stream));
    SL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }
  void upload(const Context& ctx, const std::vector<T>& host) {
    upload(ctx, host.data(), int64_t(host.size()));
  }
  std::vector<T> download(const Context& ctx) const {
    std::vector<T> host(static_cast<size_t>(count_));
    SL_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, bytes(), cudaMemcpyDeviceToHost, ctx.stream));
    SL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    return host;
  }
  // Every byte 0xFF: a float NaN, so an element a kernel forgot to write shows up in a check.
  void poison(const Context& ctx) {
    if (count_) SL_CUDA_CHECK(cudaMemsetAsync(data_, 0xFF, bytes(), ctx.stream));
  }
  void zero(const Context& ctx) {
    if (count_) SL_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), ctx.stream));
  }

 private:
  void release() {
    if (data_) {
      const cudaError_t err = cudaFree(data_);
      if (err != cudaSuccess)
        std::fprintf(stderr, "statelab: cudaFree failed: %s\n", cudaGetErrorString(err));
      ::statelab::detail::count_device_free();
    }
    data_ = nullptr;
    count_ = 0;
  }
  T* data_ = nullptr;
  int64_t count_ = 0;
};

}  // namespace statelab::cuda
