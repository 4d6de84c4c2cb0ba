// The counter-based generator: Random123's known answers, reproducibility by (seed, stream,
// index), independence of streams, and the ranges of the derived draws.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "kernels/rng.hpp"

namespace statelab {
namespace {

TEST(Philox, MatchesRandom123KnownAnswerVectors) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& k : kats) {
    const auto r = Philox4x32::block(k.key[0], k.key[1], k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
  }
}

TEST(Rng, SameSeedStreamAndIndexGiveTheSameSequence) {
  Rng a(42, kStreamTrainData, 7), b(42, kStreamTrainData, 7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u32(), b.next_u32());
}

TEST(Rng, SeedsStreamsAndIndicesAreIndependent) {
  auto first = [](uint64_t seed, uint32_t stream, uint64_t index) {
    Rng r(seed, stream, index);
    return (uint64_t(r.next_u32()) << 32) | r.next_u32();
  };
  const std::set<uint64_t> values = {
      first(42, kStreamTrainData, 7), first(43, kStreamTrainData, 7),
      first(42, kStreamEvalData, 7),  first(42, kStreamTrainData, 8),
      first(42ull << 32, kStreamTrainData, 7), first(42, kStreamTrainData, 7ull << 32)};
  EXPECT_EQ(values.size(), 6u);
}

TEST(Rng, UniformIntCoversExactlyItsRangeWithoutBias) {
  Rng r(1, kStreamTrainData, 0);
  int counts[5] = {0};
  const int n = 50000;
  for (int i = 0; i < n; ++i) {
    const int64_t v = r.uniform_int(3, 7);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 7);
    ++counts[v - 3];
  }
  for (int c : counts) EXPECT_NEAR(double(c) / n, 0.2, 0.01);
}

TEST(Rng, UniformAndNormalHaveTheirMoments) {
  Rng r(2, kStreamInit, 0);
  double su = 0, sn = 0, sn2 = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = r.normal();
    ASSERT_TRUE(std::isfinite(z));
    sn += z, sn2 += z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 0.01);
  EXPECT_NEAR(sn / n, 0.0, 0.02);
  EXPECT_NEAR(sn2 / n, 1.0, 0.03);
}

}  // namespace
}  // namespace statelab
