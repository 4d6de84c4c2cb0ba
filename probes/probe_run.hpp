// Probing a trained run: load its model on the CPU, fit the latent-state decoders and the
// state-space PCA at training lengths, then stream probe passes over the chosen inputs into a
// TraceWriter (traces.safetensors, traces.npz, manifest.json) and a summary, a few samples at a
// time, so memory stays bounded by one group of samples whatever the export's size. `lab probe`
// and the dashboard share it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cells/model.hpp"
#include "lab/compute_device.hpp"
#include "lab/config.hpp"
#include "probes/decoding.hpp"
#include "probes/summary.hpp"
#include "tasks/task.hpp"

namespace statelab {

struct LoadedRun {
  std::string dir;
  RunConfig config;
  std::unique_ptr<Task> task;
  ComputeDevice device;                 // where the model lives; outlives it
  std::unique_ptr<Model<float>> model;  // on `device`
  std::string source;                   // the parameter file read
  int step = -1;                        // training steps behind it (-1: not recorded)
  int64_t capacity = 0;                 // tokens the model's arena serves per pass
};

// Reads config.json and model.safetensors, or the newest checkpoint while the run has no final
// model yet, into a model sized for small passes on `device` ("cpu", "auto" or "cuda:N"; empty:
// the run's own device, at its precision). IoError naming the directory when there is no config
// or nothing to load; ConfigError naming --device when the device cannot be opened.
LoadedRun load_run(const std::string& dir, const std::string& device = "cpu");
// A CPU model of `cfg` holding a copy of `params` (a run in training, probed beside it).
LoadedRun cpu_run(const RunConfig& cfg, const float* params);
// A typed sequence of token names as a one-row batch labelled by the task's own semantics;
// ConfigError prefixed by `what` (the argument or field it came from) for an unknown symbol.
Batch typed_input(const Task& task, Readout readout, const std::string& text,
                  const std::string& what);
// Rebuilds the model for passes of up to max_tokens tokens, keeping its parameters.
void reserve_tokens(LoadedRun& run, int64_t max_tokens);

// Decoders and PCA per layer (layer l = the residual stream after block l − 1, l = 1..blocks),
// fitted on hidden states of held-out sequences at the run's training lengths.
struct StateReadout {
  std::vector<LatentDecoder> decoders;
  std::vector<Pca2> pca;
  int fit_samples = 0;
  std::vector<int> fit_lengths;  // [lo, hi]
  double lambda = 0;
};
StateReadout fit_state_readout(LoadedRun& run, int samples, uint64_t seed, double lambda = 1e-3);

struct ProbeExportOptions {
  std::string out_dir;
  int64_t attention_map_max_length = 128;
  // Bytes one probe pass may take: as many samples go through at once as fit (at least one).
  int64_t memory_budget = int64_t(256) << 20;
  nlohmann::json manifest_info;  // the run's and the input's description (TraceWriter)
};

struct ProbeExportResult {
  ProbeSummary summary;
  // Per layer and position: decoding accuracy over the samples (NaN where no latent is defined).
  std::vector<std::vector<double>> decoding_accuracy;
  // The first group's pass, for printing a typed input position by position.
  std::vector<ProbeSeries> first_group;
  std::vector<std::vector<int32_t>> first_group_decoded;  // [layer][sample · time]
  std::vector<std::string> files;
};

// Every row of `inputs` must hold inputs.length tokens. Writes the traces under out_dir and
// summary.csv beside them; returns what the console report needs.
ProbeExportResult export_probes(LoadedRun& run, const StateReadout& readout, const Batch& inputs,
                                const ProbeExportOptions& o);

// Bytes a probe pass needs per sample of length T on this model (the activation arena, the probe
// series and their copies); used to size the passes and to refuse a length before allocating it.
int64_t probe_bytes_per_sample(LoadedRun& run, int64_t T, int64_t map_max_length);

}  // namespace statelab
