// The run controls' state machine.
#include "gui/controls.hpp"

namespace statelab::gui {

Controls controls_for(RunStatus s, bool draft_valid) {
  Controls c;
  switch (s) {
    case RunStatus::idle:
    case RunStatus::finished:
    case RunStatus::failed:
    case RunStatus::viewing:
      c.start = draft_valid;
      c.reset = s != RunStatus::idle;
      c.eval = s == RunStatus::finished || s == RunStatus::viewing;
      break;
    case RunStatus::starting:
      break;  // building the model and checking kernels: nothing to steer yet
    case RunStatus::running:
      c.pause = c.step = c.stop = c.reset = c.eval = true;
      break;
    case RunStatus::paused:
      c.resume = c.step = c.stop = c.reset = c.eval = true;
      break;
    case RunStatus::stopped:
      c.start = true;  // continues the stopped run
      c.start_label = "Continue";
      c.step = c.reset = c.eval = true;
      break;
  }
  return c;
}

std::optional<Command> shortcut_command(char key, RunStatus s) {
  const Controls c = controls_for(s, false);
  Command cmd;
  if (key == ' ' && (c.pause || c.resume)) {
    cmd.kind = c.pause ? Command::Kind::pause : Command::Kind::resume;
    return cmd;
  }
  if (key == 's' && c.step) {
    cmd.kind = Command::Kind::step;
    return cmd;
  }
  if (key == 'e' && c.eval) {
    cmd.kind = Command::Kind::eval;
    return cmd;
  }
  return std::nullopt;
}

}  // namespace statelab::gui
