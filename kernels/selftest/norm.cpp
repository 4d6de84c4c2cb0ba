// Selftest cases for kernels/cuda/norm.cu against kernels/cpu/norm.cpp in double: LayerNorm
// with G = 1 and headwise, Dg from 1 to 4099 (the several-segments-per-warp, warp and block
// paths, and the register-resident one for widths in fours up to 512: one to 32 lanes a
// segment, several grid strides, G that does not divide a block's segments, a width just past
// it), with and without bias; RMSNorm and the L2 norm over widths from 2 to 5000; 8192-token
// shapes; a few backwards also add a residual path's gradient (skip) into dx. Backward gets the
// forward's saved statistics from the reference (rounded to float), so each direction is checked
// on its own; dw and db start from random values.
#include <string>
#include <vector>

#include "kernels/cpu/norm.hpp"
#include "kernels/cuda/norm.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

constexpr uint64_t kSeed = 0x4E02;

std::vector<double> zeros(int64_t n) { return std::vector<double>(static_cast<size_t>(n), 0.0); }

// x with a mean well away from zero, so a one-pass variance would lose digits.
std::vector<double> offset_inputs(uint64_t salt, int64_t n) {
  auto x = uniform_values(kSeed, salt, n, -1, 1);
  for (auto& v : x) v += 4;
  return rounded(std::move(x));
}

struct LayerNormShape {
  int64_t N, G, Dg;
  bool bias;
  bool skip = false;  // backward adds a skip gradient into dx
};

Case layernorm_case(const LayerNormShape& sh, uint64_t s) {
  return {"group_layernorm fwd+bwd",
          "N=" + std::to_string(sh.N) + " G=" + std::to_string(sh.G) +
              " Dg=" + std::to_string(sh.Dg) + (sh.bias ? " bias" : " no bias") +
              (sh.skip ? " skip" : ""),
          [=](const cuda::Context& ctx) {
            const int64_t D = sh.G * sh.Dg, n = sh.N * D, ns = sh.N * sh.G;
            const double eps = 1e-5;
            const auto x = offset_inputs(s * 16, n);
            const auto w = uniform_values(kSeed, s * 16 + 1, D, 0.5, 1.5);
            const auto b = uniform_values(kSeed, s * 16 + 2, D, -0.5, 0.5);
            const auto dy = uniform_values(kSeed, s * 16 + 3, n, -1, 1);
            const auto dw0 = uniform_values(kSeed, s * 16 + 4, D, -1, 1);
            const auto db0 = uniform_values(kSeed, s * 16 + 5, D, -1, 1);
            const auto skip = uniform_values(kSeed, s * 16 + 6, n, -1, 1);
            auto y = zeros(n), mean = zeros(ns), rstd = zeros(ns);
            cpu::group_layernorm_fwd(y.data(), mean.data(), rstd.data(), x.data(), w.data(),
                                     sh.bias ? b.data() : nullptr, sh.N, sh.G, sh.Dg, eps);
            const auto mean_in = rounded(mean), rstd_in = rounded(rstd);
            auto dx = zeros(n), dw = dw0, db = db0;
            cpu::group_layernorm_bwd(dx.data(), dw.data(), sh.bias ? db.data() : nullptr, dy.data(),
                                     x.data(), mean_in.data(), rstd_in.data(), w.data(), sh.N, sh.G,
                                     sh.Dg, sh.skip ? skip.data() : nullptr);

            auto d_x = to_device(ctx, to_float(x)), d_w = to_device(ctx, to_float(w));
            auto d_b = to_device(ctx, to_float(b)), d_dy = to_device(ctx, to_float(dy));
            auto d_mean_in = to_device(ctx, to_float(mean_in));
            auto d_rstd_in = to_device(ctx, to_float(rstd_in));
            auto d_dw = to_device(ctx, to_float(dw0)), d_db = to_device(ctx, to_float(db0));
            auto d_skip = to_device(ctx, to_float(skip));
            auto d_y = output_buffer(ctx, n), d_mean = output_buffer(ctx, ns);
            auto d_rstd = output_buffer(ctx, ns), d_dx = output_buffer(ctx, n);
            cuda::group_layernorm_fwd(ctx, d_y.data(), d_mean.data(), d_rstd.data(), d_x.data(),
                                      d_w.data(), sh.bias ? d_b.data() : nullptr, sh.N, sh.G, sh.Dg,
                                      eps);
            cuda::group_layernorm_bwd(
                ctx, d_dx.data(), d_dw.data(), sh.bias ? d_db.data() : nullptr, d_dy.data(),
                d_x.data(), d_mean_in.data(), d_rstd_in.data(), d_w.data(), sh.N, sh.G, sh.Dg,
                sh.skip ? d_skip.data() : nullptr);
            cuda::synchronize(ctx);
            const double lim = limit_for(ctx.precision, false);
            CaseResult r{{compare("y", d_y.download(ctx), y, lim),
                          compare("mean", d_mean.download(ctx), mean, lim),
                          compare("rstd", d_rstd.download(ctx), rstd, lim),
                          compare("dx", d_dx.download(ctx), dx, lim),
                          compare("dw", d_dw.download(ctx), dw, lim)}};
            if (sh.bias) r.checks.push_back(compare("db", d_db.download(ctx), db, lim));
            return r;
          }};
}

Case rmsnorm_case(int64_t N, int64_t D, uint64_t s, bool with_skip = false) {
  return {"rmsnorm fwd+bwd",
          "N=" + std::to_string(N) + " D=" + std::to_string(D) + (with_skip ? " skip" : ""),
          [=](const cuda::Context& ctx) {
            const int64_t n = N * D;
            const double eps = 1e-6;
            const auto x = uniform_values(kSeed, s * 16, n, -2, 2);
            const auto w = uniform_values(kSeed, s * 16 + 1, D, 0.5, 1.5);
            const auto dy = uniform_values(kSeed, s * 16 + 2, n, -1, 1);
            const auto dw0 = uniform_values(kSeed, s * 16 + 3, D, -1, 1);
            const auto skip = uniform_values(kSeed, s * 16 + 4, n, -1, 1);
            auto y = zeros(n), rstd = zeros(N);
            cpu::rmsnorm_fwd(y.data(), rstd.data(), x.data(), w.data(), N, D, eps);
            const auto rstd_in = rounded(rstd);
            auto dx = zeros(n), dw = dw0;
            cpu::rmsnorm_bwd(dx.data(), dw.data(), dy.data(), x.data(), rstd_in.data(), w.data(), N,
                             D, with_skip ? skip.data() : nullptr);

            auto d_x = to_device(ctx, to_float(x)), d_w = to_device(ctx, to_float(w));
            auto d_dy = to_device(ctx, to_float(dy)), d_rstd_in = to_device(ctx, to_float(rstd_in));
            auto d_dw = to_device(ctx, to_float(dw0)), d_skip = to_device(ctx, to_float(skip));
            auto d_y = output_buffer(ctx, n), d_rstd = output_buffer(ctx, N);
            auto d_dx = output_buffer(ctx, n);
            cuda::rmsnorm_fwd(ctx, d_y.data(), d_rstd.data(), d_x.data(), d_w.data(), N, D, eps);
            cuda::rmsnorm_bwd(ctx, d_dx.data(), d_dw.data(), d_dy.data(), d_x.data(),
                              d_rstd_in.data(), d_w.data(), N, D,
                              with_skip ? d_skip.data() : nullptr);
            cuda::synchronize(ctx);
            const double lim = limit_for(ctx.precision, false);
            return CaseResult{{compare("y", d_y.download(ctx), y, lim),
                               compare("rstd", d_rstd.download(ctx), rstd, lim),
                               compare("dx", d_dx.download(ctx), dx, lim),
                               compare("dw", d_dw.download(ctx), dw, lim)}};
          }};
}

Case l2norm_case(int64_t N, int64_t D, uint64_t s) {
  return {"l2norm fwd+bwd", "N=" + std::to_string(N) + " D=" + std::to_string(D),
          [=](const cuda::Context& ctx) {
            const int64_t n = N * D;
            const double eps = 1e-6;
            const auto x = uniform_values(kSeed, s * 16, n, -2, 2);
            const auto dy = uniform_values(kSeed, s * 16 + 1, n, -1, 1);
            auto y = zeros(n), rnorm = zeros(N);
            cpu::l2norm_fwd(y.data(), rnorm.data(), x.data(), N, D, eps);
            const auto y_in = rounded(y), rnorm_in = rounded(rnorm);
            auto dx = zeros(n);
            cpu::l2norm_bwd(dx.data(), dy.data(), y_in.data(), rnorm_in.data(), N, D);

            auto d_x = to_device(ctx, to_float(x)), d_dy = to_device(ctx, to_float(dy));
            auto d_y_in = to_device(ctx, to_float(y_in));
            auto d_rnorm_in = to_device(ctx, to_float(rnorm_in));
            auto d_y = output_buffer(ctx, n), d_rnorm = output_buffer(ctx, N);
            auto d_dx = output_buffer(ctx, n);
            cuda::l2norm_fwd(ctx, d_y.data(), d_rnorm.data(), d_x.data(), N, D, eps);
            cuda::l2norm_bwd(ctx, d_dx.data(), d_dy.data(), d_y_in.data(), d_rnorm_in.data(), N, D);
            cuda::synchronize(ctx);
            const double lim = limit_for(ctx.precision, false);
            return CaseResult{{compare("y", d_y.download(ctx), y, lim),
                               compare("rnorm", d_rnorm.download(ctx), rnorm, lim),
                               compare("dx", d_dx.download(ctx), dx, lim)}};
          }};
}

// N = 0 everywhere, outputs pointing at known values: nothing may be written or launched.
Case empty_case() {
  return {"every norm launcher with N = 0", "N=0", [](const cuda::Context& ctx) {
            const auto known = uniform_values(kSeed, 9999, 64, -1, 1);
            auto d = to_device(ctx, to_float(known));
            float* o = d.data();
            cuda::group_layernorm_fwd(ctx, o, o, o, o, o, o, 0, 2, 8, 1e-5);
            cuda::group_layernorm_bwd(ctx, o, o, o, o, o, o, o, o, 0, 2, 8);
            cuda::rmsnorm_fwd(ctx, o, o, o, o, 0, 8, 1e-6);
            cuda::rmsnorm_bwd(ctx, o, o, o, o, o, o, 0, 8);
            cuda::l2norm_fwd(ctx, o, o, o, 0, 8, 1e-6);
            cuda::l2norm_bwd(ctx, o, o, o, o, 0, 8);
            cuda::synchronize(ctx);
            return CaseResult{{compare("buffer untouched", d.download(ctx), known, 0.0)}};
          }};
}

}  // namespace

std::vector<Case> norm_cases() {
  std::vector<Case> cases;
  uint64_t salt = 1;
  // Groups of one unit normalise to 0 whatever x, so their dx is a difference of equal terms
  // scaled by 1/sqrt(eps): the reference's exact 0 against float rounding of that size. The
  // smallest group checked is therefore 2.
  for (const LayerNormShape& sh : {LayerNormShape{1, 1, 8, true},
                                   {37, 1, 7, true},
                                   {37, 3, 2, false},
                                   {19, 8, 17, true},
                                   {65, 1, 1000, false},
                                   {8192, 1, 1024, true},
                                   {8192, 4, 64, true},
                                   {8192, 1, 128, false},
                                   {8192, 4, 32, false},
                                   {100000, 3, 4, true},
                                   {37, 5, 12, true},
                                   {1000, 3, 20, false},
                                   {300, 1, 512, true},
                                   {20, 1, 516, true},
                                   {33, 1, 4099, true},
                                   {5, 2, 1500, true},
                                   // the blocks' input norms: the register-resident and the
                                   // generic kernel adding the residual gradient
                                   {8192, 1, 128, true, true},
                                   {37, 1, 7, true, true}})
    cases.push_back(layernorm_case(sh, salt++));
  // D >= 2 for RMSNorm and the L2 norm too: at D = 1 the output is ±1 whatever x, and dx is
  // pure cancellation that fp32 cannot resolve.
  for (const auto& nd : {std::pair<int64_t, int64_t>{1, 2},
                         {37, 7},
                         {8192, 128},
                         {100, 36},
                         {8192, 1024},
                         {17, 2049},
                         {3, 5000}})
    cases.push_back(rmsnorm_case(nd.first, nd.second, salt++));
  cases.push_back(rmsnorm_case(8192, 128, salt++, true));
  cases.push_back(rmsnorm_case(17, 2049, salt++, true));
  for (const auto& nd :
       {std::pair<int64_t, int64_t>{1, 3}, {37, 16}, {8192, 64}, {8192, 128}, {9, 1500}})
    cases.push_back(l2norm_case(nd.first, nd.second, salt++));
  cases.push_back(empty_case());
  return cases;
}

}  // namespace statelab::selftest
