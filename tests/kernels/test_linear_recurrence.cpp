// The unified linear recurrence: its three forward forms against each other and against a
// naive step-by-step oracle written here with plain loops (1e-10 in double, on outputs,
// chunk-boundary states and final states), its backward against finite differences, for each
// cell's parameterization (mLSTM: normalized; Mamba-2: q and k shared by heads; Gated DeltaNet:
// the delta rule), both eigenvalue ranges, lengths that are and are not multiples of the chunk,
// and the shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
  bool signed_range;  // transitions in (−1, 1) rather than (0, 1)
  std::string name() const {
    const char* names[] = {"mlstm", "mamba2", "gdn"};
    return std::string(names[int(cell)]) + (signed_range ? " pm1" : " 01");
  }
};

std::vector<Case> every_case() {
  return {{Cell::mlstm, false}, {Cell::mlstm, true}, {Cell::mamba2, false},
          {Cell::mamba2, true}, {Cell::gdn, false},  {Cell::gdn, true}};
}

// Random inputs of one parameterization, owning their buffers. Mamba-2's q and k live inside a
// wider row (as B and C do in the block's conv output) with head stride 0.
struct Inputs {
  static constexpr int64_t B = 2, H = 2, Dk = 3, Dv = 5;
  Case kind;
  int64_t T, chunk;
  int64_t qk_row, qk_head;
  std::vector<double> q, k, v, a, b, c, floor, y, boundary, final_state;

  Inputs(Case k_, int64_t T_, int64_t chunk_, unsigned seed) : kind(k_), T(T_), chunk(chunk_) {
    const bool shared = kind.cell == Cell::mamba2;
    qk_row = shared ? 2 * Dk + 4 : H * Dk;  // 4 unrelated columns around the shared vectors
    qk_head = shared ? 0 : Dk;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    q = random_vector(B * T * qk_row, seed + 1);
    k = random_vector(B * T * qk_row, seed + 2);
    v = random_vector(B * T * H * Dv, seed + 3);
    const int64_t n = B * T * H;
    a.resize(size_t(n)), c.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      const double decay = 0.05 + 0.95 * unit(rng);
      a[size_t(i)] = kind.signed_range ? 2 * decay - 1 : decay;
    }
    a[size_t(n / 2)] = 0;  // a transition that forgets everything: no division may meet it
    switch (kind.cell) {
      case Cell::mlstm:
        for (auto& x : c) x = std::exp(std::log(3.0) * (2 * unit(rng) - 1));  // i' ∈ (1/3, 3)
        floor.resize(size_t(n));
        for (auto& x : floor) x = 0.05 + 2 * unit(rng);
        break;
      case Cell::mamba2:
        for (auto& x : c) x = 0.5 * unit(rng);  // dt
        break;
      case Cell::gdn:
        for (int64_t r = 0; r < B * T * H; ++r) {  // unit-norm k and q
          for (auto* vec : {&k, &q}) {
            double* x = vec->data() + r * Dk;
            double norm = 0;
            for (int64_t d = 0; d < Dk; ++d) norm += x[d] * x[d];
            for (int64_t d = 0; d < Dk; ++d) x[d] /= std::sqrt(norm);
          }
        }
        b.resize(size_t(n));
        for (auto& x : b) x = (kind.signed_range ? 2 : 1) * unit(rng);
        c = b;
        break;
    }
    y.assign(size_t(B * T * H * Dv), 0);
    final_state.assign(size_t(B * H * (Dv * Dk + Dk)), 0);
    boundary.assign(size_t(linear_recurrence_boundary_size(params())), 0);
  }

  LinearRecurrence<double> params() {
    LinearRecurrence<double> p;
    p.B = B, p.T = T, p.H = H, p.Dk = Dk, p.Dv = Dv, p.chunk = chunk;
    const int64_t offset = kind.cell == Cell::mamba2 ? 2 : 0;
    p.q = {q.data() + offset, qk_row, qk_head};
    p.k = {k.data() + offset + (kind.cell == Cell::mamba2 ? Dk : 0), qk_row, qk_head};
    p.v = {v.data(), H * Dv, Dv};
    p.a = a.data();
    p.b = b.empty() ? nullptr : b.data();
    p.c = c.data();
    p.floor = floor.empty() ? nullptr : floor.data();
    p.y = {y.data(), H * Dv, Dv};
    p.boundary = boundary.empty() ? nullptr : boundary.data();
    p.final_state = final_state.data();
    return p;
  }
};

// The oracle: S, n as plain arrays, one step at a time, straight from DESIGN §3.
struct Oracle {
  std::vector<double> y, final_state, boundary;
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

// max |x − ref| / max(1, max |ref|)
double scaled_error(const std::vector<double>& x, const std::vector<double>& ref, size_t n) {
  double err = 0, scale = 1;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(x[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return err / scale;
}

std::vector<LinearForm> forms_for(const Case& c) {
  if (c.cell == Cell::gdn) return {LinearForm::recurrent, LinearForm::chunkwise};
  return {LinearForm::recurrent, LinearForm::parallel, LinearForm::chunkwise};
}

TEST(LinearRecurrence, EveryFormMatchesTheNaiveRecurrenceOnOutputsAndStates) {
  const char* form_names[] = {"recurrent", "parallel", "chunkwise"};
  for (const Case& kind : every_case())
    for (const auto& [T, chunk] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 4}, {4, 4}, {11, 4}, {16, 4}, {7, 1}, {9, 64}, {13, 5}}) {
      Inputs in(kind, T, chunk, 100 + unsigned(T * 7 + chunk));
      const Oracle ref = naive(in);
      for (const LinearForm form : forms_for(kind)) {
        std::fill(in.y.begin(), in.y.end(), 0.0);
        std::fill(in.boundary.begin(), in.boundary.end(), 0.0);
        std::fill(in.final_state.begin(), in.final_state.end(), 0.0);
        linear_recurrence_fwd(in.params(), form);
        const std::string what = kind.name() + " " + form_names[int(form)] +
                                 " T=" + std::to_string(T) + " chunk=" + std::to_string(chunk);
        EXPECT_LE(scaled_error(in.y, ref.y, ref.y.size()), 1e-10) << what << ": y";
        EXPECT_LE(scaled_error(in.final_state, ref.final_state, ref.final_state.size()), 1e-10)
            << what << ": final state";
        ASSERT_EQ(in.boundary.size(), ref.boundary.size()) << what;
        EXPECT_LE(scaled_error(in.boundary, ref.boundary, ref.boundary.size()), 1e-10)
            << what << ": boundary states";
      }
    }
}

// Gradient of L = Σ w ⊙ y w.r.t. every input, against central differences.
void check_all_gradients(Case kind, int64_t T, int64_t chunk) {
  Inputs in(kind, T, chunk, 7);
  const auto w = random_vector(int64_t(in.y.size()), 8);
  auto loss = [&] {
    linear_recurrence_fwd(in.params(), LinearForm::chunkwise);
    return testing::dot(w, in.y.data());
  };
  loss();
  std::vector<double> dq(in.q.size()), dk(in.k.size()), dv(in.v.size());
  std::vector<double> da(in.a.size()), db(in.a.size()), dc(in.a.size()), dfloor(in.a.size());
  const auto p = in.params();
  LinearRecurrenceGrads<double> g;
  g.dy = {w.data(), p.y.row, p.y.head};
  const int64_t offset = p.q.data - in.q.data();
  g.dq = {dq.data() + offset, p.q.row, p.q.head};
  g.dk = {dk.data() + (p.k.data - in.k.data()), p.k.row, p.k.head};
  g.dv = {dv.data(), p.v.row, p.v.head};
  g.da = da.data(), g.db = db.data(), g.dc = dc.data(), g.dfloor = dfloor.data();
  std::vector<double> work(size_t(linear_recurrence_work_size(p)));
  linear_recurrence_bwd(p, g, work.data());
  const std::string what =
      kind.name() + " T=" + std::to_string(T) + " chunk=" + std::to_string(chunk);
  auto expect = [&](std::vector<double>& x, std::vector<double>& dx, const std::string& name) {
    expect_gradient_close(check_gradient(loss, x.data(), dx.data(), int64_t(x.size()), 80),
                          what + ": d" + name);
  };
  expect(in.q, dq, "q");
  expect(in.k, dk, "k");
  expect(in.v, dv, "v");
  expect(in.a, da, "a");
  expect(in.c, dc, "c");
  if (kind.cell == Cell::gdn) expect(in.b, db, "b");  // the cell passes β as both b and c
  if (kind.cell == Cell::mlstm) expect(in.floor, dfloor, "floor");
}

TEST(LinearRecurrence, GradientsOfEveryInputMatchFiniteDifferencesAcrossChunks) {
  for (const Case& kind : every_case()) {
    check_all_gradients(kind, 11, 4);  // three chunks, the last one short
    check_all_gradients(kind, 5, 8);   // one chunk
  }
}

TEST(LinearRecurrence, TheFloorTakesOverWhenTheNormalizerIsSmall) {
  Inputs in({Cell::mlstm, false}, 9, 4, 21);
  for (auto& f : in.floor) f = 1.0;  // |nᵀq| straddles 1 for these inputs
  linear_recurrence_fwd(in.params(), LinearForm::recurrent);
  const Oracle ref = naive(in);
  EXPECT_LE(scaled_error(in.y, ref.y, ref.y.size()), 1e-12);
  int floored = 0;
  const auto p = in.params();
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t h = 0; h < p.H; ++h) {
        double n_dot_q = 0;  // recomputed from the final-state-free definition: n_t = Σ D c k
        double decay = 1;
        const double* q = p.q.data + (b * p.T + t) * p.q.row + h * p.q.head;
        for (int64_t j = t; j >= 0; --j) {
          const int64_t g = (b * p.T + j) * p.H + h;
          const double* k = p.k.data + (b * p.T + j) * p.k.row + h * p.k.head;
          for (int64_t d = 0; d < p.Dk; ++d) n_dot_q += decay * p.c[g] * k[d] * q[d];
          decay *= p.a[g];
        }
        floored += std::abs(n_dot_q) < 1.0;
      }
  EXPECT_GT(floored, 0) << "no step exercised the floor";
}

TEST(LinearRecurrence, FloatAgreesWithDouble) {
  Inputs in({Cell::gdn, true}, 13, 4, 31);
  linear_recurrence_fwd(in.params(), LinearForm::chunkwise);
  const auto pd = in.params();
  auto to_float = [](const std::vector<double>& x) {
    return std::vector<float>(x.begin(), x.end());
  };
  auto q = to_float(in.q), k = to_float(in.k), v = to_float(in.v), a = to_float(in.a),
       b = to_float(in.b), c = to_float(in.c);
  std::vector<float> y(in.y.size()), boundary(in.boundary.size());
  LinearRecurrence<float> pf;
  pf.B = pd.B, pf.T = pd.T, pf.H = pd.H, pf.Dk = pd.Dk, pf.Dv = pd.Dv, pf.chunk = pd.chunk;
  pf.q = {q.data(), pd.q.row, pd.q.head};
  pf.k = {k.data(), pd.k.row, pd.k.head};
  pf.v = {v.data(), pd.v.row, pd.v.head};
  pf.a = a.data(), pf.b = b.data(), pf.c = c.data();
  pf.y = {y.data(), pd.y.row, pd.y.head};
  pf.boundary = boundary.data();
  linear_recurrence_fwd(pf, LinearForm::chunkwise);
  EXPECT_LE(scaled_error(std::vector<double>(y.begin(), y.end()), in.y, y.size()), 1e-5);
}

TEST(LinearRecurrence, InconsistentRequestsAreShapeErrors) {
  Inputs mlstm({Cell::mlstm, false}, 5, 4, 41);
  auto p = mlstm.params();
  p.chunk = 0;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  p = mlstm.params();
  p.T = 0;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
  p = mlstm.params();
  std::vector<double> beta(mlstm.a.size(), 0.5);
  p.b = beta.data();
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);  // a normalizer with a delta term
  Inputs gdn({Cell::gdn, false}, 5, 4, 42);
  EXPECT_THROW(linear_recurrence_fwd(gdn.params(), LinearForm::parallel), ShapeError);
  p = gdn.params();
  p.y.head = 0;
  EXPECT_THROW(linear_recurrence_fwd(p), ShapeError);
}

}  // namespace
}  // namespace statelab::cpu
