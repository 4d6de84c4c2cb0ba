// What the dashboard draws: immutable snapshots the training worker publishes and the GUI
// thread reads without locks held while drawing. Heavy parts (probe views, overlays) are shared
// pointers to const data, so publishing a snapshot copies the curves and a few pointers only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cells/probe_sink.hpp"
#include "lab/config.hpp"

namespace statelab::gui {

enum class RunStatus {
  idle,      // nothing loaded
  starting,  // building the model, running the selftest
  running,
  paused,
  stopped,   // stopped on request: a checkpoint is written, Start resumes
  finished,  // trained to the end (or stopped early), evaluated, model.safetensors written
  failed,    // the error is in RunSnapshot::error
  viewing,   // a finished run opened from runs/, not trained here
};
const char* status_name(RunStatus s);
// Whether the worker is inside a training loop (its steps can be paused, stepped, stopped).
bool is_training(RunStatus s);

struct CurvePoint {
  int step = 0;
  double loss = 0, accuracy = 0, lr = 0;
};

// Accuracy against length: a live eval, a finished run's eval.json or a sweep's cell.
struct LengthCurve {
  std::string label;
  std::vector<double> lengths, accuracy;
  std::vector<double> lo, hi;  // a band (min/max over seeds); empty when there is one run
  int train_lo = 0, train_hi = 0;
  int step = 0;  // training step behind it (0: unknown)
};

// One probed input of one model state: every probe series of a single sample plus the
// read-outs the Gates, Memory and State space windows draw.
struct ProbeView {
  std::string label;  // "eval sample 3 of length 120, step 800" or the typed text
  int step = 0;
  int length = 0;
  int layers = 0;  // blocks; read-outs are per layer l = 0..layers-1 (after block l)
  std::vector<std::string> vocab;
  std::vector<ProbeSeries> series;  // sample axis of size 1
  std::vector<int32_t> tokens, latent, answer, target;
  std::vector<std::vector<int32_t>> decoded;  // [layer][t]: latent state decoded linearly
  std::vector<std::vector<float>> pca;        // [layer][t·2]
  std::vector<std::vector<double>> decoding_accuracy;  // [layer][t] over the probe set
  int probe_set_samples = 0;
  int train_hi = 0;
};

struct LogLine {
  double t = 0;  // seconds since the dashboard started
  bool error = false;
  std::string text;
};

struct RunSnapshot {
  uint64_t version = 0;
  RunStatus status = RunStatus::idle;
  std::string error;
  std::string dir, device;
  bool has_config = false;
  RunConfig config;
  int step = 0, total_steps = 0;
  double tokens_per_s = 0, elapsed_s = 0;
  double lr_scale = 1;
  std::vector<CurvePoint> steps;               // every step
  std::vector<CurvePoint> intervals;           // every train.log_every steps (interval means)
  std::vector<std::pair<int, double>> checks;  // held-out accuracy at the longest training length
  std::vector<std::shared_ptr<const LengthCurve>> evals;  // live evals, oldest first
  std::shared_ptr<const LengthCurve> final_eval;          // eval.json
  std::vector<std::string> missing;  // files a viewed run lacks, and what that hides
  std::shared_ptr<const ProbeView> probe;
  // A second run for comparison (Memory), probed on the same input.
  std::string compare_dir;
  std::shared_ptr<const ProbeView> compare_probe;
  std::vector<std::shared_ptr<const LengthCurve>> overlays;  // Length generalization extras
  std::vector<LogLine> log;
  bool analysis_busy = false;
  int analyses = 0;  // analysis results delivered so far
};

}  // namespace statelab::gui
