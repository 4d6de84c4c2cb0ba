// The LSTM / sLSTM recurrence kernel against (1) a naive step-by-step reading of the DESIGN §2
// equations written here, and (2) central finite differences of its own backward, in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/error.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

struct Recurrence {
  cpu::NonlinearCell cell;
  bool exp_forget;
  int64_t B, T, H, Dh;
  std::vector<double> pre, R, raw, gates, c, n, m, h;

  Recurrence(cpu::NonlinearCell cell_, bool exp_forget_, int64_t B_, int64_t T_, int64_t H_,
             int64_t Dh_, double pre_scale, double r_scale, unsigned seed)
      : cell(cell_), exp_forget(exp_forget_), B(B_), T(T_), H(H_), Dh(Dh_) {
    pre = random_vector(B * T * H * 4 * Dh, seed, pre_scale);
    R = random_vector(H * Dh * 4 * Dh, seed + 1, r_scale);
    for (auto* v : {&raw, &gates}) v->assign(size_t(B * T * H * 4 * Dh), 0);
    for (auto* v : {&c, &n, &m, &h}) v->assign(size_t(B * T * H * Dh), 0);
  }
  cpu::NonlinearRecurrence<double> params() {
    cpu::NonlinearRecurrence<double> p;
    p.cell = cell, p.exp_forget = exp_forget, p.B = B, p.T = T, p.H = H, p.Dh = Dh;
    p.pre = pre.data(), p.R = R.data(), p.raw = raw.data(), p.gates = gates.data();
    p.c = c.data(), p.n = n.data(), p.m = m.data(), p.h = h.data();
    return p;
  }
  void forward() { cpu::nonlinear_recurrence_fwd(params()); }
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// DESIGN §2 read directly, with the stabilizer started at m_0 = 0 (the kernel starts at −∞):
// h must not depend on that choice.
std::vector<double> naive_hidden(const Recurrence& r) {
  const int64_t D = r.H * r.Dh;
  std::vector<double> out(size_t(r.B * r.T * D));
  for (int64_t b = 0; b < r.B; ++b) {
    std::vector<double> h(static_cast<size_t>(D), 0), c(size_t(D), 0), n(size_t(D), 0), m(size_t(D), 0);
    for (int64_t t = 0; t < r.T; ++t) {
      std::vector<double> h_next(static_cast<size_t>(D));
      for (int64_t hd = 0; hd < r.H; ++hd)
        for (int64_t k = 0; k < r.Dh; ++k) {
          double g[4];
          for (int gate = 0; gate < 4; ++gate) {
            // pre: the (ĩ, f̃) halves of all rows, then the (z̃, õ) halves.
            const int64_t row = (b * r.T + t) * r.H + hd, rows = r.B * r.T * r.H;
            g[gate] = r.pre[size_t(((gate / 2) * rows + row) * 2 * r.Dh + (gate % 2) * r.Dh + k)];
            for (int64_t j = 0; j < r.Dh; ++j)
              g[gate] += h[size_t(hd * r.Dh + j)] * r.R[size_t(((hd * r.Dh + j) * 4 + gate) * r.Dh + k)];
          }
          const size_t u = size_t(hd * r.Dh + k);
          const double z = std::tanh(g[2]), o = sigmoid(g[3]);
          if (r.cell == cpu::NonlinearCell::lstm) {
            c[u] = sigmoid(g[1]) * c[u] + sigmoid(g[0]) * z;
            h_next[u] = o * std::tanh(c[u]);
          } else {
            const double log_f = r.exp_forget ? g[1] : std::log(sigmoid(g[1]));
            const double m_new = std::max(log_f + m[u], g[0]);
            const double i_s = std::exp(g[0] - m_new), f_s = std::exp(log_f + m[u] - m_new);
            c[u] = f_s * c[u] + i_s * z;
            n[u] = f_s * n[u] + i_s;
            m[u] = m_new;
            h_next[u] = o * c[u] / n[u];
          }
        }
      h = h_next;
      std::copy(h.begin(), h.end(), out.begin() + (b * r.T + t) * D);
    }
  }
  return out;
}

void expect_matches_naive(Recurrence& r) {
  r.forward();
  const auto ref = naive_hidden(r);
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_TRUE(std::isfinite(r.h[i])) << "non-finite h at " << i;
    worst = std::max(worst, std::abs(r.h[i] - ref[i]) / (1e-12 + std::abs(ref[i])));
  }
  EXPECT_LE(worst, 1e-10) << "worst relative difference from the naive recurrence";
}

TEST(NonlinearRecurrence, LstmMatchesTheNaiveEquations) {
  Recurrence r(cpu::NonlinearCell::lstm, false, 2, 7, 1, 5, 1.0, 0.5, 11);
  expect_matches_naive(r);
}

TEST(NonlinearRecurrence, SlstmSigmoidForgetMatchesTheNaiveEquations) {
  Recurrence r(cpu::NonlinearCell::slstm, false, 2, 9, 3, 4, 1.5, 0.5, 12);
  expect_matches_naive(r);
}

TEST(NonlinearRecurrence, SlstmExpForgetMatchesTheNaiveEquations) {
  Recurrence r(cpu::NonlinearCell::slstm, true, 2, 9, 2, 3, 1.5, 0.5, 13);
  expect_matches_naive(r);
}

// Exponential gates with large pre-activations over a long sequence: unstabilized, exp(ĩ)
// overflows float within a few steps; stabilized, float stays finite and close to double.
TEST(NonlinearRecurrence, SlstmStaysFiniteInFloatWhereUnstabilizedGatesOverflow) {
  Recurrence r(cpu::NonlinearCell::slstm, true, 2, 400, 2, 4, 30.0, 0.3, 14);
  // ĩ large: the first unit's ĩ of every row, in pre's (ĩ, f̃) half.
  for (int64_t i = 0; i < int64_t(r.pre.size()) / 2; i += 2 * r.Dh) r.pre[size_t(i)] += 60.0;
  r.forward();
  auto cast = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  std::vector<float> pre = cast(r.pre), R = cast(r.R), raw(r.raw.size()), gates(r.gates.size()),
                     c(r.c.size()), n(r.n.size()), m(r.m.size()), h(r.h.size());
  cpu::NonlinearRecurrence<float> p;
  p.cell = r.cell, p.exp_forget = true, p.B = r.B, p.T = r.T, p.H = r.H, p.Dh = r.Dh;
  p.pre = pre.data(), p.R = R.data(), p.raw = raw.data(), p.gates = gates.data();
  p.c = c.data(), p.n = n.data(), p.m = m.data(), p.h = h.data();
  cpu::nonlinear_recurrence_fwd(p);
  double max_m = 0, worst = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    ASSERT_TRUE(std::isfinite(h[i])) << "float h not finite at " << i;
    worst = std::max(worst, std::abs(double(h[i]) - r.h[i]));
    max_m = std::max(max_m, r.m[i]);
  }
  EXPECT_GT(max_m, 88.0) << "the test must drive the stabilizer past float's exp range";
  EXPECT_LE(worst, 1e-4);
}

// raw is optional: a forward that does not save the pre-activations writes the same gates and
// states, and the backwards that do not read them (LSTM, sLSTM with exp forget) the same dpre
// and dR. The sLSTM's σ forget gate needs them and says so. "The same" to 1e-14: without raw,
// R·h accumulates into a scratch row of another stride and alignment, where Eigen's vectorized
// product may round the last bit differently.
void expect_same_without_raw(Recurrence r) {
  r.forward();
  Recurrence bare = r;
  for (auto* v : {&bare.gates, &bare.c, &bare.n, &bare.m, &bare.h})
    std::fill(v->begin(), v->end(), 0);
  auto p = bare.params();
  p.raw = nullptr;
  cpu::nonlinear_recurrence_fwd(p);
  const std::vector<std::pair<const std::vector<double>*, const std::vector<double>*>> outputs = {
      {&r.gates, &bare.gates}, {&r.c, &bare.c}, {&r.n, &bare.n}, {&r.m, &bare.m}, {&r.h, &bare.h}};
  for (const auto& [with, without] : outputs)
    for (size_t i = 0; i < with->size(); ++i)
      ASSERT_NEAR((*with)[i], (*without)[i], 1e-14) << "output element " << i;
  const auto dh = random_vector(int64_t(r.h.size()), 98);
  std::vector<double> dpre(r.pre.size()), dR(r.R.size(), 0), work(size_t(3 * r.B * r.H * r.Dh));
  auto dpre_bare = dpre, dR_bare = dR;
  cpu::nonlinear_recurrence_bwd(r.params(), dh.data(), dpre.data(), dR.data(), work.data());
  cpu::nonlinear_recurrence_bwd(p, dh.data(), dpre_bare.data(), dR_bare.data(), work.data());
  for (size_t i = 0; i < dpre.size(); ++i)
    ASSERT_NEAR(dpre[i], dpre_bare[i], 1e-14) << "dpre " << i;
  for (size_t i = 0; i < dR.size(); ++i) ASSERT_NEAR(dR[i], dR_bare[i], 1e-14) << "dR " << i;
}

TEST(NonlinearRecurrence, LstmRunsTheSameWithoutSavedPreactivations) {
  expect_same_without_raw(Recurrence(cpu::NonlinearCell::lstm, false, 3, 8, 1, 5, 1.0, 0.5, 31));
}

TEST(NonlinearRecurrence, SlstmExpForgetRunsTheSameWithoutSavedPreactivations) {
  expect_same_without_raw(Recurrence(cpu::NonlinearCell::slstm, true, 3, 8, 2, 3, 1.0, 0.5, 32));
}

TEST(NonlinearRecurrence, SlstmSigmoidForgetBackwardRefusesMissingPreactivations) {
  Recurrence r(cpu::NonlinearCell::slstm, false, 2, 4, 2, 3, 1.0, 0.5, 33);
  r.forward();
  auto p = r.params();
  p.raw = nullptr;
  std::vector<double> dh(r.h.size(), 1), dpre(r.pre.size()), dR(r.R.size()), work(r.h.size() * 3);
  EXPECT_THROW(cpu::nonlinear_recurrence_bwd(p, dh.data(), dpre.data(), dR.data(), work.data()),
               ShapeError);
}

// An evaluation's forward (gates null) writes h alone, the same h as a saving forward (to
// 1e-14, as above: its R·h goes to scratch), from states it carries itself; the saved tensors
// stay untouched and backward cannot follow it.
void expect_evaluation_writes_the_same_h_alone(Recurrence r) {
  r.forward();
  Recurrence eval = r;
  std::fill(eval.h.begin(), eval.h.end(), 0);
  for (auto* v : {&eval.raw, &eval.gates, &eval.c, &eval.n, &eval.m})
    std::fill(v->begin(), v->end(), -7.0);
  auto p = eval.params();
  p.raw = p.gates = p.c = p.n = p.m = nullptr;
  cpu::nonlinear_recurrence_fwd(p);
  for (size_t i = 0; i < r.h.size(); ++i) ASSERT_NEAR(r.h[i], eval.h[i], 1e-14) << "h " << i;
  for (const auto* v : {&eval.raw, &eval.gates, &eval.c, &eval.n, &eval.m})
    for (double x : *v) ASSERT_EQ(x, -7.0) << "an evaluation wrote a saved tensor";
  std::vector<double> dh(r.h.size(), 1), dpre(r.pre.size()), dR(r.R.size()), work(r.h.size() * 3);
  EXPECT_THROW(cpu::nonlinear_recurrence_bwd(p, dh.data(), dpre.data(), dR.data(), work.data()),
               ShapeError);
}

TEST(NonlinearRecurrence, LstmEvaluationWritesTheSameHAlone) {
  expect_evaluation_writes_the_same_h_alone(
      Recurrence(cpu::NonlinearCell::lstm, false, 3, 9, 1, 5, 1.5, 0.5, 41));
}

TEST(NonlinearRecurrence, SlstmSigmoidForgetEvaluationWritesTheSameHAlone) {
  expect_evaluation_writes_the_same_h_alone(
      Recurrence(cpu::NonlinearCell::slstm, false, 3, 9, 2, 4, 3.0, 0.5, 42));
}

TEST(NonlinearRecurrence, SlstmExpForgetEvaluationWritesTheSameHAlone) {
  expect_evaluation_writes_the_same_h_alone(
      Recurrence(cpu::NonlinearCell::slstm, true, 3, 9, 2, 4, 3.0, 0.5, 43));
}

// Saving some of the tensors is neither a training forward nor an evaluation.
TEST(NonlinearRecurrence, ForwardRefusesStatesWithoutGates) {
  Recurrence r(cpu::NonlinearCell::lstm, false, 2, 3, 1, 4, 1.0, 0.5, 44);
  auto p = r.params();
  p.gates = nullptr;
  EXPECT_THROW(cpu::nonlinear_recurrence_fwd(p), ShapeError);
}

void expect_backward_matches_finite_differences(Recurrence r, const std::string& what) {
  const auto w = random_vector(int64_t(r.h.size()), 99);
  auto loss = [&] {
    r.forward();
    return testing::dot(w, r.h.data());
  };
  loss();
  std::vector<double> dpre(r.pre.size()), dR(r.R.size(), 0), work(size_t(3 * r.B * r.H * r.Dh));
  cpu::nonlinear_recurrence_bwd(r.params(), w.data(), dpre.data(), dR.data(), work.data());
  expect_gradient_close(check_gradient(loss, r.pre.data(), dpre.data(), int64_t(r.pre.size()), 96),
                        what + ": d pre-activations");
  expect_gradient_close(check_gradient(loss, r.R.data(), dR.data(), int64_t(r.R.size()), 96),
                        what + ": d R");
}

TEST(NonlinearRecurrence, LstmBackwardMatchesFiniteDifferences) {
  expect_backward_matches_finite_differences(
      Recurrence(cpu::NonlinearCell::lstm, false, 2, 6, 1, 4, 1.0, 0.5, 21), "lstm");
}

TEST(NonlinearRecurrence, SlstmSigmoidForgetBackwardMatchesFiniteDifferences) {
  expect_backward_matches_finite_differences(
      Recurrence(cpu::NonlinearCell::slstm, false, 2, 6, 2, 3, 1.0, 0.5, 22), "slstm sigmoid");
}

TEST(NonlinearRecurrence, SlstmExpForgetBackwardMatchesFiniteDifferences) {
  expect_backward_matches_finite_differences(
      Recurrence(cpu::NonlinearCell::slstm, true, 2, 6, 2, 3, 1.0, 0.5, 23), "slstm exp");
}

// A long sequence with large gate pre-activations, where the stabilizer switches between its
// two branches many times: the backward must stay exact through them.
TEST(NonlinearRecurrence, SlstmBackwardIsExactOnALongSequenceWhereTheStabilizerMatters) {
  Recurrence r(cpu::NonlinearCell::slstm, true, 1, 120, 2, 3, 6.0, 0.3, 24);
  int switches = 0;
  r.forward();
  for (size_t i = r.H * r.Dh; i < r.m.size(); ++i) {
    const size_t gate_row = (i / r.Dh) * 4 * r.Dh + i % r.Dh;
    switches += std::abs(r.m[i] - r.raw[gate_row]) < 1e-12;  // m_t = ĩ_t: the input branch won
  }
  EXPECT_GT(switches, 20) << "the input branch of the stabilizer should win at many steps";
  expect_backward_matches_finite_differences(r, "slstm long sequence");
}

}  // namespace
}  // namespace statelab
