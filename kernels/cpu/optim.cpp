// AdamW and gradient-norm arithmetic, element by element.
#include "kernels/cpu/optim.hpp"

#include <cmath>

namespace statelab::cpu {

template <typename S>
void adamw_update(S* p, const S* g, S* m, S* v, int64_t n, const AdamWStep& s) {
  const double c1 = 1.0 / (1.0 - std::pow(s.beta1, double(s.step)));
  const double c2 = 1.0 / (1.0 - std::pow(s.beta2, double(s.step)));
  const S decay = S(1.0 - s.lr * s.weight_decay);
  const S b1 = S(s.beta1), b2 = S(s.beta2);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (S(1) - b1) * g[i];
    v[i] = b2 * v[i] + (S(1) - b2) * g[i] * g[i];
    const S denom = S(std::sqrt(double(v[i]) * c2) + s.eps);
    p[i] = p[i] * decay - S(s.lr * c1) * m[i] / denom;
  }
}

template <typename S>
double global_norm(const S* g, int64_t n) {
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += double(g[i]) * g[i];
  return std::sqrt(sq);
}

template <typename S>
void scale_inplace(S* g, int64_t n, double factor) {
  const S f = S(factor);
  for (int64_t i = 0; i < n; ++i) g[i] *= f;
}

#define SL_INSTANTIATE(S)                                                        \
  template void adamw_update<S>(S*, const S*, S*, S*, int64_t, const AdamWStep&); \
  template double global_norm<S>(const S*, int64_t);                             \
  template void scale_inplace<S>(S*, int64_t, double);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
