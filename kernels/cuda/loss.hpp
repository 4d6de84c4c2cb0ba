// Masked cross-entropy on CUDA, the twin of kernels/cpu/loss.hpp, with its totals kept in
// device memory: a training step never waits for the host, and the trainer copies the totals
// back asynchronously every few steps. Checked by kernels/selftest/loss_optim.cpp.
#pragma once

#include <cstdint>

#include "kernels/cuda/context.hpp"
#include "kernels/loss_totals.hpp"

namespace statelab::cuda {

// Device-side twin of cpu::LossStats (kernels/loss_totals.hpp).
using LossTotals = statelab::LossTotals;

// logits: [N, V]; targets: [N] device memory (negative = ignore). Adds this call's sums into
// *totals (device memory; the caller zeroes it). If dlogits is non-null it receives the
// gradient of the mean loss over this call's counted rows (zero on ignored rows; all zero when
// no row counts).
void cross_entropy(const Context& ctx, float* dlogits, const float* logits,
                   const int32_t* targets, int64_t N, int64_t V, LossTotals* totals);

}  // namespace statelab::cuda
