// The blocks around the unified linear recurrence (mLSTM, Mamba-2, Gated DeltaNet):
// - finite-difference gradients in double for the input and every parameter, in each
//   eigenvalue range and forget-gate kind, with a chunk that splits the sequence;
// - the kernel, parameterised as each cell, against a direct implementation of the cell's
//   published recurrence written here (a second reading of DESIGN §2);
// - the transition eigenvalues: in [0, 1] for "01", reaching below zero for "pm1".
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "cells/gdn_block.hpp"
#include "cells/mamba2_block.hpp"
#include "cells/mlstm_block.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// A block with its parameters and arena, initialised as in training, then moved off the
// initial constants so that every path of backward carries signal.
template <typename BlockT>
struct Fixture {
  ParamStore<double> ps;
  Arena<double> arena;
  std::unique_ptr<BlockT> block;
  Pass pass;
  std::vector<double> x, y;

  Fixture(const ModelConfig& cfg, Pass p, double input_scale = 1.0, double noise = 0.3) : pass(p) {
    block = std::make_unique<BlockT>(ps, arena, "b", cfg, 2);
    ps.allocate();
    ps.initialize(1);
    const auto n = random_vector(ps.size(), 2, noise);
    for (int64_t i = 0; i < ps.size(); ++i) ps.values()[i] += n[size_t(i)];
    arena.allocate(Exec{}, p.tokens(), p.tokens());
    x = random_vector(p.tokens() * cfg.d_model, 3, input_scale);
    y.resize(x.size());
  }
  void forward() { block->forward(pass, x.data(), y.data()); }

  void check_gradients(const std::string& what) {
    const auto w = random_vector(int64_t(y.size()), 4);
    auto loss = [&] {
      forward();
      return testing::dot(w, y.data());
    };
    loss();
    ps.zero_grads();
    std::vector<double> dx(x.size());
    block->backward(pass, x.data(), w.data(), dx.data());
    std::vector<double> dparams(ps.grads(), ps.grads() + ps.size());
    expect_gradient_close(check_gradient(loss, x.data(), dx.data(), int64_t(x.size()), 96),
                          what + ": d input");
    expect_gradient_close(check_gradient(loss, ps.values(), dparams.data(), ps.size(), 300),
                          what + ": d parameters");
  }
};

ModelConfig config(const std::string& blocks, const std::string& range, int heads) {
  ModelConfig c;
  c.blocks = blocks, c.d_model = 8, c.heads = heads, c.ffn_factor = 1.0;
  c.eigen_range = range;
  c.chunk_size = 3;  // T = 7 below: three chunks, the last one short
  c.mamba2.state_size = 5;
  return c;
}

// --- gradients -------------------------------------------------------------------------------

TEST(LinearBlockGradients, MlstmSigmoidForget) {
  Fixture<MlstmBlock<double>> f(config("m", "01", 2), {2, 7});
  f.check_gradients("mlstm sigmoid");
}

TEST(LinearBlockGradients, MlstmExpForget) {
  ModelConfig cfg = config("m", "01", 2);
  cfg.mlstm.forget_gate = "exp";
  Fixture<MlstmBlock<double>> f(cfg, {2, 7});
  f.check_gradients("mlstm exp");
}

TEST(LinearBlockGradients, MlstmSignedForgetPm1) {
  Fixture<MlstmBlock<double>> f(config("m", "pm1", 2), {2, 7});
  f.check_gradients("mlstm pm1");
}

TEST(LinearBlockGradients, Mamba2) {
  Fixture<Mamba2Block<double>> f(config("M", "01", 2), {2, 7});
  f.check_gradients("mamba2 01");
}

TEST(LinearBlockGradients, Mamba2SignedTransitionPm1) {
  Fixture<Mamba2Block<double>> f(config("M", "pm1", 2), {2, 7});
  f.check_gradients("mamba2 pm1");
}

TEST(LinearBlockGradients, GatedDeltaNetWithFfn) {
  Fixture<GdnBlock<double>> f(config("g", "01", 2), {2, 7});
  f.check_gradients("gdn 01");
}

TEST(LinearBlockGradients, GatedDeltaNetPm1WithoutFfn) {
  ModelConfig cfg = config("g", "pm1", 2);
  cfg.ffn_factor = 0;
  Fixture<GdnBlock<double>> f(cfg, {2, 7});
  f.check_gradients("gdn pm1");
}

// --- each cell against its published recurrence ----------------------------------------------

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

// Reads vector i (length n) of token (b, t), head h out of a strided kernel operand.
template <typename P>
Vector row_of(const cpu::Rows<P>& r, int64_t T, int64_t b, int64_t t, int64_t h, int64_t n) {
  Vector v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = r.data[(b * T + t) * r.row + h * r.head + i];
  return v;
}

// xLSTM's recurrent mLSTM step as its reference backend writes it, the 1e-6 in the divisor
// included. That eps makes the output depend (slightly) on the stabilizer, so the reference
// starts from the kernel's m_0 = −∞ (the sLSTM reference's first-step rule) rather than 0.
TEST(LinearCellsMatchPublishedRecurrences, Mlstm) {
  for (const std::string range : {"01", "pm1"})
    for (const std::string gate : {"sigmoid", "exp"}) {
      if (range == "pm1" && gate == "exp") continue;
      ModelConfig cfg = config("m", range, 2);
      cfg.mlstm.forget_gate = gate;
      Fixture<MlstmBlock<double>> f(cfg, {2, 9}, 1.0, 0.8);
      f.forward();
      const auto r = f.block->recurrence(f.pass);
      const int64_t H = r.H, Dh = r.Dk, T = r.T;
      double worst = 0;
      for (int64_t b = 0; b < r.B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          Matrix C = Matrix::Zero(Dh, Dh);
          Vector n = Vector::Zero(Dh);
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t t = 0; t < T; ++t) {
            const int64_t g = (b * T + t) * H + h;
            const double ig = f.block->input_gate()[g], fg = f.block->forget_gate()[g];
            double log_f = gate == "exp" ? fg : std::log(sigmoid(fg)), sign = 1;
            if (range == "pm1") {
              const double signed_f = 2 * sigmoid(fg) - 1;
              log_f = std::log(std::abs(signed_f)), sign = signed_f < 0 ? -1 : 1;
            }
            const double m_new = t == 0 ? ig : std::max(log_f + m, ig);
            const double fp = t == 0 ? 0.0 : sign * std::exp(log_f + m - m_new);
            const double ip = std::exp(ig - m_new);
            m = m_new;
            const Vector q = row_of(r.q, T, b, t, h, Dh);
            const Vector k = row_of(r.k, T, b, t, h, Dh);  // already k / √d_h
            const Vector v = row_of(r.v, T, b, t, h, Dh);
            C = fp * C + ip * v * k.transpose();
            n = fp * n + ip * k;
            const Vector expected = C * q / (std::max(std::abs(n.dot(q)), std::exp(-m)) + 1e-6);
            const Vector got =
                row_of(cpu::Rows<const double>{r.y.data, r.y.row, r.y.head}, T, b, t, h, Dh);
            worst = std::max(worst, (expected - got).cwiseAbs().maxCoeff() /
                                        std::max(1.0, expected.cwiseAbs().maxCoeff()));
          }
        }
      EXPECT_LE(worst, 1e-10) << "mlstm " << range << " " << gate;
    }
}

// Mamba-2's SSD recurrence per head: H = exp(dt·A)·H + dt·x Bᵀ, y = H C (the D skip is added
// outside the scan), with "pm1" replacing exp(dt·A) by 2·exp(dt·A) − 1.
TEST(LinearCellsMatchPublishedRecurrences, Mamba2) {
  for (const std::string range : {"01", "pm1"}) {
    Fixture<Mamba2Block<double>> f(config("M", range, 2), {2, 9}, 1.0, 0.8);
    f.forward();
    const auto r = f.block->recurrence(f.pass);
    const int64_t H = r.H, P = r.Dv, N = r.Dk, T = r.T;
    double worst = 0;
    for (int64_t b = 0; b < r.B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        Matrix state = Matrix::Zero(P, N);
        const double A = -std::exp(f.block->A_log()[h]);
        for (int64_t t = 0; t < T; ++t) {
          const double dt = f.block->dt()[(b * T + t) * H + h];
          double decay = std::exp(dt * A);
          if (range == "pm1") decay = 2 * decay - 1;
          const Vector x = row_of(r.v, T, b, t, h, P);
          const Vector Bt = row_of(r.k, T, b, t, h, N), Ct = row_of(r.q, T, b, t, h, N);
          state = decay * state + dt * x * Bt.transpose();
          const Vector expected = state * Ct;
          const Vector got =
              row_of(cpu::Rows<const double>{r.y.data, r.y.row, r.y.head}, T, b, t, h, P);
          worst = std::max(worst, (expected - got).cwiseAbs().maxCoeff() /
                                      std::max(1.0, expected.cwiseAbs().maxCoeff()));
        }
      }
    EXPECT_LE(worst, 1e-10) << "mamba2 " << range;
  }
}

// fla's gated delta rule step, state stored d_k × d_v: S ← αS; v' = β(v − Sᵀk); S ← S + k v'ᵀ;
// o = Sᵀq.
TEST(LinearCellsMatchPublishedRecurrences, GatedDeltaNet) {
  for (const std::string range : {"01", "pm1"}) {
    Fixture<GdnBlock<double>> f(config("g", range, 2), {2, 9}, 1.0, 0.8);
    f.forward();
    const auto r = f.block->recurrence(f.pass);
    const int64_t H = r.H, Dk = r.Dk, Dv = r.Dv, T = r.T;
    double worst = 0;
    for (int64_t b = 0; b < r.B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        Matrix state = Matrix::Zero(Dk, Dv);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t g = (b * T + t) * H + h;
          const double alpha = r.a[g], beta = r.b[g];
          EXPECT_EQ(r.c[g], beta);
          const Vector q = row_of(r.q, T, b, t, h, Dk), k = row_of(r.k, T, b, t, h, Dk);
          const Vector v = row_of(r.v, T, b, t, h, Dv);
          EXPECT_NEAR(k.norm(), 1.0, 1e-4);  // L2-normalised up to the 1e-6 guard
          state *= alpha;
          const Vector v_new = beta * (v - state.transpose() * k);
          state += k * v_new.transpose();
          const Vector expected = state.transpose() * q;
          const Vector got =
              row_of(cpu::Rows<const double>{r.y.data, r.y.row, r.y.head}, T, b, t, h, Dv);
          worst = std::max(worst, (expected - got).cwiseAbs().maxCoeff() /
                                      std::max(1.0, expected.cwiseAbs().maxCoeff()));
        }
      }
    EXPECT_LE(worst, 1e-10) << "gdn " << range;
  }
}

// --- eigenvalues of the state transition -------------------------------------------------------

struct EigenRange {
  double lo = 1e300, hi = -1e300;
};

// Mamba-2's transition is a_t·I: its eigenvalue is a_t.
EigenRange mamba2_eigenvalues(const std::string& range) {
  Fixture<Mamba2Block<double>> f(config("M", range, 2), {8, 16}, 2.0, 0.0);
  f.forward();
  const auto r = f.block->recurrence(f.pass);
  EigenRange e;
  for (int64_t i = 0; i < r.B * r.T * r.H; ++i)
    e.lo = std::min(e.lo, r.a[i]), e.hi = std::max(e.hi, r.a[i]);
  return e;
}

// Gated DeltaNet's transition α(I − β k kᵀ), computed as a matrix and diagonalised.
EigenRange gdn_eigenvalues(const std::string& range) {
  Fixture<GdnBlock<double>> f(config("g", range, 2), {8, 16}, 2.0, 0.0);
  f.forward();
  const auto r = f.block->recurrence(f.pass);
  EigenRange e;
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t t = 0; t < r.T; ++t)
      for (int64_t h = 0; h < r.H; ++h) {
        const int64_t g = (b * r.T + t) * r.H + h;
        const Vector k = row_of(r.k, r.T, b, t, h, r.Dk);
        const Matrix M = r.a[g] * (Matrix::Identity(r.Dk, r.Dk) - r.b[g] * k * k.transpose());
        const Vector ev = Eigen::SelfAdjointEigenSolver<Matrix>(M).eigenvalues();
        e.lo = std::min(e.lo, ev.minCoeff()), e.hi = std::max(e.hi, ev.maxCoeff());
      }
  return e;
}

TEST(TransitionEigenvalues, StayInZeroOneForThePublishedRange) {
  for (const auto& [cell, e] :
       {std::pair{"mamba2", mamba2_eigenvalues("01")}, std::pair{"gdn", gdn_eigenvalues("01")}}) {
    EXPECT_GE(e.lo, -1e-12) << cell;
    EXPECT_LE(e.hi, 1.0) << cell;
  }
}

TEST(TransitionEigenvalues, ReachBelowZeroAndStayAboveMinusOneForPm1) {
  for (const auto& [cell, e] :
       {std::pair{"mamba2", mamba2_eigenvalues("pm1")}, std::pair{"gdn", gdn_eigenvalues("pm1")}}) {
    EXPECT_LT(e.lo, 0.0) << cell;
    EXPECT_GE(e.lo, -1.0) << cell;
    EXPECT_LE(e.hi, 1.0) << cell;
  }
}

// mLSTM's transition is the stabilized forget gate, a scalar: its sign follows f = 2σ(f̃) − 1
// under "pm1" and is never negative as published.
TEST(TransitionEigenvalues, MlstmForgetGateSignFollowsTheRange) {
  for (const std::string range : {"01", "pm1"}) {
    ModelConfig cfg = config("m", range, 2);
    Fixture<MlstmBlock<double>> f(cfg, {8, 16}, 2.0, 0.0);
    // Forget-gate biases start at 3..6 (memory on); centre them so both signs are reachable.
    for (const auto& info : f.ps.infos())
      if (info.name == "b.cell.fgate.bias")
        for (int64_t i = 0; i < info.shape.numel(); ++i) f.ps.values()[info.offset + i] = 0;
    for (const auto& info : f.ps.infos())
      if (info.name == "b.cell.fgate.weight") {
        const auto w = random_vector(info.shape.numel(), 9, 0.5);
        for (int64_t i = 0; i < info.shape.numel(); ++i)
          f.ps.values()[info.offset + i] = w[size_t(i)];
      }
    f.forward();
    const auto r = f.block->recurrence(f.pass);
    double lo = 1e300;
    for (int64_t b = 0; b < r.B; ++b)
      for (int64_t t = 1; t < r.T; ++t)  // a_0 multiplies the zero initial state
        for (int64_t h = 0; h < r.H; ++h) lo = std::min(lo, r.a[(b * r.T + t) * r.H + h]);
    if (range == "01") {
      EXPECT_GE(lo, 0.0);
    } else {
      EXPECT_LT(lo, 0.0);
    }
  }
}

}  // namespace
}  // namespace statelab
