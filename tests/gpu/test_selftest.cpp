// Every selftest case (each CUDA kernel against its CPU twin on shapes that break tiling, see
// kernels/selftest/) as one test, at fp32 and, for the matrix-product kernels, at tf32 and bf16
// with their looser limits. Skipped with the reason when no GPU is present.
#include <gtest/gtest.h>

#include <cctype>

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

}  // namespace
}  // namespace statelab
