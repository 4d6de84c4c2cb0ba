// Selftest cases for kernels/cuda/elementwise.cu against kernels/cpu/elementwise.cpp in double:
// every launcher, every activation, sizes that leave float4 tails (1, 7, 1000003), pointers one
// element off 16-byte alignment (the scalar paths), realistic 8192-token shapes, causal conv
// with K = 1, 4, 7, 64 and T < K, with and without bias. Accumulated outputs (dw, dbias, dskip,
// axpy and add_inplace targets) and strided outputs start from random values on both sides,
// so the sums and the untouched gaps between rows are checked too.
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

using cpu::Activation;

constexpr uint64_t kSeed = 0x9017;

const char* name_of(Activation a) {
  switch (a) {
    case Activation::identity:
      return "identity";
    case Activation::silu:
      return "silu";
    case Activation::gelu:
      return "gelu";
    case Activation::tanh:
      return "tanh";
    case Activation::sigmoid:
      return "sigmoid";
  }
  return "?";
}

const Activation kActivations[] = {Activation::identity, Activation::silu, Activation::gelu,
                                   Activation::tanh, Activation::sigmoid};

// A flat size and the element offset of every pointer (1: the scalar paths).
struct Flat {
  int64_t n, offset;
};
const Flat kFlatSizes[] = {{1, 0}, {7, 0}, {1000003, 0}, {1001, 1}};

std::string sized(const Flat& f) {
  return "n=" + std::to_string(f.n) + (f.offset ? " unaligned" : "");
}

void activation_cases(std::vector<Case>& cases, uint64_t& salt) {
  for (Activation a : kActivations)
    for (const Flat& f : kFlatSizes) {
      const uint64_t s = salt++;
      const int64_t n = f.n, offset = f.offset;
      cases.push_back({std::string("activation_fwd+bwd ") + name_of(a), sized(f),
                       [=](const cuda::Context& ctx) {
                         const auto x = uniform_values(kSeed, s * 16, n, -6, 6);
                         const auto dy = uniform_values(kSeed, s * 16 + 1, n, -1, 1);
                         std::vector<double> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
                         cpu::activation_fwd(a, y.data(), x.data(), n);
                         cpu::activation_bwd(a, dx.data(), dy.data(), x.data(), n);
                         Placed dx_in = place(ctx, x, offset), d_dy = place(ctx, dy, offset);
                         Placed d_y = place_output(ctx, n, offset),
                                d_dx = place_output(ctx, n, offset);
                         cuda::activation_fwd(ctx, a, d_y.ptr(), dx_in.ptr(), n);
                         cuda::activation_bwd(ctx, a, d_dx.ptr(), d_dy.ptr(), dx_in.ptr(), n);
                         cuda::synchronize(ctx);
                         const double lim = limit_for(ctx.precision, false);
                         return CaseResult{{compare("y", d_y.get(ctx), y, lim),
                                            compare("dx", d_dx.get(ctx), dx, lim)}};
                       }});
    }
}

void gated_cases(std::vector<Case>& cases, uint64_t& salt) {
  for (Activation a : kActivations)
    for (const auto& nf : {std::pair<int64_t, int64_t>{3, 1}, {5, 7}, {8192, 256}}) {
      const uint64_t s = salt++;
      const int64_t N = nf.first, F = nf.second;
      cases.push_back(
          {std::string("gated_fwd+bwd ") + name_of(a),
           "N=" + std::to_string(N) + " F=" + std::to_string(F), [=](const cuda::Context& ctx) {
             const auto u = uniform_values(kSeed, s * 16, N * 2 * F, -4, 4);
             const auto dy = uniform_values(kSeed, s * 16 + 1, N * F, -1, 1);
             std::vector<double> y(static_cast<size_t>(N * F)), du(static_cast<size_t>(N * 2 * F));
             cpu::gated_fwd(a, y.data(), u.data(), N, F);
             cpu::gated_bwd(a, du.data(), dy.data(), u.data(), N, F);
             Placed d_u = place(ctx, u), d_dy = place(ctx, dy);
             Placed d_y = place_output(ctx, N * F), d_du = place_output(ctx, N * 2 * F);
             cuda::gated_fwd(ctx, a, d_y.ptr(), d_u.ptr(), N, F);
             cuda::gated_bwd(ctx, a, d_du.ptr(), d_dy.ptr(), d_u.ptr(), N, F);
             cuda::synchronize(ctx);
             const double lim = limit_for(ctx.precision, false);
             return CaseResult{
                 {compare("y", d_y.get(ctx), y, lim), compare("du", d_du.get(ctx), du, lim)}};
           }});
    }
}

struct ConvShape {
  int64_t B, T, C, K;
  bool bias;
};

void conv_cases(std::vector<Case>& cases, uint64_t& salt) {
  const ConvShape shapes[] = {{2, 9, 5, 1, true},      {3, 37, 33, 4, true},
                              {3, 37, 33, 4, false},   {2, 5, 7, 7, true},
                              {2, 5, 7, 7, false},     {1, 1, 3, 7, true},
                              {2, 70, 40, 7, false},   {2, 100, 40, 64, true},
                              {8, 1024, 256, 4, true}, {4, 2048, 1024, 4, false}};
  for (const ConvShape& c : shapes) {
    const uint64_t s = salt++;
    cases.push_back(
        {"causal_conv1d fwd+bwd",
         "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" + std::to_string(c.C) +
             " K=" + std::to_string(c.K) + (c.bias ? " bias" : " no bias"),
         [=](const cuda::Context& ctx) {
           const int64_t n = c.B * c.T * c.C;
           const auto x = uniform_values(kSeed, s * 16, n, -1, 1);
           const auto w = uniform_values(kSeed, s * 16 + 1, c.C * c.K, -1, 1);
           const auto bias = uniform_values(kSeed, s * 16 + 2, c.C, -1, 1);
           const auto dy = uniform_values(kSeed, s * 16 + 3, n, -1, 1);
           const auto dw0 = uniform_values(kSeed, s * 16 + 4, c.C * c.K, -1, 1);
           const auto db0 = uniform_values(kSeed, s * 16 + 5, c.C, -1, 1);
           std::vector<double> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n)), dw = dw0,
                                                                                      db = db0;
           cpu::causal_conv1d_fwd(y.data(), x.data(), w.data(), c.bias ? bias.data() : nullptr, c.B,
                                  c.T, c.C, c.K);
           cpu::causal_conv1d_bwd(dx.data(), dw.data(), c.bias ? db.data() : nullptr, dy.data(),
                                  x.data(), w.data(), c.B, c.T, c.C, c.K);
           Placed d_x = place(ctx, x), d_w = place(ctx, w), d_bias = place(ctx, bias);
           Placed d_dy = place(ctx, dy), d_dw = place(ctx, dw0), d_db = place(ctx, db0);
           Placed d_y = place_output(ctx, n), d_dx = place_output(ctx, n);
           cuda::causal_conv1d_fwd(ctx, d_y.ptr(), d_x.ptr(), d_w.ptr(),
                                   c.bias ? d_bias.ptr() : nullptr, c.B, c.T, c.C, c.K);
           cuda::causal_conv1d_bwd(ctx, d_dx.ptr(), d_dw.ptr(), c.bias ? d_db.ptr() : nullptr,
                                   d_dy.ptr(), d_x.ptr(), d_w.ptr(), c.B, c.T, c.C, c.K);
           cuda::synchronize(ctx);
           const double lim = limit_for(ctx.precision, false);
           CaseResult r{{compare("y", d_y.get(ctx), y, lim), compare("dx", d_dx.get(ctx), dx, lim),
                         compare("dw", d_dw.get(ctx), dw, lim)}};
           if (c.bias) r.checks.push_back(compare("dbias", d_db.get(ctx), db, lim));
           return r;
         }});
  }
}

void sum_cases(std::vector<Case>& cases, uint64_t& salt) {
  for (const Flat& f : kFlatSizes) {
    const uint64_t s = salt++;
    const int64_t n = f.n, offset = f.offset;
    cases.push_back({"add_inplace, add, affine (in place too), fill_zero", sized(f),
                     [=](const cuda::Context& ctx) {
                       const auto a = uniform_values(kSeed, s * 16, n, -2, 2);
                       const auto b = uniform_values(kSeed, s * 16 + 1, n, -2, 2);
                       std::vector<double> acc = a, sum(static_cast<size_t>(n)),
                                           aff(static_cast<size_t>(n)), self = b,
                                           zero(static_cast<size_t>(n), 1.0);
                       cpu::add_inplace(acc.data(), b.data(), n);
                       cpu::add(sum.data(), a.data(), b.data(), n);
                       cpu::affine(aff.data(), a.data(), -1.25, 0.375, n);
                       cpu::affine(self.data(), self.data(), 0.5, -2.0, n);
                       cpu::fill_zero(zero.data(), n);
                       Placed d_a = place(ctx, a, offset), d_b = place(ctx, b, offset);
                       Placed d_acc = place(ctx, a, offset), d_self = place(ctx, b, offset);
                       Placed d_sum = place_output(ctx, n, offset),
                              d_aff = place_output(ctx, n, offset);
                       Placed d_zero = place_output(ctx, n, offset);
                       cuda::add_inplace(ctx, d_acc.ptr(), d_b.ptr(), n);
                       cuda::add(ctx, d_sum.ptr(), d_a.ptr(), d_b.ptr(), n);
                       cuda::affine(ctx, d_aff.ptr(), d_a.ptr(), -1.25, 0.375, n);
                       cuda::affine(ctx, d_self.ptr(), d_self.ptr(), 0.5, -2.0, n);
                       cuda::fill_zero(ctx, d_zero.ptr(), n);
                       cuda::synchronize(ctx);
                       const double lim = limit_for(ctx.precision, false);
                       return CaseResult{{compare("add_inplace", d_acc.get(ctx), acc, lim),
                                          compare("add", d_sum.get(ctx), sum, lim),
                                          compare("affine", d_aff.get(ctx), aff, lim),
                                          compare("affine in place", d_self.get(ctx), self, lim),
                                          compare("fill_zero", d_zero.get(ctx), zero, lim)}};
                     }});
  }
}

struct RowsShape {
  int64_t rows, width, dst_stride, src_stride, dst_offset, src_offset;
};

void rows_cases(std::vector<Case>& cases, uint64_t& salt) {
  // Odd strides and offsets (scalar path), a [q | k | v] unpack of 8192 tokens (float4 path),
  // and a single row.
  const RowsShape shapes[] = {{37, 13, 20, 17, 3, 1},
                              {8192, 256, 256, 768, 0, 256},
                              {8192, 256, 768, 256, 512, 0},
                              {1, 5, 5, 5, 0, 0}};
  for (const RowsShape& sh : shapes) {
    const uint64_t s = salt++;
    cases.push_back(
        {"copy_rows, axpy_rows",
         "rows=" + std::to_string(sh.rows) + " width=" + std::to_string(sh.width) + " strides " +
             std::to_string(sh.dst_stride) + "/" + std::to_string(sh.src_stride) + " offsets " +
             std::to_string(sh.dst_offset) + "/" + std::to_string(sh.src_offset),
         [=](const cuda::Context& ctx) {
           const int64_t n_dst = sh.dst_offset + (sh.rows - 1) * sh.dst_stride + sh.width;
           const int64_t n_src = sh.src_offset + (sh.rows - 1) * sh.src_stride + sh.width;
           const auto src = uniform_values(kSeed, s * 16, n_src, -1, 1);
           const auto dst0 = uniform_values(kSeed, s * 16 + 1, n_dst, -1, 1);
           std::vector<double> copied = dst0, added = dst0;
           cpu::copy_rows(copied.data() + sh.dst_offset, sh.dst_stride, src.data() + sh.src_offset,
                          sh.src_stride, sh.rows, sh.width, 0.5);
           cpu::axpy_rows(added.data() + sh.dst_offset, sh.dst_stride, src.data() + sh.src_offset,
                          sh.src_stride, sh.rows, sh.width, -0.75);
           Placed d_src = place(ctx, src), d_copied = place(ctx, dst0), d_added = place(ctx, dst0);
           cuda::copy_rows(ctx, d_copied.ptr() + sh.dst_offset, sh.dst_stride,
                           d_src.ptr() + sh.src_offset, sh.src_stride, sh.rows, sh.width, 0.5);
           cuda::axpy_rows(ctx, d_added.ptr() + sh.dst_offset, sh.dst_stride,
                           d_src.ptr() + sh.src_offset, sh.src_stride, sh.rows, sh.width, -0.75);
           cuda::synchronize(ctx);
           const double lim = limit_for(ctx.precision, false);
           return CaseResult{{compare("copy_rows dst", d_copied.get(ctx), copied, lim),
                              compare("axpy_rows dst", d_added.get(ctx), added, lim)}};
         }});
  }
}

void silu_gate_cases(std::vector<Case>& cases, uint64_t& salt) {
  for (const Flat& f : kFlatSizes) {
    const uint64_t s = salt++;
    const int64_t n = f.n, offset = f.offset;
    cases.push_back(
        {"silu_gate_fwd+bwd", sized(f), [=](const cuda::Context& ctx) {
           const auto x = uniform_values(kSeed, s * 16, n, -3, 3);
           const auto g = uniform_values(kSeed, s * 16 + 1, n, -6, 6);
           const auto dy = uniform_values(kSeed, s * 16 + 2, n, -1, 1);
           std::vector<double> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n)),
               dg(static_cast<size_t>(n));
           cpu::silu_gate_fwd(y.data(), x.data(), g.data(), n);
           cpu::silu_gate_bwd(dx.data(), dg.data(), dy.data(), x.data(), g.data(), n);
           Placed d_x = place(ctx, x, offset), d_g = place(ctx, g, offset);
           Placed d_dy = place(ctx, dy, offset), d_y = place_output(ctx, n, offset);
           Placed d_dx = place_output(ctx, n, offset), d_dg = place_output(ctx, n, offset);
           cuda::silu_gate_fwd(ctx, d_y.ptr(), d_x.ptr(), d_g.ptr(), n);
           cuda::silu_gate_bwd(ctx, d_dx.ptr(), d_dg.ptr(), d_dy.ptr(), d_x.ptr(), d_g.ptr(), n);
           cuda::synchronize(ctx);
           const double lim = limit_for(ctx.precision, false);
           return CaseResult{{compare("y", d_y.get(ctx), y, lim),
                              compare("dx", d_dx.get(ctx), dx, lim),
                              compare("dg", d_dg.get(ctx), dg, lim)}};
         }});
  }
}

struct SkipShape {
  int64_t N, I, x_stride, group;
};

void skip_cases(std::vector<Case>& cases, uint64_t& salt) {
  const SkipShape shapes[] = {{37, 12, 15, 1},      {5, 6, 6, 3},          {3, 7, 9, 7},
                              {8192, 512, 1536, 1}, {8192, 512, 1024, 64}, {1000, 260, 260, 4}};
  for (const SkipShape& sh : shapes) {
    const uint64_t s = salt++;
    cases.push_back({"skip_add_fwd+bwd",
                     "N=" + std::to_string(sh.N) + " I=" + std::to_string(sh.I) + " x_stride=" +
                         std::to_string(sh.x_stride) + " group=" + std::to_string(sh.group),
                     [=](const cuda::Context& ctx) {
                       const int64_t nx = (sh.N - 1) * sh.x_stride + sh.I, ny = sh.N * sh.I;
                       const int64_t ns = (sh.I + sh.group - 1) / sh.group;
                       const auto a = uniform_values(kSeed, s * 16, ny, -1, 1);
                       const auto skip = uniform_values(kSeed, s * 16 + 1, ns, -1, 1);
                       const auto x = uniform_values(kSeed, s * 16 + 2, nx, -1, 1);
                       const auto dy = uniform_values(kSeed, s * 16 + 3, ny, -1, 1);
                       const auto dx0 = uniform_values(kSeed, s * 16 + 4, nx, -1, 1);
                       const auto dskip0 = uniform_values(kSeed, s * 16 + 5, ns, -1, 1);
                       std::vector<double> y(static_cast<size_t>(ny)), dx = dx0, dskip = dskip0;
                       cpu::skip_add_fwd(y.data(), a.data(), skip.data(), x.data(), sh.x_stride,
                                         sh.N, sh.I, sh.group);
                       cpu::skip_add_bwd(dx.data(), dskip.data(), dy.data(), skip.data(), x.data(),
                                         sh.x_stride, sh.N, sh.I, sh.group);
                       Placed d_a = place(ctx, a), d_skip = place(ctx, skip), d_x = place(ctx, x);
                       Placed d_dy = place(ctx, dy), d_dx = place(ctx, dx0),
                              d_dskip = place(ctx, dskip0);
                       Placed d_y = place_output(ctx, ny);
                       cuda::skip_add_fwd(ctx, d_y.ptr(), d_a.ptr(), d_skip.ptr(), d_x.ptr(),
                                          sh.x_stride, sh.N, sh.I, sh.group);
                       cuda::skip_add_bwd(ctx, d_dx.ptr(), d_dskip.ptr(), d_dy.ptr(), d_skip.ptr(),
                                          d_x.ptr(), sh.x_stride, sh.N, sh.I, sh.group);
                       cuda::synchronize(ctx);
                       const double lim = limit_for(ctx.precision, false);
                       return CaseResult{{compare("y", d_y.get(ctx), y, lim),
                                          compare("dx (gaps untouched)", d_dx.get(ctx), dx, lim),
                                          compare("dskip", d_dskip.get(ctx), dskip, lim)}};
                     }});
  }
}

void scaled_sigmoid_cases(std::vector<Case>& cases, uint64_t& salt) {
  for (const Flat& f : kFlatSizes) {
    const uint64_t s = salt++;
    const int64_t n = f.n, offset = f.offset;
    cases.push_back(
        {"scaled_sigmoid_fwd+bwd (with and without dy2)", sized(f), [=](const cuda::Context& ctx) {
           const auto x = uniform_values(kSeed, s * 16, n, -6, 6);
           const auto dy1 = uniform_values(kSeed, s * 16 + 1, n, -1, 1);
           const auto dy2 = uniform_values(kSeed, s * 16 + 2, n, -1, 1);
           std::vector<double> y(static_cast<size_t>(n)), dx2(static_cast<size_t>(n)),
               dx1(static_cast<size_t>(n));
           cpu::scaled_sigmoid_fwd(y.data(), x.data(), 2.0, n);
           cpu::scaled_sigmoid_bwd(dx2.data(), dy1.data(), dy2.data(), x.data(), 2.0, n);
           cpu::scaled_sigmoid_bwd(dx1.data(), dy1.data(), static_cast<const double*>(nullptr),
                                   x.data(), 2.0, n);
           Placed d_x = place(ctx, x, offset), d_dy1 = place(ctx, dy1, offset);
           Placed d_dy2 = place(ctx, dy2, offset), d_y = place_output(ctx, n, offset);
           Placed d_dx2 = place_output(ctx, n, offset), d_dx1 = place_output(ctx, n, offset);
           cuda::scaled_sigmoid_fwd(ctx, d_y.ptr(), d_x.ptr(), 2.0, n);
           cuda::scaled_sigmoid_bwd(ctx, d_dx2.ptr(), d_dy1.ptr(), d_dy2.ptr(), d_x.ptr(), 2.0, n);
           cuda::scaled_sigmoid_bwd(ctx, d_dx1.ptr(), d_dy1.ptr(), nullptr, d_x.ptr(), 2.0, n);
           cuda::synchronize(ctx);
           const double lim = limit_for(ctx.precision, false);
           return CaseResult{{compare("y", d_y.get(ctx), y, lim),
                              compare("dx (dy1 + dy2)", d_dx2.get(ctx), dx2, lim),
                              compare("dx (dy1 only)", d_dx1.get(ctx), dx1, lim)}};
         }});
  }
}

// Every launcher with an empty size, its outputs pointing at a buffer of known values: nothing
// may be written (and nothing launched, which a zero-sized grid would report as an error).
Case empty_sizes_case() {
  return {"every elementwise launcher with n = 0", "n=0 N=0 B=0 rows=0",
          [](const cuda::Context& ctx) {
            const auto known = uniform_values(kSeed, 9999, 64, -1, 1);
            Placed d = place(ctx, known);
            float* o = d.ptr();
            cuda::activation_fwd(ctx, Activation::gelu, o, o, 0);
            cuda::activation_bwd(ctx, Activation::gelu, o, o, o, 0);
            cuda::gated_fwd(ctx, Activation::silu, o, o, 0, 5);
            cuda::gated_bwd(ctx, Activation::silu, o, o, o, 5, 0);
            cuda::causal_conv1d_fwd(ctx, o, o, o, o, 0, 5, 3, 4);
            cuda::causal_conv1d_bwd(ctx, o, o, o, o, o, o, 2, 0, 3, 4);
            cuda::add_inplace(ctx, o, o, 0);
            cuda::add(ctx, o, o, o, 0);
            cuda::affine(ctx, o, o, 2.0, 1.0, 0);
            cuda::fill_zero(ctx, o, 0);
            cuda::copy_rows(ctx, o, 4, o, 4, 0, 4, 1.0);
            cuda::axpy_rows(ctx, o, 4, o, 4, 3, 0, 1.0);
            cuda::silu_gate_fwd(ctx, o, o, o, 0);
            cuda::silu_gate_bwd(ctx, o, o, o, o, o, 0);
            cuda::skip_add_fwd(ctx, o, o, o, o, 4, 0, 4, 1);
            cuda::skip_add_bwd(ctx, o, o, o, o, o, 4, 3, 0, 1);
            cuda::scaled_sigmoid_fwd(ctx, o, o, 2.0, 0);
            cuda::scaled_sigmoid_bwd(ctx, o, o, o, o, 2.0, 0);
            cuda::synchronize(ctx);
            return CaseResult{{compare("buffer untouched", d.get(ctx), known, 0.0)}};
          }};
}

}  // namespace

std::vector<Case> pointwise_cases() {
  std::vector<Case> cases;
  uint64_t salt = 1;
  activation_cases(cases, salt);
  gated_cases(cases, salt);
  conv_cases(cases, salt);
  sum_cases(cases, salt);
  rows_cases(cases, salt);
  silu_gate_cases(cases, salt);
  skip_cases(cases, salt);
  scaled_sigmoid_cases(cases, salt);
  cases.push_back(empty_sizes_case());
  return cases;
}

}  // namespace statelab::selftest
