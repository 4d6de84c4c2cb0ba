// `lab probe`: inputs, checks that come before any work, and the console report.
#include "probes/probe_command.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/files.hpp"
#include "probes/probe_run.hpp"

namespace statelab {

namespace fs = std::filesystem;

namespace {

const char* const kExportFiles[] = {"traces.safetensors", "traces.npz", "manifest.json",
                                    "summary.csv"};

// MemAvailable from /proc/meminfo; 0 when unknown.
int64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(1 << 30));
  return text;
}

// Before anything of that size is allocated: the inputs themselves and a pass of one sample.
void check_memory(LoadedRun& run, int64_t samples, int64_t T, int64_t map_max) {
  const int64_t one = probe_bytes_per_sample(run, T, map_max);
  const int64_t need = one + samples * T * 4 * int64_t(sizeof(int32_t));
  const int64_t have = available_memory();
  if (have > 0 && need > have)
    throw ConfigError("--length " + std::to_string(T) + ": a probe pass of one sample of this " +
                      "model needs " + gib(double(need)) + " (" + std::to_string(one / T) +
                      " bytes per token), but " + gib(double(have)) +
                      " are available; probe a shorter length");
}

// Refuses to replace an earlier export unless told to, and an --out that cannot be written,
// before any work is done.
void prepare_out(const std::string& out, bool force) {
  if (!force)
    for (const char* f : kExportFiles)
      if (fs::exists(fs::path(out) / f))
        throw ConfigError("--out " + out + ": holds an earlier export (" + f +
                          "); pass --force to replace it");
  ensure_directory(out);
  if (::access(out.c_str(), W_OK) != 0)
    throw IoError("--out " + out + ": directory is not writable");
}

std::string layer_name(int l) { return "block " + std::to_string(l - 1); }

// Largest position P (1-based) such that every scored position up to P decodes >= 0.99.
int tracked_up_to(const std::vector<double>& accuracy) {
  int upto = 0;
  for (size_t t = 0; t < accuracy.size(); ++t) {
    if (std::isnan(accuracy[t])) continue;
    if (accuracy[t] < 0.99) break;
    upto = int(t) + 1;
  }
  return upto;
}

double mean_over(const std::vector<double>& v, size_t lo, size_t hi) {
  double sum = 0;
  int n = 0;
  for (size_t t = lo; t < std::min(hi, v.size()); ++t)
    if (!std::isnan(v[t])) sum += v[t], ++n;
  return n ? sum / n : std::nan("");
}

void print_decoding(const ProbeExportResult& r, const StateReadout& readout, int train_hi,
                    int64_t T) {
  std::printf(
      "\nlatent-state decoding per layer (ridge on the residual stream, fitted on %d "
      "sequences of lengths %d-%d):\n",
      readout.fit_samples, readout.fit_lengths[0], readout.fit_lengths[1]);
  const std::string inside_head = "acc 1-" + std::to_string(train_hi);
  std::printf("  %-9s %8s %10s %12s %10s\n", "layer", "fit acc", inside_head.c_str(),
              "acc beyond", "tracks to");
  for (size_t l = 0; l < r.decoding_accuracy.size(); ++l) {
    const auto& acc = r.decoding_accuracy[l];
    const double inside = mean_over(acc, 0, size_t(train_hi));
    const double beyond = mean_over(acc, size_t(train_hi), size_t(T));
    char beyond_text[16] = "-";
    if (!std::isnan(beyond)) std::snprintf(beyond_text, sizeof beyond_text, "%.3f", beyond);
    std::printf("  %-9s %8.3f %10.3f %12s %10d\n", layer_name(int(l) + 1).c_str(),
                readout.decoders[l].train_accuracy, inside, beyond_text, tracked_up_to(acc));
  }
}

void print_summary(const ProbeSummary& summary) {
  std::printf("\ninside the cells (mean over samples, steps and heads):\n");
  const nlohmann::json all = summary.to_json();
  for (const auto& [name, s] : all.items()) {
    const std::string kind = s.value("kind", "");
    if (kind == "value" || !s["mean"].is_number()) continue;
    std::printf("  %-32s %-10s mean %9.4g", name.c_str(), kind.c_str(), s["mean"].get<double>());
    if (s.contains("saturated_fraction"))
      std::printf("  saturated %.3f", s["saturated_fraction"].get<double>());
    if (s.contains("negative_fraction"))
      std::printf("  negative %.3f", s["negative_fraction"].get<double>());
    if (s.contains("growth_exponent") && s["growth_exponent"].is_number())
      std::printf("  max %9.4g  growth t^%.2f", s["max"].get<double>(),
                  s["growth_exponent"].get<double>());
    std::printf("\n");
  }
}

// Position by position for a short typed input: token, latent state, the model's answer and
// confidence, and what each layer's decoder reads.
void print_positions(const Task& task, const ProbeExportResult& r) {
  auto series = [&](const char* name) -> const ProbeSeries* {
    for (const auto& s : r.first_group)
      if (s.name == name) return &s;
    return nullptr;
  };
  const ProbeSeries* tokens = series("tokens");
  const ProbeSeries* latent = series("latent");
  const ProbeSeries* answer = series("answer");
  const ProbeSeries* confidence = series("confidence");
  const int64_t T = tokens->shape[1];
  std::printf("\n  %4s %8s %7s %8s %6s", "t", "token", "latent", "answer", "conf");
  for (size_t l = 0; l < r.first_group_decoded.size(); ++l)
    std::printf(" %8s", ("dec " + std::to_string(l)).c_str());
  std::printf("\n");
  const auto& names = task.vocab().names;
  for (int64_t t = 0; t < T; ++t) {
    std::printf("  %4lld %8s %7d %8s %6.3f", static_cast<long long>(t + 1),
                names.at(size_t(tokens->values[size_t(t)])).c_str(), int(latent->values[size_t(t)]),
                names.at(size_t(answer->values[size_t(t)])).c_str(),
                double(confidence->values[size_t(t)]));
    for (const auto& d : r.first_group_decoded) std::printf(" %8d", d[size_t(t)]);
    std::printf("\n");
  }
}

}  // namespace

int run_probe(const ProbeOptions& o) {
  check_device(o.device);
  if (o.samples < 1)
    throw ConfigError("--samples " + std::to_string(o.samples) + ": expected >= 1");
  if (o.length < 0) throw ConfigError("--length " + std::to_string(o.length) + ": expected >= 1");
  if (o.fit_samples < 8)
    throw ConfigError("--fit-samples " + std::to_string(o.fit_samples) + ": expected >= 8");
  if (o.attention_map_max_length < 0)
    throw ConfigError("--attention-map-max " + std::to_string(o.attention_map_max_length) +
                      ": expected >= 0");
  LoadedRun run = load_run(o.run_dir, o.device);
  const RunConfig& cfg = run.config;
  const Task& task = *run.task;
  const Readout readout = readout_from_name(cfg.task.readout);
  const uint64_t seed = o.seed >= 0 ? uint64_t(o.seed) : cfg.eval.seed;

  ProbeExportOptions ex;
  ex.out_dir = o.out.empty() ? (fs::path(o.run_dir) / "traces").string() : o.out;
  ex.attention_map_max_length = o.attention_map_max_length;
  Batch inputs;
  std::string what;
  if (!o.input.empty()) {
    inputs = typed_input(task, readout, o.input, "--input");
    check_memory(run, 1, inputs.length, ex.attention_map_max_length);
    what = "the typed input (" + std::to_string(inputs.length) + " tokens)";
  } else {
    const int length = o.length > 0 ? o.length : cfg.eval.lengths[1];
    if (!task.accepts_length(length))
      throw ConfigError("--length " + std::to_string(length) + ": " + task.name() + " accepts " +
                        task.length_rule());
    check_memory(run, o.samples, length, ex.attention_map_max_length);
    Rng rng(seed, kStreamEvalData, uint64_t(length));
    task.sample(rng, o.samples, length, readout, inputs);
    what = std::to_string(o.samples) + " held-out samples of length " + std::to_string(length) +
           " (seed " + std::to_string(seed) + ")";
  }
  prepare_out(ex.out_dir, o.force);

  std::printf("probing %s (%s, %s, step %d, from %s) on %s\n", o.run_dir.c_str(),
              cfg.model.blocks.c_str(), cfg.task.name.c_str(), run.step, run.source.c_str(),
              what.c_str());
  std::fflush(stdout);
  const StateReadout state = fit_state_readout(run, o.fit_samples, seed);

  nlohmann::json decoded = nlohmann::json::array();
  for (int b = 0; b < inputs.batch; ++b)
    decoded.push_back(
        task.decode(&inputs.tokens[size_t(b) * size_t(inputs.length)], inputs.length));
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < run.model->n_blocks(); ++l) {
    const auto& d = state.decoders[size_t(l)];
    layers.push_back({{"layer", l + 1},
                      {"block", run.model->block(l).cell()},
                      {"decoder_fit_accuracy", d.train_accuracy},
                      {"decoder_classes", d.classes},
                      {"pca_explained",
                       {state.pca[size_t(l)].explained[0], state.pca[size_t(l)].explained[1]}}});
  }
  ex.manifest_info = {
      {"format", "statelab-traces"},
      {"run", o.run_dir},
      {"cell", cfg.model.blocks},
      {"task", cfg.task.name},
      {"task_definition", task.definition()},
      {"latent_definition", task.latent_definition()},
      {"vocab", task.vocab().names},
      {"readout", cfg.task.readout},
      {"train_lengths", cfg.task.train_lengths},
      {"inputs", decoded},
      {"input_kind", o.input.empty() ? "held-out samples" : "typed"},
      {"seed", o.input.empty() ? nlohmann::json(seed) : nlohmann::json()},
      {"checkpoint", run.source},
      {"checkpoint_step", run.step < 0 ? nlohmann::json() : nlohmann::json(run.step)},
      {"config_hash", config_hash(cfg)},
      {"config", to_json(cfg)},
      {"layers", layers},
      {"decoding",
       {{"fit_samples", state.fit_samples},
        {"fit_lengths", state.fit_lengths},
        {"ridge_lambda", state.lambda},
        {"hidden_state", "residual stream after each block"}}}};
  const ProbeExportResult r = export_probes(run, state, inputs, ex);

  if (!o.input.empty() && inputs.length <= 80) print_positions(task, r);
  print_decoding(r, state, cfg.task.train_lengths[1], inputs.length);
  print_summary(r.summary);
  std::printf("\nwrote");
  for (const auto& f : r.files) std::printf(" %s", f.c_str());
  std::printf("\n");
  return 0;
}

}  // namespace statelab
