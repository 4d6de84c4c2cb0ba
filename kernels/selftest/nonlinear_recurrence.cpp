// Selftest cases for kernels/cuda/nonlinear_recurrence.cu against kernels/cpu/nonlinear_recurrence
// in double: LSTM and sLSTM (σ and exp forget gates) on shapes that break the CTA tiles (T = 1,
// B = 1, Dh = 1, odd Dh, B not a multiple of the row tile), the S shapes, heads wide enough to be
// split over a cluster or a cooperative grid, and pre-activations up to |x| = 6 that saturate the
// gates. Heads the tensor-core kernels take run through them and through the FFMA kernels;
// every other LSTM shape runs without saving its pre-activations, as the blocks run it, and
// every shape's forward runs once more as an evaluation, which writes h alone.
// Backward gets the reference forward's saved tensors (rounded to float), so each direction is
// checked on its own; dR starts from random values, so accumulation is proven.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/nonlinear_recurrence.hpp"
#include "kernels/cuda/nonlinear_recurrence.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

constexpr uint64_t kSeed = 0x5157;

std::vector<double> zeros(int64_t n) { return std::vector<double>(static_cast<size_t>(n), 0.0); }

struct Shape {
  cpu::NonlinearCell cell;
  bool exp_forget;
  int64_t B, T, H, Dh;
  double pre_range;  // pre-activations uniform in ±pre_range
};

std::string describe(const Shape& s, cuda::NonlinearKernel kernel) {
  const bool slstm = s.cell == cpu::NonlinearCell::slstm;
  std::string d = "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                  " H=" + std::to_string(s.H) + " Dh=" + std::to_string(s.Dh);
  d += slstm ? (s.exp_forget ? " slstm exp-forget" : " slstm sigmoid-forget") : " lstm";
  d += " |pre|<" + std::to_string(int(s.pre_range));
  if (kernel == cuda::NonlinearKernel::fma) d += " fma";
  if (kernel == cuda::NonlinearKernel::tensor_core) d += " tensor-core";
  return d;
}

template <typename S>
cpu::NonlinearRecurrence<S> recurrence(const Shape& s, const S* pre, const S* R) {
  cpu::NonlinearRecurrence<S> p;
  p.cell = s.cell;
  p.exp_forget = s.exp_forget;
  p.B = s.B, p.T = s.T, p.H = s.H, p.Dh = s.Dh;
  p.pre = pre;
  p.R = R;
  return p;
}

// save_raw: the forward writes the pre-activations; backward gets them only then.
Case recurrence_case(const Shape& s, uint64_t salt, cuda::NonlinearKernel kernel, bool save_raw) {
  return {
      "nonlinear_recurrence fwd+bwd", describe(s, kernel) + (save_raw ? "" : " no-raw"),
      [=](const cuda::Context& ctx) {
        const bool slstm = s.cell == cpu::NonlinearCell::slstm;
        const int64_t G = 4 * s.Dh, ng = s.B * s.T * s.H * G, ns = s.B * s.T * s.H * s.Dh;
        const int64_t nr = s.H * s.Dh * G;
        const uint64_t k = salt * 16;
        const auto pre = uniform_values(kSeed, k, ng, -s.pre_range, s.pre_range);
        // R at the usual 1/√Dh scale keeps R·h of order one, whatever the width.
        const double r_scale = 1.0 / std::sqrt(double(s.Dh));
        const auto R = uniform_values(kSeed, k + 1, nr, -r_scale, r_scale);
        const auto dh = uniform_values(kSeed, k + 2, ns, -1, 1);
        const auto dR0 = uniform_values(kSeed, k + 3, nr, -1, 1);

        // Reference forward.
        auto raw = zeros(ng), gates = zeros(ng), c = zeros(ns), n = zeros(slstm ? ns : 0);
        auto m = zeros(slstm ? ns : 0), h = zeros(ns);
        auto ref = recurrence<double>(s, pre.data(), R.data());
        ref.raw = raw.data(), ref.gates = gates.data(), ref.c = c.data(), ref.h = h.data();
        if (slstm) ref.n = n.data(), ref.m = m.data();
        cpu::nonlinear_recurrence_fwd(ref);
        // Reference backward on the saved tensors as the GPU backward will see them.
        auto raw_in = rounded(raw), gates_in = rounded(gates), c_in = rounded(c);
        auto n_in = rounded(n), m_in = rounded(m), h_in = rounded(h);
        auto ref_in = recurrence<double>(s, pre.data(), R.data());
        ref_in.raw = raw_in.data(), ref_in.gates = gates_in.data(), ref_in.c = c_in.data();
        ref_in.h = h_in.data();
        if (slstm) ref_in.n = n_in.data(), ref_in.m = m_in.data();
        auto dpre = zeros(ng), dR = dR0, work = zeros(3 * s.B * s.H * s.Dh);
        cpu::nonlinear_recurrence_bwd(ref_in, dh.data(), dpre.data(), dR.data(), work.data());

        // CUDA forward into poisoned outputs.
        auto d_pre = to_device(ctx, to_float(pre)), d_R = to_device(ctx, to_float(R));
        auto d_raw = output_buffer(ctx, save_raw ? ng : 0), d_gates = output_buffer(ctx, ng);
        auto d_c = output_buffer(ctx, ns), d_h = output_buffer(ctx, ns);
        auto d_n = output_buffer(ctx, slstm ? ns : 0), d_m = output_buffer(ctx, slstm ? ns : 0);
        auto fwd = recurrence<float>(s, d_pre.data(), d_R.data());
        fwd.raw = save_raw ? d_raw.data() : nullptr, fwd.gates = d_gates.data(), fwd.c = d_c.data();
        fwd.h = d_h.data();
        if (slstm) fwd.n = d_n.data(), fwd.m = d_m.data();
        cuda::nonlinear_recurrence_fwd(ctx, fwd, kernel);
        // The evaluation's forward: h alone.
        auto d_h_eval = output_buffer(ctx, ns);
        auto eval = recurrence<float>(s, d_pre.data(), d_R.data());
        eval.h = d_h_eval.data();
        cuda::nonlinear_recurrence_fwd(ctx, eval, kernel);

        // CUDA backward on the reference's saved tensors.
        auto d_raw_in = to_device(ctx, to_float(raw_in));
        auto d_gates_in = to_device(ctx, to_float(gates_in));
        auto d_c_in = to_device(ctx, to_float(c_in)), d_h_in = to_device(ctx, to_float(h_in));
        cuda::DeviceBuffer<float> d_n_in, d_m_in;
        if (slstm) d_n_in = to_device(ctx, to_float(n_in)), d_m_in = to_device(ctx, to_float(m_in));
        auto bwd = recurrence<float>(s, d_pre.data(), d_R.data());
        bwd.raw = save_raw ? d_raw_in.data() : nullptr, bwd.gates = d_gates_in.data();
        bwd.c = d_c_in.data();
        bwd.h = d_h_in.data();
        if (slstm) bwd.n = d_n_in.data(), bwd.m = d_m_in.data();
        auto d_dh = to_device(ctx, to_float(dh)), d_dR = to_device(ctx, to_float(dR0));
        auto d_dpre = output_buffer(ctx, ng);
        auto d_work = output_buffer(ctx, cuda::nonlinear_recurrence_work_size(bwd));
        cuda::nonlinear_recurrence_bwd(ctx, bwd, d_dh.data(), d_dpre.data(), d_dR.data(),
                                       d_work.data(), kernel);
        cuda::synchronize(ctx);

        // The FFMA kernels' recurrent products are fp32 whatever the precision, the tensor
        // cores' follow it; dR goes through cuBLAS in ctx.precision.
        // automatic may take the tensor cores too (heads above 128 units in tf32 and bf16).
        const double lim = limit_for(ctx.precision, kernel != cuda::NonlinearKernel::fma);
        CaseResult r{{compare("gates", d_gates.download(ctx), gates, lim),
                      compare("c", d_c.download(ctx), c, lim)}};
        if (save_raw) r.checks.push_back(compare("raw", d_raw.download(ctx), raw, lim));
        if (slstm) {
          r.checks.push_back(compare("n", d_n.download(ctx), n, lim));
          r.checks.push_back(compare("m", d_m.download(ctx), m, lim));
        }
        r.checks.push_back(compare("h", d_h.download(ctx), h, lim));
        r.checks.push_back(compare("h of the evaluation forward", d_h_eval.download(ctx), h, lim));
        r.checks.push_back(compare("dpre", d_dpre.download(ctx), dpre, lim));
        r.checks.push_back(compare("dR", d_dR.download(ctx), dR, limit_for(ctx.precision, true)));
        return r;
      }};
}

// Empty dimensions, outputs pointing at known values: nothing may be written or launched.
Case empty_case() {
  return {"nonlinear_recurrence fwd+bwd with an empty dimension", "B=0 / T=0",
          [](const cuda::Context& ctx) {
            const auto known = uniform_values(kSeed, 9999, 64, -1, 1);
            auto d = to_device(ctx, to_float(known));
            float* o = d.data();
            for (const auto& bt : {std::pair<int64_t, int64_t>{0, 5}, {3, 0}}) {
              cpu::NonlinearRecurrence<float> p;
              p.B = bt.first, p.T = bt.second, p.H = 2, p.Dh = 3;
              p.pre = p.R = o;
              p.raw = p.gates = p.c = p.n = p.m = p.h = o;
              cuda::nonlinear_recurrence_fwd(ctx, p);
              cuda::nonlinear_recurrence_bwd(ctx, p, o, o, o, o);
            }
            cuda::synchronize(ctx);
            return CaseResult{{compare("buffer untouched", d.download(ctx), known, 0.0)}};
          }};
}

}  // namespace

std::vector<Case> nonlinear_recurrence_cases() {
  using cpu::NonlinearCell;
  const auto lstm = NonlinearCell::lstm, slstm = NonlinearCell::slstm;
  std::vector<Case> cases;
  uint64_t salt = 1;
  for (const Shape& s :
       {// Single step, single row: no recurrent product, no exchange.
        Shape{lstm, false, 1, 1, 1, 5, 1}, Shape{slstm, false, 1, 1, 2, 3, 1},
        Shape{slstm, true, 1, 1, 2, 3, 1},
        // Tiny odd heads, a unit per head, rows not a multiple of the row tile.
        Shape{slstm, false, 3, 5, 2, 3, 1}, Shape{slstm, true, 3, 5, 2, 3, 1},
        Shape{slstm, false, 2, 4, 5, 1, 1}, Shape{lstm, false, 2, 17, 1, 33, 1},
        Shape{lstm, false, 37, 3, 1, 7, 1}, Shape{slstm, true, 37, 2, 3, 7, 1},
        // Mid shapes, and gates driven to saturation.
        Shape{slstm, false, 8, 40, 4, 16, 1}, Shape{slstm, true, 8, 40, 4, 16, 1},
        Shape{slstm, false, 5, 33, 2, 24, 6}, Shape{slstm, true, 5, 33, 2, 24, 6},
        Shape{lstm, false, 6, 21, 1, 40, 6},
        // The S shapes (d = 128), and the heads of the M sLSTM (H = 8, Dh = 64).
        Shape{slstm, false, 128, 64, 4, 32, 1}, Shape{lstm, false, 128, 64, 1, 128, 1},
        Shape{slstm, false, 4, 9, 8, 64, 1},
        // dR's rows in slices: 555 rows make two slices of 277 and one row past them.
        Shape{slstm, false, 5, 111, 2, 16, 1}, Shape{lstm, false, 5, 111, 1, 24, 1},
        // Heads split over CTAs: a cluster (Dh = 128, 200) and a cooperative grid (Dh = 384);
        // B = 200 leaves more (head, batch tile) groups than can be resident, so the grid's
        // CTAs loop over passes (T even: the last step's partials share a parity with the first).
        Shape{lstm, false, 5, 7, 1, 200, 1}, Shape{lstm, false, 3, 6, 1, 128, 6},
        Shape{lstm, false, 8, 12, 1, 384, 1}, Shape{lstm, false, 1, 3, 1, 384, 6},
        Shape{slstm, true, 2, 5, 2, 384, 1}, Shape{slstm, false, 2, 6, 2, 384, 1},
        Shape{lstm, false, 200, 4, 1, 384, 1},
        // The tensor-core kernels: the L shape's head over a cluster of 8 with exactly its 16
        // rows, a head whose last CTA has units past Dh beside a batch tile of one row, and two
        // steps over a cluster of 3 (backward's first and last exchange are one).
        Shape{lstm, false, 16, 30, 1, 128, 1}, Shape{lstm, false, 17, 9, 1, 100, 6},
        Shape{lstm, false, 3, 2, 1, 40, 1},
        // Heads above 128 units run on the tensor cores over a cooperative grid in tf32 and bf16
        // (the Dh = 200 and 384 shapes above, passes with B = 200): the widest head, and an odd
        // one whose last CTA has units past Dh, gathered a float at a time.
        Shape{lstm, false, 20, 5, 1, 512, 1}, Shape{slstm, false, 19, 6, 2, 131, 6}}) {
    // Above kTensorCoreMaxDh a forced tensor-core kernel would throw in fp32, so automatic.
    const bool narrow = s.Dh <= cuda::kTensorCoreMaxDh;
    // Every other LSTM shape runs as the blocks run it, without raw, so the FFMA, cluster and
    // grid kernels each meet both.
    const bool save_raw = s.cell == slstm || salt % 2 == 1;
    cases.push_back(recurrence_case(
        s, salt, narrow ? cuda::NonlinearKernel::tensor_core : cuda::NonlinearKernel::automatic,
        save_raw));
    cases.push_back(recurrence_case(s, salt++, cuda::NonlinearKernel::fma, save_raw));
  }
  cases.push_back(empty_case());
  return cases;
}

}  // namespace statelab::selftest
