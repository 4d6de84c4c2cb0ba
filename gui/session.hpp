// The dashboard's engine: one worker thread owns the run (lab/run_session, exactly what
// `lab train` writes) and trains it; the GUI thread sends Commands and reads RunSnapshots.
// Commands reach a training loop through TrainControl::hold, so they act between two steps and a
// frame never waits for a step. Evals and probes run on an Analyzer beside the training thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "gui/analysis.hpp"
#include "gui/commands.hpp"
#include "gui/snapshot.hpp"
#include "lab/run_session.hpp"

namespace statelab::gui {

struct SessionOptions {
  std::string runs_root = "runs";  // new runs go to <runs_root>/<name>-<timestamp>
  bool selftest = true;            // check the CUDA kernels once per build and device
  bool write_summaries = true;     // probe summary lines in metrics.jsonl, as lab train writes
  // Steps between live evals and probes when the config has no train.eval_every (0: 20 per run).
  int analysis_every = 0;
  AnalysisRequest analysis;  // the sizes of live evals and probes
  double publish_interval_s = 0.05;
};

class Session {
 public:
  explicit Session(SessionOptions options = {});
  // Quits as Command::quit with save = true would, and joins the threads.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void send(Command c);
  // The learning rate as a multiple of the config's schedule, from the next step on.
  void set_lr_scale(double scale);
  std::shared_ptr<const RunSnapshot> snapshot() const;
  // Waits until `done` holds for a published snapshot; false after timeout_s seconds.
  bool wait_until(const std::function<bool(const RunSnapshot&)>& done, double timeout_s) const;

 private:
  class Recorder;
  void work();
  void handle(const Command& c);              // between runs
  void handle_in_training(const Command& c);  // between two steps
  void on_hold(int step);
  void start_run(const RunConfig& cfg);
  void train();
  void forget_run();  // back to an empty state, keeping the log and the overlays
  int analysis_interval() const;
  void open_run(const std::string& dir);
  void analyse(const AnalysisRequest& base, int step, const std::string& label);
  void analyse_now();
  void deliver(AnalysisResult r);
  void set_status(RunStatus s);
  void log(const std::string& text, bool error = false);
  void append_log(const std::string& text, bool error);  // with state_mutex_ held
  // `delivering`: called with an analysis result in hand, which no longer counts as busy.
  void publish(bool force, bool delivering = false);
  std::vector<Command> drain();

  SessionOptions options_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::mutex queue_mutex_;
  std::condition_variable queue_wake_;
  std::deque<Command> queue_;
  std::atomic<bool> hold_{false}, stop_{false};
  std::atomic<double> lr_scale_{1.0};

  // The worker's own (touched only on its thread).
  std::unique_ptr<RunSession> run_;
  std::shared_ptr<const std::vector<float>> viewed_params_;  // a run opened for viewing
  AnalysisRequest probe_choice_;  // the input the user picked, kept for every later probe
  bool paused_ = false, step_once_ = false, quit_ = false, discard_ = false, reset_ = false;
  int last_analysis_step_ = 0;

  // The state being built, shared with the analyzer's deliveries.
  mutable std::mutex state_mutex_;
  RunSnapshot state_;
  std::chrono::steady_clock::time_point last_publish_{};

  mutable std::mutex snapshot_mutex_;
  mutable std::condition_variable snapshot_wake_;
  std::shared_ptr<const RunSnapshot> snapshot_;

  std::unique_ptr<Analyzer> analyzer_;
  std::thread worker_;
};

}  // namespace statelab::gui
