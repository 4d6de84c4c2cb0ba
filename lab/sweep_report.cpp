// The three views of a sweep report (terminal, Markdown, HTML) are drawn from one grouping of the
// results into rows × columns, so they always agree on what a cell holds. The HTML charts are
// hand-written SVG on a linear length axis: the default protocol evaluates every length of
// 40…256 after training on 3…40, and a log axis would spend most of its width on the training
// range. Checked by tests/lab/test_sweep_report.cpp.
#include "lab/sweep_report.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/error.hpp"
#include "lab/sweep_spec.hpp"

namespace statelab {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// --- reading the results --------------------------------------------------------------------

double number_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

std::string string_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct Run {
  const json* result;
  size_t row, column;
  bool ok;
};

// What the matrix shows for one row × column.
struct Cell {
  int runs = 0, failed = 0, solved = 0;
  std::vector<double> scaled;  // the finite scaled_accuracy_beyond_train of its ok runs
};

struct Grid {
  std::vector<std::string> rows, columns;  // first-seen order
  std::vector<Run> runs;
  std::vector<std::vector<Cell>> cells;  // [row][column]
  int ok = 0, failed = 0;
};

size_t index_of(std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<size_t>(it - names.begin());
  names.push_back(name);
  return names.size() - 1;
}

std::string row_label(const json& axes, const std::vector<std::string>& row_axes) {
  std::string label;
  for (const auto& axis : row_axes) {
    const auto it = axes.find(axis);
    label += (label.empty() ? "" : " ") + (it == axes.end() ? std::string("-") : axis_label(*it));
  }
  return label.empty() ? "all" : label;
}

std::string column_label(const json& result, const json& axes, const std::string& column_axis) {
  const auto it = axes.find(column_axis);
  if (it != axes.end()) return axis_label(*it);
  const std::string task = string_at(result, "task");
  return task.empty() ? "all" : task;
}

Grid group_results(const SweepReportInput& in) {
  Grid g;
  const json no_axes = json::object();
  for (size_t i = 0; i < in.results.size(); ++i) {
    const json& r = in.results[i];
    if (!r.is_object())
      throw Error("sweep report: result " + std::to_string(i) + " is not a JSON object");
    const auto axes = r.find("axes");
    if (axes != r.end() && !axes->is_object())
      throw Error("sweep report: result " + std::to_string(i) +
                  " has \"axes\" that is not an object");
    const json& a = axes == r.end() ? no_axes : *axes;
    g.runs.push_back({&r, index_of(g.rows, row_label(a, in.row_axes)),
                      index_of(g.columns, column_label(r, a, in.column_axis)),
                      string_at(r, "status") == "ok"});
  }
  g.cells.assign(g.rows.size(), std::vector<Cell>(g.columns.size()));
  for (const Run& run : g.runs) {
    Cell& c = g.cells[run.row][run.column];
    ++c.runs;
    if (!run.ok) {
      ++c.failed;
      ++g.failed;
      continue;
    }
    ++g.ok;
    const auto solved = run.result->find("solved");
    if (solved != run.result->end() && solved->is_boolean() && solved->get<bool>()) ++c.solved;
    const double scaled = number_at(*run.result, "scaled_accuracy_beyond_train");
    if (std::isfinite(scaled)) c.scaled.push_back(scaled);
  }
  return g;
}

// --- numbers and text -----------------------------------------------------------------------

std::string printf_string(const char* format, double v, int digits) {
  const int n = std::snprintf(nullptr, 0, format, digits, v);
  std::string s(static_cast<size_t>(n), '\0');
  std::snprintf(&s[0], s.size() + 1, format, digits, v);
  return s;
}

// `digits` decimals, "-" if not finite, and no "-0.00" for a tiny negative.
std::string fixed(double v, int digits = 2) {
  if (!std::isfinite(v)) return "-";
  std::string s = printf_string("%.*f", v, digits);
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// The sample standard deviation (n - 1): seeds are a sample of what the cell would do.
double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return kNaN;
  const double m = mean_of(v);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

std::string accuracy_text(const Cell& c) {
  if (c.scaled.empty()) return "-";
  std::string s = fixed(mean_of(c.scaled));
  if (c.scaled.size() > 1) s += " ± " + fixed(sample_std(c.scaled));
  return s;
}

std::string solved_text(const Cell& c) {
  std::string s = std::to_string(c.solved) + "/" + std::to_string(c.runs) + " solved";
  if (c.failed > 0) s += ", " + std::to_string(c.failed) + " failed";
  return s;
}

std::string cell_text(const Cell& c) {
  return c.runs == 0 ? "-" : accuracy_text(c) + " (" + solved_text(c) + ")";
}

std::string runs_done_text(const SweepReportInput& in, const Grid& g) {
  std::string s = std::to_string(in.results.size());
  if (in.grid_size > 0) s += "/" + std::to_string(in.grid_size);
  return s + " runs done: " + std::to_string(g.ok) + " ok, " + std::to_string(g.failed) + " failed";
}

std::string row_header(const SweepReportInput& in) {
  std::string s;
  for (const auto& axis : in.row_axes) s += (s.empty() ? "" : " ") + axis;
  return s.empty() ? "run" : s;
}

std::string cell_caption(const SweepReportInput& in) {
  return "Each cell: scaled accuracy beyond the training lengths, mean ± std over " + in.seed_axis +
         ", and the solved runs out of all runs of the cell (a failed run counts "
         "as unsolved).";
}

// Reasons can hold a multi-line diagnosis; a table row or list item needs one line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

// Terminal columns of UTF-8 text ("±" is two bytes, one column).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// Text for a Markdown table or list: one line, pipes escaped so they do not split the cell,
// angle brackets as entities so a label never becomes HTML in a renderer.
std::string markdown_text(const std::string& s) {
  return replace_all(replace_all(replace_all(one_line(s), "|", "\\|"), "<", "&lt;"), ">", "&gt;");
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

// --- terminal -------------------------------------------------------------------------------

std::string format_sweep_table(const SweepReportInput& in) {
  const Grid g = group_results(in);
  std::string out = "Sweep " + in.name + ": " + runs_done_text(in, g) + "\n";
  if (!g.rows.empty()) {
    std::vector<std::vector<std::string>> table;
    table.push_back({row_header(in)});
    for (const auto& column : g.columns) table[0].push_back(one_line(column));
    for (size_t r = 0; r < g.rows.size(); ++r) {
      table.push_back({one_line(g.rows[r])});
      for (const Cell& c : g.cells[r]) table.back().push_back(cell_text(c));
    }
    std::vector<size_t> width(table[0].size(), 0);
    for (const auto& line : table)
      for (size_t i = 0; i < line.size(); ++i)
        width[i] = std::max(width[i], display_width(line[i]));
    out += cell_caption(in) + "\n\n";
    for (const auto& line : table) {
      std::string text;
      for (size_t i = 0; i < line.size(); ++i)
        text += line[i] +
                std::string(i + 1 < line.size() ? width[i] - display_width(line[i]) + 2 : 0, ' ');
      out += text + "\n";
    }
  }
  if (g.failed > 0) {
    out += "\nFailures:\n";
    for (const Run& run : g.runs)
      if (!run.ok)
        out += "  " + one_line(string_at(*run.result, "label")) + ": " +
               one_line(string_at(*run.result, "reason")) + "\n";
  }
  return out;
}

// --- Markdown -------------------------------------------------------------------------------

std::string sweep_report_markdown(const SweepReportInput& in) {
  const Grid g = group_results(in);
  std::string out = "# Length-generalization sweep: " + markdown_text(in.name) + "\n\n" +
                    runs_done_text(in, g) + ".\n\n";
  if (g.rows.empty()) return out + "No run has finished yet.\n";
  out += markdown_text(cell_caption(in)) + "\n\n| " + markdown_text(row_header(in)) + " |";
  for (const auto& column : g.columns) out += " " + markdown_text(column) + " |";
  out += "\n|";
  for (size_t i = 0; i <= g.columns.size(); ++i) out += " --- |";
  out += "\n";
  for (size_t r = 0; r < g.rows.size(); ++r) {
    out += "| " + markdown_text(g.rows[r]) + " |";
    for (const Cell& c : g.cells[r]) out += " " + cell_text(c) + " |";
    out += "\n";
  }
  if (g.failed > 0) {
    out += "\n## Failures\n\n";
    for (const Run& run : g.runs)
      if (!run.ok)
        out += "- " + markdown_text(string_at(*run.result, "label")) + ": " +
               markdown_text(string_at(*run.result, "reason")) + "\n";
  }
  return out;
}

// --- HTML: the accuracy-against-length charts -----------------------------------------------

namespace {

// A fixed palette (Tableau 10), indexed by row so a row keeps its colour in every chart.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
const char* row_colour(size_t row) { return kPalette[row % (sizeof kPalette / sizeof *kPalette)]; }

// One row's curve in one chart: per evaluated length, the mean, min and max over its runs.
struct Series {
  size_t row = 0;
  std::vector<double> length, mean, lo, hi;
};

std::vector<Series> chart_series(const Grid& g, size_t column) {
  std::vector<std::map<double, std::vector<double>>> by_row(g.rows.size());
  for (const Run& run : g.runs) {
    if (!run.ok || run.column != column) continue;
    const auto per_length = run.result->find("per_length");
    if (per_length == run.result->end() || !per_length->is_array()) continue;
    for (const json& point : *per_length) {
      if (!point.is_object()) continue;
      const double length = number_at(point, "length"), accuracy = number_at(point, "accuracy");
      if (std::isfinite(length) && std::isfinite(accuracy))
        by_row[run.row][length].push_back(accuracy);
    }
  }
  std::vector<Series> out;
  for (size_t r = 0; r < by_row.size(); ++r) {
    if (by_row[r].empty()) continue;
    Series s;
    s.row = r;
    for (const auto& [length, accuracies] : by_row[r]) {
      s.length.push_back(length);
      s.mean.push_back(mean_of(accuracies));
      s.lo.push_back(*std::min_element(accuracies.begin(), accuracies.end()));
      s.hi.push_back(*std::max_element(accuracies.begin(), accuracies.end()));
    }
    out.push_back(std::move(s));
  }
  return out;
}

// About `target` ticks at 1, 2 or 5 × 10^k over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double step = magnitude * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (int k = 0; (first + k) * step <= hi + step * 1e-9; ++k) ticks.push_back((first + k) * step);
  return ticks;
}

std::string coord(double v) { return printf_string("%.*f", v, 1); }

std::string tick_label(double v) {
  return v == std::round(v) && std::fabs(v) < 1e15 ? fixed(v, 0) : printf_string("%.*g", v, 4);
}

// Where a chart maps lengths and accuracies; accuracy always spans 0…1 so charts compare.
struct ChartFrame {
  static constexpr double kWidth = 720, kLeft = 56, kRight = 20, kTop = 16, kPlotHeight = 260;
  static constexpr double kAxisHeight = 44, kLegendLine = 18;
  double x0 = 0, x1 = 1;
  double plot_width() const { return kWidth - kLeft - kRight; }
  double bottom() const { return kTop + kPlotHeight; }
  double x(double length) const { return kLeft + (length - x0) / (x1 - x0) * plot_width(); }
  double y(double accuracy) const { return kTop + (1 - accuracy) * kPlotHeight; }
};

// "x,y" pairs; a point with a non-finite coordinate is skipped, never printed.
void append_point(std::string& points, double x, double y) {
  if (!std::isfinite(x) || !std::isfinite(y)) return;
  points += (points.empty() ? "" : " ") + coord(x) + "," + coord(y);
}

std::string svg_line(double x1, double y1, double x2, double y2, const std::string& attributes) {
  return "<line x1=\"" + coord(x1) + "\" y1=\"" + coord(y1) + "\" x2=\"" + coord(x2) + "\" y2=\"" +
         coord(y2) + "\" " + attributes + "/>";
}

std::string svg_text(double x, double y, const std::string& anchor, const std::string& text) {
  return "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" text-anchor=\"" + anchor + "\">" +
         html_escape(text) + "</text>";
}

std::string accuracy_chart(const Grid& g, size_t column) {
  const std::vector<Series> series = chart_series(g, column);
  if (series.empty()) return "<p class=\"note\">No per-length accuracy for this task yet.</p>\n";
  std::set<std::pair<double, double>> train_ranges;
  std::set<double> chances;
  for (const Run& run : g.runs) {
    if (run.column != column) continue;
    const auto train = run.result->find("train_lengths");
    if (train != run.result->end() && train->is_array() && train->size() == 2 &&
        (*train)[0].is_number() && (*train)[1].is_number()) {
      const double lo = (*train)[0].get<double>(), hi = (*train)[1].get<double>();
      if (std::isfinite(lo) && std::isfinite(hi) && lo <= hi) train_ranges.insert({lo, hi});
    }
    const double chance = number_at(*run.result, "chance");
    if (std::isfinite(chance) && chance >= 0 && chance <= 1) chances.insert(chance);
  }
  ChartFrame f;
  f.x0 = std::numeric_limits<double>::infinity();
  f.x1 = -f.x0;
  for (const Series& s : series) {
    f.x0 = std::min(f.x0, s.length.front());
    f.x1 = std::max(f.x1, s.length.back());
  }
  for (const auto& [lo, hi] : train_ranges) {
    f.x0 = std::min(f.x0, lo);
    f.x1 = std::max(f.x1, hi);
  }
  if (f.x1 <= f.x0) {  // a single length still gets an axis of some width
    f.x0 -= 1;
    f.x1 += 1;
  }

  const size_t legend_lines = series.size() + 3;
  const double height = ChartFrame::kTop + ChartFrame::kPlotHeight + ChartFrame::kAxisHeight +
                        static_cast<double>(legend_lines) * ChartFrame::kLegendLine + 8;
  const double left = ChartFrame::kLeft, right = left + f.plot_width(), bottom = f.bottom();
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" +
                    coord(ChartFrame::kWidth) + "\" height=\"" + coord(height) +
                    "\" viewBox=\"0 0 " + coord(ChartFrame::kWidth) + " " + coord(height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"" +
                    html_escape("accuracy against length: " + g.columns[column]) + "\">\n";
  for (const auto& [lo, hi] : train_ranges)
    svg += "<rect class=\"train-range\" x=\"" + coord(f.x(lo)) + "\" y=\"" +
           coord(ChartFrame::kTop) + "\" width=\"" + coord(f.x(hi) - f.x(lo)) + "\" height=\"" +
           coord(ChartFrame::kPlotHeight) + "\" fill=\"#4e79a7\" fill-opacity=\"0.10\"/>\n";
  for (double a : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    svg += svg_line(left, f.y(a), right, f.y(a), "stroke=\"#e4e4e4\"") + "\n";
    svg += svg_text(left - 6, f.y(a) + 4, "end", fixed(a)) + "\n";
  }
  for (double t : nice_ticks(f.x0, f.x1, 6)) {
    svg += svg_line(f.x(t), bottom, f.x(t), bottom + 5, "stroke=\"#444\"") + "\n";
    svg += svg_text(f.x(t), bottom + 18, "middle", tick_label(t)) + "\n";
  }
  svg += svg_line(left, ChartFrame::kTop, left, bottom, "stroke=\"#444\"") + "\n";
  svg += svg_line(left, bottom, right, bottom, "stroke=\"#444\"") + "\n";
  svg += svg_text((left + right) / 2, bottom + 36, "middle", "evaluated length") + "\n";
  svg += "<text transform=\"rotate(-90)\" x=\"" + coord(-(ChartFrame::kTop + bottom) / 2) +
         "\" y=\"14\" text-anchor=\"middle\">accuracy</text>\n";
  for (double chance : chances)
    svg += svg_line(left, f.y(chance), right, f.y(chance),
                    "class=\"chance\" stroke=\"#666\" stroke-dasharray=\"6 4\"") +
           "\n";
  for (const Series& s : series) {
    std::string band;
    bool spread = false;
    for (size_t i = 0; i < s.length.size(); ++i) {
      append_point(band, f.x(s.length[i]), f.y(s.hi[i]));
      spread = spread || s.hi[i] > s.lo[i];
    }
    for (size_t i = s.length.size(); i-- > 0;) append_point(band, f.x(s.length[i]), f.y(s.lo[i]));
    if (spread)
      svg += "<polygon class=\"band\" points=\"" + band + "\" fill=\"" + row_colour(s.row) +
             "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
  }
  for (const Series& s : series) {
    std::string points;
    for (size_t i = 0; i < s.length.size(); ++i)
      append_point(points, f.x(s.length[i]), f.y(s.mean[i]));
    svg += "<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + row_colour(s.row) +
           "\" stroke-width=\"2\"><title>" + html_escape(g.rows[s.row]) + "</title></polyline>\n";
    if (s.length.size() == 1)  // a polyline of one point draws nothing
      svg += "<circle cx=\"" + coord(f.x(s.length[0])) + "\" cy=\"" + coord(f.y(s.mean[0])) +
             "\" r=\"3\" fill=\"" + row_colour(s.row) + "\"/>\n";
  }
  double y = bottom + ChartFrame::kAxisHeight + ChartFrame::kLegendLine / 2;
  const auto legend = [&](const std::string& swatch, const std::string& text) {
    svg += swatch + svg_text(left + 30, y + 4, "start", text) + "\n";
    y += ChartFrame::kLegendLine;
  };
  for (const Series& s : series)
    legend(svg_line(left, y, left + 22, y,
                    std::string("stroke=\"") + row_colour(s.row) + "\" stroke-width=\"2\""),
           g.rows[s.row] + " (mean over runs)");
  legend("<rect x=\"" + coord(left) + "\" y=\"" + coord(y - 5) +
             "\" width=\"22\" height=\"10\" fill=\"#888\" fill-opacity=\"0.25\"/>",
         "min–max over runs");
  legend("<rect x=\"" + coord(left) + "\" y=\"" + coord(y - 5) +
             "\" width=\"22\" height=\"10\" fill=\"#4e79a7\" fill-opacity=\"0.10\"/>",
         "training lengths");
  legend(svg_line(left, y, left + 22, y, "stroke=\"#666\" stroke-dasharray=\"6 4\""), "chance");
  return svg + "</svg>\n";
}

// --- HTML: tables ---------------------------------------------------------------------------

// Pale red (0) through yellow to green (1), light enough for dark text.
std::string solved_colour(double fraction) {
  return "hsl(" + fixed(120 * std::clamp(fraction, 0.0, 1.0), 0) + ", 65%, 80%)";
}

std::string solved_matrix(const SweepReportInput& in, const Grid& g) {
  std::string html = "<table class=\"matrix\">\n<tr><th>" + html_escape(row_header(in)) + "</th>";
  for (const auto& column : g.columns) html += "<th>" + html_escape(column) + "</th>";
  html += "</tr>\n";
  for (size_t r = 0; r < g.rows.size(); ++r) {
    html += "<tr><th>" + html_escape(g.rows[r]) + "</th>";
    for (const Cell& c : g.cells[r]) {
      if (c.runs == 0) {
        html += "<td class=\"empty\">-</td>";
        continue;
      }
      html += "<td style=\"background:" + solved_colour(static_cast<double>(c.solved) / c.runs) +
              "\">" + std::to_string(c.solved) + "/" + std::to_string(c.runs) + " solved<br>" +
              html_escape(accuracy_text(c));
      if (c.failed > 0)
        html += "<br><span class=\"failed\">" + std::to_string(c.failed) + " failed</span>";
      html += "</td>";
    }
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

// "blocks.3.forget_gate" -> "forget_gate", so the layers of one quantity group; a model-level
// name ("residual_norm") stays as it is.
std::string probe_quantity(const std::string& key) {
  const std::string prefix = "blocks.";
  if (key.compare(0, prefix.size(), prefix) != 0) return key;
  size_t end = prefix.size();
  while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
  if (end == prefix.size() || end + 1 >= key.size() || key[end] != '.') return key;
  return key.substr(end + 1);
}

std::string probe_field(const std::string& field) {
  if (field == "saturated_fraction") return "saturated";
  if (field == "negative_fraction") return "negative";
  if (field == "growth_exponent") return "growth";
  return field;
}

// One run's probe figures ("forget_gate saturated" -> mean over layers), in first-seen order.
std::vector<std::pair<std::string, double>> run_probe_figures(const json& probes) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> layers;
  for (const auto& [key, figures] : probes.items()) {
    if (!figures.is_object()) continue;
    for (const auto& [field, value] : figures.items()) {
      if (!value.is_number() || !std::isfinite(value.get<double>())) continue;
      const std::string name = probe_quantity(key) + " " + probe_field(field);
      if (layers.find(name) == layers.end()) order.push_back(name);
      layers[name].push_back(value.get<double>());
    }
  }
  std::vector<std::pair<std::string, double>> out;
  for (const auto& name : order) out.emplace_back(name, mean_of(layers[name]));
  return out;
}

// Per column with probes: rows × figures, each the mean over runs of the run's layer mean.
std::string probe_tables(const SweepReportInput& in, const Grid& g) {
  std::string html;
  for (size_t column = 0; column < g.columns.size(); ++column) {
    std::vector<std::string> figures;
    std::map<std::pair<size_t, std::string>, std::vector<double>> values;  // (row, figure)
    std::set<size_t> rows;
    for (const Run& run : g.runs) {
      if (!run.ok || run.column != column) continue;
      rows.insert(run.row);
      const auto probes = run.result->find("probes");
      if (probes == run.result->end() || !probes->is_object()) continue;
      for (const auto& [name, value] : run_probe_figures(*probes)) {
        index_of(figures, name);
        values[{run.row, name}].push_back(value);
      }
    }
    if (figures.empty()) continue;
    html += "<h3>" + html_escape(g.columns[column]) + "</h3>\n<table class=\"probes\">\n<tr><th>" +
            html_escape(row_header(in)) + "</th>";
    for (const auto& figure : figures) html += "<th>" + html_escape(figure) + "</th>";
    html += "</tr>\n";
    for (size_t row : rows) {
      html += "<tr><th>" + html_escape(g.rows[row]) + "</th>";
      for (const auto& figure : figures) {
        const auto it = values.find({row, figure});
        html +=
            "<td>" + (it == values.end() ? std::string("-") : fixed(mean_of(it->second))) + "</td>";
      }
      html += "</tr>\n";
    }
    html += "</table>\n";
  }
  if (html.empty()) return html;
  return "<h2>Gates and memory</h2>\n<p class=\"note\">Probe figures: the mean over runs of each "
         "run's mean over layers.</p>\n" +
         html;
}

std::string failure_table(const Grid& g) {
  if (g.failed == 0) return "";
  std::string html =
      "<h2>Failures</h2>\n<table class=\"failures\">\n<tr><th>run</th><th>reason"
      "</th><th>run directory</th></tr>\n";
  for (const Run& run : g.runs)
    if (!run.ok)
      html += "<tr><td>" + html_escape(string_at(*run.result, "label")) +
              "</td><td class=\"reason\">" + html_escape(string_at(*run.result, "reason")) +
              "</td><td>" + html_escape(string_at(*run.result, "run_dir")) + "</td></tr>\n";
  return html + "</table>\n";
}

constexpr const char* kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;"
    "max-width:980px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:4px 10px;text-align:center}"
    "th{background:#f4f4f4}td.empty{color:#999}.failed{color:#a00}"
    "td.reason{text-align:left;font-family:monospace;white-space:pre-wrap}"
    ".note{color:#555}svg.chart{display:block;margin-bottom:1.5em}";

}  // namespace

std::string sweep_report_html(const SweepReportInput& in) {
  const Grid g = group_results(in);
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>Sweep " +
      html_escape(in.name) + " — StateLab</title>\n<style>" + kStyle +
      "</style>\n</head>\n<body>\n<h1>Length-generalization sweep: " + html_escape(in.name) +
      "</h1>\n<p class=\"counts\">" + std::to_string(g.ok) + " ok, " + std::to_string(g.failed) +
      " failed, " + std::to_string(in.results.size()) +
      (in.grid_size > 0 ? "/" + std::to_string(in.grid_size) : "") + " runs done</p>\n";
  if (g.rows.empty()) return html + "<p>No run has finished yet.</p>\n</body>\n</html>\n";
  html += "<h2>Solved matrix</h2>\n<p class=\"note\">" + html_escape(cell_caption(in)) + "</p>\n" +
          solved_matrix(in, g) + "<h2>Accuracy against length</h2>\n";
  for (size_t column = 0; column < g.columns.size(); ++column)
    html += "<h3>" + html_escape(g.columns[column]) + "</h3>\n" + accuracy_chart(g, column);
  return html + probe_tables(in, g) + failure_table(g) + "</body>\n</html>\n";
}

}  // namespace statelab
