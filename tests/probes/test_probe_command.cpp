// `lab probe` end to end on a small trained run, as a user runs it: what it exports (read back
// through our safetensors parser and through real numpy), that the exported inputs are the
// held-out set or the typed input labelled by the task, the per-eval probe summaries `lab train`
// logs, and every bad input's error with nothing left under a final name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "lab/config.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "tasks/registry.hpp"
#include "tests/support/python.hpp"
#include "tests/support/run_lab.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;
using testing::run_lab;
using testing::run_ok;
using testing::TempDir;

// One tiny sLSTM parity run shared by the tests (trained once, only read afterwards).
class ProbeCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    const auto r = run_lab(std::string("train ") + STATELAB_SOURCE_DIR +
                           "/presets/parity_slstm.json --device cpu --out " + run() +
                           " --set model.d_model=16 --set train.steps=40 --set train.log_every=10"
                           " --set train.eval_every=20 --set eval.lengths=[40,48]"
                           " --set eval.samples=8");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string run() { return *dir_ / "run"; }
  static std::string scratch(const std::string& name) { return *dir_ / name; }

  static std::unique_ptr<TempDir> dir_;
};
std::unique_ptr<TempDir> ProbeCommand::dir_;

bool any_export_file(const fs::path& dir) {
  for (const char* f : {"traces.safetensors", "traces.npz", "manifest.json", "summary.csv"})
    if (fs::exists(dir / f)) return true;
  return false;
}

std::vector<int32_t> ints(const safetensors::Contents& c, const std::string& name) {
  const auto& t = c.tensors.at(name);
  EXPECT_EQ(t.dtype, safetensors::DType::I32) << name;
  std::vector<int32_t> out(t.bytes.size() / 4);
  std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

std::vector<float> floats(const safetensors::Contents& c, const std::string& name) {
  const auto& t = c.tensors.at(name);
  EXPECT_EQ(t.dtype, safetensors::DType::F32) << name;
  std::vector<float> out(t.bytes.size() / 4);
  std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

TEST_F(ProbeCommand, HeldOutSamplesExportEveryArrayWithItsManifestAndSummary) {
  const std::string out = scratch("held_out");
  const auto r =
      run_lab("probe " + run() + " --samples 3 --length 50 --fit-samples 64 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("latent-state decoding per layer"), std::string::npos) << r.output;

  const auto c = safetensors::load(out + "/traces.safetensors");
  const auto shape = [&](const std::string& n) { return c.tensors.at(n).shape; };
  EXPECT_EQ(shape("tokens"), (std::vector<int64_t>{3, 50}));
  EXPECT_EQ(shape("blocks.0.forget_gate"), (std::vector<int64_t>{3, 50, 1, 16}));
  EXPECT_EQ(shape("blocks.1.cell_norm"), (std::vector<int64_t>{3, 50, 1}));
  EXPECT_EQ(shape("residual_norm"), (std::vector<int64_t>{3, 50, 3}));
  EXPECT_EQ(shape("decoded_latent"), (std::vector<int64_t>{3, 50, 2}));
  EXPECT_EQ(shape("state_pca"), (std::vector<int64_t>{3, 50, 2, 2}));
  EXPECT_EQ(shape("decoding_accuracy"), (std::vector<int64_t>{2, 50}));

  // The samples are the run's held-out set at length 50, labelled by the task.
  const RunConfig cfg = load_config(run() + "/config.json");
  const auto task = make_task("parity");
  Batch want;
  Rng rng(cfg.eval.seed, kStreamEvalData, 50);
  task->sample(rng, 3, 50, Readout::final, want);
  EXPECT_EQ(ints(c, "tokens"), want.tokens);
  EXPECT_EQ(ints(c, "latent"), want.latent);
  // f' = exp(log f + m_{t-1} - m_t) lies in [0, 1]; it is 0 at the first step (m_0 = -inf).
  for (float g : floats(c, "blocks.0.forget_gate")) ASSERT_TRUE(g >= 0 && g <= 1) << g;

  const json m = json::parse(read_file(out + "/manifest.json"));
  EXPECT_EQ(m.at("task"), "parity");
  EXPECT_EQ(m.at("cell"), "ss");
  EXPECT_EQ(m.at("checkpoint_step"), 40);
  EXPECT_EQ(m.at("config_hash"), config_hash(cfg));
  EXPECT_EQ(m.at("inputs").size(), 3u);
  EXPECT_EQ(m.at("inputs").at(0), task->decode(want.tokens.data(), 50));
  EXPECT_EQ(m.at("arrays").at("blocks.0.forget_gate").at("axes"),
            json({"sample", "time", "head", "unit"}));
  EXPECT_EQ(m.at("arrays").at("blocks.0.forget_gate").at("kind"), "gate");
  EXPECT_EQ(m.at("layers").size(), 2u);

  const std::string csv = read_file(out + "/summary.csv");
  EXPECT_EQ(csv.rfind("series,kind,statistic,value\n", 0), 0u);
  EXPECT_NE(csv.find("blocks.0.forget_gate,gate,saturated_fraction,"), std::string::npos);
  EXPECT_NE(csv.find("blocks.0.cell_norm,norm,growth_exponent,"), std::string::npos);
}

const char* const kNumpyScript = R"PY(
import json, sys
import numpy as np
with np.load(sys.argv[1], allow_pickle=False) as npz:
    out = {name: {"dtype": npz[name].dtype.str, "shape": list(npz[name].shape),
                  "first": npz[name].ravel()[:5].tolist()} for name in npz.files}
json.dump(out, sys.stdout)
)PY";

TEST_F(ProbeCommand, NumpyLoadsTheNpzWithTheSameArraysAsTheSafetensorsFile) {
  std::string why;
  const std::string python = testing::numpy_python(&why);
  if (python.empty()) GTEST_SKIP() << why;
  const std::string out = scratch("numpy");
  ASSERT_EQ(
      run_lab("probe " + run() + " --samples 2 --length 44 --fit-samples 32 --out " + out).code, 0);
  const std::string script = scratch("read.py");
  write_file_atomic(script, kNumpyScript);
  const std::string result = scratch("numpy.json");
  ASSERT_TRUE(run_ok(quote(python) + " " + quote(script) + " " + quote(out + "/traces.npz") +
                     " > " + quote(result)));
  const json np = json::parse(read_file(result));
  const auto c = safetensors::load(out + "/traces.safetensors");
  ASSERT_EQ(np.size(), c.tensors.size());
  for (const auto& [name, t] : c.tensors) {
    const json& a = np.at(name);
    EXPECT_EQ(a.at("shape").get<std::vector<int64_t>>(), t.shape) << name;
    if (t.dtype == safetensors::DType::I32) {
      EXPECT_EQ(a.at("dtype"), "<i4") << name;
      const auto v = ints(c, name);
      EXPECT_EQ(a.at("first").get<std::vector<int32_t>>(),
                std::vector<int32_t>(v.begin(), v.begin() + std::min<size_t>(5, v.size())))
          << name;
    } else {
      EXPECT_EQ(a.at("dtype"), "<f4") << name;
      const auto v = floats(c, name);
      const auto first = a.at("first");
      for (size_t i = 0; i < first.size(); ++i) {
        if (first[i].is_null()) {  // NaN travels as null through JSON
          EXPECT_TRUE(std::isnan(v[i])) << name;
        } else {
          EXPECT_EQ(first[i].get<double>(), double(v[i])) << name << " element " << i;
        }
      }
    }
  }
}

TEST_F(ProbeCommand, TypedInputIsLabelledByTheTaskAndPrintedPositionByPosition) {
  const std::string out = scratch("typed");
  const auto r = run_lab("probe " + run() + " --input \"1 0 1 1\" --fit-samples 32 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto c = safetensors::load(out + "/traces.safetensors");
  EXPECT_EQ(ints(c, "latent"), (std::vector<int32_t>{1, 1, 0, 1}));  // running parity
  EXPECT_EQ(c.tensors.at("tokens").shape, (std::vector<int64_t>{1, 4}));
  EXPECT_NE(r.output.find("latent"), std::string::npos);
  const json m = json::parse(read_file(out + "/manifest.json"));
  EXPECT_EQ(m.at("input_kind"), "typed");
  EXPECT_EQ(m.at("inputs").at(0), "1 0 1 1");
}

TEST_F(ProbeCommand, AnEarlierExportIsReplacedOnlyWithForce) {
  const std::string out = scratch("twice");
  ASSERT_EQ(run_lab("probe " + run() + " --input \"1 1\" --fit-samples 16 --out " + out).code, 0);
  const auto again = run_lab("probe " + run() + " --input \"0 1 1\" --fit-samples 16 --out " + out);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.output.find("holds an earlier export"), std::string::npos) << again.output;
  EXPECT_EQ(safetensors::load(out + "/traces.safetensors").tensors.at("tokens").shape[1], 2);
  ASSERT_EQ(
      run_lab("probe " + run() + " --input \"0 1 1\" --fit-samples 16 --force --out " + out).code,
      0);
  EXPECT_EQ(safetensors::load(out + "/traces.safetensors").tensors.at("tokens").shape[1], 3);
}

struct BadProbe {
  std::string args;      // after "probe RUN"
  std::string expected;  // in the error message
};

TEST_F(ProbeCommand, BadInputsAreClearErrorsAndLeaveNoExport) {
  const std::string blocked = scratch("a_file");
  write_file_atomic(blocked, "not a directory");
  const std::vector<BadProbe> cases = {
      {"--input \"1 0 7 1\"", "'7'"},  // a symbol outside the vocabulary
      {"--input \"1 0 7 1\"", "position"},
      {"--input \"1 0 7 1\"", "vocabulary"},
      {"--length 2000000000", "needs"},  // beyond memory: says how much
      {"--length 2000000000", "GiB"},
      {"--samples 0", "--samples 0"},
      {"--device cuda:x", "--device cuda:x: expected \"auto\", \"cpu\" or \"cuda:N\""},
      {"--out " + blocked + "/sub --input \"1\"", blocked},  // an --out that cannot be made
  };
  for (const auto& c : cases) {
    const std::string out = scratch("bad");
    const std::string args =
        c.args.find("--out") == std::string::npos ? c.args + " --out " + out : c.args;
    const auto r = run_lab("probe " + run() + " " + args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(any_export_file(out)) << args;
  }
}

TEST_F(ProbeCommand, ARunWithoutModelOrCheckpointIsRefused) {
  const std::string empty_run = scratch("untrained");
  fs::create_directories(empty_run);
  fs::copy_file(run() + "/config.json", empty_run + "/config.json");
  const auto r = run_lab("probe " + empty_run + " --input \"1\"");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("no model.safetensors and no checkpoint"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(empty_run + "/traces"));
  const auto not_a_run = run_lab("probe " + scratch("nowhere"));
  EXPECT_EQ(not_a_run.code, 1);
  EXPECT_NE(not_a_run.output.find("no such run directory"), std::string::npos) << not_a_run.output;
}

TEST_F(ProbeCommand, ACheckpointIsProbedWhileTheRunHasNoFinalModel) {
  const std::string partial = scratch("partial");
  const auto r = run_lab(std::string("train ") + STATELAB_SOURCE_DIR +
                         "/presets/parity_slstm.json --device cpu --out " + partial +
                         " --set model.d_model=16 --set train.steps=40 --stop-after 10");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_FALSE(fs::exists(partial + "/model.safetensors"));
  const auto p = run_lab("probe " + partial + " --input \"1 0\" --fit-samples 16");
  ASSERT_EQ(p.code, 0) << p.output;
  const json m = json::parse(read_file(partial + "/traces/manifest.json"));
  EXPECT_EQ(m.at("checkpoint_step"), 10);
  EXPECT_NE(m.at("checkpoint").get<std::string>().find("checkpoints"), std::string::npos);
}

TEST_F(ProbeCommand, TrainingLogsProbeSummariesAtEveryCheckAndAtTheEnd) {
  std::ifstream in(run() + "/metrics.jsonl");
  std::vector<int> steps;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (!j.contains("probes")) continue;
    steps.push_back(j.at("step"));
    const json& p = j.at("probes");
    EXPECT_TRUE(p.at("blocks.0.forget_gate").contains("saturated_fraction")) << line;
    EXPECT_TRUE(p.at("blocks.1.cell_norm").contains("growth_exponent")) << line;
    EXPECT_FALSE(p.contains("blocks.0.input_preact")) << "values are left out of the log";
  }
  EXPECT_EQ(steps, (std::vector<int>{20, 40}));  // the check at 20, then the end
}

TEST_F(ProbeCommand, AResumeFromTheFinalCheckpointLogsNoSecondClosingSummary) {
  // A kill while the final model and eval.json are written leaves the final checkpoint, and the
  // resumed run has no step left to run: its closing summary is already in metrics.jsonl.
  const std::string twice = scratch("resumed_at_end");
  fs::create_directories(twice);
  for (const auto& entry : fs::directory_iterator(run()))
    fs::copy(entry.path(), twice / entry.path().filename(), fs::copy_options::recursive);
  fs::remove(twice + "/model.safetensors");
  fs::remove(twice + "/eval.json");
  const std::string before = read_file(twice + "/metrics.jsonl");
  const auto r = run_lab("train --resume " + twice);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_file(twice + "/metrics.jsonl"), before);
  EXPECT_TRUE(fs::exists(twice + "/eval.json"));
}

}  // namespace
}  // namespace statelab
