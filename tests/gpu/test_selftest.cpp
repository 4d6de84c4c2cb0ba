// Every selftest case (each CUDA kernel against its CPU twin on shapes that break tiling, see
// kernels/selftest/) as one test, at fp32 and, for the matrix-product kernels, at tf32 and bf16
// with their looser limits. Skipped with the reason when no GPU is present; the comparison's own
// test needs none.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "kernels/selftest/harness.hpp"
#include "tests/support/gpu.hpp"

namespace statelab {
namespace {

struct Param {
  size_t index;
  Precision precision;
};

const std::vector<selftest::Case>& cases() {
  static const std::vector<selftest::Case> all = selftest::all_cases();
  return all;
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    for (size_t i = 0; i < cases().size(); ++i) out.push_back({i, p});
  return out;
}

class SelftestCase : public ::testing::TestWithParam<Param> {};

TEST_P(SelftestCase, CudaMatchesTheCpuReferenceOnEveryOutputAndGradient) {
  SL_REQUIRE_GPU(ctx, GetParam().precision);
  const selftest::Case& c = cases()[GetParam().index];
  const selftest::CaseResult r = c.run(*ctx);
  ASSERT_FALSE(r.checks.empty()) << c.op << " [" << c.shape << "] compared nothing";
  for (const auto& check : r.checks)
    EXPECT_TRUE(check.passed()) << c.op << " [" << c.shape << "] " << check.name
                                << ": rel-RMS " << check.rel_rms << " (limit " << check.limit
                                << "), max-abs " << check.max_abs << " at " << check.worst
                                << ", non-finite " << check.non_finite;
}

std::string name_of(const ::testing::TestParamInfo<Param>& info) {
  const selftest::Case& c = cases()[info.param.index];
  std::string name = std::string(precision_name(info.param.precision)) + "_" + c.op + "_" + c.shape;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name + "_" + std::to_string(info.param.index);
}

INSTANTIATE_TEST_SUITE_P(EveryKernel, SelftestCase, ::testing::ValuesIn(params()), name_of);

// The comparison itself needs no GPU. A double reference below float's smallest normal (Mamba-2's
// decay e^-dt·A at saturated dt) is 0 or a denormal in float, which must pass; an error that float
// could have avoided must still fail, and relative errors elsewhere are unchanged.
TEST(SelftestCompare, AReferenceBelowFloatRangeCountsAsFloatsSmallestNormal) {
  EXPECT_TRUE(selftest::compare("decay", {0.f}, {2.4e-65}, 1e-5).passed());
  EXPECT_FALSE(selftest::compare("decay", {1e-30f}, {2.4e-65}, 1e-5).passed());
  EXPECT_FALSE(selftest::compare("decay", {0.f, 1e-30f}, {2.4e-65, 0.0}, 1e-5).passed());
  const selftest::TensorCheck c = selftest::compare("y", {1.f, 2.f}, {1.0, 2.0 + 2e-5}, 1e-5);
  EXPECT_NEAR(c.rel_rms, 2e-5 / std::sqrt(5.0), 1e-9);
  EXPECT_FALSE(selftest::compare("y", {1.f}, {1.0 + 4e-5}, 1e-5).passed());
  EXPECT_TRUE(selftest::compare("zero", {0.f, 0.f}, {0.0, 0.0}, 1e-5).passed());
}

}  // namespace
}  // namespace statelab
