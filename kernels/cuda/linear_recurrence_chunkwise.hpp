// Internal to the CUDA linear recurrence: the chunkwise kernels (intra-chunk matrix products on
// the tensor cores, 3xTF32 for fp32; the state carried from chunk to chunk on chip; the UT/WY
// form for the delta rule). linear_recurrence.cu dispatches to them for long sequences; the
// public entry points and their contracts are in linear_recurrence.hpp.
#pragma once

#include <cstdint>

#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cuda/context.hpp"

namespace statelab::cuda::chunkwise {

// Whether these shapes are ones the chunkwise kernels handle: Dk <= 128, Dv <= 256,
// 16 <= chunk <= 64 (each chunk is one 64-step tile), B·H <= 65535 and ⌈T / chunk⌉ <= 65535.
bool supports(const cpu::LinearRecurrence<float>& p);
// Whether the parallel schedule below handles these shapes as well: for the delta rule it also
// needs Dk² <= chunk·Dv (each chunk's Dk × Dk transition waits in the chunk's outputs).
bool supports_parallel(const cpu::LinearRecurrence<float>& p);
// How forward covers the chunks. sequential: one pass over them carries the state on chip.
// parallel (p.boundary required when T > chunk): every chunk's own contribution to its end state
// at once, a scan over the chunks through p.boundary, then every chunk's outputs at once.
// automatic: parallel for scalar decay wherever it can run, and for the delta rule at one chunk
// or where the sequential pass would leave the GPU mostly idle.
enum class Schedule { automatic, sequential, parallel };

// Scratch elements forward needs: B·H·(⌈T / chunk⌉ − 1)·2560 where the delta rule takes the
// parallel schedule (each chunk's triangular inverse, passed from the kernel that solves it for
// the chunk's transition to the one that computes its outputs), 0 otherwise.
int64_t forward_work_size(const Context& ctx, const cpu::LinearRecurrence<float>& p,
                          Schedule schedule = Schedule::automatic);
// Same contract as linear_recurrence_fwd: writes y, and boundary / final_state when non-null;
// work (16-byte aligned) as forward_work_size says, null where that is 0.
void forward(const Context& ctx, const cpu::LinearRecurrence<float>& p, float* work,
             Schedule schedule = Schedule::automatic);
// Scratch elements backward needs: B·T·H·⌈Dv / slice⌉ (at most 16·B·T·H) for a normalized cell,
// 0 otherwise (the states are recomputed from p.boundary).
int64_t work_size(const cpu::LinearRecurrence<float>& p);
// Same contract as linear_recurrence_bwd: gradients added; needs p.boundary from forward.
void backward(const Context& ctx, const cpu::LinearRecurrence<float>& p,
              const cpu::LinearRecurrenceGrads<float>& g, float* work);

}  // namespace statelab::cuda::chunkwise
