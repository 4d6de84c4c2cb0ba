// Selftest cases for kernels/cuda/linear_recurrence.cu against the CPU twins in double. The
// unified recurrence per cell parameterization (mLSTM: normalized, signed forget gates; Mamba-2:
// q and k shared by heads inside a wider row; Gated DeltaNet: the delta rule, β up to 2), through
// the recurrent and the chunkwise kernel, on shapes that break the tiling (T = 1, T = chunk,
// T = 2·chunk + 3, odd widths, B = 1, H = 1), the realistic shapes and gates near saturation:
// y, boundary and final states, and every gradient added into random values. Then the stabilizer
// and selective decay scans for every gate kind, saturated inputs and optional gradients.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/decay.hpp"
#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cpu/stabilizer.hpp"
#include "kernels/cuda/linear_recurrence.hpp"
#include "kernels/cuda/linear_recurrence_chunkwise.hpp"
#include "kernels/error.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

using cuda::LinearKernel;

constexpr uint64_t kSeed = 0x11EC;

enum class Cell { mlstm, mamba2, gdn };

struct RecurrenceShape {
  Cell cell;
  bool pm1;  // eigenvalues in (−1, 1)
  int64_t B, T, H, Dk, Dv, chunk;
  bool random_floor = false;  // mLSTM: floor uniform in [0.25, 1] instead of exp(−m)
  bool dfloor = false;        // mLSTM: the floor's gradient requested
  bool saturated = false;     // forget gates, decays and β near their limits
  bool no_final = false;      // no final state asked for (the chunk-parallel forward stores less)

  std::string name() const {
    const char* cells[] = {"mlstm", "mamba2", "gdn"};
    std::string s = "B=" + std::to_string(B) + " T=" + std::to_string(T) +
                    " H=" + std::to_string(H) + " Dk=" + std::to_string(Dk) +
                    " Dv=" + std::to_string(Dv) + " chunk=" + std::to_string(chunk) + " " +
                    cells[int(cell)] + (pm1 ? " pm1" : " 01");
    if (cell == Cell::mlstm) s += random_floor ? " floor=random" : " floor=stabilizer";
    if (dfloor) s += " dfloor";
    if (saturated) s += " saturated";
    if (no_final) s += " no-final-state";
    return s;
  }
};

const char* kernel_name(LinearKernel k) {
  switch (k) {
    case LinearKernel::automatic:
      return "automatic";
    case LinearKernel::recurrent:
      return "recurrent";
    case LinearKernel::chunkwise:
      return "chunkwise";
    case LinearKernel::chunk_parallel:
      return "chunk-parallel";
  }
  return "";
}

std::vector<double> zeros(int64_t n) { return std::vector<double>(size_t(n), 0.0); }

// A device copy, or no buffer at all (a null pointer) for a tensor the cell does not have.
cuda::DeviceBuffer<float> device_copy(const cuda::Context& ctx, const std::vector<double>& x) {
  return x.empty() ? cuda::DeviceBuffer<float>() : to_device(ctx, to_float(x));
}

// Where the per-(b, t, h) vectors of one tensor live in its buffer:
// element (b, t, h, i) at offset + (b·T + t)·row + h·head + i.
struct View {
  int64_t offset = 0, row = 0, head = 0;
  int64_t size(int64_t B, int64_t T) const { return offset + B * T * row; }
  template <typename P>
  cpu::Rows<P> rows(P* base) const {
    return {base + offset, row, head};
  }
};

// Scales every vector of a view to Euclidean norm `scale` (Gated DeltaNet's q and k).
void normalize(std::vector<double>& x, const View& v, int64_t B, int64_t T, int64_t H, int64_t D,
               double scale) {
  for (int64_t n = 0; n < B * T; ++n)
    for (int64_t h = 0; h < H; ++h) {
      double* p = x.data() + v.offset + n * v.row + h * v.head;
      double ss = 0;
      for (int64_t i = 0; i < D; ++i) ss += p[i] * p[i];
      for (int64_t i = 0; i < D; ++i) p[i] *= scale / std::sqrt(ss);
    }
  x = rounded(std::move(x));
}

// The scalars a cell feeds the recurrence, from its own gate functions (the CPU twins in double),
// rounded to float. mLSTM's input gates stay within [−1.5, 1] so that exp(−m) >= e^{−1}: where the
// divisor could reach 1e-2 the fp32 rounding of nᵀq would be amplified a hundredfold there, and
// those outputs, the largest, would dominate the comparison.
struct Gates {
  std::vector<double> a, b, c, floor;

  // Into the CPU reference of a cell: b only for the delta rule, the floor and eps for mLSTM.
  void wire(cpu::LinearRecurrence<double>& pd, Cell cell) const {
    pd.a = a.data(), pd.c = c.data();
    pd.b = cell == Cell::gdn ? b.data() : nullptr;
    pd.floor = cell == Cell::mlstm ? floor.data() : nullptr;
    pd.eps = cell == Cell::mlstm ? 1e-6 : 0;
  }
};

Gates make_gates(const RecurrenceShape& sh, uint64_t salt) {
  const int64_t n = sh.B * sh.T * sh.H;
  Gates g;
  if (sh.cell == Cell::mlstm) {
    const auto kind = sh.pm1 ? cpu::ForgetGate::signed_sigmoid : cpu::ForgetGate::sigmoid;
    const auto ig = uniform_values(kSeed, salt, n, -1.5, 1);
    auto fg = sh.saturated ? uniform_values(kSeed, salt + 1, n, 6, 10)
                           : uniform_values(kSeed, salt + 1, n, sh.pm1 ? -5 : -2, 5);
    if (sh.pm1 && sh.saturated) {  // f = tanh(f̃/2) near −1 as often as near 1
      const auto sign = uniform_values(kSeed, salt + 2, n, -1, 1);
      for (size_t i = 0; i < fg.size(); ++i) fg[i] *= sign[i] < 0 ? -1 : 1;
    }
    auto m = zeros(n), a = zeros(n), c = zeros(n), fl = zeros(n);
    cpu::stabilized_gates_fwd(kind, sh.B, sh.T, sh.H, ig.data(), fg.data(), m.data(), a.data(),
                              c.data(), fl.data());
    g.a = rounded(a), g.c = rounded(c);
    g.floor = sh.random_floor ? uniform_values(kSeed, salt + 3, n, 0.25, 1) : rounded(fl);
    return g;
  }
  const auto raw = uniform_values(kSeed, salt, n, sh.saturated ? -12 : -4, sh.saturated ? 12 : 2);
  const auto A_log = uniform_values(kSeed, salt + 1, sh.H, 0, std::log(16.0));
  const auto dt_bias = uniform_values(kSeed, salt + 2, sh.H, -1, 1);
  auto dt = zeros(n), decay = zeros(n);
  cpu::selective_decay_fwd(sh.B * sh.T, sh.H, raw.data(), A_log.data(), dt_bias.data(), dt.data(),
                           decay.data());
  if (sh.cell == Cell::mamba2) {
    if (sh.pm1)
      for (auto& x : decay) x = 2 * x - 1;
    g.a = rounded(decay), g.c = rounded(dt);
    return g;
  }
  g.a = rounded(decay);
  auto beta = uniform_values(kSeed, salt + 3, n, sh.saturated ? -15 : -4, sh.saturated ? 15 : 4);
  for (auto& x : beta) x = (sh.pm1 ? 2.0 : 1.0) / (1 + std::exp(-x));
  g.b = rounded(beta);
  g.c = g.b;
  return g;
}

double limit(const cuda::Context& ctx, LinearKernel k, bool gate_gradient) {
  // The recurrent kernel is FMA in fp32 whatever the precision; the others (and automatic
  // dispatch, which may pick them) run their products in ctx.precision.
  return k == LinearKernel::recurrent ? limit_for(ctx.precision, false)
                                      : limit_for(ctx.precision, true, gate_gradient);
}

Case recurrence_case(const RecurrenceShape& sh, LinearKernel kernel, uint64_t s) {
  return {std::string("linear_recurrence ") + kernel_name(kernel) + " fwd+bwd", sh.name(),
          [=](const cuda::Context& ctx) {
            const int64_t B = sh.B, T = sh.T, H = sh.H, Dk = sh.Dk, Dv = sh.Dv;
            const int64_t n = B * T * H;
            const bool shared = sh.cell == Cell::mamba2, mlstm = sh.cell == Cell::mlstm;
            const bool gdn = sh.cell == Cell::gdn;
            // Mamba-2's q and k (C and B) share one row with unrelated columns around them;
            // the other cells' heads sit one column apart, so no stride is dense.
            View qv, kv;
            if (shared) {
              qv = {1, 2 * Dk + 3, 0};
              kv = {Dk + 2, 2 * Dk + 3, 0};
            } else {
              qv = kv = {0, H * (Dk + 1) + 2, Dk + 1};
            }
            const View vv{0, H * (Dv + 1) + 1, Dv + 1}, yv{0, H * Dv, Dv};
            const int64_t qk_size = std::max(qv.size(B, T), kv.size(B, T));
            auto q = uniform_values(kSeed, s * 64, qk_size, -1, 1);
            auto k =
                shared ? std::vector<double>{} : uniform_values(kSeed, s * 64 + 1, qk_size, -1, 1);
            if (gdn) {
              normalize(q, qv, B, T, H, Dk, 1 / std::sqrt(double(Dk)));
              normalize(k, kv, B, T, H, Dk, 1);
            }
            // mLSTM's k carries the cell's 1/√Dk: with saturated forget gates n sums the whole
            // sequence, and unscaled terms of nᵀq would be large against a divisor just above
            // the floor, amplifying fp32 rounding past the limit where the CPU's float path
            // fails it too.
            if (mlstm) {
              for (auto& x : k) x /= std::sqrt(double(Dk));
              k = rounded(std::move(k));
            }
            const auto v = uniform_values(kSeed, s * 64 + 2, vv.size(B, T), -1, 1);
            const Gates gates = make_gates(sh, s * 64 + 3);
            const auto dy = uniform_values(kSeed, s * 64 + 8, yv.size(B, T), -1, 1);
            const auto dq0 = uniform_values(kSeed, s * 64 + 9, qk_size, -1, 1);
            const auto dk0 =
                shared ? std::vector<double>{} : uniform_values(kSeed, s * 64 + 10, qk_size, -1, 1);
            const auto dv0 = uniform_values(kSeed, s * 64 + 11, vv.size(B, T), -1, 1);
            const auto da0 = uniform_values(kSeed, s * 64 + 12, n, -1, 1);
            const auto db0 = uniform_values(kSeed, s * 64 + 13, n, -1, 1);
            const auto dc0 = uniform_values(kSeed, s * 64 + 14, n, -1, 1);
            const auto dfloor0 = uniform_values(kSeed, s * 64 + 15, n, -1, 1);
            const std::vector<double>& kbuf = shared ? q : k;

            // The reference: the step-by-step CPU form in double on the same values.
            cpu::LinearRecurrence<double> pd;
            pd.B = B, pd.T = T, pd.H = H, pd.Dk = Dk, pd.Dv = Dv, pd.chunk = sh.chunk;
            pd.q = qv.rows<const double>(q.data()), pd.k = kv.rows(kbuf.data()),
            pd.v = vv.rows(v.data());
            gates.wire(pd, sh.cell);
            auto y = zeros(yv.size(B, T));
            auto boundary = zeros(cpu::linear_recurrence_boundary_size(pd));
            auto final_state = zeros(B * H * (Dv * Dk + (mlstm ? Dk : 0)));
            pd.y = yv.rows(y.data());
            pd.boundary = boundary.empty() ? nullptr : boundary.data();
            pd.final_state = final_state.data();
            cpu::linear_recurrence_fwd(pd, cpu::LinearForm::recurrent);
            auto dq = dq0, dk = dk0, dv = dv0, da = da0, db = db0, dc = dc0, dfloor = dfloor0;
            std::vector<double>& dkbuf = shared ? dq : dk;
            cpu::LinearRecurrenceGrads<double> gd;
            gd.dy = yv.rows(dy.data());
            gd.dq = qv.rows(dq.data()), gd.dk = kv.rows(dkbuf.data()), gd.dv = vv.rows(dv.data());
            gd.da = da.data(), gd.dc = dc.data();
            gd.db = gdn ? db.data() : nullptr;
            gd.dfloor = sh.dfloor ? dfloor.data() : nullptr;
            std::vector<double> work(size_t(cpu::linear_recurrence_work_size(pd)));
            cpu::linear_recurrence_bwd(pd, gd, work.data());

            auto d_q = device_copy(ctx, q), d_k = device_copy(ctx, k), d_v = device_copy(ctx, v);
            auto d_a = device_copy(ctx, gates.a), d_b = device_copy(ctx, gates.b);
            auto d_c = device_copy(ctx, gates.c), d_floor = device_copy(ctx, gates.floor);
            auto d_dy = to_device(ctx, to_float(dy));
            auto d_dq = device_copy(ctx, dq0), d_dk = device_copy(ctx, dk0);
            auto d_dv = to_device(ctx, to_float(dv0)), d_da = to_device(ctx, to_float(da0));
            auto d_db = to_device(ctx, to_float(db0)), d_dc = to_device(ctx, to_float(dc0));
            auto d_dfloor = to_device(ctx, to_float(dfloor0));
            auto d_y = output_buffer(ctx, int64_t(y.size()));
            auto d_boundary = output_buffer(ctx, int64_t(boundary.size()));
            auto d_final = output_buffer(ctx, int64_t(final_state.size()));
            float* d_kbuf = shared ? d_q.data() : d_k.data();
            float* d_dkbuf = shared ? d_dq.data() : d_dk.data();
            cpu::LinearRecurrence<float> pf;
            pf.B = B, pf.T = T, pf.H = H, pf.Dk = Dk, pf.Dv = Dv, pf.chunk = sh.chunk;
            pf.q = qv.rows<const float>(d_q.data()), pf.k = kv.rows<const float>(d_kbuf);
            pf.v = vv.rows<const float>(d_v.data());
            pf.a = d_a.data(), pf.c = gdn ? d_b.data() : d_c.data();  // β is b and c at once
            pf.b = gdn ? d_b.data() : nullptr;
            pf.floor = mlstm ? d_floor.data() : nullptr;
            pf.eps = mlstm ? 1e-6f : 0.f;
            pf.y = yv.rows(d_y.data());
            pf.boundary = d_boundary.data();
            pf.final_state = sh.no_final ? nullptr : d_final.data();
            auto d_fwd_work =
                output_buffer(ctx, cuda::linear_recurrence_fwd_work_size(ctx, pf, kernel));
            cuda::linear_recurrence_fwd(ctx, pf, d_fwd_work.data(), kernel);
            cpu::LinearRecurrenceGrads<float> gf;
            gf.dy = yv.rows<const float>(d_dy.data());
            gf.dq = qv.rows(d_dq.data()), gf.dk = kv.rows(d_dkbuf), gf.dv = vv.rows(d_dv.data());
            gf.da = d_da.data(), gf.dc = d_dc.data();
            gf.db = gdn ? d_db.data() : nullptr;
            gf.dfloor = sh.dfloor ? d_dfloor.data() : nullptr;
            auto d_work = output_buffer(ctx, cuda::linear_recurrence_work_size(pf));
            cuda::linear_recurrence_bwd(ctx, pf, gf, d_work.data(), kernel);
            cuda::synchronize(ctx);

            const double lim = limit(ctx, kernel, false), lim_gate = limit(ctx, kernel, true);
            CaseResult r{{compare("y", d_y.download(ctx), y, lim)}};
            if (!sh.no_final)
              r.checks.push_back(compare("final_state", d_final.download(ctx), final_state, lim));
            if (!boundary.empty())
              r.checks.push_back(compare("boundary", d_boundary.download(ctx), boundary, lim));
            if (shared) {
              r.checks.push_back(compare("dq, dk (one buffer)", d_dq.download(ctx), dq, lim));
            } else {
              r.checks.push_back(compare("dq", d_dq.download(ctx), dq, lim));
              r.checks.push_back(compare("dk", d_dk.download(ctx), dk, lim));
            }
            r.checks.push_back(compare("dv", d_dv.download(ctx), dv, lim));
            r.checks.push_back(compare("da", d_da.download(ctx), da, lim_gate));
            r.checks.push_back(compare("dc", d_dc.download(ctx), dc, lim_gate));
            if (gdn) r.checks.push_back(compare("db", d_db.download(ctx), db, lim_gate));
            if (sh.dfloor)
              r.checks.push_back(compare("dfloor", d_dfloor.download(ctx), dfloor, lim_gate));
            return r;
          }};
}

// The recurrent kernel's own limit on the state width is a ShapeError, thrown before a launch.
// The probe read-outs the recurrent forward kernel writes (state norm, write error, and for the
// mLSTM the normalizer norm and |nᵀq|) against the CPU probe in double on the same values.
Case probe_case(const RecurrenceShape& sh, uint64_t s) {
  return {"linear_recurrence probe", sh.name(), [=](const cuda::Context& ctx) {
            const int64_t B = sh.B, T = sh.T, H = sh.H, Dk = sh.Dk, Dv = sh.Dv, n = B * T * H;
            const bool mlstm = sh.cell == Cell::mlstm, gdn = sh.cell == Cell::gdn;
            // Mamba-2's q and k (C and B) are shared by the heads; the others' are per head.
            const View qk = sh.cell == Cell::mamba2 ? View{0, Dk, 0} : View{0, H * Dk, Dk};
            const View vy{0, H * Dv, Dv};
            auto q = uniform_values(kSeed, s * 16, qk.size(B, T), -1, 1);
            auto k = uniform_values(kSeed, s * 16 + 1, qk.size(B, T), -1, 1);
            if (gdn) {
              normalize(q, qk, B, T, H, Dk, 1 / std::sqrt(double(Dk)));
              normalize(k, qk, B, T, H, Dk, 1);
            }
            if (mlstm) {  // the cell's 1/√Dk, as in recurrence_case
              for (auto& x : k) x /= std::sqrt(double(Dk));
              k = rounded(std::move(k));
            }
            const auto v = uniform_values(kSeed, s * 16 + 2, vy.size(B, T), -1, 1);
            const Gates gates = make_gates(sh, s * 16 + 3);

            cpu::LinearRecurrence<double> pd;
            pd.B = B, pd.T = T, pd.H = H, pd.Dk = Dk, pd.Dv = Dv, pd.chunk = sh.chunk;
            pd.q = qk.rows<const double>(q.data()), pd.k = qk.rows<const double>(k.data());
            pd.v = vy.rows<const double>(v.data());
            gates.wire(pd, sh.cell);
            auto y = zeros(vy.size(B, T));
            auto boundary = zeros(cpu::linear_recurrence_boundary_size(pd));
            pd.y = vy.rows(y.data());
            pd.boundary = boundary.empty() ? nullptr : boundary.data();
            cpu::linear_recurrence_fwd(pd, cpu::LinearForm::recurrent);
            auto state = zeros(n), norm = zeros(n), nq = zeros(n), error = zeros(n);
            cpu::LinearRecurrenceProbe<double> probe;
            probe.state_norm = state.data(), probe.write_error = error.data();
            if (mlstm) probe.normalizer_norm = norm.data(), probe.n_dot_q = nq.data();
            auto work = zeros(cpu::linear_recurrence_work_size(pd));
            cpu::linear_recurrence_probe(pd, probe, work.data());

            auto d_q = to_device(ctx, to_float(q)), d_k = to_device(ctx, to_float(k));
            auto d_v = to_device(ctx, to_float(v));
            auto d_a = device_copy(ctx, gates.a), d_b = device_copy(ctx, gates.b);
            auto d_c = device_copy(ctx, gates.c), d_floor = device_copy(ctx, gates.floor);
            auto d_y = output_buffer(ctx, vy.size(B, T));
            auto d_state = output_buffer(ctx, n), d_norm = output_buffer(ctx, n);
            auto d_nq = output_buffer(ctx, n), d_error = output_buffer(ctx, n);
            cpu::LinearRecurrence<float> pf;
            pf.B = B, pf.T = T, pf.H = H, pf.Dk = Dk, pf.Dv = Dv, pf.chunk = sh.chunk;
            pf.q = qk.rows<const float>(d_q.data()), pf.k = qk.rows<const float>(d_k.data());
            pf.v = vy.rows<const float>(d_v.data());
            pf.a = d_a.data(), pf.c = d_c.data();
            pf.b = gdn ? d_b.data() : nullptr;
            pf.floor = mlstm ? d_floor.data() : nullptr;
            pf.eps = mlstm ? 1e-6f : 0.f;
            pf.y = vy.rows(d_y.data());
            cpu::LinearRecurrenceProbe<float> pg;
            pg.state_norm = d_state.data(), pg.write_error = d_error.data();
            if (mlstm) pg.normalizer_norm = d_norm.data(), pg.n_dot_q = d_nq.data();
            cuda::linear_recurrence_probe(ctx, pf, pg);
            cuda::synchronize(ctx);
            const double lim = limit_for(ctx.precision, false);
            CaseResult r;
            r.checks.push_back(compare("state_norm", d_state.download(ctx), state, lim));
            r.checks.push_back(compare("write_error", d_error.download(ctx), error, lim));
            if (mlstm) {
              r.checks.push_back(compare("normalizer_norm", d_norm.download(ctx), norm, lim));
              r.checks.push_back(compare("n_dot_q", d_nq.download(ctx), nq, lim));
            }
            // The probe leaves y as it was: every element still the NaN output_buffer put there
            // (an element the probe wrote counts as a failure).
            TensorCheck y_check;
            y_check.name = "y left unwritten (elements written)";
            for (float x : d_y.download(ctx)) y_check.non_finite += std::isfinite(x) ? 1 : 0;
            r.checks.push_back(y_check);
            return r;
          }};
}

Case recurrent_width_limit_case() {
  return {"linear_recurrence recurrent rejects Dk > 256", "B=1 T=3 H=1 Dk=257 Dv=4",
          [](const cuda::Context& ctx) {
            auto d = to_device(ctx, std::vector<float>(size_t(3 * 257), 0.5f));
            cpu::LinearRecurrence<float> p;
            p.B = 1, p.T = 3, p.H = 1, p.Dk = 257, p.Dv = 4, p.chunk = 4;
            p.q = {d.data(), 257, 257}, p.k = p.q, p.v = {d.data(), 4, 4};
            p.a = d.data(), p.c = d.data(), p.y = {d.data(), 4, 4};
            bool thrown = false;
            try {
              cuda::linear_recurrence_fwd(ctx, p, nullptr, LinearKernel::recurrent);
            } catch (const ShapeError&) {
              thrown = true;
            }
            TensorCheck c;
            c.name = "ShapeError thrown";
            c.rel_rms = thrown ? 0 : INFINITY;
            return CaseResult{{c}};
          }};
}

std::vector<double> zeros_like(const std::vector<double>& x) { return zeros(int64_t(x.size())); }

// starved: input gates far below zero (ĩ < −90), where exp(−m) passes the largest float and
// the float paths cap the floor there.
Case stabilizer_case(cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H, bool saturated,
                     bool with_dfloor, uint64_t s, bool starved = false) {
  const char* kinds[] = {"sigmoid", "exp", "signed_sigmoid"};
  return {
      "stabilized_gates fwd+bwd",
      "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) + " " +
          kinds[int(kind)] + (saturated ? " saturated" : "") +
          (with_dfloor ? " dfloor" : " no dfloor") + (starved ? " starved" : ""),
      [=](const cuda::Context& ctx) {
        const int64_t n = B * T * H;
        const auto ig = starved ? uniform_values(kSeed, s * 16, n, -120, -90)
                                : uniform_values(kSeed, s * 16, n, saturated ? -20 : -3,
                                                 saturated ? 20 : 3);
        const auto fg =
            uniform_values(kSeed, s * 16 + 1, n, saturated ? -20 : -3, saturated ? 20 : 6);
        auto m = zeros(n), a = zeros(n), c = zeros(n), fl = zeros(n);
        cpu::stabilized_gates_fwd(kind, B, T, H, ig.data(), fg.data(), m.data(), a.data(), c.data(),
                                  fl.data());
        for (double& x : fl) x = std::min(x, double(std::numeric_limits<float>::max()));
        // Backward gets forward's results rounded to float on both sides, so the branch of
        // every max (m == ĩ) is decided on the same numbers.
        const auto m_in = rounded(m), a_in = rounded(a), c_in = rounded(c), fl_in = rounded(fl);
        const auto da = uniform_values(kSeed, s * 16 + 2, n, -1, 1);
        const auto dc = uniform_values(kSeed, s * 16 + 3, n, -1, 1);
        auto dfl = uniform_values(kSeed, s * 16 + 4, n, -1, 1);
        // Where the floor divides the output, its gradient is −(dy·Sq)/floor²: about 0 here.
        if (starved)
          for (size_t i = 0; i < dfl.size(); ++i) dfl[i] /= std::max(1.0, fl_in[i] * fl_in[i]);
        auto dig = zeros(n), dfg = zeros(n);
        cpu::stabilized_gates_bwd(kind, B, T, H, ig.data(), fg.data(), m_in.data(), a_in.data(),
                                  c_in.data(), fl_in.data(), da.data(), dc.data(),
                                  with_dfloor ? dfl.data() : nullptr, dig.data(), dfg.data());

        auto d_ig = to_device(ctx, to_float(ig)), d_fg = to_device(ctx, to_float(fg));
        auto d_m_in = to_device(ctx, to_float(m_in)), d_a_in = to_device(ctx, to_float(a_in));
        auto d_c_in = to_device(ctx, to_float(c_in)), d_fl_in = to_device(ctx, to_float(fl_in));
        auto d_da = to_device(ctx, to_float(da)), d_dc = to_device(ctx, to_float(dc));
        auto d_dfl = to_device(ctx, to_float(dfl));
        auto d_m = output_buffer(ctx, n), d_a = output_buffer(ctx, n);
        auto d_c = output_buffer(ctx, n), d_fl = output_buffer(ctx, n);
        auto d_dig = output_buffer(ctx, n), d_dfg = output_buffer(ctx, n);
        cuda::stabilized_gates_fwd(ctx, kind, B, T, H, d_ig.data(), d_fg.data(), d_m.data(),
                                   d_a.data(), d_c.data(), d_fl.data());
        cuda::stabilized_gates_bwd(ctx, kind, B, T, H, d_ig.data(), d_fg.data(), d_m_in.data(),
                                   d_a_in.data(), d_c_in.data(), d_fl_in.data(), d_da.data(),
                                   d_dc.data(), with_dfloor ? d_dfl.data() : nullptr, d_dig.data(),
                                   d_dfg.data());
        cuda::synchronize(ctx);
        const double lim = limit_for(ctx.precision, false);
        return CaseResult{
            {compare("m", d_m.download(ctx), m, lim), compare("a", d_a.download(ctx), a, lim),
             compare("c", d_c.download(ctx), c, lim), compare("floor", d_fl.download(ctx), fl, lim),
             compare("dig", d_dig.download(ctx), dig, lim),
             compare("dfg", d_dfg.download(ctx), dfg, lim)}};
      }};
}

Case decay_case(int64_t N, int64_t H, bool saturated, bool with_d_dt, uint64_t s) {
  return {
      "selective_decay fwd+bwd",
      "N=" + std::to_string(N) + " H=" + std::to_string(H) + (saturated ? " saturated" : "") +
          (with_d_dt ? " d_dt" : " no d_dt"),
      [=](const cuda::Context& ctx) {
        const int64_t n = N * H;
        const auto raw = uniform_values(kSeed, s * 16, n, saturated ? -30 : -4, saturated ? 30 : 4);
        const auto A_log = uniform_values(kSeed, s * 16 + 1, H, 0, std::log(16.0));
        const auto dt_bias = uniform_values(kSeed, s * 16 + 2, H, -2, 1);
        auto dt = zeros(n), decay = zeros(n);
        cpu::selective_decay_fwd(N, H, raw.data(), A_log.data(), dt_bias.data(), dt.data(),
                                 decay.data());
        const auto dt_in = rounded(dt), decay_in = rounded(decay);
        const auto d_decay = uniform_values(kSeed, s * 16 + 3, n, -1, 1);
        const auto d_dt = uniform_values(kSeed, s * 16 + 4, n, -1, 1);
        const auto dA0 = uniform_values(kSeed, s * 16 + 5, H, -1, 1);
        const auto dbias0 = uniform_values(kSeed, s * 16 + 6, H, -1, 1);
        auto d_raw = zeros_like(raw), dA = dA0, dbias = dbias0;
        cpu::selective_decay_bwd(N, H, raw.data(), A_log.data(), dt_bias.data(), dt_in.data(),
                                 decay_in.data(), d_decay.data(), with_d_dt ? d_dt.data() : nullptr,
                                 d_raw.data(), dA.data(), dbias.data());

        auto g_raw = to_device(ctx, to_float(raw)), g_A = to_device(ctx, to_float(A_log));
        auto g_bias = to_device(ctx, to_float(dt_bias));
        auto g_dt_in = to_device(ctx, to_float(dt_in));
        auto g_decay_in = to_device(ctx, to_float(decay_in));
        auto g_d_decay = to_device(ctx, to_float(d_decay)), g_d_dt = to_device(ctx, to_float(d_dt));
        auto g_dA = to_device(ctx, to_float(dA0)), g_dbias = to_device(ctx, to_float(dbias0));
        auto g_dt = output_buffer(ctx, n), g_decay = output_buffer(ctx, n);
        auto g_d_raw = output_buffer(ctx, n);
        cuda::selective_decay_fwd(ctx, N, H, g_raw.data(), g_A.data(), g_bias.data(), g_dt.data(),
                                  g_decay.data());
        cuda::selective_decay_bwd(ctx, N, H, g_raw.data(), g_A.data(), g_bias.data(),
                                  g_dt_in.data(), g_decay_in.data(), g_d_decay.data(),
                                  with_d_dt ? g_d_dt.data() : nullptr, g_d_raw.data(), g_dA.data(),
                                  g_dbias.data());
        cuda::synchronize(ctx);
        const double lim = limit_for(ctx.precision, false);
        return CaseResult{{compare("dt", g_dt.download(ctx), dt, lim),
                           compare("decay", g_decay.download(ctx), decay, lim),
                           compare("d_raw", g_d_raw.download(ctx), d_raw, lim),
                           compare("dA_log", g_dA.download(ctx), dA, lim),
                           compare("ddt_bias", g_dbias.download(ctx), dbias, lim)}};
      }};
}

// Empty shapes, outputs pointing at known values: nothing may be written or launched.
Case empty_scans_case() {
  return {"gate scans with no elements", "B=0 / T=0 / N=0", [](const cuda::Context& ctx) {
            const auto known = uniform_values(kSeed, 9999, 64, -1, 1);
            auto d = to_device(ctx, to_float(known));
            float* o = d.data();
            for (auto kind : {cpu::ForgetGate::sigmoid, cpu::ForgetGate::signed_sigmoid}) {
              cuda::stabilized_gates_fwd(ctx, kind, 0, 5, 2, o, o, o, o, o, o);
              cuda::stabilized_gates_bwd(ctx, kind, 2, 0, 2, o, o, o, o, o, o, o, o, o, o, o);
            }
            cuda::selective_decay_fwd(ctx, 0, 3, o, o, o, o, o);
            cuda::selective_decay_bwd(ctx, 0, 3, o, o, o, o, o, o, o, o, o, o);
            cuda::synchronize(ctx);
            return CaseResult{{compare("buffer untouched", d.download(ctx), known, 0.0)}};
          }};
}

}  // namespace

std::vector<Case> linear_recurrence_cases() {
  std::vector<Case> cases;
  uint64_t salt = 1;
  // Every cell's parameterization, each eigenvalue range.
  const RecurrenceShape cells[] = {
      {Cell::mlstm, false, 0, 0, 0, 0, 0, 0, false, false},
      {Cell::mlstm, true, 0, 0, 0, 0, 0, 0, true, true},
      {Cell::mamba2, false, 0, 0, 0, 0, 0, 0},
      {Cell::mamba2, true, 0, 0, 0, 0, 0, 0},
      {Cell::gdn, false, 0, 0, 0, 0, 0, 0},
      {Cell::gdn, true, 0, 0, 0, 0, 0, 0},
  };
  struct Dims {
    int64_t B, T, H, Dk, Dv, chunk;
  };
  // Shapes that break the tiling: one step, T = chunk, T = 2·chunk + 3 for chunks 4, 16, 64,
  // odd widths, one row group and several, B and H of 1 and 3.
  const Dims edges[] = {{1, 1, 1, 5, 7, 4},     {3, 16, 3, 5, 7, 16},  {1, 11, 3, 7, 5, 4},
                        {3, 35, 1, 16, 33, 16}, {3, 131, 3, 5, 7, 64}, {2, 67, 2, 32, 64, 16}};
  // Realistic shapes, wide states and gates near saturation, per cell.
  const Dims small{128, 64, 4, 32, 32, 64}, medium{64, 256, 8, 64, 64, 64};
  const Dims saturated{2, 150, 2, 32, 16, 64};
  for (auto kernel :
       {LinearKernel::recurrent, LinearKernel::chunkwise, LinearKernel::chunk_parallel}) {
    // Forcing the chunkwise kernels on a shape they refuse is a ShapeError by contract (the
    // automatic dispatch sends those shapes to the recurrent kernel), as is the chunk-parallel
    // forward on a delta rule whose Dk² exceeds chunk·Dv: only shapes each takes.
    auto push = [&](const RecurrenceShape& sh) {
      cpu::LinearRecurrence<float> r;
      r.B = sh.B, r.T = sh.T, r.H = sh.H, r.Dk = sh.Dk, r.Dv = sh.Dv, r.chunk = sh.chunk;
      if (kernel != LinearKernel::recurrent && !cuda::chunkwise::supports(r)) return;
      static const float present = 0.f;  // only whether the delta term is there matters
      r.b = sh.cell == Cell::gdn ? &present : nullptr;
      if (kernel == LinearKernel::chunk_parallel && !cuda::chunkwise::supports_parallel(r)) return;
      cases.push_back(recurrence_case(sh, kernel, salt++));
    };
    for (const auto& cell : cells)
      for (const auto& d : edges) {
        RecurrenceShape sh = cell;
        sh.B = d.B, sh.T = d.T, sh.H = d.H, sh.Dk = d.Dk, sh.Dv = d.Dv, sh.chunk = d.chunk;
        push(sh);
      }
    for (const auto& cell : cells) {
      RecurrenceShape sh = cell;
      sh.B = saturated.B, sh.T = saturated.T, sh.H = saturated.H, sh.Dk = saturated.Dk;
      sh.Dv = saturated.Dv, sh.chunk = saturated.chunk, sh.saturated = true;
      push(sh);
    }
    for (int c = 0; c < 6; c += 2)  // S with the signed range, M with the published one
      for (const auto& [d, signed_range] : {std::pair{small, 1}, std::pair{medium, 0}}) {
        RecurrenceShape sh = cells[c + signed_range];
        sh.B = d.B, sh.T = d.T, sh.H = d.H, sh.Dk = d.Dk, sh.Dv = d.Dv, sh.chunk = d.chunk;
        push(sh);
      }
    // mLSTM at d_model 64, proj_factor 2, one head; the widest state the recurrent kernel takes;
    // Gated DeltaNet's Dv = 2·Dk split over several CTAs; Mamba-2 with state 16, head width 64.
    push({Cell::mlstm, false, 4, 80, 1, 128, 128, 64});
    push({Cell::mlstm, true, 4, 80, 1, 128, 128, 64, false, true});
    push({Cell::mlstm, true, 1, 20, 2, 256, 9, 8});
    push({Cell::gdn, true, 1, 20, 2, 256, 9, 8});
    push({Cell::gdn, false, 1, 40, 2, 128, 256, 16});
    push({Cell::mamba2, true, 2, 100, 4, 16, 64, 32});
    // Long sequences: more chunks than the chunk-parallel scan stages at once (64), and the
    // delta rule's transition scan over several CTAs of state rows (Dv = 64); its chunk-parallel
    // outputs over two value slices, the second short (Dv = 80); its scan with each state row's
    // columns over three warps (Dk = 80).
    push({Cell::mlstm, true, 1, 64 * 70 + 5, 1, 16, 16, 64});
    push({Cell::mamba2, false, 1, 16 * 130 + 7, 2, 16, 24, 16});
    push({Cell::gdn, true, 1, 64 * 70 + 5, 1, 16, 16, 64});
    push({Cell::gdn, false, 2, 32 * 20 + 9, 2, 32, 64, 32});
    push({Cell::gdn, false, 2, 16 * 9 + 5, 2, 32, 80, 16});
    push({Cell::gdn, true, 1, 64 * 5 + 3, 1, 80, 100, 64});
  }
  // Automatic dispatch on both sides of the switch to the chunkwise kernels: the delta rule
  // short of its four chunks, mLSTM past its one whole chunk, and many chunks (there, the
  // chunk-parallel forward: few rows).
  cases.push_back(
      recurrence_case({Cell::gdn, true, 2, 40, 2, 32, 32, 16}, LinearKernel::automatic, salt++));
  cases.push_back(
      recurrence_case({Cell::mlstm, true, 2, 40, 2, 32, 32, 16}, LinearKernel::automatic, salt++));
  cases.push_back(recurrence_case({Cell::mamba2, false, 2, 300, 2, 32, 32, 16},
                                  LinearKernel::automatic, salt++));
  cases.push_back(
      recurrence_case({Cell::gdn, false, 2, 300, 2, 32, 32, 32}, LinearKernel::automatic, salt++));
  cases.push_back(recurrent_width_limit_case());
  for (const RecurrenceShape& sh :
       {RecurrenceShape{Cell::mlstm, false, 2, 37, 3, 32, 24, 16},
        RecurrenceShape{Cell::mlstm, true, 1, 1, 1, 8, 8, 64},
        RecurrenceShape{Cell::mlstm, true, 2, 80, 2, 64, 64, 64, false, false, true},
        RecurrenceShape{Cell::mamba2, false, 3, 29, 4, 16, 33, 8},
        RecurrenceShape{Cell::gdn, true, 2, 70, 2, 64, 40, 32},
        RecurrenceShape{Cell::gdn, false, 1, 200, 1, 256, 16, 64}})
    cases.push_back(probe_case(sh, salt++));

  for (auto kind :
       {cpu::ForgetGate::sigmoid, cpu::ForgetGate::exp, cpu::ForgetGate::signed_sigmoid})
    for (bool sat : {false, true}) {
      cases.push_back(stabilizer_case(kind, 1, 1, 1, sat, sat, salt++));
      cases.push_back(stabilizer_case(kind, 3, 37, 5, sat, !sat, salt++));
      cases.push_back(stabilizer_case(kind, 2, 300, 3, sat, sat, salt++));
      cases.push_back(stabilizer_case(kind, 2, 40, 3, sat, true, salt++, true));
    }
  for (bool sat : {false, true}) {
    cases.push_back(decay_case(1, 1, sat, !sat, salt++));
    cases.push_back(decay_case(37, 5, sat, sat, salt++));
    cases.push_back(decay_case(64 * 256, 8, sat, !sat, salt++));
  }
  cases.push_back(empty_scans_case());
  // Mamba-2's four heads sharing each chunk-state and outputs CTA: enough chunks for that on an
  // H200 (602 of (b, chunk) against four CTAs an SM), and K's tile too narrow to hold P.
  cases.push_back(recurrence_case({Cell::mamba2, true, 2, 16 * 300 + 5, 4, 16, 24, 16},
                                  LinearKernel::chunk_parallel, salt++));
  // The chunk-parallel forward without a final state, as training runs it: its chunk states stop
  // one chunk short and the scan's last store is a boundary slot.
  for (const RecurrenceShape& sh :
       {RecurrenceShape{Cell::mamba2, false, 2, 64 * 18 + 10, 4, 64, 32, 64},
        RecurrenceShape{Cell::mlstm, true, 2, 32 * 17 + 1, 2, 32, 32, 32}}) {
    RecurrenceShape no_final = sh;
    no_final.no_final = true;
    cases.push_back(recurrence_case(no_final, LinearKernel::chunk_parallel, salt++));
  }
  return cases;
}

}  // namespace statelab::selftest
