// `lab gui`: the window and the frame loop, in the shape of Dear ImGui's GLFW + OpenGL 3
// example. Everything else is the Session (training, analysis) and the windows (draw_dashboard);
// here are the display check, the ini file, frame pacing, screenshots and the close dialog.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "gui/dashboard.hpp"
#include "gui/gui_options.hpp"
#include "gui/platform/screenshot.hpp"
#include "gui/session.hpp"
#include "kernels/error.hpp"

namespace statelab::gui {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string glfw_error;

// Ctrl-C or SIGTERM closes the dashboard as its window's close would, with a checkpoint of a
// training run (as lab train does), and the layout saved.
std::atomic<bool> g_stop_signal{false};
extern "C" void on_dashboard_stop_signal(int) { g_stop_signal.store(true); }
extern "C" void on_glfw_error(int code, const char* text) {
  glfw_error = std::to_string(code) + ": " + text;
}

void require_display() {
  const char* x = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  if ((x && *x) || (wayland && *wayland)) return;
  throw Error(
      "lab gui: no display (DISPLAY and WAYLAND_DISPLAY are unset). Without one, use the "
      "headless commands: lab train PRESET, lab sweep presets/sweeps/quick.json, lab probe RUN, "
      "lab report SWEEP_DIR (or run the dashboard under xvfb-run for a screenshot)");
}

// Layout persists per user, not per checkout: ~/.config/statelab/imgui.ini.
std::string ini_path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  const fs::path dir = xdg && *xdg     ? fs::path(xdg) / "statelab"
                       : home && *home ? fs::path(home) / ".config" / "statelab"
                                       : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  return (dir / "imgui.ini").string();
}

// The draft the dashboard opens with: the preset, then --steps, --device and --set on top.
void initial_draft(const GuiOptions& o, UiState& ui) {
  ui.draft = draft_from_file(o.preset);
  if (o.steps > 0) ui.draft.steps = std::to_string(o.steps);
  if (!o.device.empty()) ui.draft.device = o.device;
  for (const auto& s : o.overrides) ui.draft.extra += s + "\n";
  ui.draft.fold_overrides();
}

struct FrameStats {
  int frames = 0;
  double seconds = 0, slowest = 0;
  void add(double dt) {
    ++frames;
    seconds += dt;
    slowest = std::max(slowest, dt);
  }
};

SessionOptions session_options(const GuiOptions& o) {
  SessionOptions so;
  so.runs_root = o.runs_dir;
  so.selftest = !o.no_selftest;
  return so;
}

// --no-window: the --steps run through the dashboard's engine (worker, snapshots, live evals
// and probes) with nothing drawn, so its cost can be measured where no display exists.
int run_without_window(const GuiOptions& o, const RunConfig& cfg) {
  Session session(session_options(o));
  Command start;
  start.kind = Command::Kind::start;
  start.config = cfg;
  session.send(start);
  session.wait_until(
      [](const RunSnapshot& s) {
        return s.status != RunStatus::idle && !is_training(s.status) && !s.analysis_busy;
      },
      1e9);
  const auto snap = session.snapshot();
  for (const LogLine& line : snap->log)
    std::printf("%s%s\n", line.error ? "error: " : "", line.text.c_str());
  std::printf("dashboard engine: %d steps in %.2f s of training, %llu snapshots, %d analyses\n",
              snap->step, snap->elapsed_s, static_cast<unsigned long long>(snap->version),
              snap->analyses);
  return snap->status == RunStatus::failed ? 1 : 0;
}

}  // namespace

int run_gui(const GuiOptions& o_in) {
  GuiOptions o = o_in;
  if (o.preset.empty() && fs::exists("presets/parity_slstm.json"))
    o.preset = "presets/parity_slstm.json";
  if (o.presets_dir.empty())
    o.presets_dir = o.preset.empty() ? "presets" : fs::path(o.preset).parent_path().string();
  const bool screenshot_mode = !o.screenshot.empty();
  if (screenshot_mode && o.steps <= 0)
    throw ConfigError("--screenshot needs --steps N: the run whose windows it shows");
  UiState ui;
  if (!o.preset.empty()) initial_draft(o, ui);
  if (o.steps > 0 && !ui.draft.config)
    throw ConfigError(ui.draft.error.empty() ? "lab gui --steps: no preset to train"
                                             : ui.draft.error);
  if (o.no_window) {
    if (o.steps <= 0 || !ui.draft.config)
      throw ConfigError("lab gui --no-window needs --steps N and a preset");
    return run_without_window(o, *ui.draft.config);
  }
  require_display();

  glfwSetErrorCallback(on_glfw_error);
  if (!glfwInit()) throw Error("lab gui: cannot initialise GLFW (" + glfw_error + ")");
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* window = glfwCreateWindow(o.width, o.height, "StateLab", nullptr, nullptr);
  if (!window) {
    glfwTerminate();
    throw Error("lab gui: cannot open an OpenGL 3 window (" + glfw_error + ")");
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(screenshot_mode ? 0 : 1);

  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  const std::string ini = ini_path();
  // A screenshot shows the default layout, whatever the user arranged.
  ImGui::GetIO().IniFilename = screenshot_mode ? nullptr : ini.c_str();
  ImGui::StyleColorsDark();
  // Opaque windows: the layout tiles them, and a software rasterizer skips the blending
  // (57 -> 62 frames/s at 1600x1000 under Xvfb and Mesa llvmpipe).
  ImGui::GetStyle().Colors[ImGuiCol_WindowBg].w = 1.0f;
  ImGui_ImplGlfw_InitForOpenGL(window, true);
  ImGui_ImplOpenGL3_Init("#version 130");

  int status = 0;
  FrameStats stats;
  {
    struct sigaction stop {};
    stop.sa_handler = on_dashboard_stop_signal;
    stop.sa_flags = SA_RESETHAND;  // a second signal ends the process at once
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, nullptr);
    sigaction(SIGTERM, &stop, nullptr);
    Session session(session_options(o));
    if (o.steps > 0) {
      Command start;
      start.kind = Command::Kind::start;
      start.config = *ui.draft.config;
      session.send(start);
    }
    int frames_after_run = 0;
    bool started = o.steps <= 0;
    auto last = Clock::now();
    constexpr double kFrameCap = 1.0 / 90;  // without vsync (Xvfb), do not spin
    while (true) {
      glfwPollEvents();
      const auto snap = session.snapshot();
      ImGui_ImplOpenGL3_NewFrame();
      ImGui_ImplGlfw_NewFrame();
      ImGui::NewFrame();
      draw_dashboard(*snap, ui);
      ImGui::Render();
      int fb_w = 0, fb_h = 0;
      glfwGetFramebufferSize(window, &fb_w, &fb_h);
      glViewport(0, 0, fb_w, fb_h);
      glClearColor(0.10f, 0.10f, 0.12f, 1.0f);
      glClear(GL_COLOR_BUFFER_BIT);
      ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());

      started = started || snap->status != RunStatus::idle;
      // The run is over once it ended and the evals and probes it asked for have arrived.
      const bool run_over = started && !is_training(snap->status) &&
                            snap->status != RunStatus::idle && !snap->analysis_busy;
      if (screenshot_mode && run_over && ++frames_after_run > o.frames) {
        ui.screenshot_request = o.screenshot;
        status = snap->status == RunStatus::failed ? 1 : 0;
      }
      if (ui.screenshot_request) {
        const std::string path = *ui.screenshot_request;
        ui.screenshot_request.reset();
        const ImVec2 size = ImGui::GetIO().DisplaySize;
        try {
          write_framebuffer_png(path, fb_w, fb_h);
          write_window_rects(path, float(fb_w) / size.x, float(fb_h) / size.y);
          std::printf("wrote %s (%dx%d)\n", path.c_str(), fb_w, fb_h);
        } catch (const Error& e) {
          if (screenshot_mode) throw;
          std::fprintf(stderr, "lab gui: %s\n", e.what());
        }
        if (screenshot_mode) break;
      }
      glfwSwapBuffers(window);

      for (auto& c : ui.outbox) session.send(std::move(c));
      ui.outbox.clear();
      if (ui.lr_scale_request) session.set_lr_scale(*ui.lr_scale_request);
      ui.lr_scale_request.reset();
      apply_file_requests(ui, o.presets_dir, o.runs_dir);
      if (g_stop_signal.load() && !ui.close_now) {
        Command quit;
        quit.kind = Command::Kind::quit;
        quit.save = true;
        session.send(quit);
        ui.close_now = true;
        status = 130;
      }
      if (glfwWindowShouldClose(window) && !ui.close_now) {
        if (is_training(snap->status)) {
          glfwSetWindowShouldClose(window, GLFW_FALSE);
          ui.close_requested = true;
        } else {
          break;
        }
      }
      if (ui.close_now) break;

      const double dt = std::chrono::duration<double>(Clock::now() - last).count();
      if (dt < kFrameCap)
        std::this_thread::sleep_for(std::chrono::duration<double>(kFrameCap - dt));
      const auto now = Clock::now();
      stats.add(std::chrono::duration<double>(now - last).count());
      last = now;
    }
    if (o.steps > 0 && session.snapshot()->status == RunStatus::failed) status = 1;
  }  // the session quits (checkpointing a training run unless the user chose not to)
  if (stats.frames > 0)
    std::printf("dashboard: %d frames in %.1f s: %.1f frames/s on average, slowest frame %.1f ms\n",
                stats.frames, stats.seconds, stats.frames / stats.seconds, stats.slowest * 1e3);
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(window);
  glfwTerminate();
  return status;
}

}  // namespace statelab::gui
