// Selftest cases of the dense family: the cuBLASLt linear layer (with and without bias, odd and
// model-sized shapes) and the embedding, against kernels/cpu/dense in double.
#include "kernels/cpu/dense.hpp"

#include "kernels/cuda/dense.hpp"
#include "kernels/selftest/harness.hpp"

namespace statelab::selftest {

namespace {

// offset > 0 shifts every buffer by that many floats off cudaMalloc's 256-byte alignment, as
// the 64-byte-aligned slots of the arena and the parameter store are.
// Into::add: dx starts from values of its own, which the backward sums into. residual: the
// forward adds a buffer apart from y, as a block's output projection adds its skip.
Case linear_case(int64_t N, int64_t I, int64_t O, bool bias, int64_t offset = 0,
                 cpu::Into into = cpu::Into::overwrite, bool residual = false) {
  const std::string shape = "N=" + std::to_string(N) + " I=" + std::to_string(I) +
                            " O=" + std::to_string(O) + (bias ? " bias" : "") +
                            (offset ? " offset=" + std::to_string(offset) : "") +
                            (into == cpu::Into::add ? " dx+=" : "") +
                            (residual ? " y=r+" : "");
  return {"linear fwd+bwd", shape, [=](const cuda::Context& ctx) {
            const uint64_t seed = uint64_t(N * 131 + I * 7 + O);
            const auto x = uniform_values(seed, 1, N * I, -1, 1);
            const auto W = uniform_values(seed, 2, O * I, -0.5, 0.5);
            const auto b = uniform_values(seed, 3, O, -1, 1);
            const auto dy = uniform_values(seed, 4, N * O, -1, 1);
            const auto res = uniform_values(seed, 8, N * O, -1, 1);
            auto dW = uniform_values(seed, 5, O * I, -1, 1);  // accumulates
            auto db = uniform_values(seed, 6, O, -1, 1);
            std::vector<double> y(size_t(N * O));
            auto dx = into == cpu::Into::add ? uniform_values(seed, 7, N * I, -1, 1)
                                             : std::vector<double>(size_t(N * I));
            cpu::linear_fwd(y.data(), x.data(), W.data(), bias ? b.data() : nullptr, N, I, O,
                            residual ? res.data() : nullptr);

            auto gx = place(ctx, x, offset), gW = place(ctx, W, offset);
            auto gb = place(ctx, b, offset), gdy = place(ctx, dy, offset);
            auto gdW = place(ctx, dW, offset), gdb = place(ctx, db, offset);
            auto gy = place_output(ctx, N * O, offset), gr = place(ctx, res, offset);
            auto gdx = into == cpu::Into::add ? place(ctx, dx, offset)
                                              : place_output(ctx, N * I, offset);
            cuda::linear_fwd(ctx, gy.ptr(), gx.ptr(), gW.ptr(), bias ? gb.ptr() : nullptr, N, I, O,
                             residual ? gr.ptr() : nullptr);
            cuda::linear_bwd(ctx, gdx.ptr(), gdW.ptr(), bias ? gdb.ptr() : nullptr, gdy.ptr(),
                             gx.ptr(), gW.ptr(), N, I, O, into);
            cuda::synchronize(ctx);
            cpu::linear_bwd(dx.data(), dW.data(), bias ? db.data() : nullptr, dy.data(), x.data(),
                            W.data(), N, I, O, into);
            const double limit = limit_for(ctx.precision);
            CaseResult r;
            r.checks.push_back(compare("y", gy.get(ctx), y, limit));
            r.checks.push_back(compare("dx", gdx.get(ctx), dx, limit));
            r.checks.push_back(compare("dW", gdW.get(ctx), dW, limit));
            if (bias)
              r.checks.push_back(compare("db", gdb.get(ctx), db, limit_for(ctx.precision, false)));
            return r;
          }};
}

Case embedding_case(int64_t N, int64_t V, int64_t D) {
  const std::string shape =
      "N=" + std::to_string(N) + " V=" + std::to_string(V) + " D=" + std::to_string(D);
  return {
      "embedding fwd+bwd", shape, [=](const cuda::Context& ctx) {
        const uint64_t seed = uint64_t(N * 17 + V * 3 + D);
        const auto E = uniform_values(seed, 1, V * D, -1, 1);
        const auto dy = uniform_values(seed, 2, N * D, -1, 1);
        auto dE = uniform_values(seed, 3, V * D, -1, 1);
        const auto u = uniform_values(seed, 4, N, 0, double(V));
        std::vector<int32_t> tokens(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n)
          tokens[size_t(n)] = int32_t(std::min<double>(u[size_t(n)], double(V - 1)));
        std::vector<double> y(size_t(N * D));
        cpu::embedding_fwd(y.data(), tokens.data(), E.data(), N, D);
        auto gE = to_device(ctx, to_float(E)), gdy = to_device(ctx, to_float(dy));
        auto gdE = to_device(ctx, to_float(dE));
        auto gtok = to_device(ctx, tokens);
        auto gy = output_buffer(ctx, N * D);
        cuda::embedding_fwd(ctx, gy.data(), gtok.data(), gE.data(), N, D);
        cuda::embedding_bwd(ctx, gdE.data(), gtok.data(), gdy.data(), N, V, D);
        cuda::synchronize(ctx);
        cpu::embedding_bwd(dE.data(), tokens.data(), dy.data(), N, D);
        CaseResult r;
        r.checks.push_back(compare("y", gy.download(ctx), y, limit_for(ctx.precision, false)));
        r.checks.push_back(compare("dE", gdE.download(ctx), dE, limit_for(ctx.precision, false)));
        return r;
      }};
}

}  // namespace

std::vector<Case> dense_cases() {
  return {linear_case(1, 1, 1, true), linear_case(7, 5, 3, true), linear_case(33, 17, 65, false),
          linear_case(300, 64, 192, true), linear_case(2560, 64, 256, true),
          linear_case(8192, 128, 512, false),
          // The gate projections of the linear cells: a few outputs per token, from buffers
          // aligned to 64 or only 4 bytes.
          linear_case(57, 96, 2, true, 16), linear_case(57, 16, 2, false, 16),
          linear_case(2560, 64, 4, true, 16), linear_case(300, 33, 7, true, 1),
          // Projections of one input summing their input gradients in place.
          linear_case(8192, 128, 128, false, 0, cpu::Into::add),
          linear_case(57, 96, 2, true, 16, cpu::Into::add),
          // Output projections adding the residual stream in the product.
          linear_case(8192, 128, 128, false, 0, cpu::Into::overwrite, true),
          linear_case(300, 33, 7, true, 1, cpu::Into::overwrite, true),
          // Vocabularies from a handful of symbols (the shared-memory tile) to past its 256 rows.
          embedding_case(1, 3, 1), embedding_case(257, 3, 64), embedding_case(8192, 50, 130),
          embedding_case(8192, 4, 128), embedding_case(3000, 256, 40),
          embedding_case(2000, 300, 33)};
}

}  // namespace statelab::selftest
