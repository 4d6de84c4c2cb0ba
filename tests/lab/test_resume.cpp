// Nothing lost, nothing silent: a run stopped (--stop-after, SIGINT) or killed (SIGKILL, also in
// the middle of a checkpoint write) and resumed ends with exactly the parameters and metrics of
// the uninterrupted run; corrupt checkpoints and torn log lines are skipped with a warning; a NaN
// planted in one layer is reported with its step, layer and tensor, and a nan_report written.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

using statelab::testing::slurp;
constexpr auto lab = &statelab::testing::run_lab;

// metrics.jsonl without the wall-clock fields, which no two runs share.
std::vector<nlohmann::json> deterministic_metrics(const fs::path& p) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("tokens_per_s");
    j.erase("elapsed_s");
    lines.push_back(j);
  }
  return lines;
}

// The parameters of a model.safetensors: the bytes after the header (the header holds the config).
std::string tensor_bytes(const fs::path& p) {
  const std::string all = slurp(p);
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | uint8_t(all.at(size_t(i)));
  return all.substr(8 + header);
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    preset_ = tmp_ / "tiny.json";
    std::ofstream(preset_) << R"({"schema_version": 1, "device": "cpu",
      "task": {"name": "parity", "train_lengths": [3, 8]},
      "model": {"blocks": "sl", "d_model": 8, "heads": 2},
      "train": {"steps": 40, "batch": 8, "log_every": 3, "checkpoint_every": 4, "eval_every": 10},
      "eval": {"lengths": [3, 6], "samples": 8}})";
    reference_ = tmp_ / "reference";
    const auto r = lab("train " + preset_ + " --out " + reference_);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  void expect_same_as_reference(const std::string& run) const {
    EXPECT_EQ(tensor_bytes(fs::path(run) / "model.safetensors"),
              tensor_bytes(fs::path(reference_) / "model.safetensors"))
        << "parameters differ from the uninterrupted run";
    EXPECT_EQ(deterministic_metrics(fs::path(run) / "metrics.jsonl"),
              deterministic_metrics(fs::path(reference_) / "metrics.jsonl"));
    EXPECT_EQ(slurp(fs::path(run) / "checks.jsonl").size() > 0, true);
    EXPECT_EQ(nlohmann::json::parse(slurp(fs::path(run) / "eval.json"))["per_length"],
              nlohmann::json::parse(slurp(fs::path(reference_) / "eval.json"))["per_length"]);
  }

  statelab::testing::TempDir tmp_;
  std::string preset_, reference_;
};

TEST_F(Resume, StopAfterThenResumeGivesBitIdenticalParametersAndMetrics) {
  const std::string run = tmp_ / "split";
  // Step 17 is inside a logging interval (log_every 3) and between checkpoints (every 4).
  const auto first = lab("train " + preset_ + " --out " + run + " --stop-after 17");
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("continue with: lab train --resume"), std::string::npos) << first.output;
  EXPECT_FALSE(fs::exists(fs::path(run) / "model.safetensors")) << "an unfinished run has no model";
  const auto second = lab("train --resume " + run);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("after step 17"), std::string::npos) << second.output;
  expect_same_as_reference(run);
}

TEST_F(Resume, SigintFinishesTheStepCheckpointsAndExitsResumably) {
  const std::string run = tmp_ / "interrupted";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string out = run + ".log";
    freopen(out.c_str(), "w", stdout);
    execl(STATELAB_LAB_BINARY, "lab", "train", preset_.c_str(), "--out", run.c_str(),
          "--set", "train.steps=100000", nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  kill(child, SIGINT);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping cleanly";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NE(slurp(run + ".log").find("interrupted after step"), std::string::npos)
      << slurp(run + ".log");
  EXPECT_FALSE(fs::is_empty(fs::path(run) / "checkpoints"));
}

// SIGKILL at random moments, many of them inside a checkpoint or metrics write (a checkpoint
// every step): each resume continues from the newest whole checkpoint, and the end result is
// the uninterrupted run's.
TEST_F(Resume, RunKilledRepeatedlyMidWriteEndsIdenticalToTheUninterruptedRun) {
  // Longer than the fixture's run, with a checkpoint (an fsync'd file) after every step, so that
  // kills land inside checkpoint and metrics writes as well as inside steps.
  const std::string settings = " --set train.steps=400 --set train.checkpoint_every=1";
  const std::string reference = tmp_ / "long_reference";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(lab("train " + preset_ + " --out " + reference + settings).code, 0);
  const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - t0).count();

  const std::string run = tmp_ / "killed";
  std::mt19937 rng(11);
  bool started = false;
  int kills = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const std::string args = started ? "train --resume " + run
                                     : "train " + preset_ + " --out " + run + settings;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      const std::string cmd = std::string("exec ") + STATELAB_LAB_BINARY + " " + args + " >/dev/null 2>&1";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(full_ms / 20 + int64_t(rng() % uint64_t(full_ms / 4 + 1))));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // it finished before the kill
    kills += WIFSIGNALED(status);
    // Until the first checkpoint exists, a resume has nothing to start from: start afresh.
    started = fs::exists(fs::path(run) / "checkpoints") &&
              !fs::is_empty(fs::path(run) / "checkpoints");
    if (!started) fs::remove_all(run);
  }
  EXPECT_GE(kills, 3);
  if (!fs::exists(fs::path(run) / "model.safetensors")) {
    const auto finish =
        lab(started ? "train --resume " + run : "train " + preset_ + " --out " + run + settings);
    ASSERT_EQ(finish.code, 0) << finish.output;
  }
  for (const auto& entry : fs::recursive_directory_iterator(run))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
        << "a temporary file is left under its own name: " << entry.path();
  EXPECT_EQ(tensor_bytes(fs::path(run) / "model.safetensors"),
            tensor_bytes(fs::path(reference) / "model.safetensors"));
  EXPECT_EQ(deterministic_metrics(fs::path(run) / "metrics.jsonl"),
            deterministic_metrics(fs::path(reference) / "metrics.jsonl"))
      << "metrics lines lost or duplicated";
}

// A full disk, simulated by a file-size limit that metrics.jsonl outgrows while checkpoints still
// fit: the run stops with an error naming the file, and the checkpoints written before it carry
// the run to the same end as an uninterrupted one.
TEST_F(Resume, AFullDiskStopsTheRunWithAClearErrorAndEarlierCheckpointsStayValid) {
  const std::string settings = " --set train.steps=700 --set train.log_every=1";
  const std::string reference = tmp_ / "full_reference";
  ASSERT_EQ(lab("train " + preset_ + " --out " + reference + settings).code, 0);
  const auto metrics_size = fs::file_size(fs::path(reference) / "metrics.jsonl");
  const auto checkpoint_size = fs::file_size(
      *fs::directory_iterator(fs::path(reference) / "checkpoints"));
  ASSERT_LT(checkpoint_size * 2, metrics_size) << "the limit must fall between the two sizes";

  const std::string run = tmp_ / "full";
  const std::string log = tmp_ / "full.log";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);  // writes past the limit then fail with EFBIG, like ENOSPC
    const rlimit limit{rlim_t(metrics_size / 2), rlim_t(metrics_size / 2)};
    setrlimit(RLIMIT_FSIZE, &limit);
    const std::string cmd = std::string("exec ") + STATELAB_LAB_BINARY + " train " + preset_ +
                            " --out " + run + settings + " >" + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << slurp(log);
  EXPECT_NE(slurp(log).find("metrics.jsonl"), std::string::npos) << slurp(log);
  EXPECT_FALSE(fs::exists(fs::path(run) / "model.safetensors"));
  const auto resumed = lab("train --resume " + run);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(tensor_bytes(fs::path(run) / "model.safetensors"),
            tensor_bytes(fs::path(reference) / "model.safetensors"));
  EXPECT_EQ(deterministic_metrics(fs::path(run) / "metrics.jsonl"),
            deterministic_metrics(fs::path(reference) / "metrics.jsonl"));
}

TEST_F(Resume, ACorruptNewestCheckpointAndATornMetricsLineAreSkippedWithWarnings) {
  const std::string run = tmp_ / "damaged";
  ASSERT_EQ(lab("train " + preset_ + " --out " + run + " --stop-after 18").code, 0);
  std::vector<fs::path> checkpoints;
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints")) checkpoints.push_back(e.path());
  std::sort(checkpoints.begin(), checkpoints.end());
  ASSERT_GE(checkpoints.size(), 2u);
  {
    std::ofstream newest(checkpoints.back(), std::ios::binary | std::ios::trunc);
    newest << "not a checkpoint";
  }
  std::ofstream(fs::path(run) / "metrics.jsonl", std::ios::app) << "{\"step\": 99, \"lo";
  const auto r = lab("train --resume " + run);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("trying an older checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("torn last line"), std::string::npos) << r.output;
  expect_same_as_reference(run);
}

TEST_F(Resume, CheckpointsOfAnotherConfigAreRefusedNotMixedIn) {
  const std::string run = tmp_ / "edited";
  ASSERT_EQ(lab("train " + preset_ + " --out " + run + " --stop-after 8").code, 0);
  auto cfg = nlohmann::json::parse(slurp(fs::path(run) / "config.json"));
  cfg["train"]["lr"] = 0.5;
  std::ofstream(fs::path(run) / "config.json") << cfg.dump(2);
  const auto r = lab("train --resume " + run);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("another config"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("none of the"), std::string::npos) << r.output;
}

TEST_F(Resume, OnlyTheNewestCheckpointsAreKept) {
  const std::string run = tmp_ / "pruned";
  ASSERT_EQ(lab("train " + preset_ + " --out " + run + " --set train.keep_checkpoints=2").code, 0);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step-000000036.safetensors",
                                             "step-000000040.safetensors"}));
}

TEST_F(Resume, ResumeRefusesAPresetAlongsideAndAStopAfterInThePast) {
  const std::string run = tmp_ / "args";
  ASSERT_EQ(lab("train " + preset_ + " --out " + run + " --stop-after 12").code, 0);
  const auto both = lab("train " + preset_ + " --resume " + run);
  EXPECT_NE(both.code, 0);
  EXPECT_NE(both.output.find("takes the run directory alone"), std::string::npos) << both.output;
  const auto past = lab("train --resume " + run + " --stop-after 5");
  EXPECT_NE(past.code, 0);
  EXPECT_NE(past.output.find("--stop-after 5"), std::string::npos) << past.output;
  const auto none = lab("train --resume " + (tmp_ / "nothing"));
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.output.find("no config.json"), std::string::npos) << none.output;
}

TEST_F(Resume, APlantedNanIsReportedWithStepLayerAndTensorAndLeavesAReport) {
  const std::string run = tmp_ / "nan";
  const auto r = lab("train " + preset_ + " --out " + run +
                     " --set 'train.poison={\"step\": 7, \"parameter\": \"blocks.1.cell.zo_proj.weight\"}'");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("diverged at step 7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("block 1 (lstm): z/o gate projection"), std::string::npos) << r.output;
  const fs::path report = fs::path(run) / "nan_report" / "step-7";
  EXPECT_NE(slurp(report / "message.txt").find("block 1 (lstm)"), std::string::npos);
  EXPECT_TRUE(fs::exists(report / "batch.safetensors"));
  EXPECT_TRUE(fs::exists(report / "last_good_checkpoint.safetensors"));
}

TEST_F(Resume, SkipStepDropsTheUpdateOfANonFiniteStepAndTrainingGoesOn) {
  const std::string run = tmp_ / "skip";
  const auto r = lab("train " + preset_ + " --out " + run +
                     " --set train.on_nan=skip_step --set 'train.poison={\"step\": 7, \"parameter\": "
                     "\"blocks.0.cell.recurrent\"}'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped step"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("block 0 (slstm)"), std::string::npos) << r.output;
  const auto eval = nlohmann::json::parse(slurp(fs::path(run) / "eval.json"));
  EXPECT_EQ(eval["training"]["skipped_steps"], 1);
  EXPECT_EQ(eval["training"]["stop_reason"], "completed");
}

}  // namespace
