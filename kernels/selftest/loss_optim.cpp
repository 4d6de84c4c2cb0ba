// Selftest cases for kernels/cuda/loss.cu and optim.cu against kernels/cpu/loss.cpp and
// optim.cpp in double. Cross-entropy: V = 3, 17, 64, 1000 (lanes per row) and 50000 (a block
// per row), some targets −1, all −1, quantised logits whose ties must go to the lowest index,
// with and without dlogits; totals start non-zero, so they must accumulate. The optimizer runs
// sum_squares into AdamW on the device, against cpu::global_norm, scale_inplace and
// adamw_update composed as lab/optimizer.cpp composes them: clip active, inactive and off, a
// NaN gradient (nothing may change), steps_taken 0 and 1000, a strict decay prefix.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/loss.hpp"
#include "kernels/cpu/optim.hpp"
#include "kernels/cuda/loss.hpp"
#include "kernels/cuda/optim.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

constexpr uint64_t kSeed = 0x1055;

struct CrossEntropyShape {
  int64_t N, V;
  double ignored;  // fraction of targets set to −1
  bool ties;       // logits on a coarse grid, so rows have several maxima
  bool grad;       // dlogits requested
};

Case cross_entropy_case(const CrossEntropyShape& sh, uint64_t s) {
  return {"cross_entropy",
          "N=" + std::to_string(sh.N) + " V=" + std::to_string(sh.V) +
              " ignored=" + std::to_string(sh.ignored).substr(0, 4) + (sh.ties ? " ties" : "") +
              (sh.grad ? "" : " no dlogits"),
          [=](const cuda::Context& ctx) {
            auto logits = uniform_values(kSeed, s * 16, sh.N * sh.V, -3, 3);
            if (sh.ties)
              for (auto& v : logits) v = std::floor(v * 4 / 3) / 4;  // 8 levels in [-1, 0.75]
            const auto pick = uniform_values(kSeed, s * 16 + 1, sh.N, 0, 1);
            const auto label = uniform_values(kSeed, s * 16 + 2, sh.N, 0, 1);
            std::vector<int32_t> targets(static_cast<size_t>(sh.N));
            for (size_t i = 0; i < targets.size(); ++i)
              targets[i] = pick[i] < sh.ignored ? -1 : int32_t(label[i] * double(sh.V));
            // With ties, every other counted row targets its first maximum, so `correct`
            // depends on which of the equal maxima the argmax picks.
            if (sh.ties)
              for (size_t i = 0; i < targets.size(); i += 2)
                if (targets[i] >= 0) {
                  const auto row = logits.begin() + int64_t(i) * sh.V;
                  targets[i] = int32_t(std::max_element(row, row + sh.V) - row);
                }
            std::vector<double> dlogits(static_cast<size_t>(sh.N * sh.V));
            const cpu::LossStats st = cpu::cross_entropy(sh.grad ? dlogits.data() : nullptr,
                                                         logits.data(), targets.data(), sh.N, sh.V);
            const cuda::LossTotals start{1.5, 3, 1};

            auto d_logits = to_device(ctx, to_float(logits));
            auto d_targets = to_device(ctx, targets);
            auto d_totals = to_device(ctx, std::vector<cuda::LossTotals>{start});
            auto d_dlogits = output_buffer(ctx, sh.N * sh.V);
            cuda::cross_entropy(ctx, sh.grad ? d_dlogits.data() : nullptr, d_logits.data(),
                                d_targets.data(), sh.N, sh.V, d_totals.data());
            cuda::synchronize(ctx);
            const cuda::LossTotals t = d_totals.download(ctx)[0];
            const double lim = limit_for(ctx.precision, false);
            // Counts are integers: any difference is a bug, so they must match exactly.
            CaseResult r{
                {compare("loss_sum", {float(t.loss_sum)}, {start.loss_sum + st.loss_sum}, lim),
                 compare("count", {float(t.count)}, {double(start.count + st.count)}, 0),
                 compare("correct", {float(t.correct)}, {double(start.correct + st.correct)}, 0)}};
            if (sh.grad)
              r.checks.push_back(compare("dlogits", d_dlogits.download(ctx), dlogits, lim));
            return r;
          }};
}

Case sum_squares_case(int64_t n, int64_t offset, uint64_t s) {
  return {
      "sum_squares", "n=" + std::to_string(n) + (offset ? " unaligned" : ""),
      [=](const cuda::Context& ctx) {
        const auto x = uniform_values(kSeed, s * 16, n, -1, 1);
        const double start = 2.5;
        double ref = start;
        for (const double xi : x) ref += xi * xi;
        Placed d_x = place(ctx, x, offset);
        auto d_out = to_device(ctx, std::vector<double>{start});
        cuda::sum_squares(ctx, d_x.ptr(), n, d_out.data());
        cuda::synchronize(ctx);
        const double got = d_out.download(ctx)[0];
        return CaseResult{{compare("sum", {float(got)}, {ref}, limit_for(ctx.precision, false))}};
      }};
}

enum class Clip { active, inactive, off };

struct AdamWShape {
  int64_t n, n_decay;
  Clip clip;
  bool nan;  // one gradient element is NaN: the step must be skipped
  int64_t steps_taken;
  int64_t offset;  // element offset of every pointer (1: the scalar path)
};

Case adamw_case(const AdamWShape& sh, uint64_t s) {
  const char* clip = sh.clip == Clip::active     ? "clip active"
                     : sh.clip == Clip::inactive ? "clip inactive"
                                                 : "grad_clip=0";
  return {
      "sum_squares + adamw_update",
      "n=" + std::to_string(sh.n) + " n_decay=" + std::to_string(sh.n_decay) + " " + clip +
          (sh.nan ? " NaN in g" : "") + " steps_taken=" + std::to_string(sh.steps_taken) +
          (sh.offset ? " unaligned" : ""),
      [=](const cuda::Context& ctx) {
        const int64_t n = sh.n, nd = sh.n_decay;
        const auto p0 = uniform_values(kSeed, s * 16, n, -1, 1);
        auto g0 = uniform_values(kSeed, s * 16 + 1, n, -0.05, 0.05);
        const auto m0 = uniform_values(kSeed, s * 16 + 2, n, -0.01, 0.01);
        const auto v0 = uniform_values(kSeed, s * 16 + 3, n, 0, 1e-4);
        if (sh.nan) g0[static_cast<size_t>(n / 2)] = NAN;
        const double lr = double(float(3e-3));
        cuda::AdamWHyper hyper;
        hyper.beta1 = 0.9;
        hyper.beta2 = 0.999;
        hyper.eps = 1e-8;
        hyper.weight_decay = 0.1;
        const double norm0 = cpu::global_norm(g0.data(), n);
        hyper.grad_clip = sh.clip == Clip::active     ? 0.5 * norm0
                          : sh.clip == Clip::inactive ? 2 * norm0
                                                      : 0;
        if (sh.nan) hyper.grad_clip = 1.0;

        // lab/optimizer.cpp: clip, then AdamW over the decay region and the rest; the
        // trainer skips the whole update when the norm is not finite.
        auto p = p0, g = g0, m = m0, v = v0;
        const double norm = cpu::global_norm(g.data(), n);
        if (std::isfinite(norm)) {
          if (hyper.grad_clip > 0 && norm > hyper.grad_clip)
            cpu::scale_inplace(g.data(), n, hyper.grad_clip / norm);
          cpu::AdamWStep st{lr,        hyper.beta1,        hyper.beta2,
                            hyper.eps, hyper.weight_decay, sh.steps_taken + 1};
          cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), nd, st);
          st.weight_decay = 0;
          cpu::adamw_update(p.data() + nd, g.data() + nd, m.data() + nd, v.data() + nd, n - nd, st);
        }

        Placed d_p = place(ctx, p0, sh.offset), d_g = place(ctx, g0, sh.offset);
        Placed d_m = place(ctx, m0, sh.offset), d_v = place(ctx, v0, sh.offset);
        auto d_norm_sq = to_device(ctx, std::vector<double>{0.0});
        auto d_lr = to_device(ctx, std::vector<float>{float(lr)});
        auto d_steps = to_device(ctx, std::vector<int64_t>{sh.steps_taken});
        cuda::sum_squares(ctx, d_g.ptr(), n, d_norm_sq.data());
        cuda::AdamWDeviceStep step;
        step.lr = d_lr.data();
        step.grad_norm_sq = d_norm_sq.data();
        step.steps_taken = d_steps.data();
        cuda::adamw_update(ctx, d_p.ptr(), d_g.ptr(), d_m.ptr(), d_v.ptr(), n, nd, hyper, step);
        cuda::synchronize(ctx);
        const double lim = limit_for(ctx.precision, false);
        return CaseResult{{compare("p", d_p.get(ctx), p, lim), compare("m", d_m.get(ctx), m, lim),
                           compare("v", d_v.get(ctx), v, lim)}};
      }};
}

// Zero sizes with outputs pointing at known values: nothing may be written or launched.
Case empty_case() {
  return {"cross_entropy, sum_squares, adamw_update with N = n = 0", "N=0 n=0",
          [](const cuda::Context& ctx) {
            const auto known = uniform_values(kSeed, 9999, 64, -1, 1);
            auto d = to_device(ctx, to_float(known));
            const cuda::LossTotals start{1.5, 3, 1};
            auto d_totals = to_device(ctx, std::vector<cuda::LossTotals>{start});
            auto d_sq = to_device(ctx, std::vector<double>{2.5});
            auto d_steps = to_device(ctx, std::vector<int64_t>{0});
            float* o = d.data();
            cuda::cross_entropy(ctx, o, o, nullptr, 0, 17, d_totals.data());
            cuda::sum_squares(ctx, o, 0, d_sq.data());
            cuda::AdamWDeviceStep step;
            step.lr = o;
            step.grad_norm_sq = d_sq.data();
            step.steps_taken = d_steps.data();
            cuda::adamw_update(ctx, o, o, o, o, 0, 0, cuda::AdamWHyper{}, step);
            cuda::synchronize(ctx);
            const cuda::LossTotals t = d_totals.download(ctx)[0];
            return CaseResult{
                {compare("buffer untouched", d.download(ctx), known, 0),
                 compare("totals untouched", {float(t.loss_sum), float(t.count), float(t.correct)},
                         {1.5, 3, 1}, 0),
                 compare("sum untouched", {float(d_sq.download(ctx)[0])}, {2.5}, 0)}};
          }};
}

}  // namespace

std::vector<Case> loss_optim_cases() {
  std::vector<Case> cases;
  uint64_t salt = 1;
  for (const CrossEntropyShape& sh : {CrossEntropyShape{1, 3, 0, false, true},
                                      {8192, 3, 0.2, false, true},
                                      {1000, 17, 0.3, false, true},
                                      {1000, 17, 0.3, true, true},
                                      {64, 17, 1.0, false, true},
                                      {8192, 64, 0.1, false, false},
                                      {8192, 64, 0.1, true, true},
                                      {257, 1000, 0.1, false, true},
                                      {19, 50000, 0.2, false, true},
                                      {7, 2000, 0.0, true, true}})
    cases.push_back(cross_entropy_case(sh, salt++));
  for (const auto& no :
       {std::pair<int64_t, int64_t>{1, 0}, {7, 0}, {1000003, 0}, {1001, 1}, {10000019, 0}})
    cases.push_back(sum_squares_case(no.first, no.second, salt++));
  for (const AdamWShape& sh : {AdamWShape{1000003, 600001, Clip::active, false, 0, 0},
                               {1000003, 600001, Clip::inactive, false, 1000, 0},
                               {1000003, 600001, Clip::off, false, 1, 0},
                               {1000003, 600001, Clip::active, true, 5, 0},
                               {1001, 500, Clip::active, false, 1000, 1},
                               {7, 3, Clip::off, false, 0, 0},
                               {4099, 0, Clip::inactive, false, 0, 0}})
    cases.push_back(adamw_case(sh, salt++));
  cases.push_back(empty_case());
  return cases;
}

}  // namespace statelab::selftest
