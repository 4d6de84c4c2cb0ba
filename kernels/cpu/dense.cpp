// Linear and embedding on Eigen; instantiated for float (training) and double (gradient checks).
#include "kernels/cpu/dense.hpp"

#include <algorithm>

#include "kernels/cpu/eigen_maps.hpp"

namespace statelab::cpu {

template <typename S>
void linear_fwd(S* y, const S* x, const S* W, const S* b, int64_t N, int64_t I, int64_t O,
                const S* residual) {
  auto Y = mat(y, N, O);
  if (residual) {
    if (residual != y) Y = cmat(residual, N, O);
    Y.noalias() += cmat(x, N, I) * cmat(W, O, I).transpose();
  } else {
    Y.noalias() = cmat(x, N, I) * cmat(W, O, I).transpose();
  }
  if (b) Y.rowwise() += ConstVecMap<S>(b, O).transpose();
}

template <typename S>
void linear_bwd(S* dx, S* dW, S* db, const S* dy, const S* x, const S* W, int64_t N, int64_t I,
                int64_t O, Into into) {
  const auto dY = cmat(dy, N, O);
  if (dx && into == Into::add)
    mat(dx, N, I).noalias() += dY * cmat(W, O, I);
  else if (dx)
    mat(dx, N, I).noalias() = dY * cmat(W, O, I);
  mat(dW, O, I).noalias() += dY.transpose() * cmat(x, N, I);
  if (db) VecMap<S>(db, O) += dY.colwise().sum().transpose();
}

template <typename S>
void embedding_fwd(S* y, const int32_t* tokens, const S* E, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) std::copy_n(E + int64_t(tokens[n]) * D, D, y + n * D);
}

template <typename S>
void embedding_bwd(S* dE, const int32_t* tokens, const S* dy, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    S* row = dE + int64_t(tokens[n]) * D;
    for (int64_t d = 0; d < D; ++d) row[d] += dy[n * D + d];
  }
}

#define SL_INSTANTIATE(S)                                                                     \
  template void linear_fwd<S>(S*, const S*, const S*, const S*, int64_t, int64_t, int64_t,   \
                              const S*);                                                    \
  template void linear_bwd<S>(S*, S*, S*, const S*, const S*, const S*, int64_t, int64_t,   \
                              int64_t, Into);                                               \
  template void embedding_fwd<S>(S*, const int32_t*, const S*, int64_t, int64_t);           \
  template void embedding_bwd<S>(S*, const int32_t*, const S*, int64_t, int64_t);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
