// `lab eval`, `lab tasks` and `lab devices` (`lab train` is in train_command.cpp).
#include "lab/commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "kernels/device.hpp"
#include "kernels/error.hpp"
#include "lab/compute_device.hpp"
#include "lab/config.hpp"
#include "lab/files.hpp"
#include "lab/model_io.hpp"
#include "lab/progress.hpp"
#include "lab/run_dir.hpp"
#include "lab/trainer.hpp"
#include "tasks/registry.hpp"

namespace statelab {

void check_device(const std::string& device) {
  if (device.empty()) return;
  if (const std::string rule = device_spec_error(device); !rule.empty())
    throw ConfigError("--device " + device + ": expected " + rule);
}

namespace {

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
  if (!o.device.empty()) overrides.push_back("device=" + o.device);
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

namespace {

struct LabelledSample {
  std::vector<int32_t> tokens, answers, latent;
};

LabelledSample draw(const Task& task, Rng& rng, int length) {
  LabelledSample s;
  s.tokens.resize(static_cast<size_t>(length));
  s.answers.resize(s.tokens.size());
  s.latent.resize(s.tokens.size());
  task.generate(rng, length, s.tokens.data());
  task.label(s.tokens.data(), length, s.answers.data(), s.latent.data());
  return s;
}

std::string answer_name(const Task& task, int32_t id) {
  return id == Batch::kIgnore ? "." : task.vocab().names.at(size_t(id));
}

void print_sample(const Task& task, const LabelledSample& s) {
  const int n = int(s.tokens.size());
  std::string running, latent;
  for (int t = 0; t < n; ++t) {
    running += (t ? " " : "") + answer_name(task, s.answers[size_t(t)]);
    latent += (t ? " " : "") + std::to_string(s.latent[size_t(t)]);
  }
  std::printf("  input:   %s\n  answer:  %s\n", task.decode(s.tokens.data(), n).c_str(),
              answer_name(task, s.answers.back()).c_str());
  if (task.has_running_answer()) std::printf("  running: %s\n", running.c_str());
  std::printf("  latent:  %s\n", latent.c_str());
}

nlohmann::json sample_json(const Task& task, const LabelledSample& s) {
  nlohmann::json answers = nlohmann::json::array();
  for (int32_t a : s.answers)
    answers.push_back(a == Batch::kIgnore ? nlohmann::json() : nlohmann::json(answer_name(task, a)));
  return {{"input", task.decode(s.tokens.data(), int(s.tokens.size()))},
          {"tokens", s.tokens},
          {"answer", answer_name(task, s.answers.back())},
          {"running_answers", answers},
          {"latent", s.latent}};
}

}  // namespace

int run_tasks(const TasksOptions& o) {
  if (o.task.empty()) {
    for (const auto& name : task_names()) {
      const auto task = make_task(name);
      const auto lengths = task->lengths_in(o.length, o.length + 8);
      std::printf("%s  [%s]  chance %.3f, %s, readouts: final%s\n  %s\n  latent: %s\n", name.c_str(),
                  task->family().c_str(), task->chance(), task->length_rule().c_str(),
                  task->has_running_answer() ? ", per_token" : "", task->definition().c_str(),
                  task->latent_definition().c_str());
      Rng rng(o.seed, kStreamEvalData, uint64_t(lengths.at(0)));
      for (int i = 0; i < 3; ++i) print_sample(*task, draw(*task, rng, lengths.at(0)));
      std::printf("\n");
    }
    return 0;
  }
  const auto task = make_task(o.task);
  if (!task->accepts_length(o.length))
    throw ConfigError("--length " + std::to_string(o.length) + ": " + o.task + " accepts " +
                      task->length_rule());
  if (o.samples < 1) throw ConfigError("--samples " + std::to_string(o.samples) + ": expected >= 1");
  Rng rng(o.seed, kStreamEvalData, uint64_t(o.length));
  nlohmann::json all = nlohmann::json::array();
  for (int i = 0; i < o.samples; ++i) {
    const auto s = draw(*task, rng, o.length);
    if (o.json) {
      all.push_back(sample_json(*task, s));
    } else {
      std::printf("sample %d\n", i + 1);
      print_sample(*task, s);
    }
  }
  if (o.json) std::printf("%s\n", all.dump(1).c_str());
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
