// The dashboard's engine without a window: commands reach a training run between steps, the
// snapshots stay consistent while training runs on its thread, and the run directory it leaves
// is the one `lab train` writes.
#include <gtest/gtest.h>

#include <filesystem>

#include "gui/session.hpp"
#include "lab/config.hpp"
#include "lab/optimizer.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab::gui {
namespace {

namespace fs = std::filesystem;
using Kind = Command::Kind;

RunConfig tiny_config(int steps) {
  RunConfig cfg = load_config(std::string(STATELAB_SOURCE_DIR) + "/presets/parity_slstm.json",
                              {"train.steps=" + std::to_string(steps), "train.batch=8",
                               "model.d_model=16", "train.log_every=5", "train.eval_every=10",
                               "eval.lengths=[40,48]", "eval.samples=8", "device=cpu"});
  return cfg;
}

SessionOptions options(const std::string& root) {
  SessionOptions o;
  o.runs_root = root;
  o.selftest = false;
  o.analysis.eval_points = 3;
  o.analysis.eval_samples = 4;
  o.analysis.probe_samples = 4;
  o.analysis.fit_samples = 16;
  return o;
}

Command command(Kind k) {
  Command c;
  c.kind = k;
  return c;
}

class SessionTest : public ::testing::Test {
 protected:
  statelab::testing::TempDir dir_;
  const std::string root_ = dir_ / "runs";
};

TEST_F(SessionTest, TrainsToTheEndAndWritesTheRunDirectoryLabTrainWrites) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(20);
  s.send(start);
  ASSERT_TRUE(s.wait_until(
      [](const RunSnapshot& r) { return r.status == RunStatus::finished && !r.analysis_busy; },
      120));
  const auto snap = s.snapshot();
  EXPECT_EQ(snap->step, 20);
  ASSERT_EQ(snap->steps.size(), 20u);
  for (size_t i = 0; i < snap->steps.size(); ++i) EXPECT_EQ(snap->steps[i].step, int(i) + 1);
  EXPECT_EQ(snap->intervals.size(), 4u);
  EXPECT_EQ(snap->checks.size(), 1u);  // step 10; step 20 is the end, evaluated in full
  ASSERT_TRUE(snap->final_eval);
  EXPECT_EQ(snap->final_eval->lengths.size(), 9u);
  ASSERT_TRUE(snap->probe);
  EXPECT_EQ(snap->probe->layers, 2);
  for (const char* f :
       {"config.json", "metrics.jsonl", "checks.jsonl", "model.safetensors", "eval.json"})
    EXPECT_TRUE(fs::exists(snap->dir + "/" + f)) << f;
}

TEST_F(SessionTest, PauseHoldsTrainingUncountedAndStepAdvancesExactlyOneStep) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(100000);
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 3; }, 60));
  s.send(command(Kind::pause));
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::paused; }, 60));
  const int held = s.snapshot()->step;
  const double trained_s = s.snapshot()->elapsed_s;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(s.snapshot()->step, held) << "a paused run went on training";
  s.send(command(Kind::step));
  ASSERT_TRUE(s.wait_until([&](const RunSnapshot& r) { return r.step == held + 1; }, 60));
  EXPECT_LT(s.snapshot()->elapsed_s - trained_s, 0.4) << "the pause counted as training time";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.snapshot()->step, held + 1) << "Step ran more than one step";
  EXPECT_EQ(s.snapshot()->status, RunStatus::paused);
  s.send(command(Kind::resume));
  ASSERT_TRUE(s.wait_until([&](const RunSnapshot& r) { return r.step > held + 3; }, 60));
  s.send(command(Kind::stop));
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::stopped; }, 60));
  // A stopped run leaves a checkpoint of the step it stopped after.
  const auto snap = s.snapshot();
  EXPECT_FALSE(fs::is_empty(snap->dir + "/checkpoints"));
}

TEST_F(SessionTest, ContinueAfterStopGoesOnFromTheSameStepAndKeepsTheTrainingTime) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(100000);
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 20; }, 60));
  s.send(command(Kind::stop));
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::stopped; }, 60));
  const auto stopped = s.snapshot();
  s.send(start);  // the Run window's Continue
  // A few steps only: were the clock to restart, they would show less time than the first 20.
  ASSERT_TRUE(s.wait_until([&](const RunSnapshot& r) { return r.step >= stopped->step + 3; }, 60));
  const auto later = s.snapshot();
  EXPECT_EQ(later->dir, stopped->dir);
  for (size_t k = 1; k < later->steps.size(); ++k)
    ASSERT_EQ(later->steps[k].step, later->steps[k - 1].step + 1);
  EXPECT_GT(later->elapsed_s, stopped->elapsed_s);
}

TEST_F(SessionTest, CommandsFromManyThreadsWhileTrainingKeepSnapshotsConsistent) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(100000);
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 1; }, 60));
  std::atomic<bool> done{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t)
    senders.emplace_back([&, t] {
      const Kind kinds[] = {Kind::pause, Kind::resume, Kind::step, Kind::eval};
      for (int i = 0; !done.load(); ++i) {
        s.send(command(kinds[(i + t) % 4]));
        s.set_lr_scale(0.5 + 0.1 * (i % 5));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  uint64_t last_version = 0;
  int last_step = 0;
  for (int i = 0; i < 300; ++i) {
    const auto snap = s.snapshot();
    EXPECT_GE(snap->version, last_version);
    EXPECT_GE(snap->step, last_step);
    // Every step is recorded once, in order, whatever the commands did in between.
    for (size_t k = 1; k < snap->steps.size(); ++k)
      ASSERT_EQ(snap->steps[k].step, snap->steps[k - 1].step + 1);
    last_version = snap->version;
    last_step = snap->step;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  done.store(true);
  for (auto& t : senders) t.join();
  s.send(command(Kind::resume));
  s.send(command(Kind::stop));
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::stopped; }, 60));
  EXPECT_GT(s.snapshot()->step, 1);
}

TEST_F(SessionTest, TheLearningRateScaleActsFromOneStepOnAndOnEveryStepAfter) {
  Session s(options(root_));
  Command start = command(Kind::start);
  const RunConfig cfg = tiny_config(100000);
  start.config = cfg;
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 2; }, 60));
  s.set_lr_scale(0.25);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.lr_scale == 0.25; }, 60));
  const int after = s.snapshot()->step;
  ASSERT_TRUE(s.wait_until([&](const RunSnapshot& r) { return r.step >= after + 3; }, 60));
  s.send(command(Kind::stop));
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::stopped; }, 60));
  const auto snap = s.snapshot();
  // Each step's rate over the schedule's: 1 up to some step, 0.25 from the next on.
  int switched = 0;
  for (const CurvePoint& p : snap->steps) {
    const double ratio = p.lr / learning_rate(cfg.train, p.step);
    if (switched == 0 && std::abs(ratio - 0.25) < 1e-9) switched = p.step;
    EXPECT_NEAR(ratio, switched ? 0.25 : 1.0, 1e-9) << "step " << p.step;
  }
  EXPECT_GT(switched, 2);
  EXPECT_LE(switched, after + 1);
}

// A finished tiny run, for the tests of what the dashboard does with one.
std::string finished_run(Session& s, uint64_t seed = 42) {
  const std::string previous = s.snapshot()->dir;
  Command start = command(Kind::start);
  start.config = tiny_config(10);
  start.config.train.seed = seed;
  s.send(start);
  EXPECT_TRUE(s.wait_until(
      [&](const RunSnapshot& r) {
        return r.dir != previous && r.status == RunStatus::finished && !r.analysis_busy;
      },
      120));
  return s.snapshot()->dir;
}

// Sends `c` and waits for the analysis it asks for.
std::shared_ptr<const RunSnapshot> analysed(Session& s, const Command& c) {
  const int before = s.snapshot()->analyses;
  s.send(c);
  EXPECT_TRUE(s.wait_until(
      [&](const RunSnapshot& r) { return r.analyses > before && !r.analysis_busy; }, 120));
  return s.snapshot();
}

TEST_F(SessionTest, ProbesATypedSequenceOrAHeldOutSampleAndRefusesAnUnknownSymbol) {
  Session s(options(root_));
  finished_run(s);
  Command typed = command(Kind::probe);
  typed.text = "1 0 1 1";
  auto snap = analysed(s, typed);
  ASSERT_TRUE(snap->probe);
  EXPECT_EQ(snap->probe->label.rfind("typed: 1 0 1 1", 0), 0u) << snap->probe->label;
  EXPECT_EQ(snap->probe->length, 4);
  EXPECT_EQ(snap->probe->latent, (std::vector<int32_t>{1, 1, 0, 1}));  // running parity
  ASSERT_EQ(snap->probe->decoded.size(), 2u);
  EXPECT_EQ(snap->probe->decoded[1].size(), 4u);

  Command sample = command(Kind::probe);
  sample.sample = 2;
  sample.length = 12;
  snap = analysed(s, sample);
  EXPECT_EQ(snap->probe->label.rfind("held-out sample 2 of length 12", 0), 0u)
      << snap->probe->label;
  EXPECT_EQ(snap->probe->tokens.size(), 12u);

  Command bad = command(Kind::probe);
  bad.text = "1 x 0";
  snap = analysed(s, bad);
  EXPECT_EQ(snap->probe->length, 12) << "a refused input replaced the view";
  ASSERT_FALSE(snap->log.empty());
  EXPECT_TRUE(snap->log.back().error);
  EXPECT_NE(snap->log.back().text.find("'x'"), std::string::npos) << snap->log.back().text;
}

TEST_F(SessionTest, ExportsTracesTheResolvedConfigAndACheckpoint) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(100000);
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 5; }, 60));
  s.send(command(Kind::stop));
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::stopped; }, 60));
  const std::string dir = s.snapshot()->dir;
  const size_t before = std::distance(fs::directory_iterator(dir + "/checkpoints"), {});
  Command traces = command(Kind::export_traces);
  traces.path = dir_ / "traces";
  analysed(s, traces);
  for (const char* f : {"traces.safetensors", "traces.npz", "manifest.json", "summary.csv"})
    EXPECT_TRUE(fs::exists(dir_ / ("traces/" + std::string(f)))) << f;
  Command config = command(Kind::export_config);
  config.path = dir_ / "resolved.json";
  s.send(config);
  Command checkpoint = command(Kind::checkpoint);
  s.send(checkpoint);
  ASSERT_TRUE(s.wait_until(
      [&](const RunSnapshot& r) { return r.log.back().text.rfind("checkpoint of step", 0) == 0; },
      60));
  EXPECT_EQ(config_hash(load_config(dir_ / "resolved.json")), config_hash(start.config));
  // The stop wrote one; the command a second only if the step moved on, so at least as many.
  EXPECT_GE(size_t(std::distance(fs::directory_iterator(dir + "/checkpoints"), {})), before);
}

TEST_F(SessionTest, ComparesWithASecondRunAndOverlaysFinishedRuns) {
  Session s(options(root_));
  const std::string first = finished_run(s, 1);
  const std::string second = finished_run(s, 2);
  ASSERT_NE(first, second);
  Command compare = command(Kind::compare);
  compare.path = first;
  auto snap = analysed(s, compare);
  ASSERT_TRUE(snap->compare_probe);
  EXPECT_EQ(snap->compare_dir, first);
  EXPECT_EQ(snap->compare_probe->length, snap->probe->length) << "compared on the same input";
  Command overlay = command(Kind::add_overlay);
  overlay.path = first;
  s.send(overlay);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.overlays.size() == 1; }, 60));
  EXPECT_EQ(s.snapshot()->overlays[0]->lengths.size(), 9u);
  s.send(command(Kind::clear_overlays));
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.overlays.empty(); }, 60));
}

TEST_F(SessionTest, QuittingWhileTrainingSavesACheckpointOnlyWhenAsked) {
  for (const bool save : {true, false}) {
    std::string dir;
    {
      SessionOptions o = options(root_ + (save ? "-save" : "-discard"));
      Session s(o);
      Command start = command(Kind::start);
      start.config = tiny_config(100000);
      s.send(start);
      ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.step >= 3; }, 60));
      dir = s.snapshot()->dir;
      Command quit = command(Kind::quit);
      quit.save = save;
      s.send(quit);
    }  // the destructor waits for the worker to leave
    const bool has_checkpoint =
        fs::exists(dir + "/checkpoints") && !fs::is_empty(dir + "/checkpoints");
    EXPECT_EQ(has_checkpoint, save) << (save ? "save" : "discard");
  }
}

TEST_F(SessionTest, AnInvalidConfigFailsWithItsMessageAndTrainsNothing) {
  Session s(options(root_));
  Command start = command(Kind::start);
  start.config = tiny_config(10);
  start.config.device = "cuda:7";
  s.send(start);
  ASSERT_TRUE(s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::failed; }, 60));
  const auto snap = s.snapshot();
  EXPECT_NE(snap->error.find("cuda:7"), std::string::npos) << snap->error;
  EXPECT_EQ(snap->step, 0);
}

TEST_F(SessionTest, AFinishedRunWithMissingFilesOpensWhatItCanAndSaysWhatIsMissing) {
  std::string dir;
  {
    Session s(options(root_));
    Command start = command(Kind::start);
    start.config = tiny_config(10);
    s.send(start);
    ASSERT_TRUE(s.wait_until(
        [](const RunSnapshot& r) { return r.status == RunStatus::finished && !r.analysis_busy; },
        120));
    dir = s.snapshot()->dir;
  }
  fs::remove(dir + "/eval.json");
  fs::remove(dir + "/model.safetensors");
  fs::remove_all(dir + "/checkpoints");
  Session s(options(root_));
  Command open = command(Kind::open_run);
  open.path = dir;
  s.send(open);
  ASSERT_TRUE(
      s.wait_until([](const RunSnapshot& r) { return r.status == RunStatus::viewing; }, 60));
  const auto snap = s.snapshot();
  EXPECT_EQ(snap->intervals.size(), 2u);  // metrics.jsonl is there
  EXPECT_FALSE(snap->final_eval);
  EXPECT_FALSE(snap->probe);
  ASSERT_EQ(snap->missing.size(), 2u) << ::testing::PrintToString(snap->missing);
  EXPECT_NE(snap->missing[0].find("eval.json"), std::string::npos);
  EXPECT_NE(snap->missing[1].find("model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace statelab::gui
