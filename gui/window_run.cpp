// The Run window: status, the run controls, the learning rate while training, and the config
// draft (a preset or a finished run's config, edited and validated as the CLI validates it).
#include <imgui.h>
#include <imgui_stdlib.h>

#include "gui/controls.hpp"
#include "gui/dashboard.hpp"

namespace statelab::gui {

namespace {

// A button that is drawn disabled when `enabled` is false.
bool button(const char* label, bool enabled) {
  ImGui::BeginDisabled(!enabled);
  const bool pressed = ImGui::Button(label);
  ImGui::EndDisabled();
  ImGui::SameLine();
  return pressed && enabled;
}

void draw_status(const RunSnapshot& snap) {
  ImGui::Text("Status: %s", status_name(snap.status));
  if (!snap.dir.empty()) ImGui::TextWrapped("Run: %s", snap.dir.c_str());
  if (!snap.device.empty()) ImGui::TextWrapped("Device: %s", snap.device.c_str());
  if (snap.total_steps > 0) {
    char overlay[96];
    std::snprintf(overlay, sizeof overlay, "step %d / %d  (%.0f tokens/s, %.1f s)", snap.step,
                  snap.total_steps, snap.tokens_per_s, snap.elapsed_s);
    ImGui::ProgressBar(float(snap.step) / float(snap.total_steps), {-1, 0}, overlay);
  }
  if (!snap.error.empty()) ImGui::TextColored({1, 0.4f, 0.4f, 1}, "%s", snap.error.c_str());
  for (const auto& m : snap.missing)
    ImGui::TextColored({1, 0.8f, 0.3f, 1}, "missing %s", m.c_str());
}

void draw_controls(const RunSnapshot& snap, UiState& ui) {
  const Controls c = controls_for(snap.status, ui.draft.config.has_value());
  if (button(c.start_label, c.start)) {
    Command start;
    start.kind = Command::Kind::start;
    if (ui.draft.config) start.config = *ui.draft.config;
    ui.outbox.push_back(start);
  }
  if (button("Pause", c.pause)) ui.send(Command::Kind::pause);
  if (button("Resume", c.resume)) ui.send(Command::Kind::resume);
  if (button("Step", c.step)) ui.send(Command::Kind::step);
  if (button("Stop", c.stop)) ui.send(Command::Kind::stop);
  if (button("Reset", c.reset)) ui.send(Command::Kind::reset);
  if (button("Eval now", c.eval)) ui.send(Command::Kind::eval);
  ImGui::NewLine();
  if (snap.has_config) {
    ImGui::SetNextItemWidth(160);
    if (ImGui::SliderFloat("learning rate x", &ui.lr_scale, 0.01f, 10.0f, "%.3g",
                           ImGuiSliderFlags_Logarithmic))
      ui.lr_scale_request = ui.lr_scale;
    ImGui::SameLine();
    ImGui::Text("peak lr %.3g", snap.config.train.lr * snap.lr_scale);
  }
}

// One text field of the draft; any edit revalidates the whole draft.
void field(const char* label, std::string& value, ConfigDraft& draft, float width = 120) {
  ImGui::SetNextItemWidth(width);
  if (ImGui::InputText(label, &value)) draft.validate();
}

void draw_draft(UiState& ui) {
  ConfigDraft& d = ui.draft;
  if (ImGui::BeginCombo("preset", ui.preset_index >= 0 ? ui.presets[size_t(ui.preset_index)].c_str()
                                                       : "(choose a preset)")) {
    for (int i = 0; i < int(ui.presets.size()); ++i)
      if (ImGui::Selectable(ui.presets[size_t(i)].c_str(), i == ui.preset_index)) {
        ui.preset_index = i;
        ui.load_draft = ui.presets[size_t(i)];
      }
    ImGui::EndCombo();
  }
  if (ImGui::BeginCombo("finished run", ui.run_index >= 0 ? ui.runs[size_t(ui.run_index)].c_str()
                                                          : "(choose a run)")) {
    for (int i = 0; i < int(ui.runs.size()); ++i)
      if (ImGui::Selectable(ui.runs[size_t(i)].c_str(), i == ui.run_index)) ui.run_index = i;
    ImGui::EndCombo();
  }
  if (ui.run_index >= 0) {
    const std::string& run = ui.runs[size_t(ui.run_index)];
    if (ImGui::Button("Open run")) {
      ui.send(Command::Kind::open_run, run);
    }
    ImGui::SameLine();
    if (ImGui::Button("Edit its config")) ui.load_draft = run;
    ImGui::SameLine();
    // The same run as a curve in Length generalization and as Memory's second run.
    if (ImGui::Button("Overlay")) ui.send(Command::Kind::add_overlay, run);
    ImGui::SameLine();
    if (ImGui::Button("Compare")) {
      ui.compare_path = run;
      ui.send(Command::Kind::compare, run);
    }
  }
  if (ImGui::Button("Refresh lists")) ui.refresh_lists = true;
  if (d.base.is_null()) {
    if (!d.error.empty()) ImGui::TextColored({1, 0.4f, 0.4f, 1}, "%s", d.error.c_str());
    return;
  }
  ImGui::Separator();
  ImGui::TextDisabled("config from %s", d.source.c_str());
  field("blocks", d.blocks, d);
  ImGui::SameLine();
  field("eigen range", d.eigen_range, d, 60);
  field("task", d.task, d);
  field("d_model", d.d_model, d, 60);
  ImGui::SameLine();
  field("heads", d.heads, d, 60);
  field("steps", d.steps, d, 60);
  ImGui::SameLine();
  field("batch", d.batch, d, 60);
  ImGui::SameLine();
  field("lr", d.lr, d, 60);
  field("train from", d.train_lo, d, 50);
  ImGui::SameLine();
  field("to", d.train_hi, d, 50);
  ImGui::SameLine();
  field("eval to", d.eval_hi, d, 60);
  field("eval every", d.eval_every, d, 60);
  ImGui::SameLine();
  field("seed", d.seed, d, 60);
  ImGui::SameLine();
  field("device", d.device, d, 70);
  ImGui::SetNextItemWidth(-1);
  ImGui::TextDisabled("more overrides, one KEY=VALUE per line (as lab train --set):");
  if (ImGui::InputTextMultiline("##extra", &d.extra, {-1, 48})) d.validate();
  if (!d.error.empty())
    ImGui::TextColored({1, 0.4f, 0.4f, 1}, "%s", d.error.c_str());
  else if (d.config)
    ImGui::TextColored({0.5f, 0.9f, 0.5f, 1}, "valid: %s, %s on %s", d.config->name.c_str(),
                       d.config->model.blocks.c_str(), d.config->task.name.c_str());
}

}  // namespace

void draw_run(const RunSnapshot& snap, UiState& ui) {
  draw_status(snap);
  draw_controls(snap, ui);
  ImGui::Separator();
  draw_draft(ui);
}

}  // namespace statelab::gui
