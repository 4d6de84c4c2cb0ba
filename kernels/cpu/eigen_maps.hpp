// Row-major Eigen maps over raw buffers: how the CPU kernels see [rows, cols] slices of
// batch-major tensors without copying. A stride lets a map skip the other heads or time steps.
#pragma once

#include <Eigen/Core>

namespace statelab::cpu {

template <typename S>
using RowMatrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using MatMap = Eigen::Map<RowMatrix<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename S>
using ConstMatMap = Eigen::Map<const RowMatrix<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename S>
using VecMap = Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, 1>>;
template <typename S>
using ConstVecMap = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>;

// A [rows, cols] view whose consecutive rows lie `stride` elements apart (stride = cols if dense).
template <typename S>
MatMap<S> mat(S* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index stride = -1) {
  return MatMap<S>(p, rows, cols, Eigen::OuterStride<>(stride < 0 ? cols : stride));
}
template <typename S>
ConstMatMap<S> cmat(const S* p, Eigen::Index rows, Eigen::Index cols, Eigen::Index stride = -1) {
  return ConstMatMap<S>(p, rows, cols, Eigen::OuterStride<>(stride < 0 ? cols : stride));
}

}  // namespace statelab::cpu
