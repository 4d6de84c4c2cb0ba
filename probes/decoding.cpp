// Linear latent-state decoder, 2-D PCA and probe-series summaries (see decoding.hpp).
// Hidden states stay float and are standardised a block of rows at a time, so fitting on ~100k
// rows of ~1024 features never holds a dense double copy of the data.
#include "probes/decoding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "kernels/error.hpp"

namespace statelab {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// Rows per block: a [features + 1, 256] double block of 1024 features is 2 MiB, large enough
// for Eigen's GEMM to run at speed and small enough to stay in cache.
constexpr int64_t kBlockRows = 256;
constexpr int kLogisticSteps = 100;
constexpr double kLogisticTolerance = 1e-6;
// Below this fraction of its RMS a feature's spread is float round-off, not signal.
constexpr double kConstantFeature = 1e-6;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

void check_finite_row(const float* row, int64_t features, int64_t r, const char* what) {
  for (int64_t j = 0; j < features; ++j)
    if (!std::isfinite(row[j]))
      throw Error(cat(what, ": x[row ", r, ", feature ", j, "] is ", row[j],
                      "; every state used for fitting must be finite"));
}

// Column i of zt = the standardised row rows[begin + i] followed by a 1 for the bias.
void standardise_block(const float* x, const std::vector<int64_t>& rows, size_t begin,
                       int64_t count, const VectorXd& mean, const VectorXd& scale, MatrixXd& zt) {
  const int64_t f = mean.size();
  if (zt.cols() != count) zt.resize(f + 1, count);
  for (int64_t i = 0; i < count; ++i) {
    Eigen::Map<const Eigen::VectorXf> row(x + rows[begin + size_t(i)] * f, f);
    zt.col(i).head(f) = ((row.cast<double>() - mean).array() * scale.array()).matrix();
    zt(f, i) = 1.0;
  }
}

// Calls fn(zt, begin, count) for consecutive blocks of the given rows.
template <typename Fn>
void for_each_block(const float* x, const std::vector<int64_t>& rows, const VectorXd& mean,
                    const VectorXd& scale, Fn&& fn) {
  MatrixXd zt;
  for (size_t begin = 0; begin < rows.size(); begin += size_t(kBlockRows)) {
    const int64_t count = std::min<int64_t>(kBlockRows, int64_t(rows.size() - begin));
    standardise_block(x, rows, begin, count, mean, scale, zt);
    fn(static_cast<const MatrixXd&>(zt), begin, count);
  }
}

struct LogisticPass {
  double objective = 0;  // penalised negative log-likelihood
  MatrixXd gradient;     // [features + 1, classes]
  int64_t correct = 0;
};

// One pass over the data at weights w: the penalised loss, its gradient and the accuracy.
LogisticPass logistic_pass(const float* x, const std::vector<int64_t>& rows,
                           const std::vector<int32_t>& target, const LatentDecoder& d,
                           const MatrixXd& w, double penalty) {
  const int64_t f = d.features(), k = w.cols();
  LogisticPass out;
  out.gradient = MatrixXd::Zero(f + 1, k);
  MatrixXd residual;  // [classes, count]: softmax − one-hot
  for_each_block(x, rows, d.mean, d.scale, [&](const MatrixXd& zt, size_t begin, int64_t count) {
    residual.noalias() = w.transpose() * zt;
    for (int64_t i = 0; i < count; ++i) {
      auto logits = residual.col(i);
      Eigen::Index best = 0;
      const double top = logits.maxCoeff(&best);
      const int32_t y = target[begin + size_t(i)];
      out.correct += best == y;
      const double lse = top + std::log((logits.array() - top).exp().sum());
      out.objective += lse - logits(y);
      logits = (logits.array() - lse).exp().matrix();
      logits(y) -= 1.0;
    }
    out.gradient.noalias() += zt * residual.transpose();
  });
  out.objective += 0.5 * penalty * w.topRows(f).squaredNorm();
  out.gradient.topRows(f) += penalty * w.topRows(f);
  return out;
}

}  // namespace

int64_t LatentDecoder::predict_index(const float* x) const {
  SL_CHECK(weights.rows() == features() + 1 && weights.cols() == int64_t(classes.size()) &&
               !classes.empty(),
           "LatentDecoder::predict on a decoder that was not fitted");
  const int64_t f = features();
  Eigen::Map<const Eigen::VectorXf> row(x, f);
  const VectorXd z = ((row.cast<double>() - mean).array() * scale.array()).matrix();
  const VectorXd logits = weights.topRows(f).transpose() * z + weights.row(f).transpose();
  if (!logits.allFinite()) throw Error("LatentDecoder::predict: the hidden state is not finite");
  Eigen::Index best = 0;
  logits.maxCoeff(&best);
  return best;
}

int32_t LatentDecoder::predict(const float* x) const { return classes[size_t(predict_index(x))]; }

LatentDecoder fit_latent_decoder(const float* x, const int32_t* labels, int64_t n, int64_t features,
                                 double lambda) {
  if (features < 1)
    throw Error(cat("fit_latent_decoder: features = ", features, "; it must be >= 1"));
  if (n < 0) throw Error(cat("fit_latent_decoder: n = ", n, " rows; it must be >= 0"));
  if (!(lambda > 0) || !std::isfinite(lambda))
    throw ConfigError(cat("fit_latent_decoder: lambda = ", lambda, "; it must be finite and > 0"));
  if (n > 0 && (x == nullptr || labels == nullptr))
    throw Error("fit_latent_decoder: x or labels is null");

  std::vector<int64_t> rows;
  for (int64_t r = 0; r < n; ++r)
    if (labels[r] >= 0) rows.push_back(r);
  if (rows.empty())
    throw Error(cat("fit_latent_decoder: none of the ", n,
                    " rows has a latent label >= 0 (negative labels mark ignored rows)"));
  const int64_t f = features, m = int64_t(rows.size());

  LatentDecoder d;
  for (int64_t r : rows) d.classes.push_back(labels[r]);
  std::sort(d.classes.begin(), d.classes.end());
  d.classes.erase(std::unique(d.classes.begin(), d.classes.end()), d.classes.end());
  if (d.classes.size() < 2)
    throw Error(cat("fit_latent_decoder: the latent state takes a single value (", d.classes[0],
                    ") on the fitting data; nothing to decode"));
  const int64_t k = int64_t(d.classes.size());
  std::vector<int32_t> target(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    target[i] = int32_t(std::lower_bound(d.classes.begin(), d.classes.end(), labels[rows[i]]) -
                        d.classes.begin());

  // Two passes for mean and spread: the one-pass sum of squares cancels catastrophically for
  // features with a large offset, which hidden states often have.
  d.mean = VectorXd::Zero(f);
  for (int64_t r : rows) {
    check_finite_row(x + r * f, f, r, "fit_latent_decoder");
    d.mean += Eigen::Map<const Eigen::VectorXf>(x + r * f, f).cast<double>();
  }
  d.mean /= double(m);
  VectorXd var = VectorXd::Zero(f);
  for (int64_t r : rows)
    var += (Eigen::Map<const Eigen::VectorXf>(x + r * f, f).cast<double>() - d.mean)
               .array()
               .square()
               .matrix();
  var /= double(m);
  d.scale.resize(f);
  for (int64_t j = 0; j < f; ++j) {
    const double sd = std::sqrt(var[j]);
    d.scale[j] = sd <= kConstantFeature * std::hypot(d.mean[j], sd) ? 0.0 : 1.0 / sd;
  }

  // Normal matrix ZᵀZ (lower triangle) and ZᵀY, accumulated block by block.
  MatrixXd gram = MatrixXd::Zero(f + 1, f + 1);
  MatrixXd zty = MatrixXd::Zero(f + 1, k);
  for_each_block(x, rows, d.mean, d.scale, [&](const MatrixXd& zt, size_t begin, int64_t count) {
    gram.selfadjointView<Eigen::Lower>().rankUpdate(zt);
    for (int64_t i = 0; i < count; ++i) zty.col(target[begin + size_t(i)]) += zt.col(i);
  });

  // The bias is left unpenalised; its diagonal entry is m > 0, so both systems stay definite.
  const double penalty = lambda * double(m);
  MatrixXd normal = gram;
  normal.diagonal().head(f).array() += penalty;
  Eigen::LDLT<MatrixXd, Eigen::Lower> ridge(normal);
  SL_CHECK(ridge.info() == Eigen::Success, "fit_latent_decoder: ridge factorisation failed");
  MatrixXd w = ridge.solve(zty);

  // Böhning's bound: diag(p) − ppᵀ ≼ ½I, so ½ZᵀZ + penalty bounds the logistic Hessian at
  // every w, and the step w − bound⁻¹·gradient alone could never raise the penalised loss. Those
  // steps crawl when the weights must grow far beyond the ridge solution (well-separated
  // classes), so they are accelerated with Nesterov momentum, reset whenever it points uphill
  // (O'Donoghue and Candès' gradient restart). Momentum can overshoot, so the weights kept are
  // the lowest-loss ones evaluated, never worse in that loss than the ridge start.
  normal = 0.5 * gram;
  normal.diagonal().head(f).array() += penalty;
  Eigen::LDLT<MatrixXd, Eigen::Lower> bound(normal);
  SL_CHECK(bound.info() == Eigen::Success, "fit_latent_decoder: logistic factorisation failed");
  MatrixXd y = w, previous = w;  // from here on w is the lowest-loss point evaluated
  LogisticPass best = logistic_pass(x, rows, target, d, y, penalty);
  LogisticPass pass = best;
  double momentum = 1.0;
  for (int step = 0;; ++step) {
    const MatrixXd descent = bound.solve(pass.gradient);
    // Half the bound-weighted gradient norm is the loss decrease the plain step guarantees.
    const double gain = 0.5 * (pass.gradient.array() * descent.array()).sum();
    if (!(gain > kLogisticTolerance * pass.objective) || step == kLogisticSteps) break;
    const MatrixXd next = y - descent;
    if ((pass.gradient.array() * (next - previous).array()).sum() > 0) {
      momentum = 1.0;
      y = next;
    } else {
      const double following = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * momentum * momentum));
      y = next + ((momentum - 1.0) / following) * (next - previous);
      momentum = following;
    }
    previous = next;
    pass = logistic_pass(x, rows, target, d, y, penalty);
    if (pass.objective < best.objective) {
      best = pass;
      w = y;
    }
  }
  d.weights = std::move(w);
  d.train_accuracy = double(best.correct) / double(m);
  return d;
}

double decoder_accuracy(const LatentDecoder& decoder, const float* x, const int32_t* labels,
                        int64_t n) {
  const int64_t f = decoder.features();
  int64_t used = 0, correct = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (labels[r] < 0) continue;
    ++used;
    correct += decoder.predict(x + r * f) == labels[r];
  }
  return used == 0 ? kNaN : double(correct) / double(used);
}

void Pca2::project(const float* x, float* out2) const {
  SL_CHECK(components.rows() == mean.size() && components.cols() == 2,
           "Pca2::project on a PCA that was not fitted");
  const int64_t f = mean.size();
  const Eigen::Vector2d p =
      components.transpose() * (Eigen::Map<const Eigen::VectorXf>(x, f).cast<double>() - mean);
  out2[0] = float(p[0]);
  out2[1] = float(p[1]);
}

Pca2 fit_pca2(const float* x, int64_t n, int64_t features) {
  if (features < 1) throw Error(cat("fit_pca2: features = ", features, "; it must be >= 1"));
  if (n < 2) throw Error(cat("fit_pca2: n = ", n, " rows; a variance needs n >= 2"));
  if (x == nullptr) throw Error("fit_pca2: x is null");
  const int64_t f = features;
  Pca2 p;
  p.mean = VectorXd::Zero(f);
  for (int64_t r = 0; r < n; ++r) {
    check_finite_row(x + r * f, f, r, "fit_pca2");
    p.mean += Eigen::Map<const Eigen::VectorXf>(x + r * f, f).cast<double>();
  }
  p.mean /= double(n);

  MatrixXd cov = MatrixXd::Zero(f, f);
  MatrixXd block;
  for (int64_t begin = 0; begin < n; begin += kBlockRows) {
    const int64_t count = std::min(kBlockRows, n - begin);
    block.resize(f, count);
    for (int64_t i = 0; i < count; ++i)
      block.col(i) =
          Eigen::Map<const Eigen::VectorXf>(x + (begin + i) * f, f).cast<double>() - p.mean;
    cov.selfadjointView<Eigen::Lower>().rankUpdate(block);
  }
  cov /= double(n - 1);

  Eigen::SelfAdjointEigenSolver<MatrixXd> eig(cov.selfadjointView<Eigen::Lower>());
  SL_CHECK(eig.info() == Eigen::Success, "fit_pca2: eigen decomposition failed");
  // Round-off can leave the smallest eigenvalues slightly negative; they are zero variance.
  const VectorXd values = eig.eigenvalues().cwiseMax(0.0);  // ascending
  const double total = values.sum();
  p.components = MatrixXd::Zero(f, 2);
  p.explained.setZero();
  for (int64_t c = 0; c < std::min<int64_t>(2, f); ++c) {
    const int64_t idx = f - 1 - c;
    VectorXd v = eig.eigenvectors().col(idx);
    Eigen::Index big = 0;
    v.cwiseAbs().maxCoeff(&big);
    if (v[big] < 0) v = -v;
    p.components.col(c) = v;
    p.explained[c] = total > 0 ? values[idx] / total : 0.0;
  }
  return p;
}

double saturated_fraction(const float* v, int64_t n, double margin) {
  if (!(margin >= 0 && margin < 0.5))
    throw ConfigError(cat("saturated_fraction: margin = ", margin, "; allowed: 0 <= margin < 0.5"));
  if (n < 0) throw Error(cat("saturated_fraction: n = ", n, "; it must be >= 0"));
  if (n == 0) return kNaN;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i)
    count += std::abs(double(v[i])) <= margin || std::abs(double(v[i]) - 1.0) <= margin;
  return double(count) / double(n);
}

double negative_fraction(const float* v, int64_t n) {
  if (n < 0) throw Error(cat("negative_fraction: n = ", n, "; it must be >= 0"));
  if (n == 0) return kNaN;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += v[i] < 0.0f;
  return double(count) / double(n);
}

double growth_exponent(const float* values, int64_t samples, int64_t T) {
  if (samples < 0 || T < 0)
    throw Error(cat("growth_exponent: samples = ", samples, ", T = ", T, "; both must be >= 0"));
  if (samples == 0) return kNaN;
  std::vector<double> lx, ly;
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0;
    for (int64_t s = 0; s < samples; ++s) sum += values[s * T + t];
    const double mean = sum / double(samples);
    if (!(mean > 0) || !std::isfinite(mean)) continue;
    lx.push_back(std::log(double(t + 1)));
    ly.push_back(std::log(mean));
  }
  if (lx.size() < 2) return kNaN;
  const double k = double(lx.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < lx.size(); ++i) {
    mx += lx[i];
    my += ly[i];
  }
  mx /= k;
  my /= k;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < lx.size(); ++i) {
    sxy += (lx[i] - mx) * (ly[i] - my);
    sxx += (lx[i] - mx) * (lx[i] - mx);
  }
  return sxy / sxx;
}

}  // namespace statelab
