// Console observers of a training run: a one-line progress bar redrawn in place on a terminal,
// plain lines every log interval otherwise (logs, CI, pipes); and the metrics.jsonl writer.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "lab/trainer.hpp"

namespace statelab {

class ConsoleProgress final : public Observer {
 public:
  // `terminal`: redraw in place; otherwise print a line per logged interval.
  ConsoleProgress(std::FILE* out, bool terminal);
  ~ConsoleProgress() override;
  void on_step(const StepMetrics& m) override;
  void on_log(const StepMetrics& m) override;
  void on_check(int step, int length, double accuracy) override;

 private:
  std::FILE* out_;
  bool terminal_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

// metrics.jsonl (one line per logged interval) and checks.jsonl (one line per evaluation
// during training).
class MetricsFile final : public Observer {
 public:
  MetricsFile(std::string metrics_path, std::string checks_path)
      : metrics_path_(std::move(metrics_path)), checks_path_(std::move(checks_path)) {}
  void on_log(const StepMetrics& m) override;
  void on_check(int step, int length, double accuracy) override;
  // A metrics.jsonl line {"step": N, "probes": {...}}.
  void on_summary(int step, const nlohmann::json& figures) override;

 private:
  std::string metrics_path_, checks_path_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "42s"

}  // namespace statelab
