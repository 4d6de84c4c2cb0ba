// Tests of the strict config loader: defaults, `--set` overrides, the wording of every kind of
// rejection (file, pointer, what is allowed, what was found), the exact round trip through
// to_json that config.json relies on, and that every shipped preset loads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "cells/model.hpp"
#include "kernels/error.hpp"
#include "lab/config.hpp"
#include "tasks/registry.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// gmock is not linked, so HasSubstr is replaced by this; it prints the whole message on failure
// because the wording is what these tests are about.
::testing::AssertionResult has_substr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected to contain: " << part << "\n           actual: " << text;
}

// The message of the ConfigError `f` throws; a failure if it throws anything else or nothing.
std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected ConfigError, nothing was thrown";
  return "";
}

std::string error_of(const std::string& json_text) {
  return config_error([&] { config_from_json(json::parse(json_text), "presets/x.json"); });
}

void expect_same_config(const RunConfig& a, const RunConfig& b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.task.name, b.task.name);
  EXPECT_EQ(a.task.train_lengths, b.task.train_lengths);
  EXPECT_EQ(a.task.length_sampling, b.task.length_sampling);
  EXPECT_EQ(a.task.readout, b.task.readout);
  EXPECT_EQ(a.train.eval_every, b.train.eval_every);
  EXPECT_EQ(a.train.early_stop_evals, b.train.early_stop_evals);
  EXPECT_EQ(a.train.early_stop_accuracy, b.train.early_stop_accuracy);
  EXPECT_EQ(a.model.blocks, b.model.blocks);
  EXPECT_EQ(a.model.d_model, b.model.d_model);
  EXPECT_EQ(a.model.heads, b.model.heads);
  EXPECT_EQ(a.model.ffn_factor, b.model.ffn_factor);  // exact: the round trip must be bit-exact
  EXPECT_EQ(a.model.slstm.forget_gate, b.model.slstm.forget_gate);
  EXPECT_EQ(a.model.slstm.conv_kernel, b.model.slstm.conv_kernel);
  EXPECT_EQ(a.model.eigen_range, b.model.eigen_range);
  EXPECT_EQ(a.model.chunk_size, b.model.chunk_size);
  EXPECT_EQ(a.model.mlstm.forget_gate, b.model.mlstm.forget_gate);
  EXPECT_EQ(a.model.mlstm.conv_kernel, b.model.mlstm.conv_kernel);
  EXPECT_EQ(a.model.mlstm.proj_factor, b.model.mlstm.proj_factor);
  EXPECT_EQ(a.model.mamba2.expand, b.model.mamba2.expand);
  EXPECT_EQ(a.model.mamba2.state_size, b.model.mamba2.state_size);
  EXPECT_EQ(a.model.mamba2.conv_kernel, b.model.mamba2.conv_kernel);
  EXPECT_EQ(a.model.gdn.expand_v, b.model.gdn.expand_v);
  EXPECT_EQ(a.model.gdn.conv_kernel, b.model.gdn.conv_kernel);
  EXPECT_EQ(a.model.transformer.position, b.model.transformer.position);
  EXPECT_EQ(a.model.transformer.rope_base, b.model.transformer.rope_base);
  EXPECT_EQ(a.train.steps, b.train.steps);
  EXPECT_EQ(a.train.batch, b.train.batch);
  EXPECT_EQ(a.train.lr, b.train.lr);
  EXPECT_EQ(a.train.min_lr, b.train.min_lr);
  EXPECT_EQ(a.train.warmup_steps, b.train.warmup_steps);
  EXPECT_EQ(a.train.weight_decay, b.train.weight_decay);
  EXPECT_EQ(a.train.beta1, b.train.beta1);
  EXPECT_EQ(a.train.beta2, b.train.beta2);
  EXPECT_EQ(a.train.eps, b.train.eps);
  EXPECT_EQ(a.train.grad_clip, b.train.grad_clip);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.eval.lengths, b.eval.lengths);
  EXPECT_EQ(a.eval.length_step, b.eval.length_step);
  EXPECT_EQ(a.eval.samples, b.eval.samples);
  EXPECT_EQ(a.eval.seed, b.eval.seed);
  EXPECT_EQ(a.eval.batch_tokens, b.eval.batch_tokens);
}

// Preset files live in a fresh directory per test, so parallel ctest runs do not collide.
class ConfigFileTest : public ::testing::Test {
 protected:
  std::string write(const std::string& file_name, const std::string& text) const {
    const fs::path p = dir_ / file_name;
    std::ofstream(p) << text;
    return p.string();
  }
  statelab::testing::TempDir tmp_;
  const fs::path& dir_ = tmp_.path();
};

// --- defaults ----------------------------------------------------------------------------------

TEST(ConfigFromJson, EmptyObjectGivesTheStructDefaults) {
  const RunConfig c = config_from_json(json::object(), "x");
  expect_same_config(c, RunConfig{});
  EXPECT_EQ(c.task.name, "parity");
  EXPECT_EQ(c.model.ffn_factor, 4.0 / 3);
  EXPECT_EQ(c.train.seed, 42u);
}

TEST_F(ConfigFileTest, EmptyPresetGetsDefaultsAndItsFileStemAsName) {
  const RunConfig c = load_config(write("parity_slstm.json", "{}"));
  EXPECT_EQ(c.name, "parity_slstm");
  RunConfig expected;
  expected.name = "parity_slstm";
  expect_same_config(c, expected);
}

TEST_F(ConfigFileTest, NameInThePresetWinsOverTheFileStem) {
  EXPECT_EQ(load_config(write("a.json", R"({"name": "chosen"})")).name, "chosen");
}

TEST_F(ConfigFileTest, NameOverrideWinsOverTheFileStem) {
  EXPECT_EQ(load_config(write("a.json", "{}"), {"name=from_cli"}).name, "from_cli");
}

// --- overrides ---------------------------------------------------------------------------------

TEST(ApplyOverride, IntegerValueIsParsedAsJson) {
  json j = json::object();
  apply_override(j, "train.steps=3000", "x");
  EXPECT_EQ(j, json::parse(R"({"train": {"steps": 3000}})"));
  EXPECT_TRUE(j["train"]["steps"].is_number_integer());
}

TEST(ApplyOverride, FloatValueIsParsedAsJson) {
  json j = json::object();
  apply_override(j, "train.lr=1e-3", "x");
  EXPECT_TRUE(j["train"]["lr"].is_number_float());
  EXPECT_EQ(j["train"]["lr"].get<double>(), 1e-3);
}

TEST(ApplyOverride, BoolValueIsParsedAsJson) {
  json j = json::object();
  apply_override(j, "a.flag=true", "x");
  EXPECT_EQ(j["a"]["flag"], json(true));
}

TEST(ApplyOverride, ArrayValueIsParsedAsJson) {
  json j = json::object();
  apply_override(j, "task.train_lengths=[3,40]", "x");
  EXPECT_EQ(j["task"]["train_lengths"], json::parse("[3, 40]"));
}

TEST(ApplyOverride, ObjectValueReplacesTheWholeSection) {
  json j = json::parse(R"({"model": {"slstm": {"conv_kernel": 2, "forget_gate": "exp"}}})");
  apply_override(j, R"(model.slstm={"conv_kernel": 0})", "x");
  EXPECT_EQ(j["model"]["slstm"], json::parse(R"({"conv_kernel": 0})"));
}

TEST(ApplyOverride, QuotedJsonStringIsTheString) {
  json j = json::object();
  apply_override(j, R"(name="true")", "x");
  EXPECT_EQ(j["name"], json("true"));
}

TEST(ApplyOverride, TextThatIsNotJsonIsTakenAsAString) {
  json j = json::object();
  apply_override(j, "model.blocks=ss", "x");
  apply_override(j, "name=", "x");
  EXPECT_EQ(j["model"]["blocks"], json("ss"));
  EXPECT_EQ(j["name"], json(""));
}

TEST(ApplyOverride, OnlyTheFirstEqualsSignSplits) {
  json j = json::object();
  apply_override(j, "name=a=b", "x");
  EXPECT_EQ(j["name"], json("a=b"));
}

TEST(ApplyOverride, CreatesNestedObjectsAndKeepsSiblings) {
  json j = json::parse(R"({"model": {"d_model": 32}})");
  apply_override(j, "model.slstm.conv_kernel=0", "x");
  EXPECT_EQ(j, json::parse(R"({"model": {"d_model": 32, "slstm": {"conv_kernel": 0}}})"));
}

TEST(ApplyOverride, IntermediateThatIsNotAnObjectIsRejectedNamingTheOverride) {
  json j = json::parse(R"({"task": {"name": "parity"}})");
  const std::string msg =
      config_error([&] { apply_override(j, "task.name.x=1", "presets/x.json"); });
  EXPECT_TRUE(has_substr(
      msg,
      "presets/x.json: --set 'task.name.x=1': /task/name: expected an object, got \"parity\""));
}

TEST(ApplyOverride, MalformedAssignmentsAreRejected) {
  const std::string usage = "expected KEY=VALUE with KEY a dotted config path such as train.steps";
  for (const std::string bad : {"train.steps", "=3", "train..steps=3", ".steps=3", "train.=3",
                                "train.st-eps=3", "train steps=3"}) {
    json j = json::object();
    const std::string msg = config_error([&] { apply_override(j, bad, "x"); });
    EXPECT_TRUE(has_substr(msg, "--set '" + bad + "': " + usage));
  }
}

TEST_F(ConfigFileTest, OverridesApplyInOrderAndReachTheConfig) {
  const std::string path = write("p.json", R"({"train": {"steps": 10, "warmup_steps": 0}})");
  const RunConfig c = load_config(path, {"train.steps=3000", "train.steps=4000", "train.lr=0.5",
                                         "model.blocks=lsl", "task.train_lengths=[5,9]"});
  EXPECT_EQ(c.train.steps, 4000);
  EXPECT_EQ(c.train.lr, 0.5);
  EXPECT_EQ(c.model.blocks, "lsl");
  EXPECT_EQ(c.task.train_lengths, (std::vector<int>{5, 9}));
}

TEST_F(ConfigFileTest, MisspeltOverrideKeyIsRejectedByValidationWithItsPointer) {
  const std::string path = write("p.json", "{}");
  const std::string msg = config_error([&] { load_config(path, {"train.stpes=1"}); });
  EXPECT_TRUE(
      has_substr(msg, path + ": /train/stpes: unknown key; allowed keys: steps, batch, lr"));
}

// --- unknown keys and types --------------------------------------------------------------------

TEST(ConfigFromJson, UnknownTopLevelKeyIsRejectedListingTheAllowedKeys) {
  EXPECT_TRUE(has_substr(error_of(R"({"modle": {}})"),
                         "presets/x.json: /modle: unknown key; allowed keys: schema_version, "
                         "name, device, precision, task, model, train, eval"));
}

TEST(ConfigFromJson, UnknownNestedKeyIsRejectedWithItsPointerAndASuggestion) {
  const std::string msg = error_of(R"({"train": {"stpes": 3}})");
  EXPECT_TRUE(has_substr(msg,
                         "presets/x.json: /train/stpes: unknown key; allowed keys: steps, "
                         "batch, lr, min_lr, warmup_steps, weight_decay, beta1, beta2, eps, "
                         "grad_clip, seed, log_every"));
  EXPECT_TRUE(has_substr(msg, "did you mean steps?"));
  EXPECT_TRUE(
      has_substr(error_of(R"({"model": {"slstm": {"kernel": 3}}})"),
                 "/model/slstm/kernel: unknown key; allowed keys: forget_gate, conv_kernel"));
}

TEST(ConfigFromJson, StringForAnIntegerIsRejected) {
  EXPECT_TRUE(
      has_substr(error_of(R"({"train": {"steps": "3"}})"),
                 "presets/x.json: /train/steps: expected integer in [1, 1000000000], got \"3\""));
}

TEST(ConfigFromJson, FloatForAnIntegerIsRejectedEvenWhenWhole) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"d_model": 3.5}})"),
                         "/model/d_model: expected integer in [1, 65536], got 3.5"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"d_model": 64.0}})"),
                         "/model/d_model: expected integer in [1, 65536], got 64.0"));
}

TEST(ConfigFromJson, BoolForAnIntegerIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"batch": true}})"),
                         "/train/batch: expected integer in [1, 1000000], got true"));
}

TEST(ConfigFromJson, IntegerBeyondIntRangeIsRejectedNamingTheRange) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"log_every": 99999999999}})"),
                         "/train/log_every: expected integer in [1, 2147483647], got 99999999999"));
}

TEST(ConfigFromJson, NumberForAStringIsRejected) {
  const std::string msg = error_of(R"({"task": {"name": 3}})");
  EXPECT_TRUE(has_substr(msg, "/task/name: expected one of "));
  EXPECT_TRUE(has_substr(msg, ", got 3"));
}

TEST(ConfigFromJson, SectionThatIsNotAnObjectIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"eval": [1, 2]})"),
                         "presets/x.json: /eval: expected an object with keys lengths, "
                         "length_step, samples, seed, batch_tokens, got [1,2]"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": null})"), "/model: expected an object"));
}

TEST(ConfigFromJson, NegativeOrFractionalSeedIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"seed": -1}})"),
                         "/train/seed: expected integer in [0, 18446744073709551615], got -1"));
  EXPECT_TRUE(has_substr(error_of(R"({"eval": {"seed": 1.5}})"), "/eval/seed: expected integer"));
}

TEST(ConfigFromJson, NumberFieldsAcceptJsonIntegers) {
  const RunConfig c =
      config_from_json(json::parse(R"({"train": {"weight_decay": 0, "lr": 1}})"), "x");
  EXPECT_EQ(c.train.weight_decay, 0.0);
  EXPECT_EQ(c.train.lr, 1.0);
}

// --- ranges ------------------------------------------------------------------------------------

TEST(ConfigFromJson, ZeroHeadsIsRejected) {
  EXPECT_EQ(error_of(R"({"model": {"heads": 0}})"),
            "presets/x.json: /model/heads: expected integer >= 1, got 0");
}

TEST(ConfigFromJson, HeadsThatDoNotDivideDModelAreRejectedNamingDModel) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"d_model": 64, "heads": 5}})"),
                         "/model/heads: expected integer >= 1 that divides d_model = 64, got 5"));
}

TEST(ConfigFromJson, DefaultThatConflictsWithAGivenValueIsNamedAsTheDefault) {
  EXPECT_TRUE(has_substr(
      error_of(R"({"model": {"d_model": 6}})"),
      "/model/heads: expected integer >= 1 that divides d_model = 6, got 4 (the default)"));
}

TEST(ConfigFromJson, UnsetWarmupIsATenthOfTheSteps) {
  EXPECT_EQ(statelab::config_from_json(nlohmann::json::parse(R"({"train": {"steps": 50}})"), "x")
                .train.warmup_steps,
            5);
}

TEST(ConfigFromJson, TrainLengthsWithLoAboveHiAreRejected) {
  EXPECT_TRUE(
      has_substr(error_of(R"({"task": {"train_lengths": [40, 3]}})"),
                 "presets/x.json: /task/train_lengths: expected [lo, hi] with 1 <= lo <= hi"));
  EXPECT_TRUE(has_substr(error_of(R"({"task": {"train_lengths": [40, 3]}})"), "got [40,3]"));
}

TEST(ConfigFromJson, LengthPairsMustBeTwoPositiveIntegers) {
  for (const char* bad : {"[0, 3]", "[3]", "[3, 4, 5]", "[3, 4.5]", "\"3-40\"", "[3, 2000000]"})
    EXPECT_TRUE(has_substr(error_of(std::string(R"({"eval": {"lengths": )") + bad + "}}"),
                           "/eval/lengths: expected [lo, hi] with 1 <= lo <= hi <= 1000000, got"));
}

TEST(ConfigFromJson, WarmupLongerThanTrainingIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"steps": 100, "warmup_steps": 101}})"),
                         "/train/warmup_steps: expected integer in [0, steps = 100], got 101"));
}

TEST(ConfigFromJson, MinLrAboveLrIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"lr": 0.001, "min_lr": 0.01}})"),
                         "/train/min_lr: expected number in [0, lr = 0.001], got 0.01"));
}

TEST(ConfigFromJson, UnknownLengthSamplingIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"task": {"length_sampling": "random"}})"),
                         "/task/length_sampling: expected one of per_batch, per_sample, got \"random\""));
}

TEST(ConfigFromJson, EarlyStoppingWithoutEvaluationsIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"early_stop_evals": 2}})"),
                         "/train/early_stop_evals: expected 0 while train.eval_every is 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"eval_every": 10, "early_stop_accuracy": 1.5}})"),
                         "/train/early_stop_accuracy: expected number in (0, 1], got 1.5"));
}

TEST(ConfigFromJson, TrainingRangeWithoutALengthTheTaskAcceptsIsRejected) {
  EXPECT_TRUE(has_substr(
      error_of(R"({"task": {"name": "modular_arithmetic", "train_lengths": [3, 3]}})"),
      "/task/train_lengths: expected [lo, hi] holding a length modular_arithmetic accepts"));
  EXPECT_TRUE(has_substr(
      error_of(R"({"task": {"name": "modular_arithmetic"}, "eval": {"lengths": [41, 41]}})"),
      "/eval/lengths: expected [lo, hi] holding a length modular_arithmetic accepts"));
}

TEST(ConfigFromJson, PerTokenReadoutNeedsATaskWithARunningAnswer) {
  EXPECT_TRUE(has_substr(
      error_of(R"({"task": {"name": "modular_arithmetic_brackets", "readout": "per_token"}})"),
      "/task/readout: expected \"final\" (modular_arithmetic_brackets defines no running answer"));
}

TEST(ConfigFromJson, UnknownReadoutIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"task": {"readout": "every"}})"),
                         "/task/readout: expected one of final, per_token, got \"every\""));
}

TEST(ConfigFromJson, UnknownForgetGateIsRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"slstm": {"forget_gate": "tanh"}}})"),
                         "/model/slstm/forget_gate: expected one of sigmoid, exp, got \"tanh\""));
}

TEST(ConfigFromJson, UnknownTaskIsRejectedListingTheRegisteredTasks) {
  const std::string msg = error_of(R"({"task": {"name": "parrity"}})");
  EXPECT_TRUE(has_substr(msg, "presets/x.json: /task/name: expected one of "));
  for (const auto& name : task_names()) EXPECT_TRUE(has_substr(msg, name));
  EXPECT_TRUE(has_substr(error_of(R"({"task": {"name": "parrity"}})"), "got \"parrity\""));
}

TEST(ConfigFromJson, UnknownBlockLetterIsRejectedNamingLetterAndIndex) {
  const std::string msg = error_of(R"({"model": {"blocks": "sx"}})");
  EXPECT_TRUE(has_substr(msg,
                         "/model/blocks: expected a non-empty string of block letters "
                         "(l = lstm, s = slstm, m = mlstm, M = mamba2, g = gdn, t = transformer) "
                         "or xlstm[a:b], got \"sx\""));
  EXPECT_TRUE(has_substr(msg, "\"x\" at index 1 is not a block letter"));
  EXPECT_TRUE(
      has_substr(error_of(R"({"model": {"blocks": ""}})"), "/model/blocks: expected a non-empty"));
}

TEST(ConfigFromJson, XlstmRatioExpandsToMlstmThenSlstmBlocks) {
  EXPECT_EQ(
      config_from_json(json::parse(R"({"model": {"blocks": "xlstm[1:1]"}})"), "x").model.blocks,
      "ms");
  EXPECT_EQ(
      config_from_json(json::parse(R"({"model": {"blocks": "xlstm[3:1]"}})"), "x").model.blocks,
      "mmms");
  EXPECT_EQ(
      config_from_json(json::parse(R"({"model": {"blocks": "xlstm[0:2]"}})"), "x").model.blocks,
      "ss");
  for (const char* bad : {"xlstm[1]", "xlstm[0:0]", "xlstm[1:1]s", "xlstm[40:40]"})
    EXPECT_TRUE(has_substr(error_of(std::string(R"({"model": {"blocks": ")") + bad + "\"}}"),
                           "/model/blocks: expected xlstm[a:b] with a mLSTM and b sLSTM blocks"))
        << bad;
}

TEST(ConfigFromJson, EigenRangeMustBeKnownAndApplyToALinearCell) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"blocks": "M", "eigen_range": "-11"}})"),
                         "/model/eigen_range: expected one of 01, pm1, got \"-11\""));
  const std::string msg = error_of(R"({"model": {"blocks": "ls", "eigen_range": "pm1"}})");
  EXPECT_TRUE(has_substr(msg, "presets/x.json: /model/eigen_range: expected \"01\""));
  EXPECT_TRUE(has_substr(msg, "model.blocks = \"ls\" has none"));
  EXPECT_TRUE(has_substr(msg, "got \"pm1\""));
  for (const char* blocks : {"m", "M", "g", "ms", "tg"})
    EXPECT_EQ(config_from_json(json::parse(std::string(R"({"model": {"blocks": ")") + blocks +
                                           R"(", "eigen_range": "pm1"}})"),
                               "x")
                  .model.eigen_range,
              "pm1");
}

TEST(ConfigFromJson, SignedMlstmNeedsTheSigmoidForgetGate) {
  EXPECT_TRUE(has_substr(
      error_of(
          R"({"model": {"blocks": "m", "eigen_range": "pm1", "mlstm": {"forget_gate": "exp"}}})"),
      "/model/mlstm/forget_gate: expected \"sigmoid\" (eigen_range \"pm1\""));
}

TEST(ConfigFromJson, ChunkSizeAndCellWidthsMustBePositive) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"chunk_size": 0}})"),
                         "/model/chunk_size: expected integer in [1, 65536], got 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"mamba2": {"state_size": 0}}})"),
                         "/model/mamba2/state_size: expected integer in [1, 1024], got 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"gdn": {"expand_v": -1}}})"),
                         "/model/gdn/expand_v: expected integer in [1, 16], got -1"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"mlstm": {"proj_factor": 0}}})"),
                         "/model/mlstm/proj_factor: expected integer in [1, 16], got 0"));
}

TEST(ConfigFromJson, RopeNeedsHeadsOfEvenWidth) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"blocks": "t", "d_model": 6, "heads": 2}})"),
                         "/model/heads: expected integer >= 1 that divides d_model = 6 into "
                         "heads of even width"));
  EXPECT_EQ(config_from_json(json::parse(R"({"model": {"blocks": "t", "d_model": 6, "heads": 2,
                                                        "transformer": {"position": "none"}}})"),
                             "x")
                .model.heads,
            2);
}

TEST(ConfigFromJson, DeviceIsAutoCpuOrCudaNAndPrecisionOneOfThree) {
  for (const char* ok : {"auto", "cpu", "cuda:0", "cuda:12"})
    EXPECT_EQ(config_from_json(json{{"device", ok}}, "x").device, ok);
  for (const char* bad : {"gpu", "cuda", "cuda:", "cuda:-1", "cuda:x", "CPU"})
    EXPECT_TRUE(has_substr(error_of(json{{"device", bad}}.dump()),
                           std::string("presets/x.json: /device: expected \"auto\", \"cpu\" or "
                                       "\"cuda:N\" (N = 0, 1, ...), got \"") + bad + "\""))
        << bad;
  EXPECT_EQ(config_from_json(json::object(), "x").device, "auto");
  EXPECT_EQ(config_from_json(json::object(), "x").precision, "fp32");
  EXPECT_EQ(config_from_json(json{{"precision", "bf16"}}, "x").precision, "bf16");
  EXPECT_TRUE(has_substr(error_of(R"({"precision": "fp16"})"), "/precision"));
  EXPECT_TRUE(has_substr(error_of(R"({"precision": "fp16"})"), "\"fp16\""));
}

TEST(ConfigFromJson, OtherOutOfRangeValuesAreRejected) {
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"d_model": 65537}})"),
                         "/model/d_model: expected integer in [1, 65536]"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"ffn_factor": -0.5}})"),
                         "/model/ffn_factor: expected number in [0, 64]"));
  EXPECT_TRUE(has_substr(error_of(R"({"model": {"slstm": {"conv_kernel": 65}}})"),
                         "/model/slstm/conv_kernel: expected integer in [0, 64]"));
  EXPECT_TRUE(
      has_substr(error_of(R"({"train": {"lr": 0}})"), "/train/lr: expected number > 0, got 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"beta2": 1}})"),
                         "/train/beta2: expected number in [0, 1), got 1"));
  EXPECT_TRUE(
      has_substr(error_of(R"({"train": {"eps": 0.0}})"), "/train/eps: expected number > 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"train": {"grad_clip": -1}})"),
                         "/train/grad_clip: expected number >= 0"));
  EXPECT_TRUE(has_substr(error_of(R"({"eval": {"samples": 10000001}})"),
                         "/eval/samples: expected integer in [1, 10000000]"));
  EXPECT_TRUE(has_substr(error_of(R"({"eval": {"batch_tokens": 0}})"),
                         "/eval/batch_tokens: expected integer >= 1, got 0"));
}

TEST(ConfigFromJson, NonFiniteNumberBuiltInCodeIsRejected) {
  json j;
  j["train"]["lr"] = std::nan("");
  EXPECT_TRUE(has_substr(config_error([&] { config_from_json(j, "x"); }),
                         "/train/lr: expected number > 0, got nan"));
}

TEST(ConfigFromJson, NameThatIsNotOneDirectoryNameIsRejected) {
  for (const char* bad : {"\"\"", "\"a/b\"", "\"a b\"", "\"..\"", "3"})
    EXPECT_TRUE(has_substr(error_of(std::string(R"({"name": )") + bad + "}"),
                           "presets/x.json: /name: expected a run directory name"));
  EXPECT_EQ(config_from_json(json::parse(R"({"name": "v1.2-run_3"})"), "x").name, "v1.2-run_3");
}

TEST(ConfigFromJson, SchemaVersionOtherThanOneIsRejected) {
  EXPECT_EQ(error_of(R"({"schema_version": 2})"),
            "presets/x.json: /schema_version: expected 1, got 2");
  EXPECT_TRUE(has_substr(error_of(R"({"schema_version": "1"})"), "expected 1, got \"1\""));
  EXPECT_EQ(config_from_json(json::parse(R"({"schema_version": 1})"), "x").schema_version, 1);
}

TEST(ConfigFromJson, FirstErrorInSchemaOrderIsReported) {
  // model comes before train in the schema, whatever the order in the file.
  EXPECT_TRUE(
      has_substr(error_of(R"({"train": {"steps": 0}, "model": {"heads": 0}})"), "/model/heads"));
  // Unknown keys of an object are checked before its values.
  EXPECT_TRUE(
      has_substr(error_of(R"({"model": {"heads": 0, "hedas": 1}})"), "/model/hedas: unknown key"));
  EXPECT_TRUE(
      has_substr(error_of(R"({"task": {"name": "nope"}, "bogus": 1})"), "/bogus: unknown key"));
}

// --- files -------------------------------------------------------------------------------------

TEST_F(ConfigFileTest, MalformedJsonNamesTheFileAndThePosition) {
  const std::string path = write("bad.json", "{\n  \"train\": {\"steps\": 3,}\n}\n");
  const std::string msg = config_error([&] { load_config(path); });
  EXPECT_TRUE(has_substr(msg, path + ": invalid JSON: "));
  EXPECT_TRUE(has_substr(msg, "line 2, column"));
  EXPECT_EQ(msg.find("[json.exception"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, DuplicateKeyIsRejectedWithItsPointer) {
  const std::string path =
      write("dup.json", R"({"eval": {"lengths": [1, 2]}, "train": {"lr": 0.1, "lr": 0.2}})");
  EXPECT_TRUE(
      has_substr(config_error([&] { load_config(path); }), path + ": /train/lr: duplicate key"));
  const std::string nested = write("dup2.json", R"({"a": [{"k": 1}, {"k": 1, "k": 2}]})");
  EXPECT_TRUE(has_substr(config_error([&] { load_config(nested); }), ": /a/1/k: duplicate key"));
}

TEST_F(ConfigFileTest, DeeplyNestedDocumentsAndOverridesAreRefusedBeforeAnythingWalksThem) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(has_substr(config_error([&] { load_config(write("deep.json", deep)); }),
                         "nested deeper than 32 levels"));
  const std::string ok = write("ok.json", "{}");
  EXPECT_TRUE(has_substr(config_error([&] { load_config(ok, {"train.steps=" + deep}); }),
                         "--set 'train.steps=...': value nested deeper than 32 levels"));
}

TEST_F(ConfigFileTest, TopLevelThatIsNotAnObjectIsRejected) {
  const std::string path = write("arr.json", "[1, 2]");
  EXPECT_EQ(config_error([&] { load_config(path); }),
            path + ": expected a JSON object at the top level, got [1,2]");
}

TEST_F(ConfigFileTest, MissingFileIsAConfigErrorNamingThePathAndTheReason) {
  const std::string path = (dir_ / "absent.json").string();
  EXPECT_EQ(config_error([&] { load_config(path); }),
            path + ": cannot open for reading: No such file or directory");
}

TEST_F(ConfigFileTest, DirectoryIsNotReadableAsAPreset) {
  EXPECT_TRUE(has_substr(config_error([&] { load_config(dir_.string()); }), ": cannot read: "));
}

// --- round trip --------------------------------------------------------------------------------

RunConfig unusual_config() {
  RunConfig c;
  c.name = "round_trip";
  c.device = "cuda:3";
  c.precision = "bf16";
  c.task.train_lengths = {7, 999};
  c.task.length_sampling = "per_sample";
  c.task.readout = "per_token";
  c.train.eval_every = 25;
  c.train.early_stop_evals = 3;
  c.train.early_stop_accuracy = 0.95;
  c.model.blocks = "lsmMgt";
  c.model.d_model = 96;
  c.model.heads = 3;
  c.model.ffn_factor = 4.0 / 3 + 1e-12;
  c.model.eigen_range = "pm1";
  c.model.chunk_size = 7;
  c.model.slstm = {"exp", 0};
  c.model.mlstm = {"sigmoid", 3, 3};
  c.model.mamba2 = {3, 17, 2};
  c.model.gdn = {3, 5};
  c.model.transformer = {"rope", 1e4 + 1.0 / 3};
  c.train.steps = 1234;
  c.train.batch = 17;
  c.train.lr = 3e-4;
  c.train.min_lr = 1.0 / 3 * 1e-5;
  c.train.warmup_steps = 1234;
  c.train.weight_decay = 0.01;
  c.train.beta1 = 0.8;
  c.train.beta2 = 0.9999;
  c.train.eps = 1e-12;
  c.train.grad_clip = 0.0;
  c.train.seed = (uint64_t(1) << 63) + 1;  // above 2^53: a trip through double would change it
  c.train.log_every = 7;
  c.eval.lengths = {3, 1000000};
  c.eval.length_step = 5;
  c.eval.samples = 9;
  c.eval.seed = UINT64_MAX;
  c.eval.batch_tokens = 1;
  return c;
}

TEST(ToJson, WritesEveryFieldIncludingTheSchemaVersion) {
  RunConfig c;
  c.name = "n";
  const json j = to_json(c);
  EXPECT_EQ(j["schema_version"], json(1));
  EXPECT_EQ(j.size(), 8u);
  EXPECT_EQ(j["task"].size(), 4u);
  EXPECT_EQ(j["model"].size(), 11u);
  EXPECT_EQ(j["model"]["slstm"].size(), 2u);
  EXPECT_EQ(j["model"]["mlstm"].size(), 3u);
  EXPECT_EQ(j["model"]["mamba2"].size(), 3u);
  EXPECT_EQ(j["model"]["gdn"].size(), 2u);
  EXPECT_EQ(j["model"]["transformer"].size(), 2u);
  EXPECT_EQ(j["train"].size(), 18u);
  EXPECT_EQ(j["eval"].size(), 5u);
}

TEST(ToJson, RoundTripReproducesTheConfigExactly) {
  const RunConfig c = unusual_config();
  expect_same_config(config_from_json(to_json(c), "x"), c);
  const RunConfig defaults = config_from_json(json::object(), "x");
  expect_same_config(config_from_json(to_json(defaults), "x"), defaults);
}

TEST(ToJson, RoundTripThroughTextKeepsDoublesAndLargeSeeds) {
  const RunConfig c = unusual_config();
  const RunConfig back = config_from_json(json::parse(to_json(c).dump(2)), "x");
  expect_same_config(back, c);
  EXPECT_EQ(back.train.seed, (uint64_t(1) << 63) + 1);
  EXPECT_EQ(back.eval.seed, UINT64_MAX);
}

// --- shipped presets ---------------------------------------------------------------------------

TEST(Presets, EveryShippedPresetLoads) {
  const fs::path dir = fs::path(STATELAB_SOURCE_DIR) / "presets";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    try {
      const RunConfig c = load_config(entry.path().string());
      EXPECT_FALSE(c.name.empty());
      // Every cell its pattern names can be built: the catalog and the block factory agree.
      const Model<float> model(c.model, make_task(c.task.name)->vocab().size(), 64, 64);
      EXPECT_EQ(model.n_blocks(), int(c.model.blocks.size()));
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

}  // namespace
}  // namespace statelab
