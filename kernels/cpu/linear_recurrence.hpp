// The unified linear recurrence (DESIGN §3) on the CPU: one kernel family for mLSTM, Mamba-2
// and Gated DeltaNet. Per batch row and head, with S: Dv × Dk and zero initial state,
//   S_t = a_t S_{t-1} (I − b_t k_t k_tᵀ) + c_t v_t k_tᵀ
//   n_t = a_t n_{t-1} + c_t k_t                               (normalized cells only, b = 0)
//   y_t = S_t q_t / (max(|n_tᵀ q_t|, floor_t) + eps)   or   y_t = S_t q_t
// Three forward forms compute the same thing and are tested against each other: step-by-step
// recurrent, parallel (T × T, b = 0 only) and chunkwise (intra-chunk products; the delta rule
// through the UT/WY representation). Backward is the reverse-time recurrence, recomputing the
// states inside each chunk from the chunk-boundary states forward saved (memory O(T/chunk)).
// Checked by finite differences in double and against per-cell direct recurrences (tests/).
#pragma once

#include <cstdint>

namespace statelab::cpu {

// A per-(batch, time, head) vector input or output inside a wider activation buffer:
// element (b, t, h, i) lives at data[(b·T + t)·row + h·head + i]. head = 0 shares one vector
// across heads (Mamba-2's B and C); gradients of a shared vector sum over heads.
template <typename P>
struct Rows {
  P* data = nullptr;
  int64_t row = 0;   // elements between consecutive tokens
  int64_t head = 0;  // elements between consecutive heads; 0 = shared by all heads
};

enum class LinearForm { recurrent, parallel, chunkwise };

template <typename S>
struct LinearRecurrence {
  int64_t B = 0, T = 0, H = 0, Dk = 0, Dv = 0;
  int64_t chunk = 64;        // chunk length of the chunkwise form and of backward's recompute
  Rows<const S> q, k;        // [B, T, H, Dk]
  Rows<const S> v;           // [B, T, H, Dv]
  const S* a = nullptr;      // [B, T, H] transition scale, signed
  const S* b = nullptr;      // [B, T, H] delta-rule strength; nullptr = 0 (no delta term)
  const S* c = nullptr;      // [B, T, H] input scale
  const S* floor = nullptr;  // [B, T, H] normalizer floor; nullptr = no normalizer
  // Added to the normalized output's divisor, y = S q / (max(|nᵀq|, floor) + eps): the xLSTM
  // reference adds 1e-6, which keeps y finite when the floor underflows and nᵀq cancels.
  S eps = 0;
  Rows<S> y;                 // [B, T, H, Dv] output (head stride must be non-zero)
  // Written by forward when non-null, read by backward: the states at the start of chunks
  // 1 .. ceil(T/chunk) − 1 (chunk 0 starts from zero), linear_recurrence_boundary_size(p)
  // elements laid out [B, H, ceil(T/chunk) − 1, Dv·Dk (+ Dk for n)].
  S* boundary = nullptr;
  S* final_state = nullptr;  // [B, H, Dv·Dk (+ Dk for n)] S_T (and n_T) when non-null
};

// Gradients, all ADDED to (callers zero them): shared inputs sum over heads that way.
template <typename S>
struct LinearRecurrenceGrads {
  Rows<const S> dy;     // [B, T, H, Dv] gradient of the loss w.r.t. y
  Rows<S> dq, dk, dv;   // like q, k, v
  S* da = nullptr;      // [B, T, H]
  S* db = nullptr;      // [B, T, H]; required when b is set
  S* dc = nullptr;      // [B, T, H]
  S* dfloor = nullptr;  // [B, T, H]; optional (mLSTM's floor exp(−m_t) carries no gradient)
};

// Elements of the boundary buffer and of backward's scratch for these shapes. The boundary
// size is at most ⌈B·T/chunk⌉·H·(Dv·Dk + Dk), so an arena slot of H·(Dv·Dk + Dk)/chunk
// elements per token (rounded up) holds it. The scratch holds one chunk's recomputed states,
// about (min(chunk, T) + 2)·(Dv·Dk + Dk) elements, independent of B, T and H.
template <typename S>
int64_t linear_recurrence_boundary_size(const LinearRecurrence<S>& p);
template <typename S>
int64_t linear_recurrence_work_size(const LinearRecurrence<S>& p);

// Throws ShapeError on an empty shape, chunk < 1, a missing input, a shared output, or a
// normalizer requested together with a delta term (what every form and device refuses).
template <typename S>
void linear_recurrence_check(const LinearRecurrence<S>& p);

// Throws as linear_recurrence_check does, and on the parallel form requested with a delta term.
// The recurrent and chunkwise forms allocate one scratch vector per call (none per step); the
// parallel form none.
template <typename S>
void linear_recurrence_fwd(const LinearRecurrence<S>& p, LinearForm form = LinearForm::chunkwise);

// Throws ShapeError as linear_recurrence_check does, or when what backward needs is missing
// (the boundary states when T > chunk, a gradient buffer, db with a delta term).
template <typename S>
void linear_recurrence_check_backward(const LinearRecurrence<S>& p,
                                      const LinearRecurrenceGrads<S>& g);

// Needs p.boundary as the last forward wrote it (any form; optional when T <= chunk); work:
// linear_recurrence_work_size(p) elements. Does not allocate.
template <typename S>
void linear_recurrence_bwd(const LinearRecurrence<S>& p, const LinearRecurrenceGrads<S>& g,
                           S* work);

// Per-step read-outs of the recurrence for probes, each [B, T, H] and optional (nullptr = not
// wanted).
template <typename S>
struct LinearRecurrenceProbe {
  S* state_norm = nullptr;       // ‖S_t‖_F, the state after step t
  S* normalizer_norm = nullptr;  // ‖n_t‖ (normalized recurrences only)
  // |n_tᵀ q_t| (normalized only): what the output divides by unless the floor is larger.
  S* n_dot_q = nullptr;
  // ‖S_{t−1} k_t − v_t‖: how far the memory's answer for k_t was from v_t before the write (the
  // delta rule's error).
  S* write_error = nullptr;
};

// Recomputes the states inside each chunk from the boundary states the last forward saved (the
// same recomputation backward does, so one code path serves both) and writes the requested
// read-outs. Needs p.boundary when T > chunk; work: linear_recurrence_work_size(p) elements.
// Reads p only (y, the boundary and the final state are left as they are). Throws ShapeError as
// linear_recurrence_check does, on a missing boundary (T > chunk) or work, and on normalizer_norm
// or n_dot_q requested without a floor. Does not allocate.
template <typename S>
void linear_recurrence_probe(const LinearRecurrence<S>& p, const LinearRecurrenceProbe<S>& probe,
                             S* work);

}  // namespace statelab::cpu
