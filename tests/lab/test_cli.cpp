// The `lab` command as a user meets it: a tiny run end to end (the run directory contract,
// `lab eval` reproducing eval.json), and every bad input refused with a message that names the
// file, key or argument, a non-zero exit, and nothing already written lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

using statelab::testing::slurp;
constexpr auto lab = &statelab::testing::run_lab;

class LabCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    preset_ = path("tiny.json");
    std::ofstream(preset_) << R"({"schema_version": 1, "device": "cpu",
      "task": {"name": "parity", "train_lengths": [3, 6]},
      "model": {"blocks": "s", "d_model": 8, "heads": 2},
      "train": {"steps": 4, "batch": 4, "log_every": 2},
      "eval": {"lengths": [3, 8], "samples": 6}})";
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void expect_error(const statelab::testing::LabResult& r, const std::string& fragment) const {
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos)
        << "expected '" << fragment << "' in:\n" << r.output;
  }

  statelab::testing::TempDir tmp_;
  const fs::path& dir_ = tmp_.path();
  std::string preset_;
};

TEST_F(LabCommand, TrainWritesTheRunDirectoryContractAndEvalReproducesIt) {
  const auto r = lab("train " + preset_ + " --out " + path("run") + " --set train.seed=3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("solved up to"), std::string::npos) << r.output;
  const auto config = nlohmann::json::parse(slurp(dir_ / "run/config.json"));
  EXPECT_EQ(config["train"]["seed"], 3);
  EXPECT_EQ(config["name"], "tiny");
  EXPECT_EQ(config["model"]["ffn_factor"], 4.0 / 3);  // defaults filled in
  std::istringstream metrics(slurp(dir_ / "run/metrics.jsonl"));
  std::string line;
  int lines = 0, summaries = 0;
  while (std::getline(metrics, line)) {
    const auto m = nlohmann::json::parse(line);
    EXPECT_TRUE(m.contains("step")) << line;
    if (m.contains("probes")) {  // the probe summary at the end of training
      ++summaries;
      continue;
    }
    for (const char* key : {"loss", "train_accuracy", "lr", "tokens_per_s", "elapsed_s"})
      EXPECT_TRUE(m.contains(key)) << key;
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(summaries, 1);
  const auto eval = nlohmann::json::parse(slurp(dir_ / "run/eval.json"));
  EXPECT_EQ(eval["task"], "parity");
  EXPECT_EQ(eval["cell"], "slstm");
  EXPECT_EQ(eval["train_lengths"], nlohmann::json::array({3, 6}));
  EXPECT_EQ(eval["per_length"].size(), 6u);
  for (const char* key : {"mean_accuracy_beyond_train", "scaled_accuracy_beyond_train", "solved_up_to"})
    EXPECT_TRUE(eval.contains(key)) << key;

  const auto e = lab("eval " + path("run") + " --json " + path("again.json"));
  ASSERT_EQ(e.code, 0) << e.output;
  const auto again = nlohmann::json::parse(slurp(dir_ / "again.json"));
  EXPECT_EQ(again["per_length"], eval["per_length"]) << "same weights, same held-out set";
  const auto longer = lab("eval " + path("run") + " --lengths 1:20:4 --seed 9");
  ASSERT_EQ(longer.code, 0) << longer.output;
  EXPECT_NE(longer.output.find("1-40"), std::string::npos) << longer.output;
}

TEST_F(LabCommand, HelpListsEveryOptionWithItsDefault) {
  const auto r = lab("train --help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"--set", "--out", "--force", "--device", "cpu"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << " missing from:\n" << r.output;
  EXPECT_NE(lab("--help").output.find("eval"), std::string::npos);
}

TEST_F(LabCommand, TasksListsEveryTaskAndPrintsLabelledSamplesAsTextOrJson) {
  const auto all = lab("tasks");
  ASSERT_EQ(all.code, 0) << all.output;
  EXPECT_NE(all.output.find("parity  [state tracking]  chance 0.500"), std::string::npos) << all.output;
  const auto one = lab("tasks parity --samples 2 --length 5 --seed 3 --json");
  ASSERT_EQ(one.code, 0) << one.output;
  const auto samples = nlohmann::json::parse(one.output);
  ASSERT_EQ(samples.size(), 2u);
  for (const auto& s : samples) {
    EXPECT_EQ(s["tokens"].size(), 5u);
    int ones = 0;
    for (int t : s["tokens"]) ones += t == 2;
    EXPECT_EQ(s["answer"], ones % 2 ? "1" : "0");
  }
  expect_error(lab("tasks parity --length 0"), "--length 0");
  expect_error(lab("tasks parrity"), "known tasks");
}

TEST_F(LabCommand, MissingPresetIsNamed) {
  expect_error(lab("train " + path("nope.json") + " --out " + path("r")), "nope.json");
  EXPECT_FALSE(fs::exists(path("r")));
}

TEST_F(LabCommand, MalformedPresetNamesFileAndPosition) {
  std::ofstream(path("bad.json")) << "{\"train\": {\"steps\": 3,}}";
  expect_error(lab("train " + path("bad.json")), "bad.json: invalid JSON");
}

TEST_F(LabCommand, UnknownKeyFromAnOverrideNamesTheJsonPointer) {
  expect_error(lab("train " + preset_ + " --set train.stpes=3 --out " + path("r")),
               "/train/stpes: unknown key");
}

TEST_F(LabCommand, WrongTypeAndOutOfRangeValuesAreRefused) {
  expect_error(lab("train " + preset_ + " --set model.heads=3 --out " + path("r")), "/model/heads");
  expect_error(lab("train " + preset_ + " --set train.steps=\\\"ten\\\" --out " + path("r")),
               "/train/steps");
}

TEST_F(LabCommand, UnknownCellAndTaskAreRefusedListingWhatIsAllowed) {
  expect_error(lab("train " + preset_ + " --set model.blocks=sq --out " + path("r")),
               "/model/blocks");
  expect_error(lab("train " + preset_ + " --set task.name=parrity --out " + path("r")),
               "parity");
}

TEST_F(LabCommand, SetModelBlocksSwitchesToEveryCellAndStack) {
  for (const std::string blocks : {"l", "m", "M", "g", "t", "xlstm[1:1]", "mMgt"}) {
    const std::string out = path("cell-" + std::to_string(std::hash<std::string>()(blocks)));
    const auto r = lab("train " + preset_ + " --set model.blocks=" + blocks + " --out " + out);
    ASSERT_EQ(r.code, 0) << blocks << ":\n" << r.output;
    const auto eval = nlohmann::json::parse(slurp(fs::path(out) / "eval.json"));
    EXPECT_FALSE(eval["per_length"].empty()) << blocks;
  }
  for (const std::string range : {"01", "pm1"}) {
    const auto r =
        lab("train " + preset_ + " --set model.blocks=Mg --set model.eigen_range=" + range +
            " --out " + path("range-" + range));
    EXPECT_EQ(r.code, 0) << r.output;
  }
}

TEST_F(LabCommand, EigenRangeOnANonLinearCellAndChunkSizeZeroAreRefused) {
  expect_error(lab("train " + preset_ +
                   " --set model.blocks=ls --set model.eigen_range=pm1 --out " + path("r")),
               "/model/eigen_range: expected \"01\"");
  expect_error(lab("train " + preset_ + " --set model.chunk_size=0 --out " + path("r")),
               "/model/chunk_size: expected integer in [1, 65536], got 0");
  EXPECT_FALSE(fs::exists(path("r")));
}

TEST_F(LabCommand, NonEmptyOutIsRefusedWithoutForceAndKeepsItsFiles) {
  fs::create_directories(path("full"));
  std::ofstream(path("full/notes.txt")) << "keep me";
  expect_error(lab("train " + preset_ + " --out " + path("full")), "--force");
  EXPECT_EQ(slurp(dir_ / "full/notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(path("full/config.json")));
}

TEST_F(LabCommand, ForceReplacesAnEarlierRunsFilesAndKeepsOthers) {
  ASSERT_EQ(lab("train " + preset_ + " --out " + path("run")).code, 0);
  std::ofstream(path("run/notes.txt")) << "keep me";
  const auto r = lab("train " + preset_ + " --out " + path("run") + " --force --set train.steps=2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(slurp(dir_ / "run/config.json"))["train"]["steps"], 2);
  const std::string metrics = slurp(dir_ / "run/metrics.jsonl");
  // One logged step and the closing probe summary: the earlier run's lines are gone.
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 2) << metrics;
  EXPECT_EQ(slurp(dir_ / "run/notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(dir_ / "run/checkpoints/step-000000004.safetensors"))
      << "a checkpoint of the earlier run would be resumed from";
}

TEST_F(LabCommand, UnwritableOutIsAClearError) {
  std::ofstream(path("file")) << "x";
  expect_error(lab("train " + preset_ + " --out " + path("file") + "/sub"), path("file"));
}

// cuda:99 exists on no machine: refused with the device count or the reason there is none.
TEST_F(LabCommand, MalformedOrMissingDevicesAreRefusedNamingThem) {
  expect_error(lab("train " + preset_ + " --device gpu --out " + path("r")),
               "--device gpu: expected \"auto\", \"cpu\" or \"cuda:N\"");
  const auto r = lab("train " + preset_ + " --device cuda:99 --out " + path("r"));
  expect_error(r, "cuda:99");
  EXPECT_TRUE(r.output.find("CUDA device") != std::string::npos) << r.output;
  expect_error(lab("eval " + path("nowhere") + " --device cuda:x"), "--device cuda:x");
}

TEST_F(LabCommand, BenchRefusesAnUnknownKernelAndTooFewRepsNamingThem) {
  expect_error(lab("bench --device cpu --linear-kernel fast"),
               "--linear-kernel fast: expected \"automatic\", \"recurrent\", \"chunkwise\" or "
               "\"chunk-parallel\"");
  expect_error(lab("bench --device cpu --nonlinear-kernel mma"),
               "--nonlinear-kernel mma: expected \"automatic\", \"fma\" or \"tensor-core\"");
  expect_error(lab("bench --device cpu --reps 0"), "--reps 0: expected >= 1");
}

TEST_F(LabCommand, EvalOfADirectoryWithoutARunIsRefused) {
  fs::create_directories(path("empty"));
  expect_error(lab("eval " + path("empty")), "no config.json");
}

TEST_F(LabCommand, EvalRefusesCorruptAndMismatchedModels) {
  ASSERT_EQ(lab("train " + preset_ + " --out " + path("run")).code, 0);
  const std::string model = slurp(dir_ / "run/model.safetensors");
  std::ofstream(path("run/model.safetensors"), std::ios::binary) << model.substr(0, model.size() / 2);
  expect_error(lab("eval " + path("run")), "model.safetensors");

  ASSERT_EQ(lab("train " + preset_ + " --out " + path("wide") + " --set model.d_model=12").code, 0);
  fs::copy_file(path("wide/model.safetensors"), path("run/model.safetensors"),
                fs::copy_options::overwrite_existing);
  expect_error(lab("eval " + path("run")), "embedding.weight");
}

TEST_F(LabCommand, MalformedLengthRangeIsRefused) {
  ASSERT_EQ(lab("train " + preset_ + " --out " + path("run")).code, 0);
  for (const char* bad : {"5", "9:3", "0:4", "a:b", "1:4:0"})
    expect_error(lab("eval " + path("run") + " --lengths " + bad), "--lengths");
}

TEST_F(LabCommand, EvalJsonDoesNotReplaceAnExistingFileWithoutForce) {
  ASSERT_EQ(lab("train " + preset_ + " --out " + path("run")).code, 0);
  std::ofstream(path("mine.json")) << "mine";
  expect_error(lab("eval " + path("run") + " --json " + path("mine.json")), "--force");
  EXPECT_EQ(slurp(dir_ / "mine.json"), "mine");
}

}  // namespace
