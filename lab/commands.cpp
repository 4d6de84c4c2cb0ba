// `lab train`, `lab eval` and `lab devices`.
#include "lab/commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "kernels/device.hpp"
#include "kernels/error.hpp"
#include "lab/config.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "lab/progress.hpp"
#include "lab/run_dir.hpp"
#include "lab/trainer.hpp"

namespace statelab {

namespace {

void check_device(const std::string& device) {
  if (device != "cpu")
    throw ConfigError("--device " + device + ": expected cpu (the only device of this version)");
}

// Writes `path` only if nothing is there yet, or `force`: a report never replaces one silently.
void write_new_file(const std::string& path, const std::string& bytes, bool force,
                    const std::string& option) {
  if (!force && std::filesystem::exists(path))
    throw ConfigError(option + " " + path + ": file exists; pass --force to replace it");
  write_file_atomic(path, bytes);
}

}  // namespace

std::vector<int> parse_length_range(const std::string& spec, const std::string& what) {
  std::vector<int> parts;
  size_t start = 0;
  const std::string msg = what + " " + spec + ": expected LO:HI or LO:HI:STEP with 1 <= LO <= HI and STEP >= 1";
  while (start <= spec.size()) {
    const size_t end = spec.find(':', start);
    const std::string piece = spec.substr(start, end == std::string::npos ? end : end - start);
    if (piece.empty() || piece.size() > 9 || piece.find_first_not_of("0123456789") != std::string::npos)
      throw ConfigError(msg);
    parts.push_back(std::stoi(piece));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (parts.size() == 2) parts.push_back(1);
  if (parts.size() != 3 || parts[0] < 1 || parts[0] > parts[1] || parts[2] < 1)
    throw ConfigError(msg);
  return parts;
}

int run_train(const TrainOptions& o) {
  check_device(o.device);
  auto overrides = o.overrides;
  overrides.push_back("device=" + o.device);
  const RunConfig cfg = load_config(o.preset, overrides);
  const std::string dir = o.out.empty() ? default_run_dir(cfg.name) : o.out;
  prepare_run_dir(dir, o.force);
  write_file_atomic(dir + "/config.json", to_json(cfg).dump(2) + "\n");
  const std::string metrics_path = dir + "/metrics.jsonl";

  Trainer trainer(cfg);
  std::printf("training %s (%s) on %s, lengths %d-%d, %d steps of batch %d, %lld parameters -> %s\n",
              cfg.name.c_str(), cfg.model.blocks.c_str(), cfg.task.name.c_str(),
              cfg.task.train_lengths[0], cfg.task.train_lengths[1], cfg.train.steps,
              cfg.train.batch, static_cast<long long>(trainer.model().params().size()), dir.c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  {
    ConsoleProgress progress(stdout, isatty(fileno(stdout)) == 1);
    MetricsFile metrics(metrics_path);
    trainer.train({&progress, &metrics});
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  save_model(trainer.model(), cfg, dir + "/model.safetensors");

  const auto t1 = std::chrono::steady_clock::now();
  const EvalResult result = trainer.evaluate();
  const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  write_file_atomic(dir + "/eval.json", to_json(result).dump(2) + "\n");
  std::printf("trained in %s, evaluated %zu lengths x %d samples in %s\n\n%s\nwrote %s/{config.json, metrics.jsonl, model.safetensors, eval.json}\n",
              format_duration(train_s).c_str(), result.per_length.size(), cfg.eval.samples,
              format_duration(eval_s).c_str(), format_eval_table(result).c_str(), dir.c_str());
  return 0;
}

int run_eval(const EvalOptions& o) {
  check_device(o.device);
  const std::string config_path = o.run_dir + "/config.json";
  const std::string model_path = o.run_dir + "/model.safetensors";
  if (!std::filesystem::exists(config_path))
    throw IoError(o.run_dir + ": not a run directory (no config.json)");
  if (!std::filesystem::exists(model_path))
    throw IoError(o.run_dir + ": the run has no model.safetensors (did training finish?)");
  std::vector<std::string> overrides;
  if (!o.lengths.empty()) {
    const auto r = parse_length_range(o.lengths, "--lengths");
    overrides.push_back("eval.lengths=[" + std::to_string(r[0]) + "," + std::to_string(r[1]) + "]");
    overrides.push_back("eval.length_step=" + std::to_string(r[2]));
  }
  if (o.seed >= 0) overrides.push_back("eval.seed=" + std::to_string(o.seed));
  if (o.samples > 0) overrides.push_back("eval.samples=" + std::to_string(o.samples));
  const RunConfig cfg = load_config(config_path, overrides);

  Trainer trainer(cfg);
  load_model(trainer.model(), model_path);
  const EvalResult result = trainer.evaluate();
  std::printf("%s", format_eval_table(result).c_str());
  if (!o.json_out.empty()) {
    write_new_file(o.json_out, to_json(result).dump(2) + "\n", o.force, "--json");
    std::printf("wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

int run_devices() {
  std::printf("cpu      %u hardware threads\n", std::max(1u, std::thread::hardware_concurrency()));
  const CudaProbe probe = probe_cuda_devices();
  for (const auto& d : probe.devices)
    std::printf("cuda:%d   %s, %.1f GiB, compute capability %d.%d\n", d.index, d.name.c_str(),
                double(d.memory_bytes) / (1 << 30), d.compute_major, d.compute_minor);
  if (probe.devices.empty()) std::printf("no CUDA device: %s\n", probe.why_none.c_str());
  return 0;
}

}  // namespace statelab
