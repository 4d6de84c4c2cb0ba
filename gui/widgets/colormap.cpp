// Colormaps, colour scales, categorical colours and grid averaging (see colormap.hpp).
// The anchor tables are sampled by hand at even steps of t; eleven viridis anchors keep the
// interpolation error below what a heatmap cell can show.
#include "gui/widgets/colormap.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/error.hpp"

namespace statelab::widgets {
namespace {

constexpr Rgba kViridis[] = {{68, 1, 84, 255},    {72, 36, 117, 255},  {65, 68, 135, 255},
                             {53, 95, 141, 255},  {42, 120, 142, 255}, {33, 145, 140, 255},
                             {34, 168, 132, 255}, {68, 191, 112, 255}, {122, 209, 81, 255},
                             {189, 223, 38, 255}, {253, 231, 37, 255}};
constexpr Rgba kDiverging[] = {{33, 102, 172, 255},
                               {103, 169, 207, 255},
                               {247, 247, 247, 255},
                               {239, 138, 98, 255},
                               {178, 24, 43, 255}};
constexpr Rgba kGrey[] = {{0, 0, 0, 255}, {255, 255, 255, 255}};
constexpr Rgba kCategorical[] = {{86, 156, 214, 255},  {232, 146, 58, 255},  {104, 190, 96, 255},
                                 {220, 86, 86, 255},   {166, 124, 214, 255}, {190, 140, 100, 255},
                                 {230, 124, 192, 255}, {204, 204, 90, 255},  {80, 200, 204, 255},
                                 {124, 134, 232, 255}};

template <size_t N>
Rgba interpolate(const Rgba (&table)[N], double t) {
  double x = t * (N - 1);
  size_t i = std::min(static_cast<size_t>(x), N - 2);
  double f = x - i;
  auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(a + f * (double(b) - a)));
  };
  const Rgba& a = table[i];
  const Rgba& b = table[i + 1];
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b), mix(a.a, b.a)};
}

}  // namespace

uint32_t pack(Rgba c) {
  return uint32_t(c.r) | uint32_t(c.g) << 8 | uint32_t(c.b) << 16 | uint32_t(c.a) << 24;
}

Rgba colormap(Colormap m, double t) {
  t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0);
  switch (m) {
    case Colormap::viridis:
      return interpolate(kViridis, t);
    case Colormap::diverging:
      return interpolate(kDiverging, t);
    case Colormap::grey:
      return interpolate(kGrey, t);
  }
  return interpolate(kViridis, t);
}

double ColorScale::fraction(double v) const {
  if (hi == lo) return 0.5;
  return std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

Rgba ColorScale::color(double v) const {
  return std::isfinite(v) ? colormap(map, fraction(v)) : nan_color;
}

ColorScale fit_color_scale(const float* values, int64_t n, const std::string& kind) {
  if (kind == "gate") return {0, 1, Colormap::viridis};
  double lo = INFINITY, hi = -INFINITY, max_abs = 0;
  for (int64_t i = 0; values != nullptr && i < n; ++i) {
    if (!std::isfinite(values[i])) continue;
    lo = std::min(lo, double(values[i]));
    hi = std::max(hi, double(values[i]));
    max_abs = std::max(max_abs, std::abs(double(values[i])));
  }
  if (kind == "eigenvalue") {
    double m = std::max(1.0, max_abs);
    return {-m, m, Colormap::diverging};
  }
  if (lo > hi) return {0, 1, Colormap::viridis};
  if (hi - lo <= 1e-12 * max_abs) {
    double d = std::max(std::abs(lo) / 10, 1e-6);
    return {lo - d, hi + d, Colormap::viridis};
  }
  return {lo, hi, Colormap::viridis};
}

Rgba categorical(int32_t k) {
  constexpr int32_t kCount = sizeof(kCategorical) / sizeof(kCategorical[0]);
  return k < 0 ? Rgba{128, 128, 128, 255} : kCategorical[k % kCount];
}

int bucket_edge(int i, int n, int n_out) { return static_cast<int>(int64_t(i) * n / n_out); }

float block_mean(const float* values, int cols, int r0, int r1, int c0, int c1) {
  double sum = 0;
  int count = 0;
  for (int r = r0; r < r1; ++r) {
    const float* row = values + int64_t(r) * cols;
    for (int c = c0; c < c1; ++c) {
      if (!std::isfinite(row[c])) continue;
      sum += row[c];
      ++count;
    }
  }
  return count == 0 ? NAN : static_cast<float>(sum / count);
}

std::vector<float> downsample_grid(const float* values, int rows, int cols, int rows_out,
                                   int cols_out) {
  SL_CHECK_SHAPE(
      values != nullptr && rows_out >= 1 && rows_out <= rows && cols_out >= 1 && cols_out <= cols,
      "downsample_grid: need 1 <= out <= in, got " + std::to_string(rows) + "x" +
          std::to_string(cols) + " -> " + std::to_string(rows_out) + "x" +
          std::to_string(cols_out));
  std::vector<float> out(size_t(rows_out) * cols_out);
  for (int i = 0; i < rows_out; ++i) {
    int r0 = bucket_edge(i, rows, rows_out), r1 = bucket_edge(i + 1, rows, rows_out);
    for (int j = 0; j < cols_out; ++j) {
      out[size_t(i) * cols_out + j] = block_mean(
          values, cols, r0, r1, bucket_edge(j, cols, cols_out), bucket_edge(j + 1, cols, cols_out));
    }
  }
  return out;
}

}  // namespace statelab::widgets
