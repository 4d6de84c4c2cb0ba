// The dashboard's side computations: quick evals and probe views on a CPU copy of a model.
#include "gui/analysis.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.hpp"
#include "lab/evaluate.hpp"
#include "lab/trainer.hpp"
#include "probes/probe_pass.hpp"

namespace statelab::gui {

std::vector<int> quick_eval_lengths(const RunConfig& cfg, const Task& task, int points) {
  const std::vector<int> all = task.lengths_in(cfg.task.train_lengths[0], cfg.eval.lengths[1]);
  if (all.empty()) return {};
  std::vector<int> out;
  const int n = int(all.size()), k = std::max(points, 2);
  for (int i = 0; i < k; ++i) out.push_back(all[size_t(int64_t(i) * (n - 1) / (k - 1))]);
  const auto train = task.lengths_in(cfg.task.train_lengths[0], cfg.task.train_lengths[1]);
  if (!train.empty()) out.push_back(train.back());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

LengthCurve quick_eval(LoadedRun& run, const std::vector<int>& lengths, int samples, int step,
                       const std::string& label) {
  const RunConfig& cfg = run.config;
  LengthCurve curve;
  curve.label = label;
  curve.step = step;
  curve.train_lo = cfg.task.train_lengths[0];
  curve.train_hi = cfg.task.train_lengths[1];
  for (int L : lengths) {
    EvalConfig e = cfg.eval;
    e.lengths = {L, L};
    e.length_step = 1;
    e.samples = std::min(samples, cfg.eval.samples);
    reserve_tokens(run, eval_max_tokens(e));
    const EvalResult r = evaluate(*run.model, *run.task, readout_from_name(cfg.task.readout), e,
                                  cfg.task.train_lengths);
    for (const auto& p : r.per_length) {
      curve.lengths.push_back(p.length);
      curve.accuracy.push_back(p.accuracy);
    }
  }
  return curve;
}

namespace {

// Transformer attention maps are probed up to this length (T × T per head and sample).
constexpr int64_t kAttentionMapMax = 128;

// Row `row` of every series of a pass, as a pass of one sample.
std::vector<ProbeSeries> one_row(const std::vector<ProbeSeries>& all, int64_t row, int64_t rows) {
  std::vector<ProbeSeries> out;
  for (const auto& s : all) {
    ProbeSeries r = s;
    const size_t per_row = s.values.size() / size_t(rows);
    r.values.assign(s.values.begin() + int64_t(per_row) * row,
                    s.values.begin() + int64_t(per_row) * (row + 1));
    r.shape[0] = 1;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<int32_t> ints_of(const std::vector<ProbeSeries>& series, const char* name) {
  for (const auto& s : series)
    if (s.name == name) return std::vector<int32_t>(s.values.begin(), s.values.end());
  return {};
}

// Decoded latent state and PCA coordinates of every position of the model's last forward.
void read_out(Model<float>& model, const StateReadout& readout, int layer, int64_t tokens,
              std::vector<int32_t>& decoded, std::vector<float>& pca) {
  const int64_t D = model.config().d_model;
  const float* h = model.residual(layer + 1).data;
  decoded.resize(size_t(tokens));
  pca.resize(size_t(tokens) * 2);
  for (int64_t i = 0; i < tokens; ++i) {
    decoded[size_t(i)] = readout.decoders[size_t(layer)].predict(h + i * D);
    readout.pca[size_t(layer)].project(h + i * D, &pca[size_t(i) * 2]);
  }
}

// The held-out probe set: the eval set's first probe_samples sequences of the requested length
// (0: twice the longest training length, within the eval maximum), cut to one the task accepts.
Batch probe_set(const RunConfig& cfg, const Task& task, const AnalysisRequest& q) {
  const int wanted = q.probe_length > 0
                         ? q.probe_length
                         : std::min(cfg.eval.lengths[1], 2 * cfg.task.train_lengths[1]);
  const std::vector<int> accepted = task.lengths_in(1, std::max(wanted, 1));
  SL_CHECK(!accepted.empty(), "no length the task accepts up to " + std::to_string(wanted));
  Batch set;
  Rng rng(cfg.eval.seed, kStreamEvalData, uint64_t(accepted.back()));
  task.sample(rng, std::max(q.probe_samples, 1), accepted.back(),
              readout_from_name(cfg.task.readout), set);
  return set;
}

}  // namespace

ProbeView probe_view(LoadedRun& run, const StateReadout& state, const AnalysisRequest& q) {
  const RunConfig& cfg = run.config;
  const Task& task = *run.task;
  const Batch set = probe_set(cfg, task, q);
  const int T = set.length, N = set.batch;

  ProbeView v;
  v.step = q.step;
  v.layers = run.model->n_blocks();
  v.vocab = task.vocab().names;
  v.train_hi = cfg.task.train_lengths[1];
  v.probe_set_samples = N;
  reserve_tokens(run, int64_t(N) * T);
  ProbeSink sink = probe_batch(*run.model, set, kAttentionMapMax);
  v.decoding_accuracy.assign(size_t(v.layers), {});
  std::vector<std::vector<int32_t>> set_decoded(size_t(v.layers));
  std::vector<std::vector<float>> set_pca(size_t(v.layers));
  for (int l = 0; l < v.layers; ++l) {
    read_out(*run.model, state, l, int64_t(N) * T, set_decoded[size_t(l)], set_pca[size_t(l)]);
    auto& acc = v.decoding_accuracy[size_t(l)];
    for (int t = 0; t < T; ++t) {
      int scored = 0, right = 0;
      for (int i = 0; i < N; ++i) {
        const int32_t truth = set.latent[size_t(i * T + t)];
        if (truth < 0) continue;
        ++scored;
        right += set_decoded[size_t(l)][size_t(i * T + t)] == truth;
      }
      acc.push_back(scored > 0 ? double(right) / scored : std::numeric_limits<double>::quiet_NaN());
    }
  }

  v.decoded.assign(size_t(v.layers), {});
  v.pca.assign(size_t(v.layers), {});
  if (q.typed.empty()) {
    const int row = std::clamp(q.sample, 0, N - 1);
    v.label = "held-out sample " + std::to_string(row) + " of length " + std::to_string(T);
    v.series = one_row(sink.series(), row, N);
    for (int l = 0; l < v.layers; ++l) {
      const auto& d = set_decoded[size_t(l)];
      v.decoded[size_t(l)].assign(d.begin() + int64_t(row) * T, d.begin() + int64_t(row + 1) * T);
      const auto& c = set_pca[size_t(l)];
      v.pca[size_t(l)].assign(c.begin() + int64_t(row) * T * 2,
                              c.begin() + int64_t(row + 1) * T * 2);
    }
    v.length = T;
  } else {
    const Batch typed =
        typed_input(task, readout_from_name(cfg.task.readout), q.typed, "typed input");
    reserve_tokens(run, typed.length);
    v.label = "typed: " + q.typed;
    v.series = probe_batch(*run.model, typed, kAttentionMapMax).series();
    for (int l = 0; l < v.layers; ++l)
      read_out(*run.model, state, l, typed.length, v.decoded[size_t(l)], v.pca[size_t(l)]);
    v.length = typed.length;
  }
  if (q.step > 0) v.label += ", step " + std::to_string(q.step);
  v.tokens = ints_of(v.series, "tokens");
  v.latent = ints_of(v.series, "latent");
  v.answer = ints_of(v.series, "answer");
  v.target = ints_of(v.series, "target");
  return v;
}

AnalysisResult analyze(const AnalysisRequest& q) {
  AnalysisResult out;
  out.compare = q.compare;
  try {
    SL_CHECK(q.params, "analysis without parameters");
    LoadedRun run = cpu_run(q.config, q.params->data());
    if (q.eval) {
      const auto lengths = quick_eval_lengths(q.config, *run.task, q.eval_points);
      out.eval =
          std::make_shared<LengthCurve>(quick_eval(run, lengths, q.eval_samples, q.step, q.label));
    }
    if (!q.probe && q.export_dir.empty()) return out;
    // Decoders and PCA fitted once, for the view and the export alike.
    const StateReadout state = fit_state_readout(run, q.fit_samples, q.config.eval.seed);
    if (q.probe) out.probe = std::make_shared<ProbeView>(probe_view(run, state, q));
    if (!q.export_dir.empty()) {
      const Batch set = probe_set(q.config, *run.task, q);
      const int T = set.length;
      ProbeExportOptions o;
      o.out_dir = q.export_dir;
      o.manifest_info = {{"run", q.label},
                         {"config_hash", config_hash(q.config)},
                         {"step", q.step},
                         {"input", "held-out samples of length " + std::to_string(T)}};
      export_probes(run, state, set, o);
      out.messages.push_back("exported traces of " + std::to_string(set.batch) +
                             " samples of length " + std::to_string(T) + " to " + q.export_dir);
    }
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

Analyzer::Analyzer(std::function<void(AnalysisResult)> deliver)
    : deliver_(std::move(deliver)), thread_([this] { loop(); }) {}

Analyzer::~Analyzer() { shutdown(); }

void Analyzer::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Analyzer::request(AnalysisRequest r) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    (r.compare ? pending_compare_ : pending_run_) = std::move(r);
  }
  wake_.notify_all();
}

bool Analyzer::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return working_ || pending_run_ || pending_compare_;
}

bool Analyzer::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_run_ || pending_compare_;
}

void Analyzer::loop() {
  // Below training and drawing: on a machine with few cores, analysis waits, not the run.
  setpriority(PRIO_PROCESS, pid_t(gettid()), 10);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return quit_ || pending_run_ || pending_compare_; });
    if (quit_) return;
    auto& slot = pending_run_ ? pending_run_ : pending_compare_;
    AnalysisRequest r = std::move(*slot);
    slot.reset();
    working_ = true;
    lock.unlock();
    AnalysisResult result = analyze(r);
    deliver_(std::move(result));
    lock.lock();
    working_ = false;
  }
}

}  // namespace statelab::gui
