// Which run controls apply in which state, and what the keyboard shortcuts send: the dashboard's
// state machine, kept apart from drawing so tests walk it without a window.
#pragma once

#include <optional>

#include "gui/commands.hpp"
#include "gui/snapshot.hpp"

namespace statelab::gui {

struct Controls {
  bool start = false;  // a new run from the draft (or, when stopped, continue)
  bool pause = false, resume = false, step = false, stop = false, reset = false;
  bool eval = false;  // evaluate and probe the current parameters
  const char* start_label = "Start";
};

// `draft_valid`: the Run window's config passes validation (a new run needs it).
Controls controls_for(RunStatus s, bool draft_valid);

// Space pauses or resumes, `s` steps once, `e` evaluates; nothing where the control is off.
std::optional<Command> shortcut_command(char key, RunStatus s);

}  // namespace statelab::gui
