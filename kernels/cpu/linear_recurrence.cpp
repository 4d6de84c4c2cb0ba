// The unified linear recurrence on Eigen: recurrent, parallel and chunkwise (UT/WY) forward
// forms and the reverse-time backward. Instantiated for float (training) and double (tests).
#include "kernels/cpu/linear_recurrence.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/error.hpp"

namespace statelab::cpu {

namespace {

template <typename S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <typename S>
using MatMap = Eigen::Map<Mat<S>>;
template <typename S>
using VecMap = Eigen::Map<Vec<S>>;
template <typename S>
using ConstVecMap = Eigen::Map<const Vec<S>>;

template <typename S>
void check(const LinearRecurrence<S>& p) {
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

template <typename P>
P* at(const Rows<P>& r, int64_t T, int64_t b, int64_t t, int64_t h) {
  return r.data + (b * T + t) * r.row + h * r.head;
}

// Saves S (and n) into a [Dv·Dk (+ Dk)] slot.
template <typename S>
void store(S* out, const Mat<S>& state, const Vec<S>& n, bool normalized) {
  std::copy_n(state.data(), state.size(), out);
  if (normalized) std::copy_n(n.data(), n.size(), out + state.size());
}

// y_t from S_t q_t and, when normalized, n_tᵀ q_t.
template <typename S>
void write_output(const LinearRecurrence<S>& p, int64_t b, int64_t t, int64_t h, const S* o, S nq) {
  const int64_t i = (b * p.T + t) * p.H + h;
  S* y = at(p.y, p.T, b, t, h);
  const S den = p.floor ? std::max(std::abs(nq), p.floor[i]) : S(1);
  for (int64_t d = 0; d < p.Dv; ++d) y[d] = o[d] / den;
}

template <typename S>
void forward_recurrent(const LinearRecurrence<S>& p) {
  const bool normalized = p.floor != nullptr;
  Mat<S> state(p.Dv, p.Dk);
  Vec<S> n(p.Dk), u(p.Dv), o(p.Dv);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      state.setZero();
      n.setZero();
      for (int64_t t = 0; t < p.T; ++t) {
        if (p.boundary && t > 0 && t % p.chunk == 0)
          store(boundary_at(p, b, h, t / p.chunk), state, n, normalized);
        const int64_t i = (b * p.T + t) * p.H + h;
        const ConstVecMap<S> k(at(p.k, p.T, b, t, h), p.Dk), q(at(p.q, p.T, b, t, h), p.Dk);
        const ConstVecMap<S> v(at(p.v, p.T, b, t, h), p.Dv);
        const S a = p.a[i], c = p.c[i];
        if (p.b) {
          u.noalias() = state * k;
          state *= a;
          state.noalias() -= (a * p.b[i]) * u * k.transpose();
        } else {
          state *= a;
        }
        state.noalias() += c * v * k.transpose();
        if (normalized) n = a * n + c * k;
        o.noalias() = state * q;
        write_output(p, b, t, h, o.data(), normalized ? S(n.dot(q)) : S(0));
      }
      if (p.final_state) store(p.final_state + (b * p.H + h) * state_size(p), state, n, normalized);
    }
}

// Σ_{j<end} D_{end−1, j} c_j v_j k_jᵀ (and the same for n): the state after step end − 1.
template <typename S>
void parallel_state(const LinearRecurrence<S>& p, int64_t b, int64_t h, int64_t end, S* out) {
  const bool normalized = p.floor != nullptr;
  Mat<S> state = Mat<S>::Zero(p.Dv, p.Dk);
  Vec<S> n = Vec<S>::Zero(p.Dk);
  S decay = 1;  // D_{end−1, j}
  for (int64_t j = end - 1; j >= 0; --j) {
    const int64_t i = (b * p.T + j) * p.H + h;
    const ConstVecMap<S> k(at(p.k, p.T, b, j, h), p.Dk), v(at(p.v, p.T, b, j, h), p.Dv);
    state.noalias() += (decay * p.c[i]) * v * k.transpose();
    if (normalized) n += (decay * p.c[i]) * k;
    decay *= p.a[i];
  }
  store(out, state, n, normalized);
}

template <typename S>
void forward_parallel(const LinearRecurrence<S>& p) {
  SL_CHECK_SHAPE(!p.b, "linear recurrence: the parallel form has no delta term");
  Vec<S> o(p.Dv);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      for (int64_t t = 0; t < p.T; ++t) {
        const ConstVecMap<S> q(at(p.q, p.T, b, t, h), p.Dk);
        o.setZero();
        S nq = 0, decay = 1;  // D_{t, j}, built from j = t downwards: never a division
        for (int64_t j = t; j >= 0; --j) {
          const int64_t i = (b * p.T + j) * p.H + h;
          const ConstVecMap<S> k(at(p.k, p.T, b, j, h), p.Dk), v(at(p.v, p.T, b, j, h), p.Dv);
          const S w = decay * p.c[i] * k.dot(q);
          o += w * v;
          nq += w;
          decay *= p.a[i];
        }
        write_output(p, b, t, h, o.data(), nq);
      }
      if (p.boundary)
        for (int64_t i = 1; i < chunks(p.T, p.chunk); ++i)
          parallel_state(p, b, h, i * p.chunk, boundary_at(p, b, h, i));
      if (p.final_state)
        parallel_state(p, b, h, p.T, p.final_state + (b * p.H + h) * state_size(p));
    }
}

// Chunkwise: per chunk of L steps from the start state S0, with D_tj = Π_{l=j+1..t} a_l and
// γ_t = Π_{l<=t} a_l (local steps), the pseudo-values u_t (S_t = a_t S_{t−1} + u_t k_tᵀ) solve
//   (I + A) U = diag(c) V − diag(b γ) K S0ᵀ,   A_ji = b_j D_ji (k_i·k_j) for i < j,
// which the UT transform splits into W = (I + A)⁻¹ diag(bγ) K and U0 = (I + A)⁻¹ diag(c) V,
// both independent of S0: U = U0 − W S0ᵀ. Then Y = diag(γ) Q S0ᵀ + (D ⊙ Q Kᵀ) U and
// S_end = γ_L S0 + Uᵀ diag(D_L·) K. With b = 0, U = diag(c) V: plain chunked linear attention.
template <typename S>
void forward_chunkwise(const LinearRecurrence<S>& p) {
  const bool normalized = p.floor != nullptr;
  const int64_t L = std::min(p.chunk, p.T);
  Mat<S> state(p.Dv, p.Dk), K(L, p.Dk), Q(L, p.Dk), V(L, p.Dv), D(L, L), W(L, p.Dk), U(L, p.Dv);
  Mat<S> A(L, L), Y(L, p.Dv), N(L, p.Dk), weights(L, L);
  Vec<S> n(p.Dk), gamma(L), last(L);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      state.setZero();
      n.setZero();
      for (int64_t s = 0; s < p.T; s += p.chunk) {
        if (p.boundary && s > 0) store(boundary_at(p, b, h, s / p.chunk), state, n, normalized);
        const int64_t len = std::min(p.chunk, p.T - s);
        for (int64_t t = 0; t < len; ++t) {
          K.row(t) = ConstVecMap<S>(at(p.k, p.T, b, s + t, h), p.Dk).transpose();
          Q.row(t) = ConstVecMap<S>(at(p.q, p.T, b, s + t, h), p.Dk).transpose();
          V.row(t) = ConstVecMap<S>(at(p.v, p.T, b, s + t, h), p.Dv).transpose();
        }
        auto gate = [&](const S* x, int64_t t) { return x[(b * p.T + s + t) * p.H + h]; };
        // Decays by running products.
        auto Dc = D.topLeftCorner(len, len);
        Dc.setZero();
        for (int64_t t = 0; t < len; ++t) {
          const S a = gate(p.a, t);
          gamma[t] = (t == 0 ? S(1) : gamma[t - 1]) * a;
          for (int64_t j = 0; j < t; ++j) Dc(t, j) = Dc(t - 1, j) * a;
          Dc(t, t) = 1;
        }
        auto Kc = K.topRows(len);
        auto Qc = Q.topRows(len);
        auto Uc = U.topRows(len);
        for (int64_t t = 0; t < len; ++t) Uc.row(t) = gate(p.c, t) * V.row(t);
        if (p.b) {
          auto Wc = W.topRows(len);
          auto Ac = A.topLeftCorner(len, len);
          Ac.noalias() = Kc * Kc.transpose();
          for (int64_t t = 0; t < len; ++t) Wc.row(t) = (gate(p.b, t) * gamma[t]) * Kc.row(t);
          // Forward substitution through the unit lower-triangular I + A.
          for (int64_t j = 1; j < len; ++j) {
            const S bj = gate(p.b, j);
            for (int64_t i = 0; i < j; ++i) {
              const S coef = bj * Dc(j, i) * Ac(j, i);
              Wc.row(j) -= coef * Wc.row(i);
              Uc.row(j) -= coef * Uc.row(i);
            }
          }
          Uc.noalias() -= Wc * state.transpose();
        }
        auto Yc = Y.topRows(len);
        auto Ac = A.topLeftCorner(len, len);
        Ac.noalias() = Qc * Kc.transpose();
        Ac = Ac.cwiseProduct(Dc);  // D is zero above the diagonal: causal
        Yc.noalias() = Ac * Uc;
        Yc.noalias() += gamma.head(len).asDiagonal() * (Qc * state.transpose());
        if (normalized) {
          auto Nc = N.topRows(len);
          auto Wn = weights.topLeftCorner(len, len);
          Wn = Dc;
          for (int64_t j = 0; j < len; ++j) Wn.col(j) *= gate(p.c, j);
          Nc.noalias() = Wn * Kc;
          Nc.noalias() += gamma.head(len) * n.transpose();
          for (int64_t t = 0; t < len; ++t)
            write_output(p, b, s + t, h, Yc.row(t).data(), S(Nc.row(t).dot(Qc.row(t))));
          n = Nc.row(len - 1).transpose();
        } else {
          for (int64_t t = 0; t < len; ++t) write_output(p, b, s + t, h, Yc.row(t).data(), S(0));
        }
        last.head(len) = Dc.row(len - 1).transpose();
        state *= gamma[len - 1];
        state.noalias() += Uc.transpose() * last.head(len).asDiagonal() * Kc;
      }
      if (p.final_state) store(p.final_state + (b * p.H + h) * state_size(p), state, n, normalized);
    }
}

}  // namespace

template <typename S>
int64_t linear_recurrence_boundary_size(const LinearRecurrence<S>& p) {
  return p.B * p.H * (chunks(p.T, p.chunk) - 1) * state_size(p);
}

template <typename S>
int64_t linear_recurrence_work_size(const LinearRecurrence<S>& p) {
  const int64_t L = std::min(p.chunk, p.T);
  // States S_s … S_{s+L} of one chunk, the carried gradients G and ν, and five vectors.
  return (L + 1) * (p.Dv * p.Dk + p.Dk) + p.Dv * p.Dk + p.Dk + 4 * p.Dv + p.Dk;
}

template <typename S>
void linear_recurrence_fwd(const LinearRecurrence<S>& p, LinearForm form) {
  check(p);
  switch (form) {
    case LinearForm::recurrent:
      return forward_recurrent(p);
    case LinearForm::parallel:
      return forward_parallel(p);
    case LinearForm::chunkwise:
      return forward_chunkwise(p);
  }
}

template <typename S>
void linear_recurrence_bwd(const LinearRecurrence<S>& p, const LinearRecurrenceGrads<S>& g,
                           S* work) {
  check(p);
  SL_CHECK_SHAPE(p.T <= p.chunk || p.boundary, "linear recurrence backward: no boundary states");
  SL_CHECK_SHAPE(g.dy.data && g.dq.data && g.dk.data && g.dv.data && g.da && g.dc,
                 "linear recurrence backward: dy, dq, dk, dv, da and dc are required");
  SL_CHECK_SHAPE(!p.b || g.db, "linear recurrence backward: db is required with a delta term");
  const bool normalized = p.floor != nullptr;
  const int64_t Dk = p.Dk, Dv = p.Dv, L = std::min(p.chunk, p.T), area = Dv * Dk;
  // Work layout: L + 1 states, L + 1 normalizers, G, ν, then vectors o, do, g, u and a Dk one.
  S* states = work;
  S* norms = states + (L + 1) * area;
  MatMap<S> G(norms + (L + 1) * Dk, Dv, Dk);
  VecMap<S> nu(G.data() + area, Dk);
  VecMap<S> o(nu.data() + Dk, Dv), dout(o.data() + Dv, Dv), gk(dout.data() + Dv, Dv),
      u(gk.data() + Dv, Dv);
  VecMap<S> tmp_k(u.data() + Dv, Dk);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      G.setZero();
      nu.setZero();
      for (int64_t ci = chunks(p.T, p.chunk) - 1; ci >= 0; --ci) {
        const int64_t s = ci * p.chunk, len = std::min(p.chunk, p.T - s);
        // Recompute the chunk's states from its boundary.
        MatMap<S> first(states, Dv, Dk);
        VecMap<S> first_n(norms, Dk);
        if (ci == 0) {
          first.setZero();
          first_n.setZero();
        } else {
          const S* saved = boundary_at(p, b, h, ci);
          std::copy_n(saved, area, states);
          if (normalized) std::copy_n(saved + area, Dk, norms);
        }
        for (int64_t t = 0; t < len; ++t) {
          const int64_t i = (b * p.T + s + t) * p.H + h;
          MatMap<S> prev(states + t * area, Dv, Dk), next(states + (t + 1) * area, Dv, Dk);
          const ConstVecMap<S> k(at(p.k, p.T, b, s + t, h), Dk), v(at(p.v, p.T, b, s + t, h), Dv);
          const S a = p.a[i], c = p.c[i];
          next = a * prev;
          if (p.b) {
            u.noalias() = prev * k;
            next.noalias() -= (a * p.b[i]) * u * k.transpose();
          }
          next.noalias() += c * v * k.transpose();
          if (normalized)
            VecMap<S>(norms + (t + 1) * Dk, Dk) = a * VecMap<S>(norms + t * Dk, Dk) + c * k;
        }
        for (int64_t t = len - 1; t >= 0; --t) {
          const int64_t i = (b * p.T + s + t) * p.H + h;
          const MatMap<S> P(states + t * area, Dv, Dk), St(states + (t + 1) * area, Dv, Dk);
          const ConstVecMap<S> k(at(p.k, p.T, b, s + t, h), Dk), q(at(p.q, p.T, b, s + t, h), Dk);
          const ConstVecMap<S> v(at(p.v, p.T, b, s + t, h), Dv);
          const ConstVecMap<S> dy(at(g.dy, p.T, b, s + t, h), Dv);
          VecMap<S> dq(at(g.dq, p.T, b, s + t, h), Dk), dk(at(g.dk, p.T, b, s + t, h), Dk);
          VecMap<S> dv(at(g.dv, p.T, b, s + t, h), Dv);
          const S a = p.a[i], c = p.c[i];
          // Output: y = S_t q / den.
          if (normalized) {
            const VecMap<S> n_t(norms + (t + 1) * Dk, Dk);
            o.noalias() = St * q;
            const S nq = n_t.dot(q);
            const bool through_n = std::abs(nq) >= p.floor[i];
            const S den = through_n ? std::abs(nq) : p.floor[i];
            dout = dy / den;
            const S dden = -dy.dot(o) / (den * den);
            if (through_n) {
              const S sg = nq < 0 ? S(-1) : S(1);
              nu += (dden * sg) * q;
              dq += (dden * sg) * n_t;
            } else if (g.dfloor) {
              g.dfloor[i] += dden;
            }
          } else {
            dout = dy;
          }
          G.noalias() += dout * q.transpose();
          dq.noalias() += St.transpose() * dout;
          // Step: S_t = a (P − b u kᵀ) + c v kᵀ with u = P k.
          gk.noalias() = G * k;
          S da = (G.cwiseProduct(P)).sum();
          if (p.b) {
            const S bt = p.b[i];
            u.noalias() = P * k;
            const S gu = gk.dot(u);
            da -= bt * gu;
            g.db[i] += -a * gu;
            tmp_k.noalias() = P.transpose() * gk;
            tmp_k.noalias() += G.transpose() * u;
            dk += (-a * bt) * tmp_k;
          }
          g.dc[i] += v.dot(gk);
          dv += c * gk;
          dk.noalias() += c * (G.transpose() * v);
          if (normalized) {
            const VecMap<S> n_prev(norms + t * Dk, Dk);
            da += nu.dot(n_prev);
            g.dc[i] += nu.dot(k);
            dk += c * nu;
            nu *= a;
          }
          g.da[i] += da;
          if (p.b) G.noalias() -= p.b[i] * gk * k.transpose();
          G *= a;
        }
      }
    }
}

#define SL_INSTANTIATE(S)                                                          \
  template int64_t linear_recurrence_boundary_size<S>(const LinearRecurrence<S>&); \
  template int64_t linear_recurrence_work_size<S>(const LinearRecurrence<S>&);     \
  template void linear_recurrence_fwd<S>(const LinearRecurrence<S>&, LinearForm);  \
  template void linear_recurrence_bwd<S>(const LinearRecurrence<S>&,               \
                                         const LinearRecurrenceGrads<S>&, S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
