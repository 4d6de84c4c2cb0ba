// The read-out maths on planted data: the latent decoder must recover a linear rule (including
// class means on one line, where plain one-hot ridge masks the middle classes) and must fail on
// a rule no linear read-out can express (XOR), so a high probe accuracy means something. PCA
// must find planted directions; the series summaries must match hand-computed values; every
// bad input must be refused with a message naming the value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "probes/decoding.hpp"

namespace statelab {
namespace {

struct Data {
  std::vector<float> x;
  std::vector<int32_t> labels;
  int64_t n = 0, features = 0;
};

Eigen::VectorXd random_unit(int64_t features, std::mt19937_64& rng) {
  std::normal_distribution<double> g;
  Eigen::VectorXd u(features);
  for (int64_t j = 0; j < features; ++j) u[j] = g(rng);
  return u.normalized();
}

// x = N(0, I) + (class − (classes − 1)/2)·spacing·u: class means evenly spaced on one line,
// as a counter lays them out. Class c carries the latent value values[c].
Data planted_line(const std::vector<int32_t>& values, double spacing, const Eigen::VectorXd& u,
                  int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> g;
  std::uniform_int_distribution<int> pick(0, int(values.size()) - 1);
  Data d;
  d.n = n;
  d.features = u.size();
  for (int64_t r = 0; r < n; ++r) {
    const int c = pick(rng);
    const double offset = (c - 0.5 * double(values.size() - 1)) * spacing;
    for (int64_t j = 0; j < d.features; ++j) d.x.push_back(float(g(rng) + offset * u[j]));
    d.labels.push_back(values[size_t(c)]);
  }
  return d;
}

// Label = (a > 0) XOR (b > 0) of the first two features; optionally their product is appended
// as a last feature, which makes the rule linear.
Data xor_data(int64_t n, int64_t noise_features, bool with_product, std::mt19937_64& rng) {
  std::normal_distribution<double> g;
  Data d;
  d.n = n;
  d.features = 2 + noise_features + (with_product ? 1 : 0);
  for (int64_t r = 0; r < n; ++r) {
    const double a = g(rng), b = g(rng);
    d.x.push_back(float(a));
    d.x.push_back(float(b));
    for (int64_t j = 0; j < noise_features; ++j) d.x.push_back(float(g(rng)));
    if (with_product) d.x.push_back(float(a * b));
    d.labels.push_back((a > 0) != (b > 0) ? 1 : 0);
  }
  return d;
}

LatentDecoder fit(const Data& d, double lambda = 1e-3) {
  return fit_latent_decoder(d.x.data(), d.labels.data(), d.n, d.features, lambda);
}

double accuracy(const LatentDecoder& dec, const Data& d) {
  return decoder_accuracy(dec, d.x.data(), d.labels.data(), d.n);
}

template <typename E, typename Fn>
void expect_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one whose message contains '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LatentDecoder, DecodesAPlantedLinearRuleOnFreshSamples) {
  std::mt19937_64 rng(1);
  const Eigen::VectorXd u = random_unit(16, rng);
  const std::vector<int32_t> values = {3, 7, 11};
  const Data train = planted_line(values, 6.0, u, 3000, rng);
  const Data fresh = planted_line(values, 6.0, u, 3000, rng);
  const LatentDecoder dec = fit(train);
  EXPECT_EQ(dec.classes, values);
  EXPECT_EQ(dec.weights.rows(), 17);
  EXPECT_EQ(dec.weights.cols(), 3);
  EXPECT_GE(dec.train_accuracy, 0.99);
  EXPECT_GE(accuracy(dec, fresh), 0.99);
}

// Five class means on one line is where ridge onto one-hot targets alone gets the inner classes
// wrong (masking); the logistic refinement must recover them.
TEST(LatentDecoder, DecodesACountWhoseClassMeansLieOnOneLine) {
  std::mt19937_64 rng(2);
  const Eigen::VectorXd u = random_unit(16, rng);
  const std::vector<int32_t> values = {0, 1, 2, 3, 4};
  const LatentDecoder dec = fit(planted_line(values, 8.0, u, 5000, rng));
  const Data fresh = planted_line(values, 8.0, u, 5000, rng);
  EXPECT_GE(accuracy(dec, fresh), 0.99);
  for (int32_t v : values) {
    int64_t seen = 0, right = 0;
    for (int64_t r = 0; r < fresh.n; ++r)
      if (fresh.labels[size_t(r)] == v) {
        ++seen;
        right += dec.predict(fresh.x.data() + r * fresh.features) == v;
      }
    EXPECT_GE(double(right) / double(seen), 0.98) << "latent value " << v;
  }
}

TEST(LatentDecoder, NeverReadsRowsWithNegativeLabels) {
  std::mt19937_64 rng(3);
  const Eigen::VectorXd u = random_unit(8, rng);
  const Data clean = planted_line({0, 1}, 4.0, u, 1000, rng);
  // Interleave ignored rows holding NaN and huge values: reading any of them would show.
  Data padded;
  padded.features = clean.features;
  for (int64_t r = 0; r < clean.n; ++r) {
    padded.x.insert(padded.x.end(), clean.x.begin() + r * clean.features,
                    clean.x.begin() + (r + 1) * clean.features);
    padded.labels.push_back(clean.labels[size_t(r)]);
    if (r % 3 == 0) {
      for (int64_t j = 0; j < clean.features; ++j)
        padded.x.push_back(j % 2 ? std::numeric_limits<float>::quiet_NaN() : 1e30f);
      padded.labels.push_back(r % 2 ? -1 : -7);
    }
  }
  padded.n = int64_t(padded.labels.size());
  const LatentDecoder a = fit(clean), b = fit(padded);
  EXPECT_EQ(b.classes, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.train_accuracy, b.train_accuracy);
  EXPECT_EQ(accuracy(a, clean), accuracy(b, padded)) << "accuracy skips ignored rows too";
}

// The decoder cannot cheat: XOR of two signs is not linearly decodable, but becomes so once the
// product of the two features is offered, so the failure is the rule's, not the fit's.
TEST(LatentDecoder, CannotDecodeXorOfTwoFeaturesButCanWithTheirProduct) {
  std::mt19937_64 rng(4);
  const LatentDecoder linear = fit(xor_data(4000, 6, false, rng));
  EXPECT_NEAR(accuracy(linear, xor_data(4000, 6, false, rng)), 0.5, 0.05);
  const LatentDecoder with_product = fit(xor_data(4000, 6, true, rng));
  EXPECT_GE(accuracy(with_product, xor_data(4000, 6, true, rng)), 0.95);
  EXPECT_TRUE(with_product.weights.allFinite()) << "separable data must not make weights diverge";
}

TEST(LatentDecoder, PredictionsAreInvariantToScalingAFeature) {
  std::mt19937_64 rng(5);
  const Eigen::VectorXd u = random_unit(10, rng);
  const Data train = planted_line({0, 1}, 2.0, u, 2000, rng);
  const Data fresh = planted_line({0, 1}, 2.0, u, 2000, rng);
  auto scaled = [](Data d) {
    for (int64_t r = 0; r < d.n; ++r) d.x[size_t(r * d.features + 3)] *= 1000.0f;
    return d;
  };
  const Data train_s = scaled(train), fresh_s = scaled(fresh);
  const LatentDecoder a = fit(train), b = fit(train_s);
  EXPECT_LT(accuracy(a, fresh), 0.999) << "classes overlap, so boundary cases exist";
  for (int64_t r = 0; r < fresh.n; ++r)
    ASSERT_EQ(a.predict(fresh.x.data() + r * fresh.features),
              b.predict(fresh_s.x.data() + r * fresh.features))
        << "row " << r;
  EXPECT_NEAR(b.scale[3] * 1000.0, a.scale[3], 1e-6 * a.scale[3]);
  EXPECT_LT((a.weights - b.weights).cwiseAbs().maxCoeff(), 1e-5);
}

TEST(LatentDecoder, ConstantAndDuplicatedFeaturesDoNotBreakTheFit) {
  std::mt19937_64 rng(6);
  const Eigen::VectorXd u = random_unit(6, rng);
  auto with_constants = [](const Data& d) {
    Data out = d;
    out.features = d.features + 3;
    out.x.clear();
    for (int64_t r = 0; r < d.n; ++r) {
      out.x.insert(out.x.end(), d.x.begin() + r * d.features, d.x.begin() + (r + 1) * d.features);
      out.x.push_back(5.25f);
      out.x.push_back(0.0f);
      out.x.push_back(d.x[size_t(r * d.features)]);  // a copy of feature 0: ZᵀZ is singular
    }
    return out;
  };
  const Data train = with_constants(planted_line({1, 2, 3}, 6.0, u, 2000, rng));
  Data fresh = with_constants(planted_line({1, 2, 3}, 6.0, u, 2000, rng));
  const LatentDecoder dec = fit(train);
  EXPECT_EQ(dec.scale[6], 0.0);
  EXPECT_EQ(dec.scale[7], 0.0);
  EXPECT_NEAR(dec.weights.row(6).cwiseAbs().maxCoeff(), 0.0, 1e-12);
  EXPECT_NEAR(dec.weights.row(7).cwiseAbs().maxCoeff(), 0.0, 1e-12);
  EXPECT_LT((dec.weights.row(0) - dec.weights.row(8)).cwiseAbs().maxCoeff(), 1e-9)
      << "the penalty splits the weight of a duplicated feature evenly";
  const double acc = accuracy(dec, fresh);
  EXPECT_GE(acc, 0.99);
  // A feature constant at training lengths may drift at longer ones; it must not move anything.
  for (int64_t r = 0; r < fresh.n; ++r) {
    fresh.x[size_t(r * fresh.features + 6)] = 1e6f;
    fresh.x[size_t(r * fresh.features + 7)] = -3.0f;
  }
  EXPECT_EQ(accuracy(dec, fresh), acc);
}

TEST(LatentDecoder, RefusesBadInputsNamingTheValue) {
  const std::vector<float> x = {0, 1, 2, 3, 4, 5, 6, 7};  // 4 rows of 2 features
  const std::vector<int32_t> labels = {0, 1, 0, 1};
  expect_error<Error>([&] { fit_latent_decoder(x.data(), labels.data(), 4, 0); }, "features = 0");
  const std::vector<int32_t> none = {-1, -1, -2, -1};
  expect_error<Error>([&] { fit_latent_decoder(x.data(), none.data(), 4, 2); },
                      "none of the 4 rows has a latent label");
  expect_error<Error>([&] { fit_latent_decoder(nullptr, nullptr, 0, 2); }, "none of the 0 rows");
  const std::vector<int32_t> single = {4, -1, 4, 4};
  expect_error<Error>(
      [&] { fit_latent_decoder(x.data(), single.data(), 4, 2); },
      "the latent state takes a single value (4) on the fitting data; nothing to decode");
  expect_error<ConfigError>([&] { fit_latent_decoder(x.data(), labels.data(), 4, 2, 0.0); },
                            "lambda = 0");
  expect_error<ConfigError>([&] { fit_latent_decoder(x.data(), labels.data(), 4, 2, -0.5); },
                            "lambda = -0.5");
  expect_error<ConfigError>(
      [&] { fit_latent_decoder(x.data(), labels.data(), 4, 2, std::nan("")); }, "lambda = nan");
  std::vector<float> bad = x;
  bad[5] = std::numeric_limits<float>::infinity();
  expect_error<Error>([&] { fit_latent_decoder(bad.data(), labels.data(), 4, 2); },
                      "x[row 2, feature 1] is inf");
  expect_error<Error>([&] { LatentDecoder().predict(x.data()); }, "not fitted");
}

// Samples with variance 9 along a, 1 along b (orthogonal) and 0.01 along the 6 other directions
// of an 8-dimensional space, around a non-zero mean.
struct PlantedPca {
  Eigen::VectorXd a, b, mean;
  std::vector<float> x;
  int64_t n = 20000, features = 8;
};

PlantedPca planted_pca() {
  PlantedPca p;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> g;
  Eigen::MatrixXd m(p.features, p.features);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = g(rng);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(m).householderQ();
  p.a = q.col(0);
  p.b = q.col(1);
  p.mean = Eigen::VectorXd::LinSpaced(p.features, -2.0, 5.0);
  Eigen::VectorXd sd = Eigen::VectorXd::Constant(p.features, 0.1);
  sd[0] = 3.0;
  sd[1] = 1.0;
  for (int64_t r = 0; r < p.n; ++r) {
    Eigen::VectorXd coef(p.features);
    for (int64_t j = 0; j < p.features; ++j) coef[j] = sd[j] * g(rng);
    const Eigen::VectorXd v = p.mean + q * coef;
    for (int64_t j = 0; j < p.features; ++j) p.x.push_back(float(v[j]));
  }
  return p;
}

TEST(Pca2, FindsThePlantedDirectionsAndTheirShareOfVariance) {
  const PlantedPca p = planted_pca();
  const Pca2 pca = fit_pca2(p.x.data(), p.n, p.features);
  EXPECT_GT(std::abs(pca.components.col(0).dot(p.a)), 0.999);
  EXPECT_GT(std::abs(pca.components.col(1).dot(p.b)), 0.999);
  EXPECT_NEAR(pca.components.col(0).norm(), 1.0, 1e-12);
  EXPECT_NEAR(pca.components.col(1).norm(), 1.0, 1e-12);
  EXPECT_NEAR(pca.components.col(0).dot(pca.components.col(1)), 0.0, 1e-12);
  const double total = 9.0 + 1.0 + 6 * 0.01;
  EXPECT_NEAR(pca.explained[0], 9.0 / total, 0.01);
  EXPECT_NEAR(pca.explained[1], 1.0 / total, 0.005);
  EXPECT_LT((pca.mean - p.mean).cwiseAbs().maxCoeff(), 0.05);
}

TEST(Pca2, SignOfEachComponentIsFixedByItsLargestEntry) {
  const PlantedPca p = planted_pca();
  const Pca2 pca = fit_pca2(p.x.data(), p.n, p.features);
  for (int c = 0; c < 2; ++c) {
    Eigen::Index big = 0;
    pca.components.col(c).cwiseAbs().maxCoeff(&big);
    EXPECT_GT(pca.components(big, c), 0.0) << "component " << c;
  }
  // Reflected data has the same covariance; the components must not flip with it.
  std::vector<float> reflected = p.x;
  for (float& v : reflected) v = -v;
  const Pca2 again = fit_pca2(reflected.data(), p.n, p.features);
  EXPECT_LT((again.components - pca.components).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((again.mean + pca.mean).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Pca2, ProjectIsTheCentredStateTimesTheComponents) {
  const PlantedPca p = planted_pca();
  const Pca2 pca = fit_pca2(p.x.data(), p.n, p.features);
  for (int64_t r = 0; r < 50; ++r) {
    const float* row = p.x.data() + r * p.features;
    float out[2];
    pca.project(row, out);
    for (int c = 0; c < 2; ++c) {
      double expect = 0;
      for (int64_t j = 0; j < p.features; ++j)
        expect += (double(row[j]) - pca.mean[j]) * pca.components(j, c);
      EXPECT_NEAR(out[c], expect, 1e-5 * (1.0 + std::abs(expect))) << "row " << r;
    }
  }
}

TEST(Pca2, OneFeatureLeavesTheSecondComponentZero) {
  const std::vector<float> x = {1, 3, 2, 6};
  const Pca2 pca = fit_pca2(x.data(), 4, 1);
  EXPECT_EQ(pca.components(0, 0), 1.0);
  EXPECT_EQ(pca.components(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(pca.explained[0], 1.0);
  EXPECT_EQ(pca.explained[1], 0.0);
  EXPECT_DOUBLE_EQ(pca.mean[0], 3.0);
  float out[2];
  pca.project(x.data() + 3, out);
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_EQ(out[1], 0.0f);
}

TEST(Pca2, ConstantStatesExplainNoVariance) {
  const std::vector<float> x(3 * 10, 2.5f);
  const Pca2 pca = fit_pca2(x.data(), 10, 3);
  EXPECT_EQ(pca.explained[0], 0.0);
  EXPECT_EQ(pca.explained[1], 0.0);
  EXPECT_NEAR(pca.components.col(0).norm(), 1.0, 1e-12);
}

TEST(Pca2, RefusesBadInputsNamingTheValue) {
  const std::vector<float> x = {0, 1, 2, 3, 4, 5};
  expect_error<Error>([&] { fit_pca2(x.data(), 1, 2); }, "n = 1");
  expect_error<Error>([&] { fit_pca2(x.data(), 3, 0); }, "features = 0");
  std::vector<float> bad = x;
  bad[4] = std::numeric_limits<float>::quiet_NaN();
  expect_error<Error>([&] { fit_pca2(bad.data(), 3, 2); }, "x[row 2, feature 0] is nan");
}

TEST(SaturatedFraction, CountsValuesWithinTheMarginOfZeroOrOne) {
  const std::vector<float> v = {
      0.0f,  0.04f, 0.06f, 0.5f,   0.94f,
      0.96f, 1.0f,  1.04f, -0.01f, std::numeric_limits<float>::quiet_NaN()};
  // Saturated: 0, 0.04, 0.96, 1, 1.04, -0.01; the NaN stays in the denominator.
  EXPECT_DOUBLE_EQ(saturated_fraction(v.data(), 10), 0.6);
  EXPECT_DOUBLE_EQ(saturated_fraction(v.data(), 10, 0.1), 0.8);
  EXPECT_DOUBLE_EQ(saturated_fraction(v.data(), 10, 0.0), 0.2);
  EXPECT_TRUE(std::isnan(saturated_fraction(v.data(), 0)));
  expect_error<ConfigError>([&] { saturated_fraction(v.data(), 10, 0.5); }, "margin = 0.5");
  expect_error<ConfigError>([&] { saturated_fraction(v.data(), 10, -0.1); }, "margin = -0.1");
  expect_error<Error>([&] { saturated_fraction(v.data(), -3); }, "n = -3");
}

TEST(NegativeFraction, CountsStrictlyNegativeValues) {
  const std::vector<float> v = {-1.0f, -0.0f, 0.0f, 0.5f, -1e-30f, 2.0f, -3.0f, 1.0f};
  EXPECT_DOUBLE_EQ(negative_fraction(v.data(), 8), 3.0 / 8.0) << "-0 is not negative";
  EXPECT_TRUE(std::isnan(negative_fraction(v.data(), 0)));
  expect_error<Error>([&] { negative_fraction(v.data(), -1); }, "n = -1");
}

std::vector<float> series(int64_t samples, int64_t T, double (*norm)(int64_t t)) {
  std::vector<float> v;
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t t = 0; t < T; ++t) v.push_back(float(norm(t) * (s % 2 ? 0.5 : 1.5)));
  return v;
}

TEST(GrowthExponent, IsOneForLinearZeroForConstantAndHalfForSquareRoot) {
  const auto linear = series(4, 100, [](int64_t t) { return double(t + 1); });
  const auto flat = series(4, 100, [](int64_t) { return 2.0; });
  const auto root = series(4, 100, [](int64_t t) { return std::sqrt(double(t + 1)); });
  EXPECT_NEAR(growth_exponent(linear.data(), 4, 100), 1.0, 1e-6);
  EXPECT_NEAR(growth_exponent(flat.data(), 4, 100), 0.0, 1e-6);
  EXPECT_NEAR(growth_exponent(root.data(), 4, 100), 0.5, 1e-6);
}

TEST(GrowthExponent, IsAboutHalfForTheDistanceOfARandomWalk) {
  std::mt19937_64 rng(8);
  std::bernoulli_distribution coin;
  const int64_t samples = 2000, T = 256;
  std::vector<float> v;
  for (int64_t s = 0; s < samples; ++s) {
    int64_t pos = 0;
    for (int64_t t = 0; t < T; ++t) {
      pos += coin(rng) ? 1 : -1;
      v.push_back(float(std::abs(pos)));
    }
  }
  EXPECT_NEAR(growth_exponent(v.data(), samples, T), 0.5, 0.05);
}

TEST(GrowthExponent, SkipsNonPositiveAndNonFiniteMeansAndIsNanWithFewerThanTwoPoints) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // One sample; t = 1 (mean 0), t = 3 (NaN) and t = 4 (negative) are skipped.
  const std::vector<float> v = {1, 0, 3, nan, -5, 6};
  const double slope = growth_exponent(v.data(), 1, 6);
  EXPECT_NEAR(slope, 1.0, 1e-6) << "the points left, t = 0, 2, 5, are exactly linear";
  const std::vector<float> few = {0, 4, -1, nan};
  EXPECT_TRUE(std::isnan(growth_exponent(few.data(), 1, 4)));
  EXPECT_TRUE(std::isnan(growth_exponent(few.data(), 1, 1)));
  EXPECT_TRUE(std::isnan(growth_exponent(few.data(), 0, 4)));
  expect_error<Error>([&] { growth_exponent(few.data(), 1, -2); }, "T = -2");
}

}  // namespace
}  // namespace statelab
