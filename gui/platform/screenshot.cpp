// Screenshots: glReadPixels, flipped to top-down rows, written by stb_image_write.
#include "gui/platform/screenshot.hpp"

#include <GL/gl.h>
#include <imgui.h>
#include <imgui_internal.h>
#include <stb/stb_image_write.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "gui/dashboard.hpp"
#include "kernels/error.hpp"
#include "lab/files.hpp"

namespace statelab::gui {

void write_framebuffer_png(const std::string& path, int width, int height) {
  std::vector<unsigned char> pixels(size_t(width) * size_t(height) * 3);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE, pixels.data());
  // OpenGL's rows run bottom-up; PNG's top-down.
  std::vector<unsigned char> flipped(pixels.size());
  const size_t row = size_t(width) * 3;
  for (int y = 0; y < height; ++y)
    std::copy_n(pixels.begin() + int64_t(row) * (height - 1 - y), row,
                flipped.begin() + int64_t(row) * y);
  if (stbi_write_png(path.c_str(), width, height, 3, flipped.data(), int(row)) == 0)
    throw IoError(path + ": cannot write the screenshot PNG");
}

void write_window_rects(const std::string& png_path, float scale_x, float scale_y) {
  nlohmann::json windows = nlohmann::json::array();
  for (const char* title : kWindowTitles) {
    const ImGuiWindow* w = ImGui::FindWindowByName(title);
    if (!w || !w->Active) continue;
    windows.push_back({{"title", title},
                       {"x", w->Pos.x * scale_x},
                       {"y", w->Pos.y * scale_y},
                       {"w", w->Size.x * scale_x},
                       {"h", w->Size.y * scale_y},
                       {"title_bar_h", w->TitleBarHeight() * scale_y}});
  }
  std::string base = png_path;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".png") == 0)
    base.resize(base.size() - 4);
  write_file_atomic(base + ".windows.json", windows.dump(2) + "\n");
}

}  // namespace statelab::gui
