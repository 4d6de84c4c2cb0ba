// The dashboard's windows: one function each over the snapshot being shown and the UI state
// (DESIGN §5). They draw and push Commands into UiState::outbox; the caller sends those to the
// Session after the frame. No window touches training, files or the session directly.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gui/commands.hpp"
#include "gui/config_draft.hpp"
#include "gui/probe_layout.hpp"
#include "gui/snapshot.hpp"
#include "gui/widgets/gallery.hpp"

namespace statelab::gui {

// Window titles, also the names the screenshot's window list reports.
inline constexpr const char* kWindowTitles[] = {
    "Run", "Curves", "Length generalization", "Gates", "Memory", "State space", "Export", "Log"};

// A probe view and its drawing layout, rebuilt only when the view changes.
struct LaidOutProbe {
  std::shared_ptr<const ProbeView> view;
  std::vector<SeriesView> series;
  void update(const std::shared_ptr<const ProbeView>& v);
};

// The Curves window's plot series, rebuilt when the run has new points (at most as often as
// snapshots are published) rather than on every frame.
struct CurveSeries {
  std::vector<widgets::PlotSeries> loss, accuracy, lr;
  void update(const RunSnapshot& snap, const std::set<int>& lengths);

 private:
  std::vector<uint64_t> built_from_;
  std::set<int> lengths_;
};

struct UiState {
  std::map<std::string, bool> open;  // per window title; every window starts open
  bool show_gallery = false;
  std::optional<widgets::GalleryData> gallery;  // made when the gallery first opens
  std::vector<Command> outbox;                  // sent to the session after the frame
  void send(Command::Kind kind, std::string path = {}) {
    Command c;
    c.kind = kind;
    c.path = std::move(path);
    outbox.push_back(std::move(c));
  }
  std::optional<double> lr_scale_request;
  std::optional<std::string> screenshot_request;  // a PNG path, written after the frame
  bool close_requested = false;                   // the window's close button while a run trains
  bool close_now = false;                         // the user chose; the main loop leaves

  // Run. Lists and drafts are read from files between frames (apply_file_requests).
  bool refresh_lists = true;
  std::optional<std::string> load_draft;  // a preset or run directory to edit
  std::vector<std::string> presets, runs;
  int preset_index = -1, run_index = -1;
  ConfigDraft draft;
  float lr_scale = 1;
  // Curves
  bool log_loss = true;
  std::set<int> curve_lengths;  // eval lengths followed over training
  CurveSeries curves;
  // Gates, Memory, State space
  int layer = 0;
  int probe_sample = 0, probe_length = 0;
  std::string typed;
  std::string compare_path;
  LaidOutProbe probe, compare;
  // Length generalization, Export
  std::string overlay_path;
  bool show_eval_history = false;
  std::string export_dir, config_path, screenshot_path = "statelab-screenshot.png";
  // Errors of panels that threw while drawing, shown in the panel until the next success.
  std::map<std::string, std::string> panel_errors;
};

// All windows, the menu bar, keyboard shortcuts and the close dialog.
void draw_dashboard(const RunSnapshot& snap, UiState& ui);

void draw_run(const RunSnapshot& snap, UiState& ui);
void draw_curves(const RunSnapshot& snap, UiState& ui);
void draw_length(const RunSnapshot& snap, UiState& ui);
void draw_gates(const RunSnapshot& snap, UiState& ui);
void draw_memory(const RunSnapshot& snap, UiState& ui);
void draw_state_space(const RunSnapshot& snap, UiState& ui);
void draw_export(const RunSnapshot& snap, UiState& ui);
void draw_log(const RunSnapshot& snap, UiState& ui);

// What the windows asked of the file system this frame: the preset and run lists, a draft to
// load. Errors go to the draft's error line. `presets_dir` and `runs_dir` are listed.
void apply_file_requests(UiState& ui, const std::string& presets_dir, const std::string& runs_dir);

// Where each window goes the first time (no imgui.ini yet), as a fraction of the display.
struct WindowPlacement {
  float x, y, w, h;
};
WindowPlacement default_placement(const std::string& title);

}  // namespace statelab::gui
