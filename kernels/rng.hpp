// Counter-based random numbers: Philox4x32-10 keyed by (seed, stream, index).
// Every random draw in StateLab (initialisation, training batches, eval sets) is a pure function
// of those three numbers, so runs reproduce across CPU and GPU, across batch orderings and after
// resume, with no generator state to save. Checked against the Random123 known-answer vectors.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SL_HOST_DEVICE __host__ __device__
#else
#define SL_HOST_DEVICE
#endif

namespace statelab {

// Independent streams of one seed. New uses get new numbers; existing ones never change,
// or old runs would stop reproducing.
enum RngStream : uint32_t {
  kStreamInit = 1,       // parameter initialisation; index = parameter number
  kStreamTrainData = 2,  // training batches; index = step
  kStreamEvalData = 3,   // held-out evaluation sets; index = sequence length
  kStreamProbeFit = 4,   // the sequences probes fit latent decoders on; index = batch number
};

struct Philox4x32 {
  uint32_t v[4];

  SL_HOST_DEVICE static Philox4x32 block(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1,
                                         uint32_t c2, uint32_t c3) {
    constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
    constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = uint64_t(kM0) * c0;
      const uint64_t p1 = uint64_t(kM1) * c2;
      const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
      const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
      c0 = n0;
      c1 = uint32_t(p1);
      c2 = n2;
      c3 = uint32_t(p0);
      k0 += kW0;
      k1 += kW1;
    }
    return Philox4x32{{c0, c1, c2, c3}};
  }
};

// A sequential generator over the counter space of one (seed, stream, index) triple.
class Rng {
 public:
  SL_HOST_DEVICE Rng(uint64_t seed, uint32_t stream, uint64_t index)
      : k0_(uint32_t(seed)), k1_(uint32_t(seed >> 32)), stream_(stream),
        index_lo_(uint32_t(index)), index_hi_(uint32_t(index >> 32)) {}

  SL_HOST_DEVICE uint32_t next_u32() {
    if (used_ == 4) {
      buffer_ = Philox4x32::block(k0_, k1_, block_++, stream_, index_lo_, index_hi_);
      used_ = 0;
    }
    return buffer_.v[used_++];
  }

  // Uniform in [0, 1) with 53 random bits.
  SL_HOST_DEVICE double uniform() {
    const uint64_t hi = next_u32() >> 5, lo = next_u32() >> 6;  // 27 + 26 bits
    return double(hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0);
  }

  // Uniform integer in [lo, hi], exactly (rejection removes the modulo bias).
  SL_HOST_DEVICE int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t range = uint64_t(hi - lo) + 1;
    if (range == 0 || range > 0xFFFFFFFFull) {  // wide ranges: 64 random bits, bias < 2^-32
      const uint64_t r = (uint64_t(next_u32()) << 32) | next_u32();
      return lo + int64_t(range == 0 ? r : r % range);
    }
    const uint32_t r32 = uint32_t(range);
    const uint32_t limit = uint32_t(0x100000000ull - (0x100000000ull % r32));  // 0 ⇒ 2^32
    uint32_t x;
    do {
      x = next_u32();
    } while (limit != 0 && x >= limit);
    return lo + int64_t(x % r32);
  }

  SL_HOST_DEVICE bool bernoulli(double p) { return uniform() < p; }

  // Standard normal (Box–Muller; one of the pair is dropped so draws stay position-independent).
  SL_HOST_DEVICE double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint32_t k0_, k1_, stream_, index_lo_, index_hi_;
  uint32_t block_ = 0;
  uint32_t used_ = 4;
  Philox4x32 buffer_{};
};

}  // namespace statelab
