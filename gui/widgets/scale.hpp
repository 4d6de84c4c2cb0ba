// Axis maths for the plotting widgets: nice tick values and labels, data-to-pixel maps (linear or
// log10) and the finite range of some arrays. Pure functions without ImGui, so they are tested
// alone. Ticks trade exactness for readability: steps are 1, 2 or 5 x 10^k, and the tick set
// encloses the range rather than ending on its data limits; axis_ticks keeps the ones on the axis.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace statelab::widgets {

struct Ticks {
  std::vector<double> values;  // ascending
  std::vector<std::string> labels;
};

// Nice ticks enclosing [lo, hi]: the first <= lo, the last >= hi, evenly spaced by 1, 2 or 5 x
// 10^k, between 2 and max_ticks of them (max_ticks is clamped to [3, 100]: two multiples of a
// step cannot enclose a range around zero). lo > hi is swapped; lo == hi and non-finite ends are
// widened to a finite range first. Labels use fixed notation with as many decimals as the step
// needs while the largest |value| lies in [1e-3, 1e5), else "%.Ne" ("1.5e+05"), trailing
// zeros dropped ("0", "0.5", "1", "1e+05").
Ticks nice_ticks(double lo, double hi, int max_ticks);

// Ticks for a log axis inside [lo, hi] (lo > 0): powers of ten, every n-th decade when more
// than max_ticks fit, plus 2x and 5x (or 5x alone) when fewer than three powers fit. When fewer
// than two of those fall inside (a range under a factor of ~2.5), the linear nice ticks inside
// instead, which may be a single one. max_ticks is clamped to [3, 100].
Ticks log_ticks(double lo, double hi, int max_ticks);

// Maps data values to pixels and back, linearly or by log10. px_lo is where lo lands, so a y axis
// has px_lo > px_hi. On a log axis values <= 0 map to px_lo (the bottom), and lo <= 0 is taken
// as hi * 1e-6. A degenerate range (lo == hi) maps everything to the middle. Pixels are limited
// to 1e4 axis lengths beyond either end, so a far outlier still gives a finite float.
struct AxisMap {
  double lo = 0, hi = 1;
  bool log = false;
  float px_lo = 0, px_hi = 1;

  float to_px(double v) const;
  double from_px(float px) const;
};

// The ticks of nice_ticks or log_ticks that lie on the axis (within [lo, hi] up to rounding), at
// most max_ticks (at least 3) of them.
Ticks axis_ticks(const AxisMap& axis, int max_ticks);

// The range of the finite values of the given arrays (null pointers skipped; with log, only
// values > 0), padded by `pad` of its span on each side (in log10 units for log). Nothing
// finite gives [0, 1] (log: [1, 10]); a single value v is widened to v +- |v| / 10 (0: +-1;
// log: v / 2 .. v * 2) before padding. Magnitudes beyond 1e300 are clamped so spans stay finite.
std::pair<double, double> data_range(const std::vector<const std::vector<double>*>& arrays,
                                     bool log, double pad = 0.05);
// The same over count floats `stride` apart: values[0], values[stride], ... (one column of a
// row-major [count, stride] array).
std::pair<double, double> data_range(const float* values, int64_t count, int64_t stride, bool log,
                                     double pad = 0.05);

}  // namespace statelab::widgets
