// What every cell reports on a probe pass, against a direct recomputation from the cell's
// equations (DESIGN §2) written out in this file, and the proof that probing changes nothing:
// a probed pass gives bit-identical logits and gradients to an unprobed one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "cells/gdn_block.hpp"
#include "cells/mamba2_block.hpp"
#include "cells/mlstm_block.hpp"
#include "cells/model.hpp"
#include "cells/recurrent_block.hpp"
#include "cells/transformer_block.hpp"
#include "probes/probe_pass.hpp"

namespace statelab {
namespace {

constexpr int kVocab = 5;
constexpr int64_t kB = 2, kT = 11;  // T > chunk_size (4): chunk-boundary states are exercised

struct Probed {
  std::unique_ptr<Model<float>> model;
  Batch batch;
  ProbeSink sink;
  Pass pass;
};

ModelConfig small_config(const std::string& blocks, const std::string& eigen_range) {
  ModelConfig c;
  c.blocks = blocks;
  c.d_model = 8;
  c.heads = blocks == "l" ? 1 : 2;
  c.eigen_range = eigen_range;
  c.chunk_size = 4;
  c.mamba2.state_size = 4;
  return c;
}

Batch random_batch(uint64_t seed) {
  Batch b;
  b.resize(int(kB), int(kT));
  Rng rng(seed, 9, 0);
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    b.tokens[i] = int32_t(rng.uniform_int(1, kVocab - 1));
    b.targets[i] = i % 3 == 2 ? int32_t(rng.uniform_int(1, kVocab - 1)) : Batch::kIgnore;
    b.latent[i] = int32_t(i % 2);
  }
  std::fill(b.lengths.begin(), b.lengths.end(), int32_t(kT));
  return b;
}

// Parameters moved off their initial constants (zero gate weights, unit norms) so that every
// gate and state varies.
std::unique_ptr<Model<float>> random_model(const ModelConfig& cfg) {
  auto m = std::make_unique<Model<float>>(cfg, kVocab, kB * kT, kB * kT);
  m->params().initialize(3);
  Rng rng(4, 9, 1);
  for (int64_t i = 0; i < m->params().size(); ++i)
    m->params().values()[i] += float(0.3 * rng.normal());
  return m;
}

Probed probe(const std::string& blocks, const std::string& eigen_range = "01") {
  Probed r{random_model(small_config(blocks, eigen_range)), random_batch(5), ProbeSink(), {}};
  r.sink = probe_batch(*r.model, r.batch, 64);
  r.pass = r.model->last_pass();
  return r;
}

const std::vector<float>& values(const Probed& r, const std::string& name) {
  const ProbeSeries* s = r.sink.find(name);
  if (!s) throw std::runtime_error("no series " + name);
  return s->values;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::string& what, double tol = 2e-4) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << " at " << i;
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double log_sigmoid(double x) { return -std::log1p(std::exp(-x)); }

// ---- Probing changes nothing --------------------------------------------------------------

class ProbeIsInvisible : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(ProbeIsInvisible, ProbedPassGivesBitIdenticalLogitsAndGradients) {
  const auto [blocks, range] = GetParam();
  auto model = random_model(small_config(blocks, range));
  const Batch batch = random_batch(6);
  const Pass p{kB, kT, nullptr};
  auto run = [&](bool probed) {
    model->params().zero_grads();
    if (probed) {
      ProbeSink sink = probe_batch(*model, batch, 64);
      EXPECT_FALSE(sink.series().empty());
    } else {
      model->forward(batch.tokens.data(), p);
    }
    const float* logits = model->host_logits();
    std::vector<float> out(logits, logits + kB * kT * kVocab);
    model->loss(batch.targets.data(), true);
    model->backward();
    out.insert(out.end(), model->params().grads(),
               model->params().grads() + model->params().size());
    return out;
  };
  const auto plain = run(false);
  const auto probed = run(true);
  ASSERT_EQ(plain.size(), probed.size());
  EXPECT_EQ(std::memcmp(plain.data(), probed.data(), plain.size() * sizeof(float)), 0)
      << blocks << " " << range << ": a probe changed the forward or what backward reads";
}

INSTANTIATE_TEST_SUITE_P(EveryCell, ProbeIsInvisible,
                         ::testing::Values(std::pair{"l", "01"}, std::pair{"s", "01"},
                                           std::pair{"m", "01"}, std::pair{"m", "pm1"},
                                           std::pair{"M", "01"}, std::pair{"M", "pm1"},
                                           std::pair{"g", "01"}, std::pair{"g", "pm1"},
                                           std::pair{"t", "01"}, std::pair{"smMgt", "pm1"}));

// ---- Every model ----------------------------------------------------------------------------

TEST(ModelProbes, InputsAnswersConfidenceAndResidualNormsMatchTheForward) {
  const Probed r = probe("sm");
  for (const char* name : {"tokens", "latent", "target"}) {
    const auto& v = values(r, name);
    const auto& from = std::string(name) == "tokens"   ? r.batch.tokens
                       : std::string(name) == "latent" ? r.batch.latent
                                                       : r.batch.targets;
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(int32_t(v[i]), from[i]) << name;
  }
  const float* logits = r.model->host_logits();
  std::vector<double> answer, confidence;
  for (int64_t n = 0; n < kB * kT; ++n) {
    const float* row = logits + n * kVocab;
    const int best = int(std::max_element(row, row + kVocab) - row);
    double total = 0;
    for (int v = 0; v < kVocab; ++v) total += std::exp(double(row[v]));
    answer.push_back(best);
    confidence.push_back(std::exp(double(row[best])) / total);
  }
  expect_close(values(r, "answer"), answer, "answer", 0);
  expect_close(values(r, "confidence"), confidence, "confidence", 1e-5);
  std::vector<double> norms;
  const int64_t L = r.model->n_blocks() + 1, D = 8;
  for (int64_t n = 0; n < kB * kT; ++n)
    for (int64_t l = 0; l < L; ++l) {
      const float* x = r.model->residual(int(l)).data + n * D;
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += double(x[d]) * x[d];
      norms.push_back(std::sqrt(s));
    }
  expect_close(values(r, "residual_norm"), norms, "residual_norm", 1e-5);
  EXPECT_EQ(r.sink.find("residual_norm")->shape, (std::vector<int64_t>{kB, kT, L}));
}

// ---- LSTM and sLSTM -----------------------------------------------------------------------

// The pre-activations [B, T, H, 4, Dh] re-formed from the block's saved input-GEMM part
// ([2, B, T, H, 2, Dh] halves), R and the saved h_{t-1}: the LSTM does not save its own.
std::vector<double> preactivations(const cpu::NonlinearRecurrence<float>& r) {
  const int64_t H = r.H, Dh = r.Dh, G = 4 * Dh, rows = r.B * r.T * H;
  std::vector<double> raw(size_t(rows * G));
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t t = 0; t < r.T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t g = 0; g < 4; ++g)
          for (int64_t u = 0; u < Dh; ++u) {
            const int64_t row = (b * r.T + t) * H + h;
            double x = r.pre[((g / 2) * rows + row) * 2 * Dh + (g % 2) * Dh + u];
            if (t > 0)
              for (int64_t k = 0; k < Dh; ++k)
                x += double(r.h[(row - H) * Dh + k]) * r.R[(h * Dh + k) * G + g * Dh + u];
            raw[size_t(row * G + g * Dh + u)] = x;
          }
  return raw;
}

// Steps the cell from its pre-activations and returns per (b, t, h, unit) the gates,
// stabilizer and normalizer, and per (b, t, h) the norms of c and h.
struct NonlinearTruth {
  std::vector<double> i, f, o, m, n, c_norm, h_norm;
};

NonlinearTruth step_nonlinear(const cpu::NonlinearRecurrence<float>& r) {
  NonlinearTruth out;
  const int64_t H = r.H, Dh = r.Dh;
  const bool slstm = r.cell == cpu::NonlinearCell::slstm;
  const std::vector<double> pre = preactivations(r);
  for (int64_t b = 0; b < r.B; ++b) {
    std::vector<double> c(size_t(H * Dh), 0), n(c.size(), 0),
        m(c.size(), -std::numeric_limits<double>::infinity());
    for (int64_t t = 0; t < r.T; ++t) {
      const double* raw = pre.data() + (b * r.T + t) * H * 4 * Dh;
      for (int64_t h = 0; h < H; ++h) {
        double cn = 0, hn = 0;
        for (int64_t u = 0; u < Dh; ++u) {
          const double* g = raw + h * 4 * Dh;
          const double it = g[u], ft = g[Dh + u], z = std::tanh(g[2 * Dh + u]);
          const double o = sigmoid(g[3 * Dh + u]);
          const size_t k = size_t(h * Dh + u);
          double i, f;
          if (slstm) {
            const double log_f = r.exp_forget ? ft : log_sigmoid(ft);
            const double m_new = std::max(log_f + m[k], it);
            i = std::exp(it - m_new);
            f = std::isinf(m[k]) ? 0.0 : std::exp(log_f + m[k] - m_new);
            m[k] = m_new;
          } else {
            i = sigmoid(it);
            f = sigmoid(ft);
          }
          c[k] = f * c[k] + i * z;
          n[k] = f * n[k] + i;
          const double hv = slstm ? o * c[k] / n[k] : o * std::tanh(c[k]);
          cn += c[k] * c[k];
          hn += hv * hv;
          out.i.push_back(i), out.f.push_back(f), out.o.push_back(o);
          out.m.push_back(m[k]), out.n.push_back(n[k]);
        }
        out.c_norm.push_back(std::sqrt(cn));
        out.h_norm.push_back(std::sqrt(hn));
      }
    }
  }
  return out;
}

TEST(NonlinearProbes, LstmGatesAndNormsMatchTheEquations) {
  Probed r = probe("l");
  auto& block = dynamic_cast<RecurrentBlock<float>&>(r.model->block(0));
  const auto truth = step_nonlinear(block.recurrence(r.pass));
  expect_close(values(r, "blocks.0.input_gate"), truth.i, "i");
  expect_close(values(r, "blocks.0.forget_gate"), truth.f, "f");
  expect_close(values(r, "blocks.0.output_gate"), truth.o, "o");
  expect_close(values(r, "blocks.0.cell_norm"), truth.c_norm, "|c|");
  expect_close(values(r, "blocks.0.hidden_norm"), truth.h_norm, "|h|");
}

TEST(NonlinearProbes, SlstmStabilizedGatesStabilizerNormalizerAndNormsMatchTheEquations) {
  Probed r = probe("s");
  auto& block = dynamic_cast<RecurrentBlock<float>&>(r.model->block(0));
  const auto rec = block.recurrence(r.pass);
  const auto truth = step_nonlinear(rec);
  expect_close(values(r, "blocks.0.input_gate"), truth.i, "i'");
  expect_close(values(r, "blocks.0.forget_gate"), truth.f, "f'");
  expect_close(values(r, "blocks.0.output_gate"), truth.o, "o");
  expect_close(values(r, "blocks.0.stabilizer"), truth.m, "m");
  expect_close(values(r, "blocks.0.normalizer"), truth.n, "n");
  expect_close(values(r, "blocks.0.cell_norm"), truth.c_norm, "|c|");
  expect_close(values(r, "blocks.0.hidden_norm"), truth.h_norm, "|h|");
  // The pre-activations are reported as the kernel saw them.
  std::vector<double> it;
  for (int64_t n = 0; n < kB * kT; ++n)
    for (int64_t h = 0; h < rec.H; ++h)
      for (int64_t u = 0; u < rec.Dh; ++u) it.push_back(rec.raw[(n * rec.H + h) * 4 * rec.Dh + u]);
  expect_close(values(r, "blocks.0.input_preact"), it, "i~", 0);
  EXPECT_EQ(r.sink.find("blocks.0.input_gate")->axes,
            (std::vector<std::string>{"sample", "time", "head", "unit"}));
}

// ---- The linear cells ---------------------------------------------------------------------

// S_t = a S_{t-1} (I − b k kᵀ) + c v kᵀ and n_t = a n_{t-1} + c k, stepped directly.
struct LinearTruth {
  std::vector<double> state_norm, n_norm, n_dot_q, write_error;
};

LinearTruth step_linear(const cpu::LinearRecurrence<float>& r) {
  LinearTruth out;
  const int64_t Dk = r.Dk, Dv = r.Dv;
  std::vector<std::vector<double>> S(size_t(r.B * r.H)), n(S.size());
  for (auto& s : S) s.assign(size_t(Dv * Dk), 0);
  for (auto& v : n) v.assign(size_t(Dk), 0);
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t t = 0; t < r.T; ++t)
      for (int64_t h = 0; h < r.H; ++h) {
        auto& St = S[size_t(b * r.H + h)];
        auto& nt = n[size_t(b * r.H + h)];
        const int64_t tok = b * r.T + t, g = tok * r.H + h;
        const float* k = r.k.data + tok * r.k.row + h * r.k.head;
        const float* q = r.q.data + tok * r.q.row + h * r.q.head;
        const float* v = r.v.data + tok * r.v.row + h * r.v.head;
        const double a = r.a[g], beta = r.b ? r.b[g] : 0.0, c = r.c[g];
        std::vector<double> Sk(size_t(Dv), 0);
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j) Sk[size_t(i)] += St[size_t(i * Dk + j)] * k[j];
        double err = 0;
        for (int64_t i = 0; i < Dv; ++i) err += (Sk[size_t(i)] - v[i]) * (Sk[size_t(i)] - v[i]);
        out.write_error.push_back(std::sqrt(err));
        double norm = 0;
        for (int64_t i = 0; i < Dv; ++i)
          for (int64_t j = 0; j < Dk; ++j) {
            double& s = St[size_t(i * Dk + j)];
            s = a * (s - beta * Sk[size_t(i)] * k[j]) + c * v[i] * k[j];
            norm += s * s;
          }
        out.state_norm.push_back(std::sqrt(norm));
        double nn = 0, nq = 0;
        for (int64_t j = 0; j < Dk; ++j) {
          nt[size_t(j)] = a * nt[size_t(j)] + c * k[j];
          nn += nt[size_t(j)] * nt[size_t(j)];
          nq += nt[size_t(j)] * q[j];
        }
        out.n_norm.push_back(std::sqrt(nn));
        out.n_dot_q.push_back(std::abs(nq));
      }
  return out;
}

class MlstmProbes : public ::testing::TestWithParam<std::string> {};

TEST_P(MlstmProbes, GatesStabilizerAndMemoryMatchTheEquations) {
  const std::string range = GetParam();
  Probed r = probe("m", range);
  auto& block = dynamic_cast<MlstmBlock<float>&>(r.model->block(0));
  const int64_t H = block.heads();
  const auto& ig = values(r, "blocks.0.input_preact");
  const auto& fg = values(r, "blocks.0.forget_preact");
  std::vector<double> m_true, i_true, f_true;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < H; ++h) {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < kT; ++t) {
        const size_t g = size_t((b * kT + t) * H + h);
        const double f = range == "pm1" ? 2 * sigmoid(fg[g]) - 1 : sigmoid(fg[g]);
        const double log_f = std::log(std::abs(f));
        const double m_new = std::max(log_f + m, double(ig[g]));
        i_true.resize(size_t(kB * kT * H)), f_true.resize(i_true.size()),
            m_true.resize(i_true.size());
        i_true[g] = std::exp(ig[g] - m_new);
        f_true[g] = std::isinf(m) ? 0.0 : (f < 0 ? -1 : 1) * std::exp(log_f + m - m_new);
        m_true[g] = m_new;
        m = m_new;
      }
    }
  expect_close(values(r, "blocks.0.stabilizer"), m_true, "m");
  expect_close(values(r, "blocks.0.input_gate"), i_true, "i'");
  expect_close(values(r, "blocks.0.forget_gate"), f_true, "f'");
  EXPECT_EQ(r.sink.find("blocks.0.forget_gate")->kind,
            range == "pm1" ? ProbeKind::eigenvalue : ProbeKind::gate);

  const auto truth = step_linear(block.recurrence(r.pass));
  expect_close(values(r, "blocks.0.memory_norm"), truth.state_norm, "|C|");
  expect_close(values(r, "blocks.0.normalizer_norm"), truth.n_norm, "|n|");
  expect_close(values(r, "blocks.0.n_dot_q"), truth.n_dot_q, "|n.q|");
  std::vector<double> log_norm, floor_on;
  for (size_t i = 0; i < truth.state_norm.size(); ++i) {
    log_norm.push_back(std::log(truth.state_norm[i]) + m_true[i]);
    floor_on.push_back(std::exp(-m_true[i]) > truth.n_dot_q[i] ? 1.0 : 0.0);
  }
  expect_close(values(r, "blocks.0.memory_log_norm"), log_norm, "log |C|", 1e-3);
  expect_close(values(r, "blocks.0.floor_active"), floor_on, "floor active", 0);
}

INSTANTIATE_TEST_SUITE_P(BothRanges, MlstmProbes, ::testing::Values("01", "pm1"));

class Mamba2Probes : public ::testing::TestWithParam<std::string> {};

TEST_P(Mamba2Probes, TransitionEigenvalueAndStateNormMatchTheEquations) {
  const std::string range = GetParam();
  Probed r = probe("M", range);
  auto& block = dynamic_cast<Mamba2Block<float>&>(r.model->block(0));
  const int64_t H = block.heads();
  const auto& dt = values(r, "blocks.0.dt");
  std::vector<double> a;
  for (int64_t n = 0; n < kB * kT; ++n)
    for (int64_t h = 0; h < H; ++h) {
      const double decay =
          std::exp(double(dt[size_t(n * H + h)]) * -std::exp(double(block.A_log()[h])));
      a.push_back(range == "pm1" ? 2 * decay - 1 : decay);
    }
  expect_close(values(r, "blocks.0.transition"), a, "a");
  expect_close(values(r, "blocks.0.state_norm"), step_linear(block.recurrence(r.pass)).state_norm,
               "|H|");
  if (range == "01") {
    for (float v : values(r, "blocks.0.transition")) ASSERT_GT(v, 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(BothRanges, Mamba2Probes, ::testing::Values("01", "pm1"));

class GdnProbes : public ::testing::TestWithParam<std::string> {};

TEST_P(GdnProbes, EigenvalueAlongKStateNormAndWriteErrorMatchTheEquations) {
  const std::string range = GetParam();
  Probed r = probe("g", range);
  auto& block = dynamic_cast<GdnBlock<float>&>(r.model->block(0));
  const auto rec = block.recurrence(r.pass);
  const auto& alpha = values(r, "blocks.0.alpha");
  const auto& beta = values(r, "blocks.0.beta");
  std::vector<double> eigen;
  for (int64_t n = 0; n < kB * kT; ++n)
    for (int64_t h = 0; h < rec.H; ++h) {
      const float* k = rec.k.data + n * rec.k.row + h * rec.k.head;
      double kk = 0;
      for (int64_t j = 0; j < rec.Dk; ++j) kk += double(k[j]) * k[j];
      ASSERT_NEAR(kk, 1.0, 1e-4) << "k is L2-normalised";
      const size_t g = size_t(n * rec.H + h);
      eigen.push_back(double(alpha[g]) * (1 - double(beta[g]) * kk));
      ASSERT_EQ(alpha[g], rec.a[g]);
      ASSERT_EQ(beta[g], rec.b[g]);
    }
  expect_close(values(r, "blocks.0.eigenvalue"), eigen, "alpha (1 - beta)");
  const auto truth = step_linear(rec);
  expect_close(values(r, "blocks.0.state_norm"), truth.state_norm, "|S|");
  expect_close(values(r, "blocks.0.write_error"), truth.write_error, "|S k - v|");
}

INSTANTIATE_TEST_SUITE_P(BothRanges, GdnProbes, ::testing::Values("01", "pm1"));

// ---- Transformer ----------------------------------------------------------------------------

TEST(TransformerProbes, AttentionEntropyAndMapMatchAnExplicitSoftmax) {
  Probed r = probe("t");
  auto& block = dynamic_cast<TransformerBlock<float>&>(r.model->block(0));
  const auto a = block.attention(r.pass);
  const int64_t H = a.H, Dh = a.Dh;
  std::vector<double> entropy(size_t(kB * kT * H)), map(size_t(kB * H * kT * kT), 0.0);
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < kT; ++t) {
        std::vector<double> score;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t d = 0; d < Dh; ++d)
            dot +=
                double(a.q[((b * kT + t) * H + h) * Dh + d]) * a.k[((b * kT + s) * H + h) * Dh + d];
          score.push_back(dot / std::sqrt(double(Dh)));
        }
        const double top = *std::max_element(score.begin(), score.end());
        double z = 0;
        for (double s : score) z += std::exp(s - top);
        double e = 0;
        for (int64_t s = 0; s <= t; ++s) {
          const double p = std::exp(score[size_t(s)] - top) / z;
          e -= p * std::log(p);
          map[size_t(((b * H + h) * kT + t) * kT + s)] = p;
        }
        entropy[size_t((b * kT + t) * H + h)] = e;
      }
  expect_close(values(r, "blocks.0.attention_entropy"), entropy, "entropy", 1e-4);
  expect_close(values(r, "blocks.0.attention_map"), map, "map", 1e-5);
  EXPECT_EQ(r.sink.find("blocks.0.attention_map")->axes,
            (std::vector<std::string>{"sample", "head", "query", "key"}));
}

TEST(TransformerProbes, AttentionMapIsLeftOutBeyondItsLengthLimit) {
  auto model = random_model(small_config("t", "01"));
  const ProbeSink sink = probe_batch(*model, random_batch(5), kT - 1);
  EXPECT_NE(sink.find("blocks.0.attention_entropy"), nullptr);
  EXPECT_EQ(sink.find("blocks.0.attention_map"), nullptr);
}

TEST(ModelProbes, RowsOfUnequalLengthAreRefused) {
  // Every series has one time axis for all samples: padded rows would mix padding into it.
  auto model = random_model(small_config("s", "01"));
  Batch b = random_batch(5);
  b.lengths[0] = 3;
  EXPECT_THROW(probe_batch(*model, b), Error);
}

}  // namespace
}  // namespace statelab
