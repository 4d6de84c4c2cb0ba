// The unified linear recurrence: its three forward forms against each other and against a
// naive step-by-step oracle written here with plain loops (1e-10 in double, on outputs,
// chunk-boundary states and final states), its backward against finite differences, for each
// cell's parameterization (mLSTM: normalized; Mamba-2: q and k shared by heads inside a wider
// row; Gated DeltaNet: the delta rule), both eigenvalue ranges, transitions that are exactly 0,
// lengths that are and are not multiples of the chunk, float against double, and shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/error.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab::cpu {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

enum class Cell { mlstm, mamba2, gdn };

struct Case {
  Cell cell;
  bool signed_range;  // eigenvalues in (−1, 1) rather than (0, 1)
  std::string name() const {
    const char* names[] = {"mlstm", "mamba2", "gdn"};
    return std::string(names[int(cell)]) + (signed_range ? " pm1" : " 01");
  }
};

std::vector<Case> every_case() {
  return {{Cell::mlstm, false}, {Cell::mlstm, true}, {Cell::mamba2, false},
          {Cell::mamba2, true}, {Cell::gdn, false},  {Cell::gdn, true}};
}

template <typename S>
std::vector<S> converted(const std::vector<double>& x) {
  return std::vector<S>(x.begin(), x.end());
}

// Random inputs of one parameterization, owning their buffers (double; other scalars through
// converted copies laid out the same way). Mamba-2's q and k live inside a wider row, as B and
// C do in the block's conv output, with head stride 0.
struct Inputs {
  static constexpr int64_t B = 2, H = 2, Dk = 3, Dv = 5;
  Case kind;
  int64_t T, chunk;
  std::vector<double> q, k, v, a, b, c, floor, y, boundary, final_state;

  bool shared() const { return kind.cell == Cell::mamba2; }
  int64_t qk_row() const { return shared() ? 2 * Dk + 4 : H * Dk; }  // 4 unrelated columns
  int64_t qk_head() const { return shared() ? 0 : Dk; }
  int64_t q_offset() const { return shared() ? 2 : 0; }
  int64_t k_offset() const { return shared() ? 2 + Dk : 0; }
  int64_t gate(int64_t bi, int64_t t, int64_t h) const { return (bi * T + t) * H + h; }

  Inputs(Case kind_, int64_t T_, int64_t chunk_, unsigned seed)
      : kind(kind_), T(T_), chunk(chunk_) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    q = random_vector(B * T * qk_row(), seed + 1);
    k = random_vector(B * T * qk_row(), seed + 2);
    v = random_vector(B * T * H * Dv, seed + 3);
    const int64_t n = B * T * H;
    a.resize(size_t(n)), c.resize(size_t(n));
    for (auto& x : a) {
      const double decay = 0.05 + 0.9 * unit(rng);
      x = kind.signed_range && kind.cell != Cell::gdn ? 2 * decay - 1 : decay;
    }
    // Transitions that forget everything, inside the sequence where a state reaches them: no
    // form may divide by a cumulative product.
    a[size_t(gate(0, T / 2, 1))] = 0;
    a[size_t(gate(1, 2 * T / 3, 0))] = 0;
    switch (kind.cell) {
      case Cell::mlstm:
        for (auto& x : c) x = std::exp(-3 + (3 + std::log(3.0)) * unit(rng));  // i' ∈ (0.05, 3)
        floor.resize(size_t(n));
        for (auto& x : floor) x = 0.05 + 1.95 * unit(rng);
        break;
      case Cell::mamba2:
        for (auto& x : c) x = 0.5 * unit(rng);  // dt
        break;
      case Cell::gdn:
        l2_normalize(k), l2_normalize(q);
        for (auto& x : c) x = unit(rng);  // β
        b = c;
        if (kind.signed_range)  // 2β: the eigenvalue along k, α(1 − 2β), lies in (−1, 1)
          for (auto& x : b) x *= 2;
        break;
    }
    y.assign(size_t(B * T * H * Dv), 0);
    final_state.assign(size_t(B * H * (Dv * Dk + Dk)), 0);
    boundary.assign(size_t(linear_recurrence_boundary_size(params())), 0);
  }

  static void l2_normalize(std::vector<double>& x) {
    for (size_t r = 0; r < x.size(); r += Dk) {
      double norm = 0;
      for (int64_t d = 0; d < Dk; ++d) norm += x[r + size_t(d)] * x[r + size_t(d)];
      for (int64_t d = 0; d < Dk; ++d) x[r + size_t(d)] /= std::sqrt(norm);
    }
  }

  // The recurrence over buffers shaped like this case's (any scalar type).
  template <typename S>
  LinearRecurrence<S> layout(const S* q_, const S* k_, const S* v_, const S* a_, const S* b_,
                             const S* c_, const S* floor_, S* y_, S* boundary_,
                             S* final_state_) const {
    LinearRecurrence<S> p;
    p.B = B, p.T = T, p.H = H, p.Dk = Dk, p.Dv = Dv, p.chunk = chunk;
    p.q = {q_ + q_offset(), qk_row(), qk_head()};
    p.k = {k_ + k_offset(), qk_row(), qk_head()};
    p.v = {v_, H * Dv, Dv};
    p.a = a_, p.b = b_, p.c = c_, p.floor = floor_;
    p.y = {y_, H * Dv, Dv};
    p.boundary = boundary_;
    p.final_state = final_state_;
    return p;
  }

  LinearRecurrence<double> params() {
    return layout<double>(q.data(), k.data(), v.data(), a.data(), b.empty() ? nullptr : b.data(),
                          c.data(), floor.empty() ? nullptr : floor.data(), y.data(),
                          boundary.empty() ? nullptr : boundary.data(), final_state.data());
  }
};

// Gradient buffers shaped like an Inputs' inputs, zero unless filled otherwise.
template <typename S>
struct Grads {
  std::vector<S> dq, dk, dv, da, db, dc, dfloor;
  explicit Grads(const Inputs& in)
      : dq(in.q.size()),
        dk(in.k.size()),
        dv(in.v.size()),
        da(in.a.size()),
        db(in.a.size()),
        dc(in.a.size()),
        dfloor(in.a.size()) {}
  LinearRecurrenceGrads<S> view(const Inputs& in, const S* dy) {
    LinearRecurrenceGrads<S> g;
    g.dy = {dy, in.H * in.Dv, in.Dv};
    g.dq = {dq.data() + in.q_offset(), in.qk_row(), in.qk_head()};
    g.dk = {dk.data() + in.k_offset(), in.qk_row(), in.qk_head()};
    g.dv = {dv.data(), in.H * in.Dv, in.Dv};
    g.da = da.data(), g.db = db.data(), g.dc = dc.data(), g.dfloor = dfloor.data();
    return g;
  }
};

// The oracle: S, n as plain arrays, one step at a time, straight from DESIGN §3. Also counts
// the steps where the floor, rather than |nᵀq|, was the denominator.
struct Oracle {
  std::vector<double> y, final_state, boundary;
  int floored_steps = 0, normalized_steps = 0;
};

Oracle naive(Inputs& in) {
  const auto p = in.params();
  const int64_t Dk = p.Dk, Dv = p.Dv;
  const bool normalized = p.floor != nullptr;
  const int64_t state_size = Dv * Dk + (normalized ? Dk : 0);
  Oracle o;
  o.y.assign(in.y.size(), 0);
  o.final_state.assign(size_t(p.B * p.H * state_size), 0);
  const int64_t n_chunks = (p.T + p.chunk - 1) / p.chunk;
  o.boundary.assign(size_t(p.B * p.H * (n_chunks - 1) * state_size), 0);
  auto save = [&](double* out, const std::vector<double>& S, const std::vector<double>& n) {
    std::copy(S.begin(), S.end(), out);
    if (normalized) std::copy(n.begin(), n.end(), out + Dv * Dk);
  };
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      std::vector<double> S(size_t(Dv * Dk), 0), n(size_t(Dk), 0);
      for (int64_t t = 0; t < p.T; ++t) {
        if (t > 0 && t % p.chunk == 0)
          save(o.boundary.data() + ((b * p.H + h) * (n_chunks - 1) + t / p.chunk - 1) * state_size,
               S, n);
        const int64_t g = (b * p.T + t) * p.H + h;
        const double* q = p.q.data + (b * p.T + t) * p.q.row + h * p.q.head;
        const double* k = p.k.data + (b * p.T + t) * p.k.row + h * p.k.head;
        const double* v = p.v.data + (b * p.T + t) * p.v.row + h * p.v.head;
        const double a = p.a[g], beta = p.b ? p.b[g] : 0, c = p.c[g];
        // S ← a S (I − β k kᵀ) + c v kᵀ, written out element by element.
        std::vector<double> Sk(size_t(Dv), 0);
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j) Sk[size_t(i)] += S[size_t(i * Dk + j)] * k[j];
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j)
            S[size_t(i * Dk + j)] =
                a * (S[size_t(i * Dk + j)] - beta * Sk[size_t(i)] * k[j]) + c * v[i] * k[j];
        double nq = 0;
        for (int64_t j = 0; j < Dk; ++j) {
          n[size_t(j)] = a * n[size_t(j)] + c * k[j];
          nq += n[size_t(j)] * q[j];
        }
        const double den = normalized ? std::max(std::abs(nq), p.floor[g]) : 1.0;
        if (normalized) ++o.normalized_steps, o.floored_steps += std::abs(nq) < p.floor[g];
        for (int64_t i = 0; i < Dv; ++i) {
          double sq = 0;
          for (int64_t j = 0; j < Dk; ++j) sq += S[size_t(i * Dk + j)] * q[j];
          o.y[size_t((b * p.T + t) * p.y.row + h * p.y.head + i)] = sq / den;
        }
      }
      save(o.final_state.data() + (b * p.H + h) * state_size, S, n);
    }
  return o;
}

// max |x − ref| / max(1, max |ref|) over the first n elements; infinite when x holds a NaN or
// an infinity, so a non-finite result can never pass.
template <typename S>
double scaled_error(const std::vector<S>& x, const std::vector<double>& ref, size_t n) {
  double err = 0, scale = 1;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(double(x[i]))) return INFINITY;
    err = std::max(err, std::abs(double(x[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return err / scale;
}

std::vector<LinearForm> forms_for(const Case& c) {
  if (c.cell == Cell::gdn) return {LinearForm::recurrent, LinearForm::chunkwise};
  return {LinearForm::recurrent, LinearForm::parallel, LinearForm::chunkwise};
}

struct Forward {
  std::vector<double> y, boundary, final_state;
};

Forward run_forward(Inputs& in, LinearForm form) {
  std::fill(in.y.begin(), in.y.end(), 0.0);
  std::fill(in.boundary.begin(), in.boundary.end(), 0.0);
  std::fill(in.final_state.begin(), in.final_state.end(), 0.0);
  linear_recurrence_fwd(in.params(), form);
  return {in.y, in.boundary, in.final_state};
}

TEST(LinearRecurrence, EveryFormMatchesTheNaiveRecurrenceAndTheOthersOnOutputsAndStates) {
  const char* form_names[] = {"recurrent", "parallel", "chunkwise"};
  double worst_vs_oracle = 0, worst_vs_recurrent = 0;
  int floored_steps = 0, normalized_steps = 0;
  for (const Case& kind : every_case())
    for (const auto& [T, chunk] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 4}, {4, 4}, {11, 4}, {16, 4}, {7, 1}, {9, 64}, {13, 5}}) {
      Inputs in(kind, T, chunk, 100 + unsigned(T * 7 + chunk));
      const Oracle ref = naive(in);
      floored_steps += ref.floored_steps, normalized_steps += ref.normalized_steps;
      const Forward recurrent = run_forward(in, LinearForm::recurrent);
      for (const LinearForm form : forms_for(kind)) {
        const Forward out = run_forward(in, form);
        const std::string what = kind.name() + " " + form_names[int(form)] +
                                 " T=" + std::to_string(T) + " chunk=" + std::to_string(chunk);
        ASSERT_EQ(out.boundary.size(), ref.boundary.size()) << what;
        const double errors[] = {
            scaled_error(out.y, ref.y, ref.y.size()),
            scaled_error(out.boundary, ref.boundary, ref.boundary.size()),
            scaled_error(out.final_state, ref.final_state, ref.final_state.size())};
        const char* names[] = {"y", "boundary states", "final state"};
        for (int e = 0; e < 3; ++e) {
          EXPECT_LE(errors[e], 1e-10) << what << ": " << names[e] << " against the oracle";
          worst_vs_oracle = std::max(worst_vs_oracle, errors[e]);
        }
        const double between = std::max(
            {scaled_error(out.y, recurrent.y, out.y.size()),
             scaled_error(out.boundary, recurrent.boundary, out.boundary.size()),
             scaled_error(out.final_state, recurrent.final_state, out.final_state.size())});
        EXPECT_LE(between, 1e-10) << what << ": against the recurrent form";
        worst_vs_recurrent = std::max(worst_vs_recurrent, between);
      }
    }
  EXPECT_GT(floored_steps, 0) << "the floor never took over";
  EXPECT_LT(floored_steps, normalized_steps) << "|nᵀq| never took over";
  std::printf("  worst scaled max-abs error: %.2e against the oracle, %.2e between forms\n",
              worst_vs_oracle, worst_vs_recurrent);
}

// Gradient of L = Σ w ⊙ y w.r.t. every input, against central differences; returns the worst
// rel-RMS error.
double check_all_gradients(Case kind, int64_t T, int64_t chunk) {
  Inputs in(kind, T, chunk, 7);
  const std::string what =
      kind.name() + " T=" + std::to_string(T) + " chunk=" + std::to_string(chunk);
  if (kind.cell == Cell::mlstm) {  // both branches of max(|nᵀq|, floor) carry gradients here
    const Oracle ref = naive(in);
    EXPECT_GT(ref.floored_steps, 0) << what << ": the floor is never active";
    EXPECT_LT(ref.floored_steps, ref.normalized_steps) << what << ": the floor is always active";
  }
  const auto w = random_vector(int64_t(in.y.size()), 8);
  auto loss = [&] {
    linear_recurrence_fwd(in.params(), LinearForm::chunkwise);
    return testing::dot(w, in.y.data());
  };
  loss();
  Grads<double> grads(in);
  std::vector<double> work(size_t(linear_recurrence_work_size(in.params())));
  linear_recurrence_bwd(in.params(), grads.view(in, w.data()), work.data());
  double worst = 0;
  auto expect = [&](std::vector<double>& x, std::vector<double>& dx, const std::string& name) {
    const auto r = check_gradient(loss, x.data(), dx.data(), int64_t(x.size()), 80);
    expect_gradient_close(r, what + ": d" + name);
    worst = std::max(worst, r.rel_rms);
  };
  expect(in.q, grads.dq, "q");
  expect(in.k, grads.dk, "k");
  expect(in.v, grads.dv, "v");
  expect(in.a, grads.da, "a");
  expect(in.c, grads.dc, "c");
  if (!in.b.empty()) expect(in.b, grads.db, "b");
  if (!in.floor.empty()) expect(in.floor, grads.dfloor, "floor");
  return worst;
}

TEST(LinearRecurrence, GradientsOfEveryInputMatchFiniteDifferencesAcrossChunks) {
  double worst = 0;
  for (const Case& kind : every_case()) {
    worst = std::max(worst, check_all_gradients(kind, 11, 4));  // three chunks, the last short
    worst = std::max(worst, check_all_gradients(kind, 5, 8));   // one chunk
  }
  std::printf("  worst gradient rel-RMS against finite differences: %.2e\n", worst);
}

TEST(LinearRecurrence, BackwardAddsToTheGradientBuffersInsteadOfOverwriting) {
  for (const Case& kind : every_case()) {
    Inputs in(kind, 9, 4, 51);
    linear_recurrence_fwd(in.params());
    const auto dy = random_vector(int64_t(in.y.size()), 52);
    std::vector<double> work(size_t(linear_recurrence_work_size(in.params())));
    Grads<double> fresh(in), prefilled(in);
    for (auto* x : {&prefilled.dq, &prefilled.dk, &prefilled.dv, &prefilled.da, &prefilled.db,
                    &prefilled.dc, &prefilled.dfloor})
      std::fill(x->begin(), x->end(), 1.5);
    linear_recurrence_bwd(in.params(), fresh.view(in, dy.data()), work.data());
    linear_recurrence_bwd(in.params(), prefilled.view(in, dy.data()), work.data());
    auto expect_added = [&](const std::vector<double>& got, std::vector<double> want,
                            const char* name) {
      for (auto& x : want) x += 1.5;
      EXPECT_LE(scaled_error(got, want, want.size()), 1e-14) << kind.name() << ": d" << name;
    };
    expect_added(prefilled.dq, fresh.dq, "q");
    expect_added(prefilled.dk, fresh.dk, "k");
    expect_added(prefilled.dv, fresh.dv, "v");
    expect_added(prefilled.da, fresh.da, "a");
    expect_added(prefilled.db, fresh.db, "b");
    expect_added(prefilled.dc, fresh.dc, "c");
    expect_added(prefilled.dfloor, fresh.dfloor, "floor");
  }
}

TEST(LinearRecurrence, FloatAgreesWithDoubleForwardAndBackward) {
  for (const Case& kind :
       {Case{Cell::mlstm, true}, Case{Cell::mamba2, false}, Case{Cell::gdn, true}}) {
    Inputs in(kind, 13, 4, 31);
    const auto dy = random_vector(int64_t(in.y.size()), 32);
    linear_recurrence_fwd(in.params());
    Grads<double> ref(in);
    std::vector<double> work(size_t(linear_recurrence_work_size(in.params())));
    linear_recurrence_bwd(in.params(), ref.view(in, dy.data()), work.data());

    const auto q = converted<float>(in.q), k = converted<float>(in.k), v = converted<float>(in.v),
               a = converted<float>(in.a), b = converted<float>(in.b), c = converted<float>(in.c),
               floor = converted<float>(in.floor), dy_f = converted<float>(dy);
    std::vector<float> y(in.y.size()), boundary(in.boundary.size()),
        final_state(in.final_state.size());
    const auto p =
        in.layout<float>(q.data(), k.data(), v.data(), a.data(), b.empty() ? nullptr : b.data(),
                         c.data(), floor.empty() ? nullptr : floor.data(), y.data(),
                         boundary.empty() ? nullptr : boundary.data(), final_state.data());
    linear_recurrence_fwd(p);
    Grads<float> got(in);
    std::vector<float> work_f(size_t(linear_recurrence_work_size(p)));
    linear_recurrence_bwd(p, got.view(in, dy_f.data()), work_f.data());
    const std::string what = kind.name();
    EXPECT_LE(scaled_error(y, in.y, y.size()), 1e-4) << what << ": y";
    EXPECT_LE(scaled_error(final_state, in.final_state, final_state.size()), 1e-4)
        << what << ": final state";
    EXPECT_LE(scaled_error(got.dq, ref.dq, ref.dq.size()), 1e-4) << what << ": dq";
    EXPECT_LE(scaled_error(got.dk, ref.dk, ref.dk.size()), 1e-4) << what << ": dk";
    EXPECT_LE(scaled_error(got.dv, ref.dv, ref.dv.size()), 1e-4) << what << ": dv";
    EXPECT_LE(scaled_error(got.da, ref.da, ref.da.size()), 1e-4) << what << ": da";
    EXPECT_LE(scaled_error(got.db, ref.db, ref.db.size()), 1e-4) << what << ": db";
    EXPECT_LE(scaled_error(got.dc, ref.dc, ref.dc.size()), 1e-4) << what << ": dc";
  }
}

TEST(LinearRecurrence, InconsistentForwardRequestsAreShapeErrors) {
  Inputs mlstm({Cell::mlstm, false}, 5, 4, 41);
  auto p = mlstm.params();
  p.chunk = 0;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  for (int64_t LinearRecurrence<double>::*size :
       {&LinearRecurrence<double>::B, &LinearRecurrence<double>::T, &LinearRecurrence<double>::H,
        &LinearRecurrence<double>::Dk, &LinearRecurrence<double>::Dv}) {
    p = mlstm.params();
    p.*size = 0;
    EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  }
  p = mlstm.params();
  std::vector<double> beta(mlstm.a.size(), 0.5);
  p.b = beta.data();
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);  // a normalizer with a delta term
  p = mlstm.params();
  p.c = nullptr;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  p = mlstm.params();
  p.y.head = 0;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  Inputs gdn({Cell::gdn, false}, 5, 4, 42);
  EXPECT_THROW(linear_recurrence_fwd(gdn.params(), LinearForm::parallel), ShapeError);
}

TEST(LinearRecurrence, BackwardWithoutWhatItNeedsIsAShapeError) {
  Inputs gdn({Cell::gdn, false}, 9, 4, 43);
  linear_recurrence_fwd(gdn.params());
  const std::vector<double> dy(gdn.y.size(), 1.0);
  std::vector<double> work(size_t(linear_recurrence_work_size(gdn.params())));
  Grads<double> grads(gdn);
  auto g = grads.view(gdn, dy.data());
  g.db = nullptr;  // b is set, so its gradient is required
  EXPECT_THROW(linear_recurrence_bwd(gdn.params(), g, work.data()), ShapeError);
  auto p = gdn.params();
  p.boundary = nullptr;  // three chunks cannot be recomputed without their start states
  EXPECT_THROW(linear_recurrence_bwd(p, grads.view(gdn, dy.data()), work.data()), ShapeError);
  p = gdn.params();
  p.chunk = 0;
  EXPECT_THROW(linear_recurrence_bwd(p, grads.view(gdn, dy.data()), work.data()), ShapeError);
}

// --- probes --------------------------------------------------------------------------------

// The probe's read-outs as buffers [B, T, H], filled by the kernel or by the oracle below.
struct ProbeOut {
  std::vector<double> state_norm, normalizer_norm, n_dot_q, write_error;
  explicit ProbeOut(size_t n) : state_norm(n), normalizer_norm(n), n_dot_q(n), write_error(n) {}
  LinearRecurrenceProbe<double> view(bool normalized) {
    LinearRecurrenceProbe<double> probe;
    probe.state_norm = state_norm.data();
    probe.write_error = write_error.data();
    if (normalized) probe.normalizer_norm = normalizer_norm.data(), probe.n_dot_q = n_dot_q.data();
    return probe;
  }
};

// The read-outs straight from the definition, one step at a time with plain arrays:
// S_t = a_t S_{t−1} (I − b_t k_t k_tᵀ) + c_t v_t k_tᵀ, n_t = a_t n_{t−1} + c_t k_t.
ProbeOut naive_probe(Inputs& in) {
  const auto p = in.params();
  const int64_t Dk = p.Dk, Dv = p.Dv;
  ProbeOut o(in.a.size());
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      std::vector<double> S(size_t(Dv * Dk), 0), n(size_t(Dk), 0);
      for (int64_t t = 0; t < p.T; ++t) {
        const int64_t g = (b * p.T + t) * p.H + h;
        const double* q = p.q.data + (b * p.T + t) * p.q.row + h * p.q.head;
        const double* k = p.k.data + (b * p.T + t) * p.k.row + h * p.k.head;
        const double* v = p.v.data + (b * p.T + t) * p.v.row + h * p.v.head;
        const double a = p.a[g], beta = p.b ? p.b[g] : 0, c = p.c[g];
        std::vector<double> Sk(size_t(Dv), 0);
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j) Sk[size_t(i)] += S[size_t(i * Dk + j)] * k[j];
        double error = 0;
        for (int64_t i = 0; i < Dv; ++i) error += (Sk[size_t(i)] - v[i]) * (Sk[size_t(i)] - v[i]);
        o.write_error[size_t(g)] = std::sqrt(error);
        double frobenius = 0;
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j) {
            double& x = S[size_t(i * Dk + j)];
            x = a * (x - beta * Sk[size_t(i)] * k[j]) + c * v[i] * k[j];
            frobenius += x * x;
          }
        o.state_norm[size_t(g)] = std::sqrt(frobenius);
        double nn = 0, nq = 0;
        for (int64_t j = 0; j < Dk; ++j) {
          n[size_t(j)] = a * n[size_t(j)] + c * k[j];
          nn += n[size_t(j)] * n[size_t(j)];
          nq += n[size_t(j)] * q[j];
        }
        o.normalizer_norm[size_t(g)] = std::sqrt(nn);
        o.n_dot_q[size_t(g)] = std::abs(nq);
      }
    }
  return o;
}

ProbeOut run_probe(Inputs& in) {
  const auto p = in.params();
  ProbeOut out(in.a.size());
  std::vector<double> work(size_t(linear_recurrence_work_size(p)));
  linear_recurrence_probe(p, out.view(p.floor != nullptr), work.data());
  return out;
}

// Worst scaled error of every read-out the case has (the normalizer's only when normalized).
double probe_error(const ProbeOut& got, const ProbeOut& ref, bool normalized,
                   const std::string& what) {
  const size_t n = ref.state_norm.size();
  double worst = 0;
  auto expect = [&](const std::vector<double>& x, const std::vector<double>& r, const char* name) {
    const double e = scaled_error(x, r, n);
    EXPECT_LE(e, 1e-10) << what << ": " << name;
    worst = std::max(worst, e);
  };
  expect(got.state_norm, ref.state_norm, "state norm");
  expect(got.write_error, ref.write_error, "write error");
  if (normalized) {
    expect(got.normalizer_norm, ref.normalizer_norm, "normalizer norm");
    expect(got.n_dot_q, ref.n_dot_q, "|nᵀq|");
  }
  return worst;
}

// mLSTM-like (normalized, signed a), Gated DeltaNet-like (delta rule), Mamba-2-like (q and k
// shared by the heads inside a wider row): one per branch of the recurrence.
std::vector<Case> probe_cases() {
  return {{Cell::mlstm, true}, {Cell::gdn, false}, {Cell::gdn, true}, {Cell::mamba2, false}};
}

TEST(LinearRecurrenceProbe, ReadOutsMatchADirectRecurrence) {
  double worst = 0;
  for (const Case& kind : probe_cases())
    for (const auto& [T, chunk] :
         std::vector<std::pair<int64_t, int64_t>>{{11, 4}, {13, 5}, {7, 1}, {6, 9}}) {
      Inputs in(kind, T, chunk, 300 + unsigned(T * 7 + chunk));
      const bool normalized = !in.floor.empty();
      linear_recurrence_fwd(in.params());
      const ProbeOut ref = naive_probe(in);
      const std::string what =
          kind.name() + " T=" + std::to_string(T) + " chunk=" + std::to_string(chunk);
      worst = std::max(worst, probe_error(run_probe(in), ref, normalized, what));
      // The read-outs are not trivially small: at step 0 the write error is ‖v_0‖.
      EXPECT_GT(*std::max_element(ref.state_norm.begin(), ref.state_norm.end()), 0.1) << what;
      EXPECT_GT(ref.write_error[0], 0.1) << what;
    }
  std::printf("  worst scaled error of the probe against the direct recurrence: %.2e\n", worst);
}

TEST(LinearRecurrenceProbe, LeavesOutputsAndSavedStatesBitIdenticalAndAgreesAfterEveryForm) {
  for (const Case& kind : probe_cases()) {
    Inputs in(kind, 11, 4, 61);
    const bool normalized = !in.floor.empty();
    const ProbeOut ref = naive_probe(in);
    for (const LinearForm form : forms_for(kind)) {
      const Forward before = run_forward(in, form);
      const auto q = in.q, k = in.k, v = in.v, a = in.a, b = in.b, c = in.c, floor = in.floor;
      const ProbeOut got = run_probe(in);
      const char* form_names[] = {"recurrent", "parallel", "chunkwise"};
      const std::string what = kind.name() + " after the " + form_names[int(form)] + " form";
      EXPECT_EQ(in.y, before.y) << what;
      EXPECT_EQ(in.boundary, before.boundary) << what;
      EXPECT_EQ(in.final_state, before.final_state) << what;
      EXPECT_TRUE(in.q == q && in.k == k && in.v == v && in.a == a && in.b == b && in.c == c &&
                  in.floor == floor)
          << what << ": an input changed";
      // Each form saves its own rounding of the boundary states; the read-outs agree to it.
      probe_error(got, ref, normalized, what);
    }
  }
}

TEST(LinearRecurrenceProbe, AnySubsetOfReadOutsMayBeRequested) {
  Inputs in({Cell::mlstm, false}, 9, 4, 62);
  const auto p = in.params();
  linear_recurrence_fwd(p);
  std::vector<double> state_norm(in.a.size(), -1.0);
  LinearRecurrenceProbe<double> probe;
  probe.state_norm = state_norm.data();  // normalized, but the normalizer's read-outs not wanted
  std::vector<double> work(size_t(linear_recurrence_work_size(p)));
  linear_recurrence_probe(p, probe, work.data());
  EXPECT_LE(scaled_error(state_norm, naive_probe(in).state_norm, state_norm.size()), 1e-10);
  EXPECT_NO_THROW(linear_recurrence_probe(p, LinearRecurrenceProbe<double>{}, work.data()));
}

TEST(LinearRecurrenceProbe, MissingBoundaryNormalizerOrWorkIsAShapeError) {
  Inputs gdn({Cell::gdn, false}, 9, 4, 63);
  linear_recurrence_fwd(gdn.params());
  ProbeOut out(gdn.a.size());
  std::vector<double> work(size_t(linear_recurrence_work_size(gdn.params())));
  auto p = gdn.params();
  p.boundary = nullptr;  // three chunks cannot be recomputed without their start states
  EXPECT_THROW(linear_recurrence_probe(p, out.view(false), work.data()), ShapeError);
  LinearRecurrenceProbe<double> probe;
  probe.normalizer_norm = out.normalizer_norm.data();  // no floor, so no normalizer
  EXPECT_THROW(linear_recurrence_probe(gdn.params(), probe, work.data()), ShapeError);
  probe = {};
  probe.n_dot_q = out.n_dot_q.data();
  EXPECT_THROW(linear_recurrence_probe(gdn.params(), probe, work.data()), ShapeError);
  EXPECT_THROW(linear_recurrence_probe<double>(gdn.params(), out.view(false), nullptr), ShapeError);
  p = gdn.params();
  p.chunk = 0;
  EXPECT_THROW(linear_recurrence_probe(p, out.view(false), work.data()), ShapeError);
  // One chunk starts from zero: no boundary needed.
  Inputs short_gdn({Cell::gdn, false}, 4, 4, 64);
  p = short_gdn.params();
  p.boundary = nullptr;
  linear_recurrence_fwd(p);
  ProbeOut got(short_gdn.a.size());
  std::vector<double> short_work(size_t(linear_recurrence_work_size(p)));
  EXPECT_NO_THROW(linear_recurrence_probe(p, got.view(false), short_work.data()));
  probe_error(got, naive_probe(short_gdn), false, "gdn T=4 chunk=4 without boundary");
}

}  // namespace
}  // namespace statelab::cpu
