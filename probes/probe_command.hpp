// `lab probe`: what a trained run does inside, on a typed input or on held-out samples of any
// length, printed and exported (probes/probe_run).
#pragma once

#include <cstdint>
#include <string>

namespace statelab {

struct ProbeOptions {
  std::string run_dir;
  std::string input;      // space-separated token names; empty: held-out samples
  int samples = 16;       // held-out samples (without --input)
  int length = 0;         // their length; 0: the run's longest eval length
  int64_t seed = -1;      // held-out set seed; < 0: the run's eval.seed
  std::string out;        // empty: <run>/traces
  bool force = false;     // replace an earlier export there
  int fit_samples = 256;  // sequences at training lengths the decoders and PCA are fitted on
  int64_t attention_map_max_length = 128;
  std::string device;  // "auto", "cpu" or "cuda:N"; empty: the run's own device
};
int run_probe(const ProbeOptions& o);

}  // namespace statelab
