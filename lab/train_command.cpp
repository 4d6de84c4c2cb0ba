// `lab train`: a new run from a preset, or `--resume` of a stopped one from its newest
// checkpoint. The run directory's contents come from lab/run_session; this adds what belongs to
// a console process: signals, the progress line and the printed result.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "kernels/error.hpp"
#include "lab/commands.hpp"
#include "lab/progress.hpp"
#include "lab/run_dir.hpp"
#include "lab/run_session.hpp"

namespace statelab {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_stop_signal(int) { g_interrupted.store(true); }

// SIGINT / SIGTERM finish the current step and checkpoint; a second signal acts as usual.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

void warn(const std::string& message) {
  std::fprintf(stderr, "lab: warning: %s\n", message.c_str());
}

}  // namespace

int run_train(const TrainOptions& o) {
  check_device(o.device);
  std::unique_ptr<RunSession> run;
  if (!o.resume.empty()) {
    if (!o.preset.empty() || !o.overrides.empty() || !o.out.empty() || o.force || !o.device.empty())
      throw ConfigError("--resume " + o.resume +
                        ": takes the run directory alone (its config.json fixes the run); drop "
                        "the preset, --set, --out, --force and --device");
    run = open_resumed_run(o.resume, warn);
  } else {
    if (o.preset.empty()) throw ConfigError("lab train: give a preset, or --resume RUN_DIR");
    auto overrides = o.overrides;
    if (!o.device.empty()) overrides.push_back("device=" + o.device);
    const RunConfig cfg = load_config(o.preset, overrides);
    run = open_new_run(cfg, o.out.empty() ? default_run_dir(cfg.name) : o.out, o.force);
  }
  Trainer& trainer = *run->trainer;
  const RunConfig& cfg = run->config;
  const std::string& dir = run->dir;
  if (!o.no_selftest) ensure_selftest(trainer.device());
  if (!o.resume.empty()) {
    if (o.stop_after > 0 && o.stop_after <= trainer.state().step)
      throw ConfigError("--stop-after " + std::to_string(o.stop_after) + ": " + dir +
                        " has already run " + std::to_string(trainer.state().step) + " steps");
    std::printf("resuming %s after step %d from %s\n", dir.c_str(), trainer.state().step,
                run->resumed_from.c_str());
  }
  std::printf(
      "training %s (%s) on %s, lengths %d-%d, %d steps of batch %d, %lld parameters, on "
      "%s -> %s\n",
      cfg.name.c_str(), cfg.model.blocks.c_str(), cfg.task.name.c_str(), cfg.task.train_lengths[0],
      cfg.task.train_lengths[1], cfg.train.steps, cfg.train.batch,
      static_cast<long long>(trainer.model().params().count()),
      trainer.device().description.c_str(), dir.c_str());
  std::fflush(stdout);

  TrainControl control;
  control.stop_after = o.stop_after;
  control.interrupt = &g_interrupted;
  if (o.make_summarizer) control.summarize = o.make_summarizer(trainer);
  const auto t0 = std::chrono::steady_clock::now();
  TrainOutcome outcome;
  {
    StopSignals signals;
    ConsoleProgress progress(stdout, isatty(fileno(stdout)) == 1);
    outcome = train_run(*run, {&progress}, control);
  }
  if (outcome.resumable_stop) {
    std::printf("%s: checkpoint written; continue with: lab train --resume %s\n",
                outcome.stop_reason.c_str(), dir.c_str());
    return g_interrupted.load() ? 130 : 0;
  }
  const double train_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const FinishedRun finished = finish_run(*run, outcome);
  if (outcome.stop_reason != "completed")
    std::printf("stopped after step %d: %s\n", outcome.steps_run, outcome.stop_reason.c_str());
  std::printf(
      "trained in %s, evaluated %zu lengths x %d samples in %s\n\n%s\nwrote %s/{config.json, "
      "metrics.jsonl, model.safetensors, eval.json}\n",
      format_duration(train_s).c_str(), finished.result.per_length.size(), cfg.eval.samples,
      format_duration(finished.eval_s).c_str(), format_eval_table(finished.result).c_str(),
      dir.c_str());
  return 0;
}

}  // namespace statelab
