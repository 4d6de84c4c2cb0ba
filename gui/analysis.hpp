// What the dashboard computes beside training, on a CPU copy of the parameters so training is
// never blocked: a quick per-length evaluation and a probe view (gates, memory, decoded state,
// PCA) of one input. Plain functions, so tests check them without threads or a window; the
// Analyzer runs them on its own low-priority thread, the newest request replacing a waiting one.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gui/snapshot.hpp"
#include "probes/probe_run.hpp"

namespace statelab::gui {

struct AnalysisRequest {
  RunConfig config;
  std::shared_ptr<const std::vector<float>> params;  // the model's parameter buffer
  int step = 0;
  std::string label;  // what the curve and the view are called ("step 800", a run's name)
  bool eval = true;
  int eval_points = 16;   // lengths from the training minimum to the eval maximum
  int eval_samples = 32;  // per length (at most the config's eval.samples)
  bool probe = true;
  int probe_length = 0;    // 0: 2 × the longest training length, within the eval maximum
  int probe_samples = 16;  // the held-out set decoding accuracy is measured on
  int sample = 0;          // the row of that set shown, unless `typed` is given
  std::string typed;       // token names typed by the user
  int fit_samples = 128;   // sequences at training lengths the decoders and PCA are fitted on
  std::string export_dir;  // non-empty: also export the probe set's traces there
  bool compare = false;    // for the comparison run (Memory's second run)
};

struct AnalysisResult {
  bool compare = false;
  std::shared_ptr<const LengthCurve> eval;
  std::shared_ptr<const ProbeView> probe;
  std::vector<std::string> messages;  // what was done, for the log
  std::string error;                  // what failed (the rest of the result may still hold)
};

// The lengths a quick eval visits: about `points` of them, evenly spaced from the training
// minimum to the eval maximum, always including the longest training length.
std::vector<int> quick_eval_lengths(const RunConfig& cfg, const Task& task, int points);
LengthCurve quick_eval(LoadedRun& run, const std::vector<int>& lengths, int samples, int step,
                       const std::string& label);
// The view of request.typed (or of row request.sample of the probe set), with decoding
// accuracy over the probe set, read out by `state` (fit_state_readout of the same model).
ProbeView probe_view(LoadedRun& run, const StateReadout& state, const AnalysisRequest& request);
AnalysisResult analyze(const AnalysisRequest& request);

class Analyzer {
 public:
  explicit Analyzer(std::function<void(AnalysisResult)> deliver);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;
  // Queues `r`; a request of the same kind (run or comparison) still waiting is replaced.
  void request(AnalysisRequest r);
  // Lets the request in progress finish and its result be delivered, then ends the thread;
  // waiting requests are dropped. Also done by the destructor.
  void shutdown();
  bool busy() const;     // a request waits or runs
  bool waiting() const;  // a request waits (the one being delivered is not counted)

 private:
  void loop();

  std::function<void(AnalysisResult)> deliver_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<AnalysisRequest> pending_run_, pending_compare_;
  bool working_ = false, quit_ = false;
  std::thread thread_;
};

}  // namespace statelab::gui
