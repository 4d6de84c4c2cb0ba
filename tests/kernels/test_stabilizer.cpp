// The mLSTM stabilizer scan: its invariants, and its backward composed with the unified linear
// recurrence against finite differences, with and without the divisor's eps (with it the
// cell's output depends on m, so the gradient through m's max-scan must be right too).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cpu/stabilizer.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab::cpu {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

constexpr int64_t B = 2, T = 9, H = 2, Dh = 3;

TEST(Stabilizer, FirstStepTakesTheInputGateAndExponentsNeverExceedZero) {
  for (auto kind : {ForgetGate::sigmoid, ForgetGate::exp, ForgetGate::signed_sigmoid}) {
    const auto ig = random_vector(B * T * H, 1, 4.0), fg = random_vector(B * T * H, 2, 4.0);
    std::vector<double> m(ig.size()), a(ig.size()), c(ig.size()), floor(ig.size());
    stabilized_gates_fwd(kind, B, T, H, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                         floor.data());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const size_t first = size_t(b * T * H + h);
        EXPECT_EQ(m[first], ig[first]);
        EXPECT_EQ(c[first], 1.0);
        EXPECT_EQ(a[first], 0.0);
      }
    for (size_t i = 0; i < ig.size(); ++i) {
      EXPECT_LE(std::abs(a[i]), 1.0);
      EXPECT_LE(c[i], 1.0);
      EXPECT_GT(c[i], 0.0);
      EXPECT_DOUBLE_EQ(floor[i], std::exp(-m[i]));
      if (kind != ForgetGate::signed_sigmoid) {
        EXPECT_GE(a[i], 0.0);
      }
    }
  }
}

TEST(Stabilizer, SignedForgetGateCarriesTheSignOfTwoSigmoidMinusOne) {
  const std::vector<double> ig(T, 0.0);
  std::vector<double> fg(T);
  for (int64_t t = 0; t < T; ++t) fg[size_t(t)] = double(t) - 4;  // −4 .. 4
  std::vector<double> m(T), a(T), c(T), floor(T);
  stabilized_gates_fwd(ForgetGate::signed_sigmoid, 1, T, 1, ig.data(), fg.data(), m.data(),
                       a.data(), c.data(), floor.data());
  for (int64_t t = 1; t < T; ++t) {
    const double f = 2 / (1 + std::exp(-fg[size_t(t)])) - 1;
    EXPECT_EQ(std::signbit(a[size_t(t)]), std::signbit(f)) << "t = " << t;
  }
}

// y of the normalized recurrence as a function of the raw gates, q, k and v.
struct MlstmCell {
  ForgetGate kind;
  std::vector<double> ig, fg, q, k, v;
  std::vector<double> m, a, c, floor, y, boundary;

  double eps;

  MlstmCell(ForgetGate k_, double eps_)
      : kind(k_),
        ig(random_vector(B * T * H, 11, 2.0)),
        fg(random_vector(B * T * H, 12, 2.0)),
        q(random_vector(B * T * H * Dh, 13)),
        k(random_vector(B * T * H * Dh, 14, 0.6)),
        v(random_vector(B * T * H * Dh, 15)),
        m(ig.size()),
        a(ig.size()),
        c(ig.size()),
        floor(ig.size()),
        y(q.size()),
        eps(eps_) {
    boundary.resize(size_t(linear_recurrence_boundary_size(recurrence())));
  }
  LinearRecurrence<double> recurrence() {
    LinearRecurrence<double> r;
    r.B = B, r.T = T, r.H = H, r.Dk = Dh, r.Dv = Dh, r.chunk = 4;
    r.q = {q.data(), H * Dh, Dh};
    r.k = {k.data(), H * Dh, Dh};
    r.v = {v.data(), H * Dh, Dh};
    r.a = a.data(), r.c = c.data(), r.floor = floor.data(), r.eps = eps;
    r.y = {y.data(), H * Dh, Dh};
    r.boundary = boundary.empty() ? nullptr : boundary.data();
    return r;
  }
  void forward() {
    stabilized_gates_fwd(kind, B, T, H, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                         floor.data());
    linear_recurrence_fwd(recurrence());
  }
};

// eps = 0.05 is far above the cell's 1e-6 so that a gradient missing the path through m fails.
TEST(Stabilizer, GateGradientsThroughTheNormalizedRecurrenceMatchFiniteDifferences) {
  for (double eps : {0.0, 0.05})
  for (auto kind : {ForgetGate::sigmoid, ForgetGate::exp, ForgetGate::signed_sigmoid}) {
    MlstmCell cell(kind, eps);
    const auto w = random_vector(int64_t(cell.y.size()), 16);
    auto loss = [&] {
      cell.forward();
      return testing::dot(w, cell.y.data());
    };
    loss();
    std::vector<double> dq(cell.q.size()), dk(dq.size()), dv(dq.size());
    std::vector<double> da(cell.a.size()), dc(da.size()), dfloor(da.size()), dig(da.size()),
        dfg(da.size());
    LinearRecurrenceGrads<double> g;
    g.dy = {w.data(), H * Dh, Dh};
    g.dq = {dq.data(), H * Dh, Dh};
    g.dk = {dk.data(), H * Dh, Dh};
    g.dv = {dv.data(), H * Dh, Dh};
    g.da = da.data(), g.dc = dc.data(), g.dfloor = dfloor.data();
    std::vector<double> work(size_t(linear_recurrence_work_size(cell.recurrence())));
    linear_recurrence_bwd(cell.recurrence(), g, work.data());
    stabilized_gates_bwd(kind, B, T, H, cell.ig.data(), cell.fg.data(), cell.m.data(),
                         cell.a.data(), cell.c.data(), cell.floor.data(), da.data(), dc.data(),
                         dfloor.data(), dig.data(), dfg.data());
    const std::string what =
        "mlstm gates kind " + std::to_string(int(kind)) + " eps " + std::to_string(eps);
    expect_gradient_close(check_gradient(loss, cell.ig.data(), dig.data(), int64_t(dig.size())),
                          what + ": d input gate");
    expect_gradient_close(check_gradient(loss, cell.fg.data(), dfg.data(), int64_t(dfg.size())),
                          what + ": d forget gate");
    expect_gradient_close(check_gradient(loss, cell.k.data(), dk.data(), int64_t(dk.size())),
                          what + ": d k");
  }
}

// The mechanism the "pm1" range exists for, built by hand: one large write at t = 0, then a forget
// gate of −1 on a 1-bit and +1 on a 0-bit (f̃ = ∓8). The output's sign is then the parity of the
// bits so far, at any length; with the published σ(f̃) ∈ (0, 1) it can never turn negative.
TEST(Stabilizer, SignedForgetGateCarriesParityInTheSignOfTheMlstmOutput) {
  constexpr int64_t kT = 300;
  std::mt19937 rng(5);
  std::vector<int> bits(kT);
  for (auto& bit : bits) bit = int(rng() % 2);
  std::vector<double> ig(kT, -30.0), fg(kT), ones(kT, 1.0), y(kT);
  ig[0] = 8;  // the single write
  for (int64_t t = 0; t < kT; ++t) fg[size_t(t)] = bits[size_t(t)] ? -8.0 : 8.0;
  for (auto kind : {ForgetGate::signed_sigmoid, ForgetGate::sigmoid}) {
    std::vector<double> m(kT), a(kT), c(kT), floor(kT);
    stabilized_gates_fwd(kind, 1, kT, 1, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                         floor.data());
    LinearRecurrence<double> r;
    r.B = 1, r.T = kT, r.H = 1, r.Dk = 1, r.Dv = 1, r.chunk = kT;
    r.q = r.k = r.v = {ones.data(), 1, 1};
    r.a = a.data(), r.c = c.data(), r.floor = floor.data(), r.eps = 1e-6;  // the cell's divisor eps
    r.y = {y.data(), 1, 1};
    linear_recurrence_fwd(r);
    int parity = 0, matches = 0;
    for (int64_t t = 0; t < kT; ++t) {
      if (t > 0) parity ^= bits[size_t(t)];  // the gate at t = 0 multiplies the empty state
      matches += (y[size_t(t)] < 0) == (parity == 1);
    }
    if (kind == ForgetGate::signed_sigmoid) {
      EXPECT_EQ(matches, kT) << "the signed gate tracks parity at every step";
    } else {
      EXPECT_LT(matches, kT) << "σ(f̃) keeps the output positive";
      for (double v : y) EXPECT_GT(v, 0.0);
    }
  }
}

// An input gate far below zero (ĩ = −100 at every step) puts exp(−m_t) beyond the largest
// float. The output is then about 0 and so is its true gradient through the floor, but the chain
// rule's 0 · ∞ made every gate gradient NaN (an mLSTM trained on cycle navigation hit it). The
// floor is capped at the largest float, which keeps the output and every gradient finite.
TEST(Stabilizer, AnInputGateFarBelowZeroKeepsTheFloorAndEveryGradientFinite) {
  auto floats = [](const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); };
  const int64_t n = B * T * H, nd = n * Dh;
  for (auto kind : {ForgetGate::sigmoid, ForgetGate::exp, ForgetGate::signed_sigmoid}) {
    const std::vector<float> ig(size_t(n), -100.f), fg = floats(random_vector(n, 2, 4.0));
    const auto q = floats(random_vector(nd, 3)), k = floats(random_vector(nd, 4)),
               v = floats(random_vector(nd, 5)), dy = floats(random_vector(nd, 6));
    std::vector<float> m(static_cast<size_t>(n)), a(m.size()), c(m.size()), floor(m.size()),
        y(q.size());
    stabilized_gates_fwd(kind, B, T, H, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                         floor.data());
    LinearRecurrence<float> r;
    r.B = B, r.T = T, r.H = H, r.Dk = Dh, r.Dv = Dh, r.chunk = 4;
    r.q = {q.data(), H * Dh, Dh};
    r.k = {k.data(), H * Dh, Dh};
    r.v = {v.data(), H * Dh, Dh};
    r.a = a.data(), r.c = c.data(), r.floor = floor.data(), r.eps = 1e-6f;
    r.y = {y.data(), H * Dh, Dh};
    std::vector<float> boundary(size_t(linear_recurrence_boundary_size(r)));
    r.boundary = boundary.data();
    linear_recurrence_fwd(r);
    std::vector<float> dq(q.size()), dk(q.size()), dv(q.size()), da(m.size()), dc(m.size()),
        dfloor(m.size()), dig(m.size()), dfg(m.size());
    LinearRecurrenceGrads<float> g;
    g.dy = {dy.data(), H * Dh, Dh};
    g.dq = {dq.data(), H * Dh, Dh};
    g.dk = {dk.data(), H * Dh, Dh};
    g.dv = {dv.data(), H * Dh, Dh};
    g.da = da.data(), g.dc = dc.data(), g.dfloor = dfloor.data();
    std::vector<float> work(size_t(linear_recurrence_work_size(r)));
    linear_recurrence_bwd(r, g, work.data());
    stabilized_gates_bwd(kind, B, T, H, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                         floor.data(), da.data(), dc.data(), dfloor.data(), dig.data(), dfg.data());
    const std::string what = "kind " + std::to_string(int(kind));
    const std::pair<const char*, const std::vector<float>*> outputs[] = {
        {"floor", &floor}, {"y", &y},     {"dq", &dq},  {"dk", &dk},
        {"dv", &dv},       {"dig", &dig}, {"dfg", &dfg}};
    for (const auto& [name, x] : outputs)
      for (float e : *x) ASSERT_TRUE(std::isfinite(e)) << what << ": " << name;
    for (float e : y) EXPECT_LT(std::abs(e), 1e-30f) << what << ": the output is about 0";
  }
}

}  // namespace
}  // namespace statelab::cpu
