// The run configuration: one struct per preset section, loaded from JSON by a strict schema.
// Unknown keys, wrong types and out-of-range values are errors that name the file and the JSON
// pointer (`presets/x.json: /model/heads: expected integer >= 1, got 0`); every field has a
// default so presets state only what they change, and config.json records the resolved whole.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cells/model_config.hpp"

namespace statelab {

struct TaskConfig {
  std::string name = "parity";             // a name from the task registry
  std::vector<int> train_lengths = {3, 40};  // [lo, hi]
  // "per_batch": each batch draws one length from train_lengths (cheapest: no padding);
  // "per_sample": each sequence draws its own, padded to the longest (the reference harness).
  std::string length_sampling = "per_batch";
  // "final": loss and accuracy at the last input position only (the xLSTM harness);
  // "per_token": at every position where the task defines a running answer.
  std::string readout = "final";
};

struct TrainConfig {
  int steps = 2000;            // >= 1
  int batch = 64;              // >= 1
  double lr = 1e-3;            // > 0
  double min_lr = 1e-5;        // >= 0, <= lr: the cosine schedule ends here
  int warmup_steps = 200;      // [0, steps]; when unset in a preset: steps / 10
  double weight_decay = 0.1;   // >= 0 (never applied to norms and biases)
  double beta1 = 0.9;          // [0, 1)
  double beta2 = 0.999;        // [0, 1)
  double eps = 1e-8;           // > 0
  double grad_clip = 1.0;      // global-norm clip, > 0; 0 = off
  uint64_t seed = 42;          // every random draw derives from it
  int log_every = 50;          // >= 1: metrics.jsonl line and non-terminal progress line
  // Early stop: every eval_every steps (0 = never) the accuracy at the longest training length
  // is measured on held-out data; training stops once it has been >= early_stop_accuracy for
  // early_stop_evals evaluations in a row (0 = never stop early).
  int eval_every = 0;              // >= 0
  int early_stop_evals = 0;        // >= 0; > 0 needs eval_every > 0
  double early_stop_accuracy = 0.999;  // (0, 1]
  int checkpoint_every = 500;   // >= 0: a checkpoint every N steps (0: only when training stops)
  int keep_checkpoints = 3;     // >= 1: the newest K are kept
  std::string on_nan = "stop";  // "stop" | "skip_step": what a non-finite loss or gradient does
  // Fault injection, accepted only by test builds (section "poison"): parameter
  // poison.parameter is NaN during step poison.step (restored after it), a transient fault in
  // one layer. 0 = off.
  int poison_step = 0;
  std::string poison_parameter;
};

struct EvalConfig {
  std::vector<int> lengths = {40, 256};  // [lo, hi], lo >= 1
  int length_step = 1;                   // >= 1
  int samples = 128;                     // per length, >= 1
  uint64_t seed = 1234;                  // held-out sets come from a stream training never uses
  int batch_tokens = 16384;              // batch × length budget of one eval forward, >= 1
};

struct RunConfig {
  int schema_version = 1;  // must be 1
  std::string name;        // defaults to the preset's file name without .json
  // "auto" (a CUDA device when one answers, else the CPU), "cpu" or "cuda:N".
  std::string device = "auto";
  // Matrix products on the GPU: "fp32" (exact), "tf32" or "bf16" tensor cores; fp32 master
  // weights, optimizer state, recurrent states and gates either way. The CPU ignores it.
  std::string precision = "fp32";
  TaskConfig task;
  ModelConfig model;
  TrainConfig train;
  EvalConfig eval;
};

// Reads a preset, applies `--set a.b=value` overrides (value parsed as JSON, else taken as a
// string), validates, fills defaults. Throws ConfigError naming `source`, the JSON pointer, the
// value and what is allowed.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
RunConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json to_json(const RunConfig& c);
// 16 hex digits (FNV-1a 64 of the resolved config's canonical JSON): names a configuration in
// exports and sweeps; equal configs hash equally whatever the preset's key order.
std::string config_hash(const RunConfig& c);
void apply_override(nlohmann::json& j, const std::string& assignment, const std::string& source);

}  // namespace statelab
