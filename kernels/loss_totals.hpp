// The sums a masked cross-entropy pass reports, laid out for device memory: a training step on
// the GPU writes them there and the trainer copies them back asynchronously. The CPU path's
// cpu::LossStats carries the same three numbers.
#pragma once

namespace statelab {

struct LossTotals {
  double loss_sum;             // Σ −log p(target) over counted rows
  unsigned long long count;    // rows with a target (target >= 0)
  unsigned long long correct;  // rows whose argmax (first maximal index) is the target
};

}  // namespace statelab
