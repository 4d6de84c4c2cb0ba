// The dashboard's logic without a window: which controls each run state offers, what the
// shortcuts send, config drafts validated as the CLI validates them, probe views laid out for
// the heatmaps, sweep results grouped into overlay curves, and every window drawn headless
// (ImGui without a renderer) with a panel that throws showing its error instead of ending the
// frame.
#include <gtest/gtest.h>
#include <imgui.h>
#include <imgui_internal.h>

#include <filesystem>
#include <fstream>

#include "gui/controls.hpp"
#include "gui/dashboard.hpp"
#include "gui/run_files.hpp"
#include "kernels/error.hpp"
#include "tests/support/temp_dir.hpp"

namespace statelab::gui {
namespace {

namespace fs = std::filesystem;
using Kind = Command::Kind;
const std::string kPreset = std::string(STATELAB_SOURCE_DIR) + "/presets/parity_slstm.json";

TEST(Controls, EachStateOffersOnlyTheControlsThatApply) {
  EXPECT_TRUE(controls_for(RunStatus::idle, true).start);
  EXPECT_FALSE(controls_for(RunStatus::idle, false).start) << "an invalid draft cannot start";
  const Controls running = controls_for(RunStatus::running, true);
  EXPECT_TRUE(running.pause && running.step && running.stop && running.eval);
  EXPECT_FALSE(running.start || running.resume);
  const Controls paused = controls_for(RunStatus::paused, true);
  EXPECT_TRUE(paused.resume && paused.step && paused.stop);
  EXPECT_FALSE(paused.pause || paused.start);
  const Controls stopped = controls_for(RunStatus::stopped, false);
  EXPECT_TRUE(stopped.start) << "a stopped run continues whatever the draft says";
  EXPECT_STREQ(stopped.start_label, "Continue");
  const Controls starting = controls_for(RunStatus::starting, true);
  EXPECT_FALSE(starting.start || starting.pause || starting.stop || starting.step);
  EXPECT_TRUE(controls_for(RunStatus::finished, true).eval);
  EXPECT_TRUE(controls_for(RunStatus::viewing, true).start);
}

TEST(Controls, SpacePausesOrResumesAndSEStepAndEvaluateOnlyWhereAllowed) {
  EXPECT_EQ(shortcut_command(' ', RunStatus::running)->kind, Kind::pause);
  EXPECT_EQ(shortcut_command(' ', RunStatus::paused)->kind, Kind::resume);
  EXPECT_EQ(shortcut_command('s', RunStatus::paused)->kind, Kind::step);
  EXPECT_EQ(shortcut_command('e', RunStatus::running)->kind, Kind::eval);
  EXPECT_FALSE(shortcut_command(' ', RunStatus::idle));
  EXPECT_FALSE(shortcut_command('s', RunStatus::finished));
  EXPECT_FALSE(shortcut_command('x', RunStatus::running));
}

TEST(ConfigDraft, AnEditIsValidatedAsLabTrainWouldWithTheFieldsPointer) {
  ConfigDraft d = draft_from_file(kPreset);
  ASSERT_TRUE(d.config) << d.error;
  EXPECT_EQ(d.config->name, "parity_slstm");
  d.heads = "0";
  EXPECT_FALSE(d.validate());
  EXPECT_NE(d.error.find("/model/heads"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("parity_slstm.json"), std::string::npos) << d.error;
  try {
    load_config(kPreset, {"model.heads=0"});
    FAIL() << "the CLI accepted what the draft refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/model/heads"), std::string::npos);
  }
  d.heads = "1";
  d.lr = "fast";
  EXPECT_FALSE(d.validate());
  EXPECT_NE(d.error.find("/train/lr"), std::string::npos) << d.error;
  d.lr = "0.01";
  d.extra = "train.not_a_key=3\n";
  EXPECT_FALSE(d.validate());
  EXPECT_NE(d.error.find("not_a_key"), std::string::npos) << d.error;
  d.extra = "train.log_every=7\n";
  ASSERT_TRUE(d.validate()) << d.error;
  EXPECT_EQ(d.config->train.log_every, 7);
  EXPECT_DOUBLE_EQ(d.config->train.lr, 0.01);
}

TEST(ConfigDraft, OverridesOfShownFieldsMoveIntoTheFieldsAndTheRestStay) {
  ConfigDraft d = draft_from_file(kPreset);
  d.extra = "model.d_model=16\ntrain.log_every=7\ntask.train_lengths=[3,20]\n";
  d.fold_overrides();
  EXPECT_EQ(d.d_model, "16");
  EXPECT_EQ(d.train_hi, "20");
  EXPECT_EQ(d.extra, "train.log_every=7\n");
  ASSERT_TRUE(d.config) << d.error;
  EXPECT_EQ(d.config->model.d_model, 16);
  EXPECT_EQ(d.config->train.log_every, 7);
  d.d_model = "32";  // an edit of the field is no longer overridden by a hidden line
  ASSERT_TRUE(d.validate());
  EXPECT_EQ(d.config->model.d_model, 32);
  d.extra = "model.heads=0\n";
  d.fold_overrides();  // invalid: left as typed, with the error
  EXPECT_EQ(d.extra, "model.heads=0\n");
  EXPECT_FALSE(d.config);
}

TEST(ConfigDraft, FewerStepsMoveTheDefaultWarmupAsOnTheCommandLine) {
  ConfigDraft d = draft_from_file(kPreset);
  d.steps = "100";
  ASSERT_TRUE(d.validate()) << d.error;
  EXPECT_EQ(d.config->train.warmup_steps,
            load_config(kPreset, {"train.steps=100"}).train.warmup_steps);
  EXPECT_EQ(d.config->train.warmup_steps, 10);
}

TEST(ConfigDraft, ListsPresetsAndRunDirectoriesNewestFirst) {
  statelab::testing::TempDir dir;
  fs::create_directories(dir / "presets/sweeps");
  std::ofstream(dir / "presets/b.json") << "{}";
  std::ofstream(dir / "presets/a.json") << "{}";
  std::ofstream(dir / "presets/sweeps/s.json") << "{}";
  EXPECT_EQ(list_presets(dir / "presets"),
            (std::vector<std::string>{dir / "presets/a.json", dir / "presets/b.json"}));
  fs::create_directories(dir / "runs/old");
  fs::create_directories(dir / "runs/new");
  fs::create_directories(dir / "runs/not_a_run");
  std::ofstream(dir / "runs/old/config.json") << "{}";
  std::ofstream(dir / "runs/new/config.json") << "{}";
  fs::last_write_time(dir / "runs/old/config.json",
                      fs::last_write_time(dir / "runs/new/config.json") - std::chrono::hours(1));
  EXPECT_EQ(list_runs(dir / "runs"),
            (std::vector<std::string>{dir / "runs/new", dir / "runs/old"}));
  EXPECT_TRUE(list_runs(dir / "missing").empty());
}

ProbeView two_head_view() {
  ProbeView v;
  v.layers = 1;
  ProbeSeries gate{"blocks.0.forget_gate", {"sample", "time", "head", "unit"},
                   {1, 3, 2, 2},           {},
                   ProbeKind::gate,        "f"};
  for (int i = 0; i < 12; ++i) gate.values.push_back(float(i) / 12);  // [t][head][unit]
  ProbeSeries norm{"blocks.0.memory_norm",
                   {"sample", "time", "head"},
                   {1, 3, 2},
                   {1, 2, 3, 4, 5, 6},
                   ProbeKind::norm,
                   "n"};
  ProbeSeries pre{"blocks.0.input_preact", {"sample", "time", "head"}, {1, 3, 2},
                  {0, 0, 0, 0, 0, 0},      ProbeKind::value,           "p"};
  ProbeSeries tokens{"tokens", {"sample", "time"}, {1, 3}, {1, 2, 1}, ProbeKind::label, "t"};
  ProbeSeries map{"blocks.0.attention_map",
                  {"sample", "head", "query", "key"},
                  {1, 1, 3, 3},
                  std::vector<float>(9, 0.1f),
                  ProbeKind::value,
                  "a"};
  v.series = {pre, norm, gate, tokens, map};
  return v;
}

TEST(ProbeLayout, GridsAreRowsByTimeWithUnitsUnderTheirHeadGatesFirstAndMapsPerHead) {
  const auto views = layout_probe(two_head_view());
  ASSERT_EQ(views.size(), 4u) << "tokens are not a block series";
  EXPECT_EQ(views[0].name, "forget_gate");
  EXPECT_EQ(views[0].panel, Panel::gates);
  EXPECT_EQ(views[1].name, "input_preact");
  EXPECT_EQ(views[1].panel, Panel::gates);
  EXPECT_EQ(views[2].name, "memory_norm");
  EXPECT_EQ(views[2].panel, Panel::memory);
  const SeriesView& map = views[3];  // one head: a 3 x 3 query x key grid on [0, 1]
  EXPECT_EQ(map.name, "attention_map head 0");
  EXPECT_EQ(map.panel, Panel::gates);
  EXPECT_EQ(map.rows, 3);
  EXPECT_EQ(map.cols, 3);
  EXPECT_EQ(map.col_label, "key");
  EXPECT_EQ(map.grid.size(), 9u);
  EXPECT_DOUBLE_EQ(map.scale.hi, 1);
  const SeriesView& g = views[0];
  ASSERT_EQ(g.rows, 4);
  ASSERT_EQ(g.cols, 3);
  EXPECT_EQ(g.row_label, "head.unit");
  // Row r = head·2 + unit, column t: value[t][head][unit] = (4t + 2·head + unit) / 12.
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < 3; ++t)
      EXPECT_FLOAT_EQ(g.grid[size_t(r * 3 + t)], float(4 * t + r) / 12) << r << "," << t;
  EXPECT_DOUBLE_EQ(g.per_head[1][2], (float(10) / 12 + float(11) / 12) / 2);
  EXPECT_DOUBLE_EQ(g.scale.lo, 0);
  EXPECT_DOUBLE_EQ(g.scale.hi, 1) << "gates share one fixed scale";
  EXPECT_DOUBLE_EQ(views[2].scale.lo, 1);
  EXPECT_DOUBLE_EQ(views[2].scale.hi, 6);
  EXPECT_EQ(views[2].grid, (std::vector<float>{1, 3, 5, 2, 4, 6}));
}

TEST(RunFiles, SweepResultsBecomeOneCurvePerCellWithTheSeedsAsABand) {
  statelab::testing::TempDir dir;
  std::ofstream out(dir / "results.jsonl");
  auto line = [&](const char* cell, int seed, double a40, double a80) {
    nlohmann::json j = {
        {"status", "ok"},
        {"axes", {{"cell", cell}, {"task.name", "parity"}, {"train.seed", seed}}},
        {"train_lengths", {3, 40}},
        {"per_length", {{{"length", 40}, {"accuracy", a40}}, {{"length", 80}, {"accuracy", a80}}}}};
    out << j.dump() << "\n";
  };
  line("slstm", 1, 1.0, 0.9);
  line("slstm", 2, 1.0, 0.7);
  line("mamba2", 1, 0.6, 0.5);
  out << nlohmann::json({{"status", "failed"}, {"axes", {{"cell", "gdn"}}}}).dump() << "\n";
  out.close();
  const auto curves = overlay_curves(dir.path().string());
  ASSERT_EQ(curves.size(), 2u);
  const LengthCurve& s = curves[0].label.find("slstm") != std::string::npos ? curves[0] : curves[1];
  EXPECT_EQ(s.label, "slstm parity");
  EXPECT_EQ(s.lengths, (std::vector<double>{40, 80}));
  EXPECT_DOUBLE_EQ(s.accuracy[1], 0.8);
  EXPECT_DOUBLE_EQ(s.lo[1], 0.7);
  EXPECT_DOUBLE_EQ(s.hi[1], 0.9);
  EXPECT_EQ(s.train_hi, 40);
  EXPECT_THROW(overlay_curves(dir / "nothing"), IoError);
}

// An ImGui frame with no renderer, as the widget tests use.
class HeadlessDashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.DisplaySize = {1600, 1000};
    unsigned char* pixels;
    int w, h;
    io.Fonts->GetTexDataAsRGBA32(&pixels, &w, &h);
  }
  void TearDown() override { ImGui::DestroyContext(); }
  int frame(const RunSnapshot& snap, UiState& ui) {
    ImGui::GetIO().DeltaTime = 1.0f / 60;
    ImGui::NewFrame();
    draw_dashboard(snap, ui);
    ImGui::Render();
    return ImGui::GetDrawData()->TotalVtxCount;
  }
};

RunSnapshot probed_snapshot() {
  RunSnapshot snap;
  snap.status = RunStatus::running;
  snap.has_config = true;
  snap.config = load_config(kPreset);
  for (int s = 1; s <= 50; ++s) snap.steps.push_back({s, 1.0 / s, 0.5 + s / 100.0, 1e-3});
  auto curve = std::make_shared<LengthCurve>();
  curve->lengths = {3, 40, 80};
  curve->accuracy = {1, 0.9, 0.6};
  snap.evals.push_back(curve);
  auto view = std::make_shared<ProbeView>(two_head_view());
  view->length = 3;
  view->tokens = view->latent = view->answer = {1, 0, 1};
  view->decoded = {{1, 0, 1}};
  view->pca = {{0, 0, 1, 1, 2, 0}};
  view->decoding_accuracy = {{1, 1, 0.5}};
  snap.probe = view;
  for (int i = 0; i < 5; ++i) snap.log.push_back({double(i), i == 4, "line " + std::to_string(i)});
  return snap;
}

TEST_F(HeadlessDashboard, EveryWindowDrawsAProbedRunWithoutError) {
  UiState ui;
  ui.draft = draft_from_file(kPreset);
  const RunSnapshot snap = probed_snapshot();
  frame(snap, ui);  // windows are placed on the first frame, drawn in full from the second
  frame(snap, ui);
  EXPECT_TRUE(ui.panel_errors.empty()) << ui.panel_errors.begin()->second;
  // Each window drew its content, not just its frame and title.
  for (const char* title : kWindowTitles) {
    ASSERT_NE(ImGui::FindWindowByName(title), nullptr) << title;
    int vertices = 0;  // the window's and its child windows' ("Title/child")
    for (const ImGuiWindow* w : ImGui::GetCurrentContext()->Windows)
      if (std::string(w->Name) == title ||
          std::string(w->Name).rfind(title + std::string("/"), 0) == 0)
        vertices += w->DrawList->VtxBuffer.Size;
    EXPECT_GT(vertices, 120) << title;  // an empty window draws under 60
  }
  EXPECT_TRUE(ui.outbox.empty()) << "drawing alone sent a command";
}

TEST_F(HeadlessDashboard, TypedShortcutsBecomeCommandsUnlessATextFieldHasFocus) {
  UiState ui;
  const RunSnapshot snap = probed_snapshot();
  frame(snap, ui);
  ImGui::GetIO().AddInputCharacter(' ');
  frame(snap, ui);
  ASSERT_EQ(ui.outbox.size(), 1u);
  EXPECT_EQ(ui.outbox[0].kind, Kind::pause);
}

TEST_F(HeadlessDashboard, APanelThatThrowsShowsItsErrorAndTheOthersStillDraw) {
  UiState ui;
  RunSnapshot snap = probed_snapshot();
  // A view whose read-outs do not match its layers: the State space window's lookup throws.
  auto broken = std::make_shared<ProbeView>(*snap.probe);
  broken->layers = 2;
  snap.probe = broken;
  frame(snap, ui);
  frame(snap, ui);
  ASSERT_EQ(ui.panel_errors.count("State space"), 1u);
  EXPECT_EQ(ui.panel_errors.size(), 1u);
  // The frame after recovers fully once the data is whole again.
  const RunSnapshot whole = probed_snapshot();
  frame(whole, ui);
  EXPECT_TRUE(ui.panel_errors.empty());
}

}  // namespace
}  // namespace statelab::gui
