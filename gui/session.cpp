// The dashboard's worker: commands, the training loop's hold, snapshots.
#include "gui/session.hpp"

#include <filesystem>

#include "gui/run_files.hpp"
#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/files.hpp"
#include "lab/run_dir.hpp"
#include "probes/training_summary.hpp"

namespace statelab::gui {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Kind = Command::Kind;

const char* status_name(RunStatus s) {
  switch (s) {
    case RunStatus::idle:
      return "idle";
    case RunStatus::starting:
      return "starting";
    case RunStatus::running:
      return "running";
    case RunStatus::paused:
      return "paused";
    case RunStatus::stopped:
      return "stopped";
    case RunStatus::finished:
      return "finished";
    case RunStatus::failed:
      return "failed";
    case RunStatus::viewing:
      return "viewing";
  }
  return "?";
}

bool is_training(RunStatus s) {
  return s == RunStatus::starting || s == RunStatus::running || s == RunStatus::paused;
}

// Training's observer: every step's metrics into the state, snapshots at most every
// publish_interval_s, and a live eval and probe every analysis interval.
class Session::Recorder final : public Observer {
 public:
  explicit Recorder(Session& s) : s_(s) {}
  void on_step(const StepMetrics& m) override {
    {
      std::lock_guard<std::mutex> lock(s_.state_mutex_);
      s_.state_.steps.push_back({m.step, m.loss, m.train_accuracy, m.lr});
      s_.state_.step = m.step;
      s_.state_.tokens_per_s = m.tokens_per_s;
      s_.state_.elapsed_s = m.elapsed_s;
    }
    const int every = s_.analysis_interval();
    if (every > 0 && m.step % every == 0) s_.analyse(s_.probe_choice_, m.step, "");
    s_.publish(false);
  }
  void on_log(const StepMetrics& m) override {
    std::lock_guard<std::mutex> lock(s_.state_mutex_);
    s_.state_.intervals.push_back({m.step, m.loss, m.train_accuracy, m.lr});
  }
  void on_check(int step, int length, double accuracy) override {
    {
      std::lock_guard<std::mutex> lock(s_.state_mutex_);
      s_.state_.checks.push_back({step, accuracy});
    }
    char text[120];
    std::snprintf(text, sizeof text, "step %d: held-out accuracy %.3f at length %d", step, accuracy,
                  length);
    s_.log(text);
    s_.analyse(s_.probe_choice_, step, "");
  }
  void on_non_finite(const NonFiniteReport& r) override {
    s_.log(std::string(r.skipped ? "skipped " : "diverged at ") + r.message +
               " (report: " + s_.run_->dir + "/nan_report)",
           true);
  }

 private:
  Session& s_;
};

Session::Session(SessionOptions options) : options_(std::move(options)) {
  snapshot_ = std::make_shared<RunSnapshot>();
  analyzer_ = std::make_unique<Analyzer>([this](AnalysisResult r) { deliver(std::move(r)); });
  worker_ = std::thread([this] { work(); });
}

Session::~Session() {
  Command quit;
  quit.kind = Kind::quit;
  quit.save = true;
  send(quit);
  worker_.join();
  analyzer_->shutdown();  // its last delivery still reads analyzer_, so it stays until then
}

void Session::send(Command c) {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  queue_.push_back(std::move(c));
  hold_.store(true);
  queue_wake_.notify_all();
}

void Session::set_lr_scale(double scale) {
  lr_scale_.store(scale);
  std::lock_guard<std::mutex> lock(state_mutex_);
  state_.lr_scale = scale;
}

std::shared_ptr<const RunSnapshot> Session::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return snapshot_;
}

bool Session::wait_until(const std::function<bool(const RunSnapshot&)>& done,
                         double timeout_s) const {
  std::unique_lock<std::mutex> lock(snapshot_mutex_);
  return snapshot_wake_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                                 [&] { return done(*snapshot_); });
}

std::vector<Command> Session::drain() {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  std::vector<Command> out(queue_.begin(), queue_.end());
  queue_.clear();
  // Still held while paused, so that every step comes back here.
  if (!paused_) hold_.store(false);
  return out;
}

void Session::work() {
  while (!quit_) {
    {
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_wake_.wait(lock, [this] { return !queue_.empty(); });
    }
    for (const Command& c : drain()) {
      try {
        handle(c);
      } catch (const std::exception& e) {
        log(e.what(), true);
      }
      if (quit_) break;
    }
    publish(true);
  }
}

int Session::analysis_interval() const {
  if (!run_) return 0;
  const TrainConfig& tc = run_->config.train;
  if (tc.eval_every > 0) return 0;  // on_check asks at every held-out check
  return options_.analysis_every > 0 ? options_.analysis_every : std::max(tc.steps / 20, 1);
}

void Session::handle(const Command& c) {
  switch (c.kind) {
    case Kind::start:
      if (run_ && state_.status == RunStatus::stopped)
        train();  // Start after Stop continues the same run
      else
        start_run(c.config);
      return;
    case Kind::resume:
    case Kind::step:
      if (run_ && state_.status == RunStatus::stopped) {
        paused_ = c.kind == Kind::step;
        step_once_ = paused_;
        hold_.store(paused_);
        train();
      }
      return;
    case Kind::pause:
    case Kind::stop:
      return;  // nothing is training
    case Kind::reset:
      run_.reset();
      viewed_params_.reset();
      forget_run();
      log("reset");
      return;
    case Kind::open_run:
      open_run(c.path);
      return;
    case Kind::quit:
      quit_ = true;
      return;
    default:
      handle_in_training(c);
  }
}

void Session::handle_in_training(const Command& c) {
  switch (c.kind) {
    case Kind::pause:
      paused_ = true;
      return;
    case Kind::resume:
      paused_ = false;
      return;
    case Kind::step:
      paused_ = step_once_ = true;
      return;
    case Kind::stop:
      stop_.store(true);
      return;
    case Kind::reset:
      stop_.store(true);
      reset_ = true;
      return;
    case Kind::quit:
      if (quit_) return;  // the first answer stands (the destructor's quit comes after the user's)
      stop_.store(true);
      quit_ = true;
      discard_ = !c.save;
      return;
    case Kind::start:
    case Kind::open_run:
      log("a run is training: stop it before starting or opening another", true);
      return;
    case Kind::eval:
      analyse_now();
      return;
    case Kind::probe:
      probe_choice_.typed = c.text;
      probe_choice_.sample = c.sample;
      probe_choice_.probe_length = c.length;
      analyse_now();
      return;
    case Kind::checkpoint:
      if (!run_) throw Error("no run to checkpoint: start one first");
      checkpoint_run(*run_, run_->trainer->state());
      log("checkpoint of step " + std::to_string(run_->trainer->state().step) + " in " + run_->dir +
          "/checkpoints");
      return;
    case Kind::export_traces: {
      AnalysisRequest q = probe_choice_;
      q.export_dir = c.path;
      q.eval = false;
      analyse(q, state_.step, "");
      log("exporting traces to " + c.path + " ...");
      return;
    }
    case Kind::export_config: {
      if (!state_.has_config) throw Error("no config to export: start or open a run first");
      write_file_atomic(c.path, to_json(state_.config).dump(2) + "\n");
      log("wrote the resolved config to " + c.path);
      return;
    }
    case Kind::add_overlay: {
      const auto curves = overlay_curves(c.path);
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        for (const auto& curve : curves)
          state_.overlays.push_back(std::make_shared<LengthCurve>(curve));
      }
      log("overlay: " + std::to_string(curves.size()) + " curve(s) from " + c.path);
      return;
    }
    case Kind::clear_overlays: {
      std::lock_guard<std::mutex> lock(state_mutex_);
      state_.overlays.clear();
      return;
    }
    case Kind::compare: {
      LoadedRun other = load_run(c.path);
      AnalysisRequest q = probe_choice_;
      q.config = other.config;
      q.params = std::make_shared<std::vector<float>>(
          other.model->params().values(),
          other.model->params().values() + other.model->params().size());
      q.step = other.step;
      q.label = fs::path(c.path).filename().string();
      q.eval = false;
      q.compare = true;
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        state_.compare_dir = c.path;
      }
      analyzer_->request(q);
      log("comparing with " + c.path + " (step " + std::to_string(other.step) + ")");
      return;
    }
  }
}

void Session::start_run(const RunConfig& cfg) {
  run_.reset();
  viewed_params_.reset();
  forget_run();
  const std::string dir = default_run_dir(cfg.name, options_.runs_root);
  set_status(RunStatus::starting);
  try {
    run_ = open_new_run(cfg, dir, false);
    if (options_.selftest) ensure_selftest(run_->trainer->device());
  } catch (const std::exception& e) {
    run_.reset();
    {
      std::lock_guard<std::mutex> lock(state_mutex_);
      state_.error = e.what();
    }
    set_status(RunStatus::failed);
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    state_.dir = dir;
    state_.has_config = true;
    state_.config = cfg;
    state_.total_steps = cfg.train.steps;
    state_.device = run_->trainer->device().description;
  }
  log("training " + cfg.name + " (" + cfg.model.blocks + ") on " + cfg.task.name + " -> " + dir +
      ", on " + run_->trainer->device().description);
  train();
}

void Session::forget_run() {
  std::lock_guard<std::mutex> lock(state_mutex_);
  RunSnapshot fresh;
  fresh.version = state_.version;
  fresh.log = std::move(state_.log);
  fresh.overlays = std::move(state_.overlays);
  fresh.lr_scale = state_.lr_scale;
  state_ = std::move(fresh);
}

void Session::train() {
  Trainer& trainer = *run_->trainer;
  stop_.store(false);
  set_status(paused_ ? RunStatus::paused : RunStatus::running);
  TrainControl control;
  control.hold = &hold_;
  control.on_hold = [this](int step) { on_hold(step); };
  control.interrupt = &stop_;
  control.lr_scale = &lr_scale_;
  control.checkpoint = [this](const TrainState& s) {
    if (!discard_) checkpoint_run(*run_, s);
  };
  if (options_.write_summaries) control.summarize = make_training_summarizer(trainer);
  Recorder recorder(*this);
  try {
    const TrainOutcome outcome = train_run(*run_, {&recorder}, control);
    publish(true);
    if (outcome.resumable_stop) {
      log(outcome.stop_reason + (discard_ ? " (no checkpoint)" : "; checkpoint written"));
      set_status(RunStatus::stopped);
    } else {
      const double train_s = trainer.state().elapsed_s;
      log(outcome.stop_reason + "; evaluating lengths " +
          std::to_string(run_->config.eval.lengths[0]) + "-" +
          std::to_string(run_->config.eval.lengths[1]) + " ...");
      const FinishedRun f = finish_run(*run_, outcome);
      char text[200];
      std::snprintf(text, sizeof text,
                    "%s after %d steps (%.1f s); solved up to length %d; wrote %s/eval.json",
                    outcome.stop_reason.c_str(), outcome.steps_run, train_s, f.result.solved_up_to,
                    run_->dir.c_str());
      log(text);
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        state_.final_eval = std::make_shared<LengthCurve>(
            eval_curve(to_json(f.result), fs::path(run_->dir).filename().string()));
        state_.step = outcome.steps_run;
      }
      analyse_now();  // first, so the finished snapshot already counts it as busy
      set_status(RunStatus::finished);
    }
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(state_mutex_);
      state_.error = e.what();
    }
    log(e.what(), true);
    set_status(RunStatus::failed);
  }
  paused_ = step_once_ = false;
  if (reset_) {
    reset_ = false;
    Command r;
    r.kind = Kind::reset;
    handle(r);
  }
}

void Session::on_hold(int step) {
  while (true) {
    for (const Command& c : drain()) {
      try {
        handle_in_training(c);
      } catch (const std::exception& e) {
        log(e.what(), true);
      }
    }
    if (stop_.load()) return;
    if (step_once_) {
      step_once_ = false;
      return;  // one more step; still held, so it comes back here paused
    }
    if (!paused_) {
      set_status(RunStatus::running);
      return;
    }
    set_status(RunStatus::paused);
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_wake_.wait(lock, [this] { return !queue_.empty(); });
  }
}

void Session::open_run(const std::string& dir) {
  RunFiles files = read_run_files(dir);
  run_.reset();
  viewed_params_.reset();
  std::shared_ptr<std::vector<float>> params;
  int step = 0;
  if (files.has_parameters) {
    LoadedRun loaded = load_run(dir);
    params = std::make_shared<std::vector<float>>(
        loaded.model->params().values(),
        loaded.model->params().values() + loaded.model->params().size());
    step = loaded.step;
  }
  forget_run();
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    state_.status = RunStatus::viewing;
    state_.dir = dir;
    state_.has_config = true;
    state_.config = files.config;
    state_.intervals = files.intervals;
    state_.steps = files.intervals;
    state_.checks = files.checks;
    state_.final_eval = files.final_eval;
    state_.missing = files.missing;
    state_.step = step;
    state_.total_steps = files.config.train.steps;
  }
  viewed_params_ = params;
  log("opened " + dir +
      (files.missing.empty()
           ? ""
           : "; missing: " + std::to_string(files.missing.size()) + " item(s), see Run"));
  for (const auto& m : files.missing) log("  missing " + m, true);
  if (params) analyse_now();
}

void Session::analyse(const AnalysisRequest& base, int step, const std::string& label) {
  AnalysisRequest q = base;
  q.step = step;
  q.label = label.empty() ? "step " + std::to_string(step) : label;
  if (run_) {
    q.config = run_->config;
    auto& ps = run_->trainer->model().params();
    ps.to_host();
    q.params = std::make_shared<std::vector<float>>(ps.host_values(), ps.host_values() + ps.size());
  } else if (viewed_params_) {
    q.config = state_.config;
    q.params = viewed_params_;
  } else {
    throw Error("nothing to evaluate or probe: start a run or open a finished one");
  }
  last_analysis_step_ = step;
  analyzer_->request(std::move(q));
}

void Session::analyse_now() {
  int step;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    step = state_.step;
  }
  analyse(probe_choice_, step, "");
}

void Session::deliver(AnalysisResult r) {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (r.eval) state_.evals.push_back(r.eval);
    if (r.probe) (r.compare ? state_.compare_probe : state_.probe) = r.probe;
  }
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    for (const auto& m : r.messages) append_log(m, false);
    if (!r.error.empty()) append_log("analysis: " + r.error, true);
    ++state_.analyses;
  }
  publish(true, true);
}

void Session::set_status(RunStatus s) {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (state_.status == s) return;
    state_.status = s;
  }
  publish(true);
}

void Session::append_log(const std::string& text, bool error) {
  constexpr size_t kKeep = 2000;
  const double t = std::chrono::duration<double>(Clock::now() - started_).count();
  state_.log.push_back({t, error, text});
  if (state_.log.size() > kKeep) state_.log.erase(state_.log.begin());
}

void Session::log(const std::string& text, bool error) {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    append_log(text, error);
  }
  publish(true);
}

void Session::publish(bool force, bool delivering) {
  std::shared_ptr<RunSnapshot> next;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    const auto now = Clock::now();
    if (!force && now - last_publish_ < std::chrono::duration<double>(options_.publish_interval_s))
      return;
    last_publish_ = now;
    state_.analysis_busy = analyzer_ && (delivering ? analyzer_->waiting() : analyzer_->busy());
    ++state_.version;
    next = std::make_shared<RunSnapshot>(state_);
  }
  {
    // The worker and the analyzer both publish; a copy made earlier must not land later.
    std::lock_guard<std::mutex> lock(snapshot_mutex_);
    if (next->version > snapshot_->version) snapshot_ = std::move(next);
  }
  snapshot_wake_.notify_all();
}

}  // namespace statelab::gui
