// The unified linear recurrence on Eigen: recurrent, parallel and chunkwise (UT/WY) forward
// forms and the reverse-time backward, instantiated for float (training) and double (tests).
// Single-threaded per call and written for clarity first: the chunkwise form uses matrix
// products inside a chunk, backward walks steps one by one over recomputed states. Checked
// against a naive recurrence and finite differences (tests/kernels/test_linear_recurrence.cpp).
#include "kernels/cpu/linear_recurrence.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/eigen_maps.hpp"
#include "kernels/error.hpp"

namespace statelab::cpu {

namespace {

// A contiguous Dv × Dk state (or other dense scratch matrix); contiguity lets whole-matrix
// scaling and inner products run as one vectorized pass.
template <typename S>
using DenseMap = Eigen::Map<RowMatrix<S>>;
template <typename S>
using ConstDenseMap = Eigen::Map<const RowMatrix<S>>;


int64_t chunks(int64_t T, int64_t chunk) { return (T + chunk - 1) / chunk; }

template <typename S>
int64_t state_size(const LinearRecurrence<S>& p) {
  return p.Dv * p.Dk + (p.floor ? p.Dk : 0);
}

// Where the state at the start of chunk i >= 1 of (b, h) lives in the boundary buffer.
template <typename S>
S* boundary_at(const LinearRecurrence<S>& p, int64_t b, int64_t h, int64_t i) {
  return p.boundary + ((b * p.H + h) * (chunks(p.T, p.chunk) - 1) + (i - 1)) * state_size(p);
}

template <typename S>
S* final_state_at(const LinearRecurrence<S>& p, int64_t b, int64_t h) {
  return p.final_state + (b * p.H + h) * state_size(p);
}

template <typename P>
P* at(const Rows<P>& r, int64_t T, int64_t b, int64_t t, int64_t h) {
  return r.data + (b * T + t) * r.row + h * r.head;
}

// Index of the per-(b, t, h) scalars a, b, c, floor.
template <typename S>
int64_t gate_index(const LinearRecurrence<S>& p, int64_t b, int64_t t, int64_t h) {
  return (b * p.T + t) * p.H + h;
}

// The output's divisor: max(|n_tᵀ q_t|, floor_t) + eps when normalized, else 1.
template <typename S>
S denominator(const LinearRecurrence<S>& p, int64_t i, S n_dot_q) {
  return p.floor ? std::max(std::abs(n_dot_q), p.floor[i]) + p.eps : S(1);
}

// Hands out consecutive pieces of one scratch buffer.
template <typename S>
struct Carve {
  S* next;
  S* take(int64_t n) {
    S* piece = next;
    next += n;
    return piece;
  }
};

// Saves S (and n) into a [Dv·Dk (+ Dk)] slot.
template <typename S>
void store(const LinearRecurrence<S>& p, S* out, const S* state, const S* n) {
  std::copy_n(state, p.Dv * p.Dk, out);
  if (p.floor) std::copy_n(n, p.Dk, out + p.Dv * p.Dk);
}

template <typename S>
void forward_recurrent(const LinearRecurrence<S>& p) {
  const int64_t Dk = p.Dk, Dv = p.Dv;
  // The forward has no work argument: one allocation per call, none per step.
  std::vector<S> scratch(size_t(Dv * Dk + Dk + Dv));
  DenseMap<S> state(scratch.data(), Dv, Dk);
  VecMap<S> n(state.data() + Dv * Dk, Dk), w(n.data() + Dk, Dv);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      state.setZero();
      n.setZero();
      for (int64_t t = 0; t < p.T; ++t) {
        if (p.boundary && t > 0 && t % p.chunk == 0)
          store(p, boundary_at(p, b, h, t / p.chunk), state.data(), n.data());
        const int64_t i = gate_index(p, b, t, h);
        const ConstVecMap<S> k(at(p.k, p.T, b, t, h), Dk), q(at(p.q, p.T, b, t, h), Dk);
        const ConstVecMap<S> v(at(p.v, p.T, b, t, h), Dv);
        const S a = p.a[i], c = p.c[i];
        // S_t = a S_{t-1} + w kᵀ with w = c v − a b S_{t-1} k.
        if (p.b) {
          w.noalias() = state * k;
          w = c * v - (a * p.b[i]) * w;
        } else {
          w = c * v;
        }
        state *= a;
        state.noalias() += w * k.transpose();
        if (p.floor) n = a * n + c * k;
        VecMap<S> y(at(p.y, p.T, b, t, h), Dv);
        y.noalias() = state * q;
        y /= denominator(p, i, p.floor ? S(n.dot(q)) : S(0));
      }
      if (p.final_state) store(p, final_state_at(p, b, h), state.data(), n.data());
    }
}

// The state after step end − 1, Σ_{j<end} D_{end−1, j} c_j v_j k_jᵀ (and n likewise), summed
// straight into its output slot.
template <typename S>
void parallel_state(const LinearRecurrence<S>& p, int64_t b, int64_t h, int64_t end, S* out) {
  DenseMap<S> state(out, p.Dv, p.Dk);
  VecMap<S> n(out + p.Dv * p.Dk, p.floor ? p.Dk : 0);
  state.setZero();
  n.setZero();
  S decay = 1;  // D_{end−1, j}
  for (int64_t j = end - 1; j >= 0; --j) {
    const int64_t i = gate_index(p, b, j, h);
    const ConstVecMap<S> k(at(p.k, p.T, b, j, h), p.Dk), v(at(p.v, p.T, b, j, h), p.Dv);
    state.noalias() += (decay * p.c[i]) * v * k.transpose();
    if (p.floor) n += (decay * p.c[i]) * k;
    decay *= p.a[i];
  }
}

// y_t = Σ_{j<=t} D_tj c_j (q_t·k_j) v_j, D_tj built from j = t downwards by running products:
// a can be exactly 0, so never divide by a cumulative product. O(T²) per head: a reference.
template <typename S>
void forward_parallel(const LinearRecurrence<S>& p) {
  SL_CHECK_SHAPE(!p.b, "linear recurrence: the parallel form has no delta term (b must be null)");
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      for (int64_t t = 0; t < p.T; ++t) {
        const ConstVecMap<S> q(at(p.q, p.T, b, t, h), p.Dk);
        VecMap<S> y(at(p.y, p.T, b, t, h), p.Dv);
        y.setZero();
        S n_dot_q = 0, decay = 1;
        for (int64_t j = t; j >= 0; --j) {
          const int64_t i = gate_index(p, b, j, h);
          const ConstVecMap<S> k(at(p.k, p.T, b, j, h), p.Dk), v(at(p.v, p.T, b, j, h), p.Dv);
          const S weight = decay * p.c[i] * k.dot(q);
          y += weight * v;
          n_dot_q += weight;
          decay *= p.a[i];
        }
        y /= denominator(p, gate_index(p, b, t, h), n_dot_q);
      }
      if (p.boundary)
        for (int64_t i = 1; i < chunks(p.T, p.chunk); ++i)
          parallel_state(p, b, h, i * p.chunk, boundary_at(p, b, h, i));
      if (p.final_state) parallel_state(p, b, h, p.T, final_state_at(p, b, h));
    }
}

// Chunkwise: per chunk of len steps from the start state S0 (local steps t = 0 .. len − 1),
// with D_tj = Π_{l=j+1..t} a_l and γ_t = Π_{l<=t} a_l, the pseudo-values u_t defined by
// S_t = a_t S_{t−1} + u_t k_tᵀ solve the unit lower-triangular system
//   (I + A) U = diag(c) V − diag(bγ) K S0ᵀ,   A_ji = b_j D_ji (k_i·k_j) for i < j.
// The UT transform splits it into W = (I + A)⁻¹ diag(bγ) K and U0 = (I + A)⁻¹ diag(c) V, both
// independent of S0, so U = U0 − W S0ᵀ costs one product. Then, with M = D ⊙ Q Kᵀ,
//   Y = diag(γ) Q S0ᵀ + M U,   S_end = γ_last S0 + Uᵀ diag(D_last,·) K,
//   nᵀq = γ (Q n0) + M c,      n_end = γ_last n0 + Kᵀ (D_last,· ⊙ c).
// With b = 0, U = diag(c) V: plain chunked linear attention. K, Q, V and Y are strided views
// of the caller's buffers, never copies.
template <typename S>
void forward_chunkwise(const LinearRecurrence<S>& p) {
  const int64_t Dk = p.Dk, Dv = p.Dv, L = std::min(p.chunk, p.T);
  // The forward has no work argument: one allocation per call, none per chunk or step.
  std::vector<S> scratch(size_t(Dv * Dk + Dk + 2 * L * L + L * (Dk + Dv) + 3 * L));
  Carve<S> carve{scratch.data()};
  DenseMap<S> state(carve.take(Dv * Dk), Dv, Dk);
  VecMap<S> n(carve.take(Dk), Dk);
  DenseMap<S> D(carve.take(L * L), L, L), M(carve.take(L * L), L, L);
  DenseMap<S> W(carve.take(L * Dk), L, Dk), U(carve.take(L * Dv), L, Dv);
  VecMap<S> gamma(carve.take(L), L), c_chunk(carve.take(L), L), n_dot_q(carve.take(L), L);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      state.setZero();
      n.setZero();
      for (int64_t s = 0; s < p.T; s += p.chunk) {
        if (p.boundary && s > 0)
          store(p, boundary_at(p, b, h, s / p.chunk), state.data(), n.data());
        const int64_t len = std::min(p.chunk, p.T - s);
        const auto K = cmat(at(p.k, p.T, b, s, h), len, Dk, p.k.row);
        const auto Q = cmat(at(p.q, p.T, b, s, h), len, Dk, p.q.row);
        const auto V = cmat(at(p.v, p.T, b, s, h), len, Dv, p.v.row);
        auto Y = mat(at(p.y, p.T, b, s, h), len, Dv, p.y.row);
        auto gate = [&](const S* x, int64_t t) { return x[gate_index(p, b, s + t, h)]; };
        auto Dc = D.topLeftCorner(len, len);
        auto Mc = M.topLeftCorner(len, len);
        auto Uc = U.topRows(len);
        Dc.setZero();
        for (int64_t t = 0; t < len; ++t) {
          const S a = gate(p.a, t);
          gamma[t] = (t == 0 ? S(1) : gamma[t - 1]) * a;
          for (int64_t j = 0; j < t; ++j) Dc(t, j) = Dc(t - 1, j) * a;
          Dc(t, t) = 1;
          c_chunk[t] = gate(p.c, t);
        }
        Uc.noalias() = c_chunk.head(len).asDiagonal() * V;
        if (p.b) {
          auto Wc = W.topRows(len);
          auto A = Mc;  // M's storage holds A until M is needed
          A.noalias() = K * K.transpose();
          for (int64_t j = 0; j < len; ++j) {
            A.row(j).head(j) = gate(p.b, j) * Dc.row(j).head(j).cwiseProduct(A.row(j).head(j));
            Wc.row(j) = (gate(p.b, j) * gamma[j]) * K.row(j);
          }
          // I + A is unit lower-triangular: forward substitution, A's diagonal is never read.
          A.template triangularView<Eigen::UnitLower>().solveInPlace(Wc);
          A.template triangularView<Eigen::UnitLower>().solveInPlace(Uc);
          Uc.noalias() -= Wc * state.transpose();
        }
        Mc.noalias() = Q * K.transpose();
        Mc = Mc.cwiseProduct(Dc);  // D is zero above the diagonal: causal
        Y.noalias() = Q * state.transpose();
        Y = gamma.head(len).asDiagonal() * Y;
        Y.noalias() += Mc * Uc;
        if (p.floor) {
          n_dot_q.head(len).noalias() = Q * n;
          n_dot_q.head(len) = n_dot_q.head(len).cwiseProduct(gamma.head(len));
          n_dot_q.head(len).noalias() += Mc * c_chunk.head(len);
          for (int64_t t = 0; t < len; ++t)
            Y.row(t) /= denominator(p, gate_index(p, b, s + t, h), n_dot_q[t]);
        }
        // Carry to the chunk's end: weight each step's contribution by D_{last, j}.
        const S decay = gamma[len - 1];
        Uc = Dc.row(len - 1).transpose().asDiagonal() * Uc;
        state *= decay;
        state.noalias() += Uc.transpose() * K;
        if (p.floor) {
          c_chunk.head(len) = c_chunk.head(len).cwiseProduct(Dc.row(len - 1).transpose());
          n *= decay;
          n.noalias() += K.transpose() * c_chunk.head(len);
        }
      }
      if (p.final_state) store(p, final_state_at(p, b, h), state.data(), n.data());
    }
}

// Backward's scratch, in the order bwd carves it: the chunk's len + 1 states and normalizers,
// the carried gradients G (Dv × Dk) and ν (Dk), then vectors o, do, g, w, u (Dv) and one Dk.
template <typename S>
int64_t backward_scratch_size(const LinearRecurrence<S>& p) {
  const int64_t L = std::min(p.chunk, p.T);
  return (L + 1) * (p.Dv * p.Dk + p.Dk) + p.Dv * p.Dk + p.Dk + 5 * p.Dv + p.Dk;
}

// Backward and the probe both rebuild chunks from the saved boundary states: one check for both.
template <typename S>
void check_recomputable(const LinearRecurrence<S>& p, const std::string& who) {
  SL_CHECK_SHAPE(p.T <= p.chunk || p.boundary,
                 who + ": the chunk-boundary states forward saves are required when T > chunk");
}

// The states S_0 .. S_len of chunk ci of (b, h) into states (len + 1 dense Dv × Dk slots) and,
// when normalized, n_0 .. n_len into norms (len + 1 slots of Dk); S_0 is the saved boundary
// state, or zero for chunk 0. Backward and the probes read the states through this one function,
// so a probe reports exactly the states backward differentiates through. w and u: Dv scratch.
template <typename S>
void recompute_chunk(const LinearRecurrence<S>& p, int64_t b, int64_t h, int64_t ci, S* states,
                     S* norms, S* w_scratch, S* u_scratch) {
  const bool normalized = p.floor != nullptr;
  const int64_t Dk = p.Dk, Dv = p.Dv, area = Dv * Dk;
  const int64_t s = ci * p.chunk, len = std::min(p.chunk, p.T - s);
  VecMap<S> w(w_scratch, Dv), u(u_scratch, Dv);
  auto state_at = [&](int64_t t) { return DenseMap<S>(states + t * area, Dv, Dk); };
  auto norm_at = [&](int64_t t) { return VecMap<S>(norms + t * Dk, Dk); };
  if (ci == 0) {
    state_at(0).setZero();
    if (normalized) norm_at(0).setZero();
  } else {
    const S* saved = boundary_at(p, b, h, ci);
    std::copy_n(saved, area, states);
    if (normalized) std::copy_n(saved + area, Dk, norms);
  }
  for (int64_t t = 0; t < len; ++t) {
    const int64_t i = gate_index(p, b, s + t, h);
    const auto prev = state_at(t);
    auto next = state_at(t + 1);
    const ConstVecMap<S> k(at(p.k, p.T, b, s + t, h), Dk), v(at(p.v, p.T, b, s + t, h), Dv);
    const S a = p.a[i], c = p.c[i];
    w = c * v;
    if (p.b) {
      u.noalias() = prev * k;
      w -= (a * p.b[i]) * u;
    }
    next = a * prev;
    next.noalias() += w * k.transpose();
    if (normalized) norm_at(t + 1) = a * norm_at(t) + c * k;
  }
}

}  // namespace

template <typename S>
void linear_recurrence_check(const LinearRecurrence<S>& p) {
  SL_CHECK_SHAPE(p.B >= 1 && p.T >= 1 && p.H >= 1 && p.Dk >= 1 && p.Dv >= 1,
                 "linear recurrence: empty shape B=" + std::to_string(p.B) +
                     " T=" + std::to_string(p.T) + " H=" + std::to_string(p.H) +
                     " Dk=" + std::to_string(p.Dk) + " Dv=" + std::to_string(p.Dv));
  SL_CHECK_SHAPE(p.chunk >= 1, "linear recurrence: chunk " + std::to_string(p.chunk) + " < 1");
  SL_CHECK_SHAPE(p.q.data && p.k.data && p.v.data && p.a && p.c && p.y.data,
                 "linear recurrence: q, k, v, a, c and y are required");
  SL_CHECK_SHAPE(p.y.head != 0, "linear recurrence: the output cannot be shared across heads");
  SL_CHECK_SHAPE(!(p.floor && p.b),
                 "linear recurrence: a normalizer together with a delta term is not defined");
}

template <typename S>
void linear_recurrence_check_backward(const LinearRecurrence<S>& p,
                                      const LinearRecurrenceGrads<S>& g) {
  linear_recurrence_check(p);
  check_recomputable(p, "linear recurrence backward");
  SL_CHECK_SHAPE(g.dy.data && g.dq.data && g.dk.data && g.dv.data && g.da && g.dc,
                 "linear recurrence backward: dy, dq, dk, dv, da and dc are required");
  SL_CHECK_SHAPE(!p.b || g.db, "linear recurrence backward: db is required with a delta term");
}

template <typename S>
int64_t linear_recurrence_boundary_size(const LinearRecurrence<S>& p) {
  return p.B * p.H * (chunks(p.T, p.chunk) - 1) * state_size(p);
}

template <typename S>
int64_t linear_recurrence_work_size(const LinearRecurrence<S>& p) {
  return backward_scratch_size(p);
}

template <typename S>
void linear_recurrence_fwd(const LinearRecurrence<S>& p, LinearForm form) {
  linear_recurrence_check(p);
  switch (form) {
    case LinearForm::recurrent:
      return forward_recurrent(p);
    case LinearForm::parallel:
      return forward_parallel(p);
    case LinearForm::chunkwise:
      return forward_chunkwise(p);
  }
}

// Per (b, h), chunks from last to first: recompute the chunk's states S_t (and n_t) from its
// boundary state, then step backward through them carrying G = ∂L/∂S_t and ν = ∂L/∂n_t.
// Through S_t = a P + w kᵀ with P = S_{t−1}, u = P k, w = c v − a b u and g = G k:
//   ∂a = ⟨G, P⟩ − b g·u,  ∂b = −a g·u,  ∂c = v·g,  ∂v = c g,
//   ∂k = Gᵀ w − a b Pᵀ g,  G_{t−1} = a (G − b g kᵀ);
// through n_t = a n_{t−1} + c k:  ∂a += ν·n_{t−1}, ∂c += ν·k, ∂k += c ν, ν_{t−1} = a ν.
// The floor's branch follows forward's max: n_t carries the gradient when |n_tᵀq| >= floor.
template <typename S>
void linear_recurrence_bwd(const LinearRecurrence<S>& p, const LinearRecurrenceGrads<S>& g,
                           S* work) {
  linear_recurrence_check_backward(p, g);
  SL_CHECK_SHAPE(work, "linear recurrence backward: work is required");
  const bool normalized = p.floor != nullptr;
  const int64_t Dk = p.Dk, Dv = p.Dv, L = std::min(p.chunk, p.T), area = Dv * Dk;
  Carve<S> carve{work};
  S* states = carve.take((L + 1) * area);
  S* norms = carve.take((L + 1) * Dk);
  DenseMap<S> G(carve.take(area), Dv, Dk);
  VecMap<S> nu(carve.take(Dk), Dk);
  VecMap<S> o(carve.take(Dv), Dv), d_out(carve.take(Dv), Dv), gk(carve.take(Dv), Dv);
  VecMap<S> w(carve.take(Dv), Dv), u(carve.take(Dv), Dv), tmp_k(carve.take(Dk), Dk);
  auto state_at = [&](int64_t t) { return DenseMap<S>(states + t * area, Dv, Dk); };
  auto norm_at = [&](int64_t t) { return VecMap<S>(norms + t * Dk, Dk); };
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      G.setZero();
      nu.setZero();
      for (int64_t ci = chunks(p.T, p.chunk) - 1; ci >= 0; --ci) {
        const int64_t s = ci * p.chunk, len = std::min(p.chunk, p.T - s);
        recompute_chunk(p, b, h, ci, states, norms, w.data(), u.data());
        for (int64_t t = len - 1; t >= 0; --t) {
          const int64_t i = gate_index(p, b, s + t, h);
          const auto P = state_at(t), St = state_at(t + 1);
          const ConstVecMap<S> k(at(p.k, p.T, b, s + t, h), Dk), q(at(p.q, p.T, b, s + t, h), Dk);
          const ConstVecMap<S> v(at(p.v, p.T, b, s + t, h), Dv);
          const ConstVecMap<S> dy(at(g.dy, p.T, b, s + t, h), Dv);
          VecMap<S> dq(at(g.dq, p.T, b, s + t, h), Dk), dk(at(g.dk, p.T, b, s + t, h), Dk);
          VecMap<S> dv(at(g.dv, p.T, b, s + t, h), Dv);
          const S a = p.a[i], c = p.c[i], beta = p.b ? p.b[i] : S(0);
          // Output: y = S_t q / den.
          if (normalized) {
            const auto n_t = norm_at(t + 1);
            o.noalias() = St * q;
            const S n_dot_q = n_t.dot(q);
            const bool through_n = std::abs(n_dot_q) >= p.floor[i];
            const S den = (through_n ? std::abs(n_dot_q) : p.floor[i]) + p.eps;
            d_out = dy / den;
            const S d_den = -dy.dot(o) / (den * den);
            if (through_n) {
              const S sign = n_dot_q < 0 ? S(-1) : S(1);
              nu += (d_den * sign) * q;
              dq += (d_den * sign) * n_t;
            } else if (g.dfloor) {
              g.dfloor[i] += d_den;
            }
          } else {
            d_out = dy;
          }
          G.noalias() += d_out * q.transpose();
          dq.noalias() += St.transpose() * d_out;
          // Step: S_t = a P + w kᵀ.
          gk.noalias() = G * k;
          S da = VecMap<S>(G.data(), area).dot(ConstVecMap<S>(P.data(), area));
          w = c * v;
          if (p.b) {
            u.noalias() = P * k;
            const S g_dot_u = gk.dot(u);
            da -= beta * g_dot_u;
            g.db[i] -= a * g_dot_u;
            w -= (a * beta) * u;
            tmp_k.noalias() = P.transpose() * gk;
            dk -= (a * beta) * tmp_k;
          }
          g.dc[i] += v.dot(gk);
          dv += c * gk;
          dk.noalias() += G.transpose() * w;
          if (normalized) {
            const auto n_prev = norm_at(t);
            da += nu.dot(n_prev);
            g.dc[i] += nu.dot(k);
            dk += c * nu;
            nu *= a;
          }
          g.da[i] += da;
          if (p.b) G.noalias() -= beta * gk * k.transpose();
          G *= a;
        }
      }
    }
}

// Chunks are rebuilt one at a time from their saved start states, as backward does, so probing
// a long eval sequence needs backward's memory, not T states; read-outs not asked for cost nothing.
template <typename S>
void linear_recurrence_probe(const LinearRecurrence<S>& p, const LinearRecurrenceProbe<S>& probe,
                             S* work) {
  linear_recurrence_check(p);
  check_recomputable(p, "linear recurrence probe");
  SL_CHECK_SHAPE(p.floor || !(probe.normalizer_norm || probe.n_dot_q),
                 "linear recurrence probe: normalizer_norm and n_dot_q need a normalized "
                 "recurrence (floor set)");
  SL_CHECK_SHAPE(work, "linear recurrence probe: work is required");
  const int64_t Dk = p.Dk, Dv = p.Dv, L = std::min(p.chunk, p.T), area = Dv * Dk;
  // The same layout as backward's carve for the states, so linear_recurrence_work_size covers both.
  Carve<S> carve{work};
  S* states = carve.take((L + 1) * area);
  S* norms = carve.take((L + 1) * Dk);
  S* w = carve.take(Dv);
  S* u = carve.take(Dv);
  VecMap<S> err(carve.take(Dv), Dv);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t ci = 0; ci < chunks(p.T, p.chunk); ++ci) {
        const int64_t s = ci * p.chunk, len = std::min(p.chunk, p.T - s);
        recompute_chunk(p, b, h, ci, states, norms, w, u);
        for (int64_t t = 0; t < len; ++t) {
          const int64_t i = gate_index(p, b, s + t, h);
          if (probe.state_norm)
            probe.state_norm[i] = ConstVecMap<S>(states + (t + 1) * area, area).norm();
          const ConstVecMap<S> n(norms + (t + 1) * Dk, p.floor ? Dk : 0);
          if (probe.normalizer_norm) probe.normalizer_norm[i] = n.norm();
          if (probe.n_dot_q)
            probe.n_dot_q[i] = std::abs(n.dot(ConstVecMap<S>(at(p.q, p.T, b, s + t, h), Dk)));
          if (probe.write_error) {
            err.noalias() = ConstDenseMap<S>(states + t * area, Dv, Dk) *
                            ConstVecMap<S>(at(p.k, p.T, b, s + t, h), Dk);
            err -= ConstVecMap<S>(at(p.v, p.T, b, s + t, h), Dv);
            probe.write_error[i] = err.norm();
          }
        }
      }
}

#define SL_INSTANTIATE(S)                                                             \
  template void linear_recurrence_check<S>(const LinearRecurrence<S>&);               \
  template void linear_recurrence_check_backward<S>(const LinearRecurrence<S>&,       \
                                                    const LinearRecurrenceGrads<S>&); \
  template int64_t linear_recurrence_boundary_size<S>(const LinearRecurrence<S>&);    \
  template int64_t linear_recurrence_work_size<S>(const LinearRecurrence<S>&);        \
  template void linear_recurrence_fwd<S>(const LinearRecurrence<S>&, LinearForm);     \
  template void linear_recurrence_bwd<S>(const LinearRecurrence<S>&,                  \
                                         const LinearRecurrenceGrads<S>&, S*);        \
  template void linear_recurrence_probe<S>(const LinearRecurrence<S>&,                \
                                           const LinearRecurrenceProbe<S>&, S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
