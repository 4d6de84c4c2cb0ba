// Colours for the plots: continuous colormaps, value-to-colour scales fitted to a kind of signal,
// categorical colours for labels, and the block averaging the heatmap uses to draw one rectangle
// per pixel. Pure maths without ImGui; colours are packed in IM_COL32's byte order. The maps are
// short anchor tables with linear interpolation, which is within a few levels of the originals.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace statelab::widgets {

struct Rgba {
  uint8_t r, g, b, a;
};

// r | g << 8 | b << 16 | a << 24, the layout of ImGui's IM_COL32.
uint32_t pack(Rgba c);

enum class Colormap {
  viridis,
  diverging,  // blue - white - red, for signed values such as eigenvalues in [-1, 1]
  grey,
};

// t in [0, 1], clamped; NaN counts as 0.
Rgba colormap(Colormap m, double t);

struct ColorScale {
  double lo = 0, hi = 1;
  Colormap map = Colormap::viridis;
  Rgba nan_color{128, 128, 128, 255};

  Rgba color(double v) const;       // NaN / Inf -> nan_color; outside [lo, hi] clamped
  double fraction(double v) const;  // (v - lo) / (hi - lo) in [0, 1]; 0.5 when lo == hi; NaN kept
};

// A scale for one kind of signal: "gate" -> [0, 1] viridis, so gates compare across runs;
// "eigenvalue" -> diverging [-m, m] with m = max(1, max |v|), so 0 is white and the unit circle
// stays put unless a value leaves it; anything else ("norm", "value") -> viridis over the finite
// [min, max], a single value v widened to v +- max(|v| / 10, 1e-6), nothing finite -> [0, 1].
ColorScale fit_color_scale(const float* values, int64_t n, const std::string& kind);

// A distinct colour per small integer (latent states, answers), readable on a dark background;
// k >= 10 cycles, k < 0 -> grey.
Rgba categorical(int32_t k);

// The first input index of output bucket i when n inputs are split into n_out (<= n) buckets:
// bucket i covers [bucket_edge(i), bucket_edge(i + 1)), never empty.
int bucket_edge(int i, int n, int n_out);

// The mean of the finite values in rows [r0, r1) x columns [c0, c1) of a row-major grid with
// `cols` columns; NaN when none is finite.
float block_mean(const float* values, int cols, int r0, int r1, int c0, int c1);

// values [rows, cols] row-major -> [rows_out, cols_out] row-major, each output cell the mean of
// the finite input cells in its bucket (NaN when none). Throws ShapeError unless
// 1 <= rows_out <= rows and 1 <= cols_out <= cols. The heatmap draws with bucket_edge and
// block_mean directly, so it allocates nothing per frame.
std::vector<float> downsample_grid(const float* values, int rows, int cols, int rows_out,
                                   int cols_out);

}  // namespace statelab::widgets
