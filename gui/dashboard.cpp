// The dashboard frame: menu, windows behind an error guard, shortcuts, the close dialog.
#include "gui/dashboard.hpp"

#include <imgui.h>
#include <imgui_internal.h>

#include "gui/controls.hpp"
#include "gui/widgets/gallery.hpp"

namespace statelab::gui {

void LaidOutProbe::update(const std::shared_ptr<const ProbeView>& v) {
  if (v == view) return;
  view = v;
  series = v ? layout_probe(*v) : std::vector<SeriesView>{};
}

WindowPlacement default_placement(const std::string& title) {
  // Run and Log down the left; the six views in a 2 x 3 grid beside them.
  static const std::map<std::string, WindowPlacement> places = {
      {"Run", {0.00f, 0.02f, 0.25f, 0.60f}},
      {"Log", {0.00f, 0.62f, 0.25f, 0.38f}},
      {"Curves", {0.25f, 0.02f, 0.375f, 0.30f}},
      {"Length generalization", {0.625f, 0.02f, 0.375f, 0.30f}},
      {"Gates", {0.25f, 0.32f, 0.375f, 0.42f}},
      {"Memory", {0.625f, 0.32f, 0.375f, 0.42f}},
      {"State space", {0.25f, 0.74f, 0.375f, 0.26f}},
      {"Export", {0.625f, 0.74f, 0.375f, 0.26f}},
  };
  const auto it = places.find(title);
  return it != places.end() ? it->second : WindowPlacement{0.3f, 0.3f, 0.4f, 0.4f};
}

void apply_file_requests(UiState& ui, const std::string& presets_dir, const std::string& runs_dir) {
  if (ui.refresh_lists) {
    ui.refresh_lists = false;
    ui.presets = list_presets(presets_dir);
    ui.runs = list_runs(runs_dir);
    ui.preset_index = ui.run_index = -1;
  }
  if (ui.load_draft) {
    const std::string path = *ui.load_draft;
    ui.load_draft.reset();
    try {
      ui.draft = draft_from_file(path);
    } catch (const std::exception& e) {
      ui.draft = ConfigDraft{};
      ui.draft.source = path;
      ui.draft.error = e.what();
    }
  }
}

namespace {

using DrawWindow = void (*)(const RunSnapshot&, UiState&);

// One window: placed on first use, its body behind a guard so that a panel that throws shows
// its error and the rest of the dashboard keeps drawing.
void guarded_window(const char* title, DrawWindow body, const RunSnapshot& snap, UiState& ui) {
  bool& open = ui.open.try_emplace(title, true).first->second;
  if (!open) return;
  const ImVec2 display = ImGui::GetIO().DisplaySize;
  const WindowPlacement p = default_placement(title);
  ImGui::SetNextWindowPos({p.x * display.x, p.y * display.y}, ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize({p.w * display.x, p.h * display.y}, ImGuiCond_FirstUseEver);
  if (ImGui::Begin(title, &open)) {
    try {
      body(snap, ui);
      ui.panel_errors.erase(title);
    } catch (const std::exception& e) {
      ImGui::ErrorCheckEndWindowRecover(nullptr);  // pops what the body left pushed
      ui.panel_errors[title] = e.what();
    }
    if (auto it = ui.panel_errors.find(title); it != ui.panel_errors.end())
      ImGui::TextColored({1.0f, 0.4f, 0.4f, 1.0f}, "This panel failed: %s", it->second.c_str());
  }
  ImGui::End();
}

void draw_menu(UiState& ui) {
  if (!ImGui::BeginMainMenuBar()) return;
  if (ImGui::BeginMenu("View")) {
    for (const char* title : kWindowTitles) {
      bool& open = ui.open.try_emplace(title, true).first->second;
      ImGui::MenuItem(title, nullptr, &open);
    }
    ImGui::Separator();
    ImGui::MenuItem("Widget gallery", nullptr, &ui.show_gallery);
    ImGui::EndMenu();
  }
  ImGui::TextDisabled("space: pause/resume   s: step   e: eval   (while no text field is active)");
  ImGui::EndMainMenuBar();
}

// From the typed characters rather than key codes, so the shortcuts follow the keyboard layout
// and do not depend on the platform backend's key map.
void handle_shortcuts(const RunSnapshot& snap, UiState& ui) {
  const ImGuiIO& io = ImGui::GetIO();
  if (io.WantTextInput) return;
  for (const ImWchar c : io.InputQueueCharacters)
    if (c < 128)
      if (auto cmd = shortcut_command(char(c), snap.status)) ui.outbox.push_back(*cmd);
}

// Closing while a run trains: save a checkpoint (resumable), leave without one, or stay.
void draw_close_dialog(UiState& ui) {
  if (ui.close_requested) {
    ImGui::OpenPopup("Close StateLab?");
    ui.close_requested = false;
  }
  if (!ImGui::BeginPopupModal("Close StateLab?", nullptr, ImGuiWindowFlags_AlwaysAutoResize))
    return;
  ImGui::TextUnformatted("A run is training. Save a checkpoint before closing?");
  ImGui::TextDisabled("With a checkpoint, `lab train --resume RUN` or the dashboard continues it.");
  Command quit;
  quit.kind = Command::Kind::quit;
  if (ImGui::Button("Save checkpoint and close")) {
    quit.save = true;
    ui.outbox.push_back(quit);
    ui.close_now = true;
  }
  ImGui::SameLine();
  if (ImGui::Button("Close without saving")) {
    quit.save = false;
    ui.outbox.push_back(quit);
    ui.close_now = true;
  }
  ImGui::SameLine();
  if (ImGui::Button("Cancel")) ImGui::CloseCurrentPopup();
  ImGui::EndPopup();
}

}  // namespace

void draw_dashboard(const RunSnapshot& snap, UiState& ui) {
  ui.probe.update(snap.probe);
  ui.compare.update(snap.compare_probe);
  draw_menu(ui);
  static constexpr DrawWindow kBodies[] = {draw_run,    draw_curves,      draw_length, draw_gates,
                                           draw_memory, draw_state_space, draw_export, draw_log};
  for (size_t i = 0; i < std::size(kBodies); ++i)
    guarded_window(kWindowTitles[i], kBodies[i], snap, ui);
  if (ui.show_gallery) {
    if (!ui.gallery) ui.gallery = widgets::make_gallery_data();
    widgets::draw_widget_gallery(&ui.show_gallery, *ui.gallery);
  }
  handle_shortcuts(snap, ui);
  draw_close_dialog(ui);
}

}  // namespace statelab::gui
