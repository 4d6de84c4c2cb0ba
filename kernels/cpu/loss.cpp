// Masked softmax cross-entropy with a log-sum-exp shift; argmax ties go to the lower id.
#include "kernels/cpu/loss.hpp"

#include <algorithm>
#include <cmath>

namespace statelab::cpu {

template <typename S>
LossStats cross_entropy(S* dlogits, const S* logits, const int32_t* targets, int64_t N,
                        int64_t V) {
  LossStats st;
  for (int64_t n = 0; n < N; ++n) st.count += targets[n] >= 0;
  const S inv_count = st.count ? S(1) / S(st.count) : S(0);
  for (int64_t n = 0; n < N; ++n) {
    const S* row = logits + n * V;
    S* drow = dlogits ? dlogits + n * V : nullptr;
    if (targets[n] < 0) {
      if (drow) std::fill_n(drow, V, S(0));
      continue;
    }
    const int64_t arg = std::max_element(row, row + V) - row;
    const S mx = row[arg];
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v] - mx));
    const double log_z = std::log(z) + double(mx);
    st.loss_sum += log_z - double(row[targets[n]]);
    st.correct += arg == targets[n];
    if (drow) {
      for (int64_t v = 0; v < V; ++v) drow[v] = S(std::exp(double(row[v]) - log_z)) * inv_count;
      drow[targets[n]] -= inv_count;
    }
  }
  return st;
}

template LossStats cross_entropy<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template LossStats cross_entropy<double>(double*, const double*, const int32_t*, int64_t,
                                         int64_t);

}  // namespace statelab::cpu
