// Run directory naming and preparation.
#include "lab/run_dir.hpp"

#include <ctime>
#include <filesystem>

#include "kernels/error.hpp"
#include "lab/files.hpp"

namespace statelab {

namespace {
const char* const kRunFiles[] = {"config.json", "metrics.jsonl", "checks.jsonl",
                                 "model.safetensors", "eval.json"};
const char* const kRunDirs[] = {"checkpoints", "nan_report"};
}  // namespace

std::string default_run_dir(const std::string& name, const std::string& root) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  const std::string base = root + "/" + name + "-" + stamp;
  std::string dir = base;
  for (int n = 2; std::filesystem::exists(dir); ++n) dir = base + "-" + std::to_string(n);
  return dir;
}

void prepare_run_dir(const std::string& dir, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      throw ConfigError("--out " + dir + ": exists and is not a directory");
    if (!fs::is_empty(dir, ec) && !force)
      throw ConfigError(
          "--out " + dir +
          ": directory exists and is not empty; choose another --out or pass "
          "--force to replace the earlier run in it (its run files, checkpoints and NaN "
          "reports; other files stay)");
  }
  ensure_directory(dir);
  if (force) {
    for (const char* name : kRunFiles) fs::remove(fs::path(dir) / name, ec);
    for (const char* name : kRunDirs) fs::remove_all(fs::path(dir) / name, ec);
  }
}

}  // namespace statelab
