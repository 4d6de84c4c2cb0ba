// Cross-entropy over the positions that carry an answer (target >= 0); the rest are ignored,
// as the next-token harness of the reference experiments does with ignore_index.
#pragma once

#include <cstdint>

namespace statelab::cpu {

struct LossStats {
  double loss_sum = 0;  // Σ −log p(target) over counted rows
  int64_t count = 0;    // rows with a target
  int64_t correct = 0;  // rows whose argmax equals the target
};

// logits: [N, V]; targets: [N] (negative = ignore). If dlogits is non-null it receives the
// gradient of the *mean* loss over counted rows (zero on ignored rows).
template <typename S>
LossStats cross_entropy(S* dlogits, const S* logits, const int32_t* targets, int64_t N, int64_t V);

}  // namespace statelab::cpu
