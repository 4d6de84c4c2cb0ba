// `lab train`: a new run from a preset, or `--resume` of a stopped one from its newest
// checkpoint. Owns everything around the Trainer that touches files and the process: the run
// directory, metrics, checkpoints, signals, NaN reports, the final model and eval.json.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "kernels/error.hpp"
#include "lab/checkpoint.hpp"
#include "lab/commands.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "lab/progress.hpp"
#include "lab/run_dir.hpp"
#include "lab/safetensors.hpp"

namespace statelab {

namespace {

namespace fs = std::filesystem;

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
  struct sigaction old_int_ {}, old_term_ {};
};

void warn(const std::string& message) { std::fprintf(stderr, "lab: warning: %s\n", message.c_str()); }

// Keeps the first `keep` whole lines of a JSON-lines log: lines written after the checkpoint
// belong to steps that will run again. A torn last line (a kill mid-append) is dropped.
void truncate_log(const std::string& path, int64_t keep) {
  if (!fs::exists(path)) {
    if (keep > 0) warn(path + " is missing; " + std::to_string(keep) + " lines are lost");
    return;
  }
  const std::string text = read_file(path);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (!text.empty() && text.back() != '\n') {
    warn(path + ": ignoring a torn last line (" + std::to_string(lines.back().size()) + " bytes)");
    lines.pop_back();
  }
  if (int64_t(lines.size()) < keep)
    warn(path + " holds " + std::to_string(lines.size()) + " lines; the checkpoint expected " +
         std::to_string(keep));
  std::string kept;
  for (int64_t i = 0; i < std::min<int64_t>(keep, int64_t(lines.size())); ++i)
    kept += lines[size_t(i)] + "\n";
  write_file_atomic(path, kept);
}

// nan_report/step-N/: the message, the batch of the failing step and the newest checkpoint
// before it, so the divergence can be replayed and studied.
class NanReportWriter final : public Observer {
 public:
  explicit NanReportWriter(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  void on_non_finite(const NonFiniteReport& r) override {
    const std::string dir = run_dir_ + "/nan_report/step-" + std::to_string(r.step);
    ensure_directory(dir);
    write_file_atomic(dir + "/message.txt", r.message + "\n");
    const std::vector<int64_t> shape = {r.batch.batch, r.batch.length};
    using safetensors::DType;
    safetensors::save(dir + "/batch.safetensors",
                      {{"tokens", DType::I32, shape, r.batch.tokens.data()},
                       {"targets", DType::I32, shape, r.batch.targets.data()},
                       {"latent", DType::I32, shape, r.batch.latent.data()},
                       {"lengths", DType::I32, {r.batch.batch}, r.batch.lengths.data()}},
                      {{"step", std::to_string(r.step)}});
    const auto checkpoints = list_checkpoints(run_dir_);
    if (!checkpoints.empty())
      fs::copy_file(checkpoints.front(), dir + "/last_good_checkpoint.safetensors",
                    fs::copy_options::overwrite_existing);
    std::fprintf(stderr, "\nlab: %s: %s\n  report: %s\n", r.skipped ? "skipped step" : "diverged",
                 r.message.c_str(), dir.c_str());
  }

 private:
  std::string run_dir_;
};

}  // namespace

int run_train(const TrainOptions& o) {
  check_device(o.device);
  RunConfig cfg;
  std::string dir;
  if (!o.resume.empty()) {
    if (!o.preset.empty() || !o.overrides.empty() || !o.out.empty() || o.force ||
        !o.device.empty())
      throw ConfigError("--resume " + o.resume +
                        ": takes the run directory alone (its config.json fixes the run); drop "
                        "the preset, --set, --out, --force and --device");
    dir = o.resume;
    if (!fs::exists(dir + "/config.json"))
      throw IoError(dir + ": not a run directory (no config.json)");
    cfg = load_config(dir + "/config.json");
  } else {
    if (o.preset.empty()) throw ConfigError("lab train: give a preset, or --resume RUN_DIR");
    auto overrides = o.overrides;
    if (!o.device.empty()) overrides.push_back("device=" + o.device);
    cfg = load_config(o.preset, overrides);
    dir = o.out.empty() ? default_run_dir(cfg.name) : o.out;
    prepare_run_dir(dir, o.force);
    write_file_atomic(dir + "/config.json", to_json(cfg).dump(2) + "\n");
  }

  Trainer trainer(cfg);
  if (!o.no_selftest) ensure_selftest(trainer.device());
  if (!o.resume.empty()) {
    // Temporaries of writes a kill interrupted: the files under final names are whole.
    remove_stale_temporaries(dir);
    remove_stale_temporaries(dir + "/checkpoints");
    const Resumed r = load_newest_checkpoint(dir, trainer.model(), cfg, warn);
    truncate_log(dir + "/metrics.jsonl", r.state.metrics_lines);
    truncate_log(dir + "/checks.jsonl", r.state.checks_lines);
    trainer.restore(r.state);
    if (o.stop_after > 0 && o.stop_after <= r.state.step)
      throw ConfigError("--stop-after " + std::to_string(o.stop_after) + ": " + dir +
                        " has already run " + std::to_string(r.state.step) + " steps");
    std::printf("resuming %s after step %d from %s\n", dir.c_str(), r.state.step, r.path.c_str());
  }
  std::printf("training %s (%s) on %s, lengths %d-%d, %d steps of batch %d, %lld parameters, on "
              "%s -> %s\n",
              cfg.name.c_str(), cfg.model.blocks.c_str(), cfg.task.name.c_str(),
              cfg.task.train_lengths[0], cfg.task.train_lengths[1], cfg.train.steps,
              cfg.train.batch, static_cast<long long>(trainer.model().params().count()),
              trainer.device().description.c_str(), dir.c_str());
  std::fflush(stdout);

  TrainControl control;
  control.stop_after = o.stop_after;
  control.interrupt = &g_interrupted;
  control.checkpoint = [&](const TrainState& s) {
    save_checkpoint(dir, trainer.model(), s, cfg);
    prune_checkpoints(dir, cfg.train.keep_checkpoints);
  };
  if (o.make_summarizer) control.summarize = o.make_summarizer(trainer);
  const auto t0 = std::chrono::steady_clock::now();
  TrainOutcome outcome;
  {
    StopSignals signals;
    ConsoleProgress progress(stdout, isatty(fileno(stdout)) == 1);
    MetricsFile metrics(dir + "/metrics.jsonl", dir + "/checks.jsonl");
    NanReportWriter nan_reports(dir);
    outcome = trainer.train({&progress, &metrics, &nan_reports}, control);
  }
  if (outcome.resumable_stop) {
    std::printf("%s: checkpoint written; continue with: lab train --resume %s\n",
                outcome.stop_reason.c_str(), dir.c_str());
    return g_interrupted.load() ? 130 : 0;
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  save_model(trainer.model(), cfg, dir + "/model.safetensors", trainer.state().step);

  const auto t1 = std::chrono::steady_clock::now();
  const EvalResult result = trainer.evaluate();
  const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  nlohmann::json eval_json = to_json(result);
  eval_json["training"] = {{"steps_run", outcome.steps_run},
                           {"stop_reason", outcome.stop_reason},
                           {"skipped_steps", trainer.state().skipped_steps},
                           {"seconds", trainer.state().elapsed_s + train_s}};
  eval_json["eval_seconds"] = eval_s;
  eval_json["device"] = trainer.device().spec;
  write_file_atomic(dir + "/eval.json", eval_json.dump(2) + "\n");
  if (outcome.stop_reason != "completed")
    std::printf("stopped after step %d: %s\n", outcome.steps_run, outcome.stop_reason.c_str());
  std::printf("trained in %s, evaluated %zu lengths x %d samples in %s\n\n%s\nwrote %s/{config.json, metrics.jsonl, model.safetensors, eval.json}\n",
              format_duration(train_s).c_str(), result.per_length.size(), cfg.eval.samples,
              format_duration(eval_s).c_str(), format_eval_table(result).c_str(), dir.c_str());
  return 0;
}

}  // namespace statelab
