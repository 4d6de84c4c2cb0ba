// The run session: opening a new or resumed run directory, training into it, finishing it.
#include "lab/run_session.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "kernels/error.hpp"
#include "lab/checkpoint.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "lab/progress.hpp"
#include "lab/run_dir.hpp"
#include "lab/safetensors.hpp"

namespace statelab {

namespace {

namespace fs = std::filesystem;

// Keeps the first `keep` whole lines of a JSON-lines log: lines written after the checkpoint
// belong to steps that will run again. A torn last line (a kill mid-append) is dropped.
void truncate_log(const std::string& path, int64_t keep, const Warn& warn) {
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

std::unique_ptr<RunSession> open_new_run(const RunConfig& cfg, const std::string& dir, bool force) {
  prepare_run_dir(dir, force);
  write_file_atomic(dir + "/config.json", to_json(cfg).dump(2) + "\n");
  auto run = std::make_unique<RunSession>();
  run->config = cfg;
  run->dir = dir;
  run->trainer = std::make_unique<Trainer>(cfg);
  return run;
}

std::unique_ptr<RunSession> open_resumed_run(const std::string& dir, const Warn& warn) {
  if (!fs::exists(dir + "/config.json"))
    throw IoError(dir + ": not a run directory (no config.json)");
  auto run = std::make_unique<RunSession>();
  run->config = load_config(dir + "/config.json");
  run->dir = dir;
  run->trainer = std::make_unique<Trainer>(run->config);
  // Temporaries of writes a kill interrupted: the files under final names are whole.
  remove_stale_temporaries(dir);
  remove_stale_temporaries(dir + "/checkpoints");
  const Resumed r = load_newest_checkpoint(dir, run->trainer->model(), run->config, warn);
  truncate_log(dir + "/metrics.jsonl", r.state.metrics_lines, warn);
  truncate_log(dir + "/checks.jsonl", r.state.checks_lines, warn);
  run->trainer->restore(r.state);
  run->resumed_from = r.path;
  return run;
}

void checkpoint_run(RunSession& run, const TrainState& state) {
  save_checkpoint(run.dir, run.trainer->model(), state, run.config);
  prune_checkpoints(run.dir, run.config.train.keep_checkpoints);
}

TrainOutcome train_run(RunSession& run, std::vector<Observer*> observers, TrainControl control) {
  if (!control.checkpoint)
    control.checkpoint = [&run](const TrainState& s) { checkpoint_run(run, s); };
  MetricsFile metrics(run.dir + "/metrics.jsonl", run.dir + "/checks.jsonl");
  NanReportWriter nan_reports(run.dir);
  observers.push_back(&metrics);
  observers.push_back(&nan_reports);
  return run.trainer->train(observers, control);
}

FinishedRun finish_run(RunSession& run, const TrainOutcome& outcome) {
  Trainer& trainer = *run.trainer;
  save_model(trainer.model(), run.config, run.dir + "/model.safetensors", trainer.state().step);
  FinishedRun f;
  const auto t0 = std::chrono::steady_clock::now();
  f.result = trainer.evaluate();
  f.eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json eval_json = to_json(f.result);
  eval_json["training"] = {{"steps_run", outcome.steps_run},
                           {"stop_reason", outcome.stop_reason},
                           {"skipped_steps", trainer.state().skipped_steps},
                           {"seconds", trainer.state().elapsed_s}};
  eval_json["eval_seconds"] = f.eval_s;
  eval_json["device"] = trainer.device().spec;
  write_file_atomic(run.dir + "/eval.json", eval_json.dump(2) + "\n");
  return f;
}

}  // namespace statelab
