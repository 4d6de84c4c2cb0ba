// Loading a run for probing, fitting the state read-outs, and the streaming export.
#include "probes/probe_run.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "kernels/error.hpp"
#include "kernels/precision.hpp"
#include "lab/checkpoint.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "probes/probe_pass.hpp"
#include "probes/trace_writer.hpp"
#include "tasks/registry.hpp"

namespace statelab {

namespace fs = std::filesystem;

namespace {

// Small passes (size estimates, typed inputs) fit without a rebuild.
constexpr int64_t kInitialTokens = 64;
// Rows per forward while fitting the read-outs, at most (training lengths are short).
constexpr int kFitRows = 64;
// What one pass may take while fitting (export passes have ProbeExportOptions::memory_budget).
constexpr int64_t kFitBudget = int64_t(256) << 20;

// A forward-only model of the run on its device.
std::unique_ptr<Model<float>> make_model(const LoadedRun& run, int64_t tokens) {
  return std::make_unique<Model<float>>(run.config.model, run.task->vocab().size(), tokens, 0,
                                        run.device.exec);
}

// Hidden states of the valid positions of the last forward, per layer l = 1..blocks.
void gather_hidden(Model<float>& model, const Batch& batch, std::vector<std::vector<float>>& x,
                   std::vector<int32_t>& labels) {
  const int64_t D = model.config().d_model, n = int64_t(batch.tokens.size());
  for (int64_t i = 0; i < n; ++i)
    if (batch.latent[size_t(i)] >= 0) labels.push_back(batch.latent[size_t(i)]);
  for (int l = 1; l <= model.n_blocks(); ++l) {
    const float* h = model.host_residual(l);
    auto& out = x[size_t(l - 1)];
    for (int64_t i = 0; i < n; ++i)
      if (batch.latent[size_t(i)] >= 0) out.insert(out.end(), h + i * D, h + (i + 1) * D);
  }
}

safetensors::DType dtype_of(const ProbeSeries& s) {
  return s.kind == ProbeKind::label ? safetensors::DType::I32 : safetensors::DType::F32;
}

}  // namespace

Batch typed_input(const Task& task, Readout readout, const std::string& text,
                  const std::string& what) {
  std::vector<int32_t> tokens;
  try {
    tokens = task.encode(text);
  } catch (const ConfigError& e) {
    throw ConfigError(what + ": " + e.what());
  }
  if (tokens.empty()) throw ConfigError(what + " \"" + text + "\": holds no token");
  const int n = int(tokens.size());
  Batch b;
  b.resize(1, n);
  b.tokens = tokens;
  try {
    task.label(tokens.data(), n, b.targets.data(), b.latent.data());
  } catch (const ConfigError& e) {
    throw ConfigError(what + ": " + e.what());
  }
  if (readout == Readout::final) std::fill(b.targets.begin(), b.targets.end() - 1, Batch::kIgnore);
  return b;
}

LoadedRun cpu_run(const RunConfig& cfg, const float* params) {
  LoadedRun run;
  run.config = cfg;
  run.task = make_task(cfg.task.name);
  run.model = make_model(run, kInitialTokens);
  run.capacity = kInitialTokens;
  std::copy_n(params, run.model->params().size(), run.model->params().values());
  return run;
}

LoadedRun load_run(const std::string& dir, const std::string& device) {
  LoadedRun run;
  run.dir = dir;
  const std::string config_path = dir + "/config.json";
  if (!fs::is_directory(dir)) throw IoError(dir + ": no such run directory");
  if (!fs::exists(config_path)) throw IoError(dir + ": not a run directory (no config.json)");
  run.config = load_config(config_path);
  run.task = make_task(run.config.task.name);
  run.device = open_device(device.empty() ? run.config.device : device,
                           precision_from_name(run.config.precision), "--device");
  run.model = make_model(run, kInitialTokens);
  run.capacity = kInitialTokens;
  const std::string final_model = dir + "/model.safetensors";
  if (fs::exists(final_model)) {
    run.source = final_model;
    run.step = load_model(*run.model, final_model);
    return run;
  }
  if (list_checkpoints(dir).empty())
    throw IoError(dir + ": no model.safetensors and no checkpoint under " + dir +
                  "/checkpoints: nothing to probe yet (train the run, or wait for its first "
                  "checkpoint)");
  const Resumed newest =
      load_newest_checkpoint(dir, *run.model, run.config, [](const std::string&) {});
  run.source = newest.path;
  run.step = newest.state.step;
  return run;
}

void reserve_tokens(LoadedRun& run, int64_t max_tokens) {
  if (max_tokens <= run.capacity) return;
  // The old model goes before the new one is built, so the two arenas never coexist.
  auto& old = run.model->params();
  old.to_host();
  std::vector<float> values(old.host_values(), old.host_values() + old.size());
  run.model.reset();
  run.model = make_model(run, max_tokens);
  std::copy(values.begin(), values.end(), run.model->params().host_values());
  run.model->params().to_device();
  run.capacity = max_tokens;
}

int64_t probe_bytes_per_sample(LoadedRun& run, int64_t T, int64_t map_max_length) {
  const double arena_per_token = double(run.model->arena_bytes()) / double(run.capacity);
  // What the series hold per token, from a short pass (values do not matter, only sizes).
  Batch tiny;
  tiny.resize(1, 8);
  std::fill(tiny.tokens.begin(), tiny.tokens.end(), 1 % run.task->vocab().size());
  tiny.lengths = {8};
  ProbeSink sink = probe_batch(*run.model, tiny, 0);
  double series = 0;
  for (const auto& s : sink.series()) series += double(s.values.size());
  // The sink's floats, the blocks' copies in the model's scalar, and the hidden states read out.
  const double per_token = arena_per_token + 2.0 * 4.0 * series / 8.0;
  int64_t maps = 0;
  if (T <= map_max_length)
    for (int i = 0; i < run.model->n_blocks(); ++i)
      if (run.model->block(i).cell() == "transformer")
        maps += 2 * 4 * run.config.model.heads * T * T;
  return int64_t(per_token * double(T)) + maps;
}

StateReadout fit_state_readout(LoadedRun& run, int samples, uint64_t seed, double lambda) {
  const RunConfig& cfg = run.config;
  const Task& task = *run.task;
  StateReadout out;
  out.fit_samples = samples;
  out.fit_lengths = cfg.task.train_lengths;
  out.lambda = lambda;
  const int blocks = run.model->n_blocks();
  const int64_t D = cfg.model.d_model, hi = cfg.task.train_lengths[1];
  const int rows = int(std::clamp<int64_t>(
      kFitBudget / std::max<int64_t>(probe_bytes_per_sample(run, hi, 0), 1), 1, kFitRows));
  reserve_tokens(run, int64_t(rows) * hi);
  std::vector<std::vector<float>> hidden(static_cast<size_t>(blocks));
  for (auto& h : hidden) h.reserve(size_t(samples) * size_t(hi) * size_t(D));  // no regrowth
  std::vector<int32_t> labels;
  Batch batch;
  for (int done = 0, index = 0; done < samples; done += rows, ++index) {
    Rng rng(seed, kStreamProbeFit, uint64_t(index));
    task.sample_mixed(rng, std::min(rows, samples - done), cfg.task.train_lengths[0],
                      cfg.task.train_lengths[1], readout_from_name(cfg.task.readout), batch);
    // Only the blocks' outputs are read out: an evaluation pass, which stores no gates or states.
    run.model->forward(batch.tokens.data(), Pass::evaluation(batch.batch, batch.length));
    run.model->download_activations();
    gather_hidden(*run.model, batch, hidden, labels);
  }
  const int64_t n = int64_t(labels.size());
  for (int l = 0; l < blocks; ++l) {
    out.decoders.push_back(
        fit_latent_decoder(hidden[size_t(l)].data(), labels.data(), n, D, lambda));
    out.pca.push_back(fit_pca2(hidden[size_t(l)].data(), n, D));
  }
  return out;
}

ProbeExportResult export_probes(LoadedRun& run, const StateReadout& readout, const Batch& inputs,
                                const ProbeExportOptions& o) {
  const int64_t T = inputs.length, N = inputs.batch;
  const int64_t per_sample = probe_bytes_per_sample(run, T, o.attention_map_max_length);
  const int64_t group =
      std::clamp<int64_t>(o.memory_budget / std::max<int64_t>(per_sample, 1), 1, N);
  const int layers = run.model->n_blocks();
  const int64_t D = run.config.model.d_model;
  reserve_tokens(run, group * T);

  ProbeExportResult result;
  result.decoding_accuracy.assign(size_t(layers), std::vector<double>(size_t(T), 0.0));
  std::vector<double> scored(size_t(T), 0.0);
  std::unique_ptr<TraceWriter> writer;
  Batch part;
  for (int64_t first = 0; first < N; first += group) {
    const int64_t g = std::min(group, N - first);
    part.resize(int(g), int(T));
    auto rows = [&](const std::vector<int32_t>& from, std::vector<int32_t>& to) {
      std::copy_n(from.begin() + first * T, g * T, to.begin());
    };
    rows(inputs.tokens, part.tokens);
    rows(inputs.targets, part.targets);
    rows(inputs.latent, part.latent);
    std::fill(part.lengths.begin(), part.lengths.end(), int32_t(T));
    ProbeSink sink = probe_batch(*run.model, part, o.attention_map_max_length);

    // The read-outs of this group: decoded latent state and PCA coordinates per layer.
    std::vector<int32_t> decoded(size_t(g * T * layers));
    std::vector<float> pca(size_t(g * T * layers * 2));
    for (int l = 0; l < layers; ++l) {
      const float* h = run.model->host_residual(l + 1);
      for (int64_t i = 0; i < g * T; ++i) {
        const int32_t guess = readout.decoders[size_t(l)].predict(h + i * D);
        decoded[size_t(i * layers + l)] = guess;
        readout.pca[size_t(l)].project(h + i * D, &pca[size_t((i * layers + l) * 2)]);
        const int32_t truth = part.latent[size_t(i)];
        if (truth < 0) continue;
        result.decoding_accuracy[size_t(l)][size_t(i % T)] += guess == truth ? 1.0 : 0.0;
        if (l == 0) scored[size_t(i % T)] += 1.0;
      }
    }
    if (!writer) {
      std::vector<TraceArray> specs;
      for (const auto& s : sink.series()) {
        auto shape = s.shape;
        shape[0] = N;
        specs.push_back({s.name, s.axes, shape, dtype_of(s), s.meaning, probe_kind_name(s.kind)});
      }
      specs.push_back({"decoded_latent",
                       {"sample", "time", "layer"},
                       {N, T, layers},
                       safetensors::DType::I32,
                       "latent state decoded linearly from the residual stream after block "
                       "layer (decoders fitted at training lengths)",
                       "label"});
      specs.push_back({"state_pca",
                       {"sample", "time", "layer", "component"},
                       {N, T, layers, 2},
                       safetensors::DType::F32,
                       "residual stream after block layer projected on its first two principal "
                       "components at training lengths",
                       "value"});
      specs.push_back({"decoding_accuracy",
                       {"layer", "time"},
                       {layers, T},
                       safetensors::DType::F32,
                       "fraction of samples whose latent state the layer's decoder gets right "
                       "at each position (NaN: no latent defined there)",
                       "value"});
      writer = std::make_unique<TraceWriter>(o.out_dir, std::move(specs), o.manifest_info);
      result.first_group = sink.series();
      result.first_group_decoded.assign(size_t(layers), {});
      for (int l = 0; l < layers; ++l)
        for (int64_t i = 0; i < g * T; ++i)
          result.first_group_decoded[size_t(l)].push_back(decoded[size_t(i * layers + l)]);
    }
    for (const auto& s : sink.series()) {
      if (s.kind == ProbeKind::label) {
        std::vector<int32_t> ints(s.values.begin(), s.values.end());
        writer->append(s.name, ints.data(), int64_t(ints.size()));
      } else {
        writer->append(s.name, s.values.data(), int64_t(s.values.size()));
      }
    }
    writer->append("decoded_latent", decoded.data(), int64_t(decoded.size()));
    writer->append("state_pca", pca.data(), int64_t(pca.size()));
    result.summary.add(sink.series());
  }
  std::vector<float> accuracy;
  for (auto& per_layer : result.decoding_accuracy)
    for (int64_t t = 0; t < T; ++t) {
      per_layer[size_t(t)] = scored[size_t(t)] > 0 ? per_layer[size_t(t)] / scored[size_t(t)]
                                                   : std::numeric_limits<double>::quiet_NaN();
      accuracy.push_back(float(per_layer[size_t(t)]));
    }
  writer->append("decoding_accuracy", accuracy.data(), int64_t(accuracy.size()));
  writer->finish();
  const std::string csv_path = (fs::path(o.out_dir) / "summary.csv").string();
  write_file_atomic(csv_path, result.summary.csv());
  for (const char* f : {"traces.safetensors", "traces.npz", "manifest.json", "summary.csv"})
    result.files.push_back((fs::path(o.out_dir) / f).string());
  return result;
}

}  // namespace statelab
