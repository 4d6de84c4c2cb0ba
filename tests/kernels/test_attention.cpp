// Causal attention and RoPE on the CPU:
// - forward against an explicit T×T masked softmax written here, across tile boundaries;
// - every gradient (q, k, v; RoPE) against central finite differences in double;
// - the properties the model relies on: RoPE scores depend only on t − s, the output at t
//   never sees a later step, one-step sequences attend to themselves.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/attention.hpp"
#include "kernels/error.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab::cpu {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

// q, k, v of one problem and the kernel's outputs for them.
struct Problem {
  int64_t B, T, H, Dh;
  std::vector<double> q, k, v, o, lse, work;

  Problem(int64_t b, int64_t t, int64_t h, int64_t dh, unsigned seed = 1)
      : B(b),
        T(t),
        H(h),
        Dh(dh),
        q(random_vector(size(), seed, 1.5)),
        k(random_vector(size(), seed + 1, 1.5)),
        v(random_vector(size(), seed + 2)),
        o(size_t(size())),
        lse(size_t(B * T * H)),
        work(size_t(causal_attention_work_size(T))) {}
  int64_t size() const { return B * T * H * Dh; }
  int64_t at(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * Dh; }
  CausalAttention<double> attention() {
    CausalAttention<double> a;
    a.B = B, a.T = T, a.H = H, a.Dh = Dh;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.o = o.data(), a.lse = lse.data();
    return a;
  }
  void forward() { causal_attention_fwd(attention(), work.data()); }
};

// The definition: scores S = Q Kᵀ / √Dh masked above the diagonal, P = softmax rows, O = P V.
void naive_attention(const Problem& p, std::vector<double>& o, std::vector<double>& lse) {
  o.assign(size_t(p.size()), 0.0);
  lse.assign(size_t(p.B * p.T * p.H), 0.0);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      Eigen::MatrixXd Q(p.T, p.Dh), K(p.T, p.Dh), V(p.T, p.Dh);
      for (int64_t t = 0; t < p.T; ++t)
        for (int64_t d = 0; d < p.Dh; ++d) {
          Q(t, d) = p.q[size_t(p.at(b, t, h) + d)];
          K(t, d) = p.k[size_t(p.at(b, t, h) + d)];
          V(t, d) = p.v[size_t(p.at(b, t, h) + d)];
        }
      Eigen::MatrixXd S = Q * K.transpose() / std::sqrt(double(p.Dh));
      for (int64_t t = 0; t < p.T; ++t)
        for (int64_t s = t + 1; s < p.T; ++s) S(t, s) = -std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < p.T; ++t) {
        const double m = S.row(t).maxCoeff();
        const double l = (S.row(t).array() - m).exp().sum();
        S.row(t) = (S.row(t).array() - m).exp() / l;
        lse[size_t((b * p.T + t) * p.H + h)] = m + std::log(l);
      }
      const Eigen::MatrixXd O = S * V;
      for (int64_t t = 0; t < p.T; ++t)
        for (int64_t d = 0; d < p.Dh; ++d) o[size_t(p.at(b, t, h) + d)] = O(t, d);
    }
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

TEST(CausalAttention, MatchesExplicitMaskedSoftmaxAcrossTileBoundaries) {
  // 1 step, less than a tile, one tile exactly, a partial second tile, three tiles.
  for (int64_t T :
       {int64_t(1), int64_t(7), kAttentionRows, kAttentionRows + 5, 2 * kAttentionRows + 6}) {
    Problem p(2, T, 3, 4);
    p.forward();
    std::vector<double> o, lse;
    naive_attention(p, o, lse);
    EXPECT_LE(max_abs_diff(p.o, o), 1e-12) << "o, T = " << T;
    EXPECT_LE(max_abs_diff(p.lse, lse), 1e-12) << "lse, T = " << T;
  }
}

// d/dq, d/dk, d/dv of Σ w ⊙ o; dq, dk, dv start as NaN to prove backward overwrites them.
void check_attention_gradients(int64_t T) {
  Problem p(2, T, 2, 4, 11);
  const auto w = random_vector(p.size(), 12);
  auto loss = [&] {
    p.forward();
    return testing::dot(w, p.o.data());
  };
  loss();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> dq(size_t(p.size()), nan), dk(dq), dv(dq);
  causal_attention_bwd(p.attention(), w.data(), dq.data(), dk.data(), dv.data(), p.work.data());
  const std::string at = "T = " + std::to_string(T) + ": ";
  expect_gradient_close(check_gradient(loss, p.q.data(), dq.data(), p.size(), 96), at + "d q");
  expect_gradient_close(check_gradient(loss, p.k.data(), dk.data(), p.size(), 96), at + "d k");
  expect_gradient_close(check_gradient(loss, p.v.data(), dv.data(), p.size(), 96), at + "d v");
}

TEST(CausalAttention, GradientsMatchFiniteDifferencesWithinOneTile) {
  check_attention_gradients(6);
}

TEST(CausalAttention, GradientsMatchFiniteDifferencesAcrossTiles) {
  check_attention_gradients(kAttentionRows + 7);
}

TEST(CausalAttention, OutputAtStepTIgnoresKeysAndValuesAfterIt) {
  const int64_t s = 23;  // inside the first tile; later rows of the same tile see it
  Problem p(2, kAttentionRows + 9, 2, 4);
  p.forward();
  const auto before = p.o;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t d = 0; d < p.Dh; ++d) {
        p.k[size_t(p.at(b, s, h) + d)] += 3.0;
        p.v[size_t(p.at(b, s, h) + d)] -= 2.0;
      }
  p.forward();
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t h = 0; h < p.H; ++h) {
        double change = 0;
        for (int64_t d = 0; d < p.Dh; ++d) {
          const size_t i = size_t(p.at(b, t, h) + d);
          change = std::max(change, std::abs(p.o[i] - before[i]));
        }
        if (t < s) {
          EXPECT_EQ(change, 0.0) << "b " << b << " t " << t << " h " << h;
        } else {
          EXPECT_GT(change, 1e-6) << "b " << b << " t " << t << " h " << h;
        }
      }
}

TEST(CausalAttention, SingleStepAttendsOnlyToItself) {
  Problem p(3, 1, 2, 4);
  p.forward();
  EXPECT_LE(max_abs_diff(p.o, p.v), 1e-15);
  const auto dout = random_vector(p.size(), 5);
  std::vector<double> dq(size_t(p.size())), dk(dq), dv(dq);
  causal_attention_bwd(p.attention(), dout.data(), dq.data(), dk.data(), dv.data(), p.work.data());
  // The one probability is 1 whatever q and k are: only v receives gradient.
  EXPECT_LE(max_abs_diff(dv, dout), 1e-15);
  for (size_t i = 0; i < dq.size(); ++i) {
    EXPECT_NEAR(dq[i], 0.0, 1e-15);
    EXPECT_NEAR(dk[i], 0.0, 1e-15);
  }
}

// --- probe -----------------------------------------------------------------------------------

// The explicit T×T masked softmax of head (b, h), as naive_attention builds it.
Eigen::MatrixXd naive_probabilities(const Problem& p, int64_t b, int64_t h) {
  Eigen::MatrixXd Q(p.T, p.Dh), K(p.T, p.Dh);
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t d = 0; d < p.Dh; ++d) {
      Q(t, d) = p.q[size_t(p.at(b, t, h) + d)];
      K(t, d) = p.k[size_t(p.at(b, t, h) + d)];
    }
  Eigen::MatrixXd P = Q * K.transpose() / std::sqrt(double(p.Dh));
  for (int64_t t = 0; t < p.T; ++t) {
    const double m = P.row(t).head(t + 1).maxCoeff();
    const double l = (P.row(t).head(t + 1).array() - m).exp().sum();
    P.row(t).head(t + 1) = (P.row(t).head(t + 1).array() - m).exp() / l;
    P.row(t).tail(p.T - t - 1).setZero();
  }
  return P;
}

TEST(CausalAttentionProbe, EntropyAndMapMatchAnExplicitSoftmaxAcrossTiles) {
  for (int64_t T : {int64_t(1), int64_t(9), 2 * kAttentionRows + 6}) {
    Problem p(2, T, 3, 4, 71);
    p.forward();
    const auto q = p.q, k = p.k, v = p.v, o = p.o, lse = p.lse;
    std::vector<double> entropy(size_t(p.B * T * p.H), -1.0);
    std::vector<double> map(size_t(p.B * p.H * T * T), -1.0);
    causal_attention_probe(p.attention(), entropy.data(), map.data(), p.work.data());
    EXPECT_TRUE(p.q == q && p.k == k && p.v == v && p.o == o && p.lse == lse)
        << "T = " << T << ": the probe changed what forward left";
    double lowest = INFINITY, highest = 0;
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t h = 0; h < p.H; ++h) {
        const Eigen::MatrixXd P = naive_probabilities(p, b, h);
        for (int64_t t = 0; t < T; ++t) {
          const std::string at = "T = " + std::to_string(T) + " b " + std::to_string(b) + " h " +
                                 std::to_string(h) + " t " + std::to_string(t);
          double want = 0, row_sum = 0, map_error = 0;
          for (int64_t s = 0; s <= t; ++s) want -= P(t, s) * std::log(P(t, s));
          const double* row = map.data() + ((b * p.H + h) * T + t) * T;
          for (int64_t s = 0; s < T; ++s) {
            map_error = std::max(map_error, std::abs(row[s] - P(t, s)));
            row_sum += row[s];
            if (s > t) {
              EXPECT_EQ(row[s], 0.0) << at << " s " << s << ": above the diagonal";
            }
          }
          const double got = entropy[size_t((b * T + t) * p.H + h)];
          EXPECT_LE(std::abs(got - want), 1e-10 * std::max(1.0, std::abs(want))) << at;
          EXPECT_LE(map_error, 1e-12) << at;
          EXPECT_NEAR(row_sum, 1.0, 1e-12) << at;
          lowest = std::min(lowest, got), highest = std::max(highest, got);
        }
      }
    // One key has entropy 0; later queries spread over many keys, but never beyond log(t + 1).
    EXPECT_NEAR(entropy[0], 0.0, 1e-15) << "T = " << T;
    if (T > 1) {
      EXPECT_GT(highest, 0.5) << "T = " << T << ": the entropies say nothing";
    }
    EXPECT_LE(highest, std::log(double(T)) + 1e-12) << "T = " << T;
    EXPECT_GE(lowest, -1e-15) << "T = " << T;
  }
}

TEST(CausalAttentionProbe, EntropyWithoutAMapNeedsNeitherOutputNorValues) {
  Problem p(2, kAttentionRows + 3, 2, 4, 72);
  p.forward();
  std::vector<double> with_map(size_t(p.B * p.T * p.H)), without(with_map.size());
  std::vector<double> map(size_t(p.B * p.H * p.T * p.T));
  causal_attention_probe(p.attention(), with_map.data(), map.data(), p.work.data());
  auto a = p.attention();
  a.o = nullptr, a.v = nullptr;  // the probe reads q, k and lse only
  causal_attention_probe<double>(a, without.data(), nullptr, p.work.data());
  EXPECT_EQ(with_map, without);
  a.lse = nullptr;
  EXPECT_THROW(causal_attention_probe<double>(a, without.data(), nullptr, p.work.data()), Error);
}

TEST(CausalAttentionProbe, UnderflowedProbabilitiesAddNothingToTheEntropy) {
  // One key far above the rest: the others' probabilities underflow to exactly 0 in double, and
  // 0 · log 0 must count as 0, not NaN.
  Problem p(1, 4, 1, 2, 73);
  for (int64_t t = 0; t < p.T; ++t) {
    p.q[size_t(p.at(0, t, 0))] = 100.0, p.q[size_t(p.at(0, t, 0) + 1)] = 0.0;
    p.k[size_t(p.at(0, t, 0))] = t == 0 ? 100.0 : -100.0, p.k[size_t(p.at(0, t, 0) + 1)] = 0.0;
  }
  p.forward();
  std::vector<double> entropy(size_t(p.T)), map(size_t(p.T * p.T));
  causal_attention_probe(p.attention(), entropy.data(), map.data(), p.work.data());
  // Scores near 7000 carry rounding of about 1e-12 into log p of the dominant key.
  for (int64_t t = 0; t < p.T; ++t) {
    EXPECT_TRUE(std::isfinite(entropy[size_t(t)])) << "t " << t;
    EXPECT_NEAR(entropy[size_t(t)], 0.0, 1e-11) << "t " << t;
    EXPECT_NEAR(map[size_t(t * p.T)], 1.0, 1e-11) << "t " << t;
  }
  // exp(−20000 / √2) underflows: to 0, or to Eigen's clamped exp(−709.8) ≈ 5.6e-309 on builds
  // whose vectorized exp clamps its argument.
  EXPECT_LT(map[size_t(p.T + 1)], 1e-300);
}

// --- RoPE ------------------------------------------------------------------------------------

constexpr double kBase = 10000;

TEST(Rope, RotatesInterleavedPairsByPositionTimesFrequency) {
  const int64_t T = 4, Dh = 6;
  const auto x = random_vector(T * Dh, 21);
  std::vector<double> y(x.size());
  rope_fwd(y.data(), x.data(), 1, T, 1, Dh, kBase);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < Dh / 2; ++i) {
      const double angle = double(t) * std::pow(kBase, -2.0 * double(i) / double(Dh));
      const size_t a = size_t(t * Dh + 2 * i), b = a + 1;
      EXPECT_NEAR(y[a], x[a] * std::cos(angle) - x[b] * std::sin(angle), 1e-14);
      EXPECT_NEAR(y[b], x[a] * std::sin(angle) + x[b] * std::cos(angle), 1e-14);
    }
  for (int64_t d = 0; d < Dh; ++d) EXPECT_EQ(y[size_t(d)], x[size_t(d)]) << "position 0";
}

TEST(Rope, ScoreDependsOnlyOnTheOffsetBetweenPositions) {
  // The same q at every position and the same k at every position: after rotation the score
  // of (t, s) must equal that of (t + shift, s + shift).
  const int64_t T = 40, H = 2, Dh = 8;
  const auto q1 = random_vector(H * Dh, 31), k1 = random_vector(H * Dh, 32);
  std::vector<double> q(size_t(T * H * Dh)), k(q.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < H * Dh; ++j) {
      q[size_t(t * H * Dh + j)] = q1[size_t(j)];
      k[size_t(t * H * Dh + j)] = k1[size_t(j)];
    }
  rope_fwd(q.data(), q.data(), 1, T, H, Dh, kBase);
  rope_fwd(k.data(), k.data(), 1, T, H, Dh, kBase);
  auto score = [&](int64_t t, int64_t s, int64_t h) {
    double sum = 0;
    for (int64_t d = 0; d < Dh; ++d)
      sum += q[size_t((t * H + h) * Dh + d)] * k[size_t((s * H + h) * Dh + d)];
    return sum;
  };
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < 10; ++t)
      for (int64_t s = 0; s < 10; ++s)
        for (int64_t shift : {1, 7, 29}) {
          EXPECT_NEAR(score(t + shift, s + shift, h), score(t, s, h), 1e-12)
              << "t " << t << " s " << s << " shift " << shift;
        }
  // And it does depend on the offset (otherwise the test above proves nothing).
  EXPECT_GT(std::abs(score(5, 0, 0) - score(5, 5, 0)), 1e-3);
}

TEST(Rope, PositionRestartsInEveryBatchRow) {
  const int64_t B = 2, T = 3, H = 1, Dh = 4;
  auto x = random_vector(T * H * Dh, 41);
  x.insert(x.end(), x.begin(), x.end());  // row 1 = row 0
  std::vector<double> y(x.size());
  rope_fwd(y.data(), x.data(), B, T, H, Dh, kBase);
  for (int64_t i = 0; i < T * H * Dh; ++i) EXPECT_EQ(y[size_t(i)], y[size_t(T * H * Dh + i)]);
}

TEST(Rope, GradientMatchesFiniteDifferencesAndBackwardInverts) {
  const int64_t B = 2, T = 5, H = 3, Dh = 6;
  auto x = random_vector(B * T * H * Dh, 51);
  const auto w = random_vector(int64_t(x.size()), 52);
  std::vector<double> y(x.size()), dx(x.size());
  auto loss = [&] {
    rope_fwd(y.data(), x.data(), B, T, H, Dh, 100.0);
    return testing::dot(w, y.data());
  };
  rope_bwd(dx.data(), w.data(), B, T, H, Dh, 100.0);
  expect_gradient_close(check_gradient(loss, x.data(), dx.data(), int64_t(x.size()), 180),
                        "rope d x");
  // The rotation is orthogonal, so backward applied to y gives x back.
  loss();
  std::vector<double> back(x.size());
  rope_bwd(back.data(), y.data(), B, T, H, Dh, 100.0);
  EXPECT_LE(max_abs_diff(back, x), 1e-14);
}

TEST(Rope, OddHeadDimensionIsAShapeError) {
  std::vector<double> x(2 * 3 * 5), y(x.size());
  EXPECT_THROW(rope_fwd(y.data(), x.data(), 1, 2, 3, 5, kBase), ShapeError);
  EXPECT_THROW(rope_bwd(y.data(), x.data(), 1, 2, 3, 5, kBase), ShapeError);
}

}  // namespace
}  // namespace statelab::cpu
