// Buffers on the CPU or a CUDA device. Builds without the CUDA backend keep the CPU branch only.
#include "kernels/memory.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>

#include "kernels/error.hpp"
#include "kernels/loss_totals.hpp"

#ifdef STATELAB_HAVE_CUDA
#include "kernels/cuda/context.hpp"
#endif

namespace statelab {

namespace {
std::atomic<uint64_t> device_frees{0};
}  // namespace

uint64_t device_memory_frees() { return device_frees.load(); }
void detail::count_device_free() { ++device_frees; }

template <typename S>
Buffer<S>::~Buffer() {
  release();
}

template <typename S>
void Buffer<S>::release() {
#ifdef STATELAB_HAVE_CUDA
  if (ctx_ && data_) {
    const cudaError_t err = cudaFree(data_);
    if (err != cudaSuccess) std::fprintf(stderr, "statelab: cudaFree: %s\n", cudaGetErrorString(err));
    detail::count_device_free();
  }
#endif
  host_ = AlignedVector<S>();
  data_ = nullptr;
  count_ = 0;
  ctx_ = nullptr;
}

template <typename S>
void Buffer<S>::allocate(const Exec& ex, int64_t count) {
  release();
  count_ = count;
  if (!ex.on_cuda()) {
    host_.assign(size_t(count), S{});
    data_ = host_.data();
    return;
  }
#ifdef STATELAB_HAVE_CUDA
  ctx_ = ex.cuda;
  if (count == 0) return;
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, size_t(count) * sizeof(S));
  if (err != cudaSuccess) {
    count_ = 0;
    ctx_ = nullptr;
    throw CudaError("cannot allocate " + std::to_string(size_t(count) * sizeof(S) >> 20) +
                    " MiB on " + ex.cuda->name + ": " + cudaGetErrorString(err));
  }
  data_ = static_cast<S*>(p);
  zero();
#else
  throw Error("this build has no CUDA backend");
#endif
}

template <typename S>
void Buffer<S>::to_host(S* dst, int64_t count, int64_t offset) const {
  SL_CHECK(offset >= 0 && offset + count <= count_, "Buffer::to_host out of range");
  if (!ctx_) {
    std::copy_n(data_ + offset, count, dst);
    return;
  }
#ifdef STATELAB_HAVE_CUDA
  SL_CUDA_CHECK(cudaMemcpyAsync(dst, data_ + offset, size_t(count) * sizeof(S),
                                cudaMemcpyDeviceToHost, ctx_->stream));
  SL_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
#endif
}

template <typename S>
void Buffer<S>::from_host(const S* src, int64_t count, int64_t offset) {
  SL_CHECK(offset >= 0 && offset + count <= count_, "Buffer::from_host out of range");
  if (!ctx_) {
    std::copy_n(src, count, data_ + offset);
    return;
  }
#ifdef STATELAB_HAVE_CUDA
  SL_CUDA_CHECK(cudaMemcpyAsync(data_ + offset, src, size_t(count) * sizeof(S),
                                cudaMemcpyHostToDevice, ctx_->stream));
  SL_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
#endif
}

template <typename S>
void Buffer<S>::zero() {
  if (!ctx_) {
    std::fill(host_.begin(), host_.end(), S{});
    return;
  }
#ifdef STATELAB_HAVE_CUDA
  if (count_) SL_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_t(count_) * sizeof(S), ctx_->stream));
#endif
}

template class Buffer<float>;
template class Buffer<double>;
template class Buffer<int32_t>;
template class Buffer<LossTotals>;

}  // namespace statelab
