// `lab gui`: its options and entry point. The window lives in gui/platform (GLFW, OpenGL 3);
// builds without them have no dashboard, and `lab gui` says how to get one.
#pragma once

#include <string>
#include <vector>

namespace statelab::gui {

struct GuiOptions {
  std::string preset;  // loaded into the Run window (default presets/parity_slstm.json)
  std::vector<std::string> overrides;  // --set KEY=VALUE, as lab train
  std::string device;                  // --device, as lab train
  int steps = 0;                       // > 0: train.steps = steps, and start training at once
  std::string screenshot;              // non-empty: write this PNG after the run, then exit
  int frames = 3;                      // frames drawn after the run before the screenshot
  int width = 1600, height = 1000;
  std::string presets_dir;        // default: the preset's folder, else presets/
  std::string runs_dir = "runs";  // new runs go here; finished runs are listed from here
  bool no_selftest = false;
  bool no_window = false;  // the --steps run through the dashboard's engine, nothing drawn
};

// Exit status: 0 on a normal close (or a screenshot written after a finished run), 1 when the
// run given with --steps failed. Throws Error with no display, or when the window cannot open.
int run_gui(const GuiOptions& o);

}  // namespace statelab::gui
