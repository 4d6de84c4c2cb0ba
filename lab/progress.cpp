// Progress bar, plain progress lines and metrics.jsonl lines.
#include "lab/progress.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "lab/files.hpp"

namespace statelab {

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

namespace {
std::string status_text(const StepMetrics& m) {
  const double eta = m.step > 0 ? m.elapsed_s / m.step * (m.total_steps - m.step) : 0;
  char buf[200];
  std::snprintf(buf, sizeof buf, "step %d/%d  loss %.4f  acc %.3f  %.0f tok/s  ETA %s", m.step,
                m.total_steps, m.loss, m.train_accuracy, m.tokens_per_s,
                format_duration(eta).c_str());
  return buf;
}
}  // namespace

ConsoleProgress::ConsoleProgress(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

ConsoleProgress::~ConsoleProgress() {
  if (drawn_) std::fputc('\n', out_);
}

void ConsoleProgress::on_step(const StepMetrics& m) {
  if (!terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (m.step != m.total_steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  const int filled = int(double(kWidth) * m.step / m.total_steps);
  const std::string bar = std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '.');
  std::fprintf(out_, "\r\033[K[%s] %s", bar.c_str(), status_text(m).c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ConsoleProgress::on_log(const StepMetrics& m) {
  if (terminal_) return;
  std::fprintf(out_, "%s\n", status_text(m).c_str());
  std::fflush(out_);
}

void ConsoleProgress::on_check(int step, int length, double accuracy) {
  std::fprintf(out_, "%sstep %d: held-out accuracy at length %d: %.4f\n", terminal_ ? "\r\033[K" : "",
               step, length, accuracy);
  std::fflush(out_);
}

void MetricsFile::on_log(const StepMetrics& m) {
  const nlohmann::json line = {{"step", m.step},
                               {"loss", m.loss},
                               {"train_accuracy", m.train_accuracy},
                               {"lr", m.lr},
                               {"grad_norm", m.grad_norm},
                               {"tokens_per_s", m.tokens_per_s},
                               {"elapsed_s", m.elapsed_s}};
  append_line(metrics_path_, line.dump());
}

void MetricsFile::on_check(int step, int length, double accuracy) {
  append_line(checks_path_,
              nlohmann::json({{"step", step}, {"length", length}, {"accuracy", accuracy}}).dump());
}

void MetricsFile::on_summary(int step, const nlohmann::json& figures) {
  append_line(metrics_path_, nlohmann::json({{"step", step}, {"probes", figures}}).dump());
}

}  // namespace statelab
