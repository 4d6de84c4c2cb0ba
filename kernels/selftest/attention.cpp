// Selftest cases for causal attention and RoPE: kernels/cuda/attention.cu and rope.cu against the
// CPU twins run in double. Attention shapes break the 64-row tiles (T = 1, 7, 33, 65, 130, 1500),
// reach every head-width instantiation with and without padding (Dh = 1, 2, 5, 16, 32, 33, 64, 100,
// 128) and include the S and M training shapes; q and k up to ±4 make the softmax peaked. RoPE runs
// in place and out of place up to T = 16384, where angles are large; odd Dh and over-wide heads
// must throw.
#include "kernels/selftest/harness.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/attention.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/error.hpp"

namespace statelab::selftest {

namespace {

constexpr double kRopeBase = 10000.0;

std::vector<double> zeros(int64_t n) { return std::vector<double>(static_cast<size_t>(n)); }

struct AttentionShape {
  int64_t B, T, H, Dh;
  double range;        // q and k uniform in [−range, range); v and dout in [−1, 1)
  int64_t offset = 0;  // every tensor starts this many floats into its buffer
};

std::string describe(const AttentionShape& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " H=" + std::to_string(s.H) +
         " Dh=" + std::to_string(s.Dh) + " qk=±" + std::to_string(int(s.range)) +
         (s.offset ? " misaligned" : "");
}

// x placed `offset` floats into a device buffer.
cuda::DeviceBuffer<float> to_device_at(const cuda::Context& ctx, const std::vector<double>& x,
                                       int64_t offset) {
  std::vector<float> f(static_cast<size_t>(offset), 0.f);
  for (double v : x) f.push_back(float(v));
  return to_device(ctx, f);
}
std::vector<float> download_from(const cuda::Context& ctx, const cuda::DeviceBuffer<float>& d,
                                 int64_t offset) {
  auto h = d.download(ctx);
  h.erase(h.begin(), h.begin() + offset);
  return h;
}

// Forward and backward in one case: the CUDA backward reads the o and lse the CUDA forward wrote,
// as in training, and every tensor is compared with the double reference.
CaseResult run_attention(const cuda::Context& ctx, const AttentionShape& s, uint64_t seed) {
  const int64_t n = s.B * s.T * s.H * s.Dh, rows = s.B * s.T * s.H;
  const auto q = uniform_values(seed, 1, n, -s.range, s.range);
  const auto k = uniform_values(seed, 2, n, -s.range, s.range);
  const auto v = uniform_values(seed, 3, n, -1, 1);
  const auto dout = uniform_values(seed, 4, n, -1, 1);

  auto o = zeros(n), lse = zeros(rows), dq = zeros(n), dk = zeros(n), dv = zeros(n);
  auto work = zeros(cpu::causal_attention_work_size(s.T));
  const cpu::CausalAttention<double> ref{s.B,      s.T,      s.H,      s.Dh,      q.data(),
                                         k.data(), v.data(), o.data(), lse.data()};
  cpu::causal_attention_fwd(ref, work.data());
  cpu::causal_attention_bwd(ref, dout.data(), dq.data(), dk.data(), dv.data(), work.data());

  // An offset of one float makes every row start off a 16-byte boundary: the 4-byte copy path.
  const int64_t at = s.offset;
  auto gq = to_device_at(ctx, q, at), gk = to_device_at(ctx, k, at);
  auto gv = to_device_at(ctx, v, at), gdout = to_device_at(ctx, dout, at);
  auto go = output_buffer(ctx, at + n), glse = output_buffer(ctx, rows);
  auto gdq = output_buffer(ctx, at + n), gdk = output_buffer(ctx, at + n);
  auto gdv = output_buffer(ctx, at + n);
  auto gwork = output_buffer(ctx, cuda::causal_attention_work_size(s.B, s.T, s.H));
  cpu::CausalAttention<float> a{s.B, s.T, s.H, s.Dh};
  a.q = gq.data() + at, a.k = gk.data() + at, a.v = gv.data() + at;
  a.o = go.data() + at, a.lse = glse.data();
  cuda::causal_attention_fwd(ctx, a);
  cuda::causal_attention_bwd(ctx, a, gdout.data() + at, gdq.data() + at, gdk.data() + at,
                             gdv.data() + at, gwork.data());
  cuda::synchronize(ctx);

  const double limit = limit_for(ctx.precision);
  CaseResult r;
  r.checks.push_back(compare("o", download_from(ctx, go, at), o, limit));
  r.checks.push_back(compare("lse", glse.download(ctx), lse, limit));
  r.checks.push_back(compare("dq", download_from(ctx, gdq, at), dq, limit));
  r.checks.push_back(compare("dk", download_from(ctx, gdk, at), dk, limit));
  r.checks.push_back(compare("dv", download_from(ctx, gdv, at), dv, limit));
  return r;
}

// The probe after the CUDA forward (whose lse it reads, as in a model): entropy, and the map when
// T <= 130, against the CPU probe in double.
CaseResult run_attention_probe(const cuda::Context& ctx, const AttentionShape& s, uint64_t seed) {
  const int64_t n = s.B * s.T * s.H * s.Dh, rows = s.B * s.T * s.H;
  const bool with_map = s.T <= 130;
  const auto q = uniform_values(seed, 1, n, -s.range, s.range);
  const auto k = uniform_values(seed, 2, n, -s.range, s.range);
  const auto v = uniform_values(seed, 3, n, -1, 1);
  auto o = zeros(n), lse = zeros(rows), entropy = zeros(rows);
  auto map = zeros(with_map ? s.B * s.H * s.T * s.T : 0);
  auto work = zeros(cpu::causal_attention_work_size(s.T));
  const cpu::CausalAttention<double> ref{s.B,      s.T,      s.H,      s.Dh,      q.data(),
                                         k.data(), v.data(), o.data(), lse.data()};
  cpu::causal_attention_fwd(ref, work.data());
  cpu::causal_attention_probe(ref, entropy.data(), with_map ? map.data() : nullptr, work.data());

  auto gq = to_device(ctx, to_float(q)), gk = to_device(ctx, to_float(k));
  auto gv = to_device(ctx, to_float(v));
  auto go = output_buffer(ctx, n), glse = output_buffer(ctx, rows);
  auto gentropy = output_buffer(ctx, rows), gmap = output_buffer(ctx, int64_t(map.size()));
  cpu::CausalAttention<float> a{s.B, s.T, s.H, s.Dh};
  a.q = gq.data(), a.k = gk.data(), a.v = gv.data(), a.o = go.data(), a.lse = glse.data();
  cuda::causal_attention_fwd(ctx, a);
  cuda::causal_attention_probe(ctx, a, gentropy.data(), with_map ? gmap.data() : nullptr);
  cuda::synchronize(ctx);
  const double limit = limit_for(ctx.precision, false);
  CaseResult r;
  r.checks.push_back(compare("entropy", gentropy.download(ctx), entropy, limit));
  if (with_map) r.checks.push_back(compare("map", gmap.download(ctx), map, limit));
  return r;
}

struct RopeShape {
  int64_t B, T, H, Dh;
  bool in_place;
};

// Forward y = R x and backward dx = Rᵀ dy on independent inputs. In place, the input buffer is
// the output, so nothing is poisoned; out of place the output starts as NaN.
CaseResult run_rope(const cuda::Context& ctx, const RopeShape& s, uint64_t seed) {
  const int64_t n = s.B * s.T * s.H * s.Dh;
  const auto x = uniform_values(seed, 1, n, -1, 1);
  const auto dy = uniform_values(seed, 2, n, -1, 1);
  auto y = zeros(n), dx = zeros(n);
  cpu::rope_fwd(y.data(), x.data(), s.B, s.T, s.H, s.Dh, kRopeBase);
  cpu::rope_bwd(dx.data(), dy.data(), s.B, s.T, s.H, s.Dh, kRopeBase);

  auto gx = to_device(ctx, to_float(x)), gdy = to_device(ctx, to_float(dy));
  cuda::DeviceBuffer<float> gy, gdx;
  if (s.in_place) {
    cuda::rope_fwd(ctx, gx.data(), gx.data(), s.B, s.T, s.H, s.Dh, kRopeBase);
    cuda::rope_bwd(ctx, gdy.data(), gdy.data(), s.B, s.T, s.H, s.Dh, kRopeBase);
  } else {
    gy = output_buffer(ctx, n);
    gdx = output_buffer(ctx, n);
    cuda::rope_fwd(ctx, gy.data(), gx.data(), s.B, s.T, s.H, s.Dh, kRopeBase);
    cuda::rope_bwd(ctx, gdx.data(), gdy.data(), s.B, s.T, s.H, s.Dh, kRopeBase);
  }
  cuda::synchronize(ctx);

  // Elementwise with the angle reduced in double: fp32 accuracy whatever the precision.
  const double limit = limit_for(ctx.precision, false);
  CaseResult r;
  r.checks.push_back(compare("y", (s.in_place ? gx : gy).download(ctx), y, limit));
  r.checks.push_back(compare("dx", (s.in_place ? gdy : gdx).download(ctx), dx, limit));
  return r;
}

// A check that passes when `launch` throws ShapeError and fails when it returns or throws
// anything else.
template <typename F>
CaseResult expect_shape_error(const std::string& name, F launch) {
  TensorCheck c;
  c.name = name;
  c.limit = 0;
  try {
    launch();
    c.rel_rms = INFINITY;
  } catch (const ShapeError&) {
    c.rel_rms = 0;
  }
  CaseResult r;
  r.checks.push_back(c);
  return r;
}

}  // namespace

std::vector<Case> attention_cases() {
  std::vector<Case> cases;
  const AttentionShape attention[] = {
      {1, 1, 1, 2, 1},        // one token: softmax over a single key
      {2, 7, 3, 5, 1},        // odd width, padded to 32
      {1, 65, 1, 1, 3},       // width 1; one row past a tile
      {3, 33, 2, 16, 2},      // three sequences inside one tile, width padded from 16
      {2, 130, 2, 32, 2},     // beyond two tiles
      {2, 100, 2, 33, 1},     // one past the 32-wide path
      {1, 129, 2, 64, 4},     // peaked softmax on the 64-wide path
      {2, 77, 1, 100, 1},     // padded to 128
      {1, 200, 2, 128, 1},    // the 128-wide path, its 4-row dK/dV layout
      {128, 64, 4, 32, 1},    // shape S: d = 128, H = 4
      {64, 256, 8, 64, 1},    // shape M: d = 512, H = 8
      {1, 1500, 2, 32, 2},    // long: 24 key tiles per row block
      {2, 70, 2, 32, 2, 1},   // misaligned tensors: 4-byte copies on the 32-wide path
      {1, 130, 1, 64, 2, 1},  // and on the 64-wide path
  };
  for (const auto& s : attention) {
    const uint64_t seed = uint64_t(s.B * 1000003 + s.T * 101 + s.H * 11 + s.Dh);
    cases.push_back({"causal_attention fwd+bwd", describe(s),
                     [s, seed](const cuda::Context& ctx) { return run_attention(ctx, s, seed); }});
  }

  const AttentionShape probed[] = {
      {1, 1, 1, 2, 1}, {2, 7, 3, 5, 1}, {3, 33, 2, 16, 2}, {2, 130, 2, 32, 1}, {1, 300, 2, 64, 1}};
  for (const auto& s : probed) {
    const uint64_t seed = uint64_t(s.B * 7919 + s.T * 31 + s.H * 7 + s.Dh);
    cases.push_back({"causal_attention probe", describe(s), [s, seed](const cuda::Context& ctx) {
                       return run_attention_probe(ctx, s, seed);
                     }});
  }

  const RopeShape rope[] = {
      {1, 1, 1, 2, false},  {2, 2000, 2, 64, false}, {2, 2000, 3, 10, true},
      {3, 17, 5, 6, false}, {1, 16384, 1, 32, true},  // angles up to 16383 rad
  };
  for (const auto& s : rope) {
    const uint64_t seed = uint64_t(7 + s.B * 1000003 + s.T * 101 + s.H * 11 + s.Dh);
    const std::string shape = "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                              " H=" + std::to_string(s.H) + " Dh=" + std::to_string(s.Dh) +
                              (s.in_place ? " in place" : " out of place");
    cases.push_back({"rope fwd+bwd", shape,
                     [s, seed](const cuda::Context& ctx) { return run_rope(ctx, s, seed); }});
  }

  cases.push_back({"rope fwd", "Dh=5 (odd) throws ShapeError", [](const cuda::Context& ctx) {
                     return expect_shape_error("ShapeError", [&ctx] {
                       cuda::rope_fwd(ctx, nullptr, nullptr, 1, 3, 1, 5, kRopeBase);
                     });
                   }});
  cases.push_back({"causal_attention fwd", "Dh=129 (wider than 128) throws ShapeError",
                   [](const cuda::Context& ctx) {
                     return expect_shape_error("ShapeError", [&ctx] {
                       const cpu::CausalAttention<float> a{1, 4, 1, 129};
                       cuda::causal_attention_fwd(ctx, a);
                     });
                   }});
  return cases;
}

}  // namespace statelab::selftest
