// The widget gallery (see gallery.hpp). The synthetic data mimics what the lab shows: loss curves
// spanning decades, accuracy falling past the training length, gates switching with a latent
// state, rotating eigenvalues, and a state-space trajectory. Drawing holds no state of its own.
#include "gui/widgets/gallery.hpp"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gui/widgets/heatmap.hpp"
#include "gui/widgets/scatter.hpp"

namespace statelab::widgets {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<PlotSeries> loss_curves(std::mt19937& rng) {
  std::normal_distribution<double> noise(0.0, 1.0);
  PlotSeries train, val;
  train.label = "train (3 seeds)", val.label = "validation";
  for (int step = 0; step <= 2000; step += 5) {
    double clean = 2.3 * std::exp(-step / 350.0) + 0.04, sum = 0, sum2 = 0;
    for (int seed = 0; seed < 3; ++seed) {
      double v = clean * std::exp(0.15 * noise(rng));
      sum += v, sum2 += v * v;
    }
    double mean = sum / 3, sd = std::sqrt(std::max(0.0, sum2 / 3 - mean * mean));
    train.x.push_back(step), train.y.push_back(mean);
    train.band_lo.push_back(mean - sd), train.band_hi.push_back(mean + sd);
    if (step % 100 != 0) continue;
    val.x.push_back(step);
    val.y.push_back(step == 1000 ? NAN : 1.15 * clean + 0.02);  // a skipped evaluation
  }
  return {train, val};
}

std::vector<PlotSeries> accuracy_curves() {
  PlotSeries a, b;
  a.label = "mLSTM", b.label = "GRU";
  for (double len : {8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512}) {
    double past = std::max(0.0, len - 64);
    a.x.push_back(len), a.y.push_back(0.99 * std::exp(-past / 500));
    b.x.push_back(len), b.y.push_back(0.34 + 0.62 * std::exp(-past / 90));
  }
  return {a, b};
}

std::vector<int32_t> latent_states(std::mt19937& rng, int steps) {
  std::uniform_int_distribution<int> length(20, 60), state(0, 2);
  std::vector<int32_t> out;
  while (static_cast<int>(out.size()) < steps) out.insert(out.end(), length(rng), state(rng));
  out.resize(steps);
  return out;
}

std::vector<float> gate_values(std::mt19937& rng, const std::vector<int32_t>& states, int rows) {
  std::normal_distribution<double> noise(0.0, 0.3);
  std::vector<float> out;
  for (int h = 0; h < rows; ++h) {
    for (size_t t = 0; t < states.size(); ++t) {
      double z =
          2.0 * std::sin(2 * kPi * t / (25.0 + 15 * h) + h) + (states[t] - 1) * (h % 3 - 1) * 2;
      out.push_back(static_cast<float>(1 / (1 + std::exp(-(z + noise(rng))))));
    }
  }
  return out;
}

std::vector<float> eigenvalue_values(int rows, int steps) {
  std::vector<float> out;
  for (int k = 0; k < rows; ++k) {
    double radius = 0.55 + 0.45 * k / (rows - 1), speed = 0.01 + 0.0037 * k;
    for (int t = 0; t < steps; ++t)
      out.push_back(static_cast<float>(radius * std::cos(speed * t * kPi)));
  }
  return out;
}

void spiral(std::mt19937& rng, GalleryData& d) {
  std::normal_distribution<float> noise(0.0f, 0.02f);
  constexpr int kPoints = 600;
  for (int i = 0; i < kPoints; ++i) {
    double s = double(i) / kPoints, angle = 4 * kPi * s, r = 0.2 + s;
    d.spiral.push_back(static_cast<float>(r * std::cos(angle)) + noise(rng));
    d.spiral.push_back(static_cast<float>(r * std::sin(angle)) + noise(rng));
    d.spiral_labels.push_back(static_cast<int32_t>(3 * s));
  }
}

// A heatmap with its colour bar to the right, and optionally a label track above it: the table
// column gives both strips the same width, so they line up.
void heatmap_with_bar(const char* id, const HeatmapData& data, const ColorScale& scale,
                      const int32_t* labels) {
  constexpr float kHeight = 120, kBarWidth = 56;
  if (!ImGui::BeginTable(id, 2)) return;
  ImGui::TableSetupColumn("map", ImGuiTableColumnFlags_WidthStretch);
  ImGui::TableSetupColumn("bar", ImGuiTableColumnFlags_WidthFixed, kBarWidth);
  ImGui::TableNextRow();
  ImGui::TableSetColumnIndex(0);
  if (labels) label_track("##labels", "state", labels, data.cols, 8);
  heatmap("##map", data, scale, kHeight);
  ImGui::TableSetColumnIndex(1);
  color_bar("##bar", scale, kBarWidth, kHeight);
  ImGui::EndTable();
}

void draw_body(const GalleryData& d) {
  ImGui::TextUnformatted("Loss: log y, band = +-1 std over seeds, NaN leaves a gap");
  PlotOptions loss;
  loss.x_label = "step", loss.y_label = "loss", loss.log_y = true, loss.height = 170;
  line_plot("##loss", d.loss, loss);

  ImGui::TextUnformatted("Accuracy vs length: shaded = training lengths, dashed = longest");
  PlotOptions acc;
  acc.x_label = "sequence length", acc.y_label = "accuracy", acc.height = 170;
  acc.has_shade = true, acc.shade_lo = 8, acc.shade_hi = 64;
  acc.markers_x = {64};
  acc.fixed_y = true, acc.y_lo = 0, acc.y_hi = 1.05;
  line_plot("##accuracy", d.accuracy, acc);

  ImGui::TextUnformatted("Input gates per head, latent state above");
  HeatmapData gates{d.gates.data(), d.gate_rows, d.steps, "head", "t"};
  heatmap_with_bar("gates", gates, fit_color_scale(d.gates.data(), int64_t(d.gates.size()), "gate"),
                   d.states.data());
  ImGui::TextUnformatted("Transition eigenvalues (diverging map)");
  HeatmapData eig{d.eigenvalues.data(), d.eigen_rows, d.steps, "eigenvalue", "t"};
  heatmap_with_bar(
      "eigenvalues", eig,
      fit_color_scale(d.eigenvalues.data(), int64_t(d.eigenvalues.size()), "eigenvalue"), nullptr);

  ImGui::TextUnformatted("State trajectory");
  trajectory("##trajectory", d.spiral.data(), d.spiral_labels.data(),
             static_cast<int>(d.spiral_labels.size()), 240);
}

bool begin_gallery(bool* open) {
  ImGui::SetNextWindowSize(ImVec2(760, 1000), ImGuiCond_FirstUseEver);
  return ImGui::Begin("Widget gallery", open);
}

}  // namespace

GalleryData make_gallery_data(uint32_t seed) {
  std::mt19937 rng(seed);
  GalleryData d;
  d.loss = loss_curves(rng);
  d.accuracy = accuracy_curves();
  d.states = latent_states(rng, d.steps);
  d.gates = gate_values(rng, d.states, d.gate_rows);
  d.eigenvalues = eigenvalue_values(d.eigen_rows, d.steps);
  spiral(rng, d);
  return d;
}

void draw_widget_gallery(bool* open, const GalleryData& data) {
  if (begin_gallery(open)) draw_body(data);
  ImGui::End();
}

}  // namespace statelab::widgets
