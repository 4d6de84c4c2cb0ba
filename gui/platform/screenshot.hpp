// Reading the frame back: a PNG of the window (libstb's writer) and, beside it, the windows'
// rectangles as JSON, so a test can check each window's title bar in the picture.
#pragma once

#include <string>

namespace statelab::gui {

// Writes the current OpenGL back buffer (width x height pixels) as an RGB PNG; IoError naming
// the path when it cannot be written.
void write_framebuffer_png(const std::string& path, int width, int height);
// <png path without .png>.windows.json: [{"title", "x", "y", "w", "h"}] of every open dashboard
// window, in pixels of the PNG.
void write_window_rects(const std::string& png_path, float scale_x, float scale_y);

}  // namespace statelab::gui
