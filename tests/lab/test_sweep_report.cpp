// Tests for lab/sweep_report: the terminal table, report.md and report.html built from synthetic
// results (cells × tasks × seeds with a failed run, a run with probes, an empty cell). Expected
// cells are computed by hand; the HTML is checked structurally (balanced tags, one curve per row
// and task, the training range where train_lengths puts it) and for escaping of input text.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "kernels/error.hpp"
#include "lab/sweep_report.hpp"

using nlohmann::json;
using statelab::format_sweep_table;
using statelab::sweep_report_html;
using statelab::sweep_report_markdown;
using statelab::SweepReportInput;

namespace {

using Curve = std::vector<std::pair<double, double>>;  // (length, accuracy)
const Curve kCurve = {{40, 1.0}, {48, 0.9}, {64, 0.8}};

std::string run_label(const std::string& cell, const std::string& task, int seed) {
  return "cell=" + cell + " task.name=" + task + " train.seed=" + std::to_string(seed);
}

json base_run(const std::string& cell, const std::string& task, int seed) {
  return {{"sweep", "quick"},
          {"id", "0123456789abcdef"},
          {"label", run_label(cell, task, seed)},
          {"axes", {{"cell", cell}, {"task.name", task}, {"train.seed", seed}}},
          {"run_dir", "runs/" + cell + "-" + task + "-" + std::to_string(seed)},
          {"task", task},
          {"seed", seed},
          {"train_lengths", {3, 40}},
          {"chance", 0.5}};
}

json ok_run(const std::string& cell, const std::string& task, int seed, double scaled, bool solved,
            const Curve& curve = kCurve) {
  json r = base_run(cell, task, seed);
  r["status"] = "ok";
  r["scaled_accuracy_beyond_train"] = scaled;
  r["solved"] = solved;
  r["per_length"] = json::array();
  for (const auto& [length, accuracy] : curve)
    r["per_length"].push_back({{"length", length}, {"accuracy", accuracy}});
  return r;
}

json failed_run(const std::string& cell, const std::string& task, int seed,
                const std::string& reason) {
  json r = base_run(cell, task, seed);
  r["status"] = "failed";
  r["reason"] = reason;
  return r;
}

// lstm and mlstm on parity and modular over seeds 1 and 2 (lstm/modular seed 2 failed), plus a
// transformer on parity only, so transformer × modular is empty. 9 of a 12-cell grid are done.
SweepReportInput sweep(bool with_probes) {
  SweepReportInput in;
  in.name = "quick";
  in.row_axes = {"cell"};
  in.grid_size = 12;
  in.results = {
      ok_run("lstm", "parity", 1, 0.90, true),
      ok_run("lstm", "parity", 2, 0.70, false, {{40, 1.0}, {48, 0.7}, {64, 0.6}}),
      ok_run("lstm", "modular", 1, 0.95, true),
      failed_run("lstm", "modular", 2, "training diverged at step 812: block 1 (lstm)"),
      ok_run("mlstm", "parity", 1, 0.10, false),
      ok_run("mlstm", "parity", 2, 0.20, false),
      ok_run("mlstm", "modular", 1, 0.30, false),
      ok_run("mlstm", "modular", 2, 0.60, false),
      ok_run("transformer", "parity", 1, 0.00, false),
  };
  if (with_probes)
    in.results[4]["probes"] = {
        {"blocks.0.forget_gate", {{"saturated_fraction", 0.8}}},
        {"blocks.1.forget_gate", {{"saturated_fraction", 0.4}}},
        {"blocks.0.cell_norm", {{"mean", 87.6}, {"max", 154.9}, {"growth_exponent", 0.58}}},
        {"blocks.1.transition", {{"negative_fraction", 0.31}, {"mean", 0.2}}}};
  return in;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// The line of `text` that starts with `prefix`; empty if none.
std::string line_starting(const std::string& text, const std::string& prefix) {
  for (const auto& line : lines_of(text))
    if (line.compare(0, prefix.size(), prefix) == 0) return line;
  return "";
}

// The text of each <svg …>…</svg> element, in order.
std::vector<std::string> svg_elements(const std::string& html) {
  std::vector<std::string> out;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    const size_t end = html.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(html.substr(at, end + 6 - at));
  }
  return out;
}

// The values of every points="…" attribute.
std::vector<std::string> points_attributes(const std::string& svg) {
  std::vector<std::string> out;
  const std::string key = "points=\"";
  for (size_t at = svg.find(key); at != std::string::npos; at = svg.find(key, at + 1)) {
    const size_t start = at + key.size();
    out.push_back(svg.substr(start, svg.find('"', start) - start));
  }
  return out;
}

// "| a | b |" -> 2: the cells of a Markdown table row, ignoring escaped pipes.
size_t markdown_columns(const std::string& row) {
  size_t pipes = 0;
  for (size_t i = 0; i < row.size(); ++i) pipes += row[i] == '|' && (i == 0 || row[i - 1] != '\\');
  return pipes - 1;
}

}  // namespace

TEST(SweepReport, TableHasRowsAndColumnsInFirstSeenOrder) {
  const std::string table = format_sweep_table(sweep(false));
  const std::string header = line_starting(table, "cell ");
  ASSERT_FALSE(header.empty()) << table;
  EXPECT_LT(header.find("parity"), header.find("modular")) << header;
  const size_t lstm = table.find("\nlstm "), mlstm = table.find("\nmlstm "),
               transformer = table.find("\ntransformer ");
  ASSERT_NE(lstm, std::string::npos) << table;
  ASSERT_NE(mlstm, std::string::npos) << table;
  ASSERT_NE(transformer, std::string::npos) << table;
  EXPECT_LT(lstm, mlstm);
  EXPECT_LT(mlstm, transformer);
}

TEST(SweepReport, CellShowsMeanAndSampleStdOfScaledAccuracyOverSeeds) {
  const std::string table = format_sweep_table(sweep(false));
  // lstm/parity: 0.9, 0.7 -> mean 0.80, sample std sqrt(0.02 / 1) = 0.141.
  EXPECT_TRUE(contains(line_starting(table, "lstm "), "0.80 ± 0.14 (1/2 solved)")) << table;
  // mlstm: 0.1, 0.2 -> 0.15 ± 0.071; 0.3, 0.6 -> 0.45 ± 0.212.
  EXPECT_TRUE(contains(line_starting(table, "mlstm "), "0.15 ± 0.07 (0/2 solved)")) << table;
  EXPECT_TRUE(contains(line_starting(table, "mlstm "), "0.45 ± 0.21 (0/2 solved)")) << table;
  // One run: the mean alone.
  EXPECT_TRUE(contains(line_starting(table, "transformer "), "0.00 (0/1 solved)")) << table;
}

TEST(SweepReport, FailedRunCountsInSolvedDenominatorAndIsListedWithReason) {
  const std::string table = format_sweep_table(sweep(false));
  // lstm/modular: seed 1 solved (0.95), seed 2 failed -> 1 of 2 solved, the mean of the ok run.
  EXPECT_TRUE(contains(line_starting(table, "lstm "), "0.95 (1/2 solved, 1 failed)")) << table;
  EXPECT_TRUE(contains(table,
                       "Failures:\n  cell=lstm task.name=modular train.seed=2: training "
                       "diverged at step 812: block 1 (lstm)\n"))
      << table;
}

TEST(SweepReport, CellWithoutRunsShowsDash) {
  const std::string table = format_sweep_table(sweep(false));
  const std::string row = line_starting(table, "transformer ");
  ASSERT_GE(row.size(), 3u) << table;
  EXPECT_EQ(row.substr(row.size() - 3), "  -") << row;
  EXPECT_TRUE(
      contains(sweep_report_markdown(sweep(false)), "| transformer | 0.00 (0/1 solved) | - |\n"));
}

TEST(SweepReport, TableColumnsAlignDespiteMultiByteCharacters) {
  // "±" is two bytes and one column; the "modular" column starts at the same column in each row.
  const auto column_of = [](const std::string& line, const std::string& needle) {
    size_t columns = 0;
    for (size_t i = 0; i < line.find(needle); ++i)
      columns += (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80;
    return columns;
  };
  const std::string table = format_sweep_table(sweep(false));
  const size_t header = column_of(line_starting(table, "cell "), "modular");
  EXPECT_EQ(column_of(line_starting(table, "lstm "), "0.95"), header) << table;
  EXPECT_EQ(column_of(line_starting(table, "mlstm "), "0.45"), header) << table;
}

TEST(SweepReport, CountsShowRunsDoneOverGridSize) {
  const std::string expected = "9/12 runs done: 8 ok, 1 failed";
  EXPECT_TRUE(contains(format_sweep_table(sweep(false)), expected));
  EXPECT_TRUE(contains(sweep_report_markdown(sweep(false)), expected));
  EXPECT_TRUE(contains(sweep_report_html(sweep(false)), "8 ok, 1 failed, 9/12 runs done"));
}

TEST(SweepReport, AxisValuesThatAreNotStringsAreLabelledByCompactJson) {
  SweepReportInput in = sweep(false);
  in.row_axes = {"cell", "task.train_lengths"};
  for (auto& r : in.results) r["axes"]["task.train_lengths"] = {3, 20};
  EXPECT_TRUE(contains(format_sweep_table(in), "\nlstm [3,20] ")) << format_sweep_table(in);
}

TEST(SweepReport, MarkdownTableHasHeaderAndSeparatorWithOneColumnPerTask) {
  const std::string md = sweep_report_markdown(sweep(false));
  EXPECT_EQ(md.rfind("# ", 0), 0u) << md;
  const std::string header = line_starting(md, "| cell |");
  const std::string separator = line_starting(md, "| --- |");
  ASSERT_FALSE(header.empty()) << md;
  ASSERT_FALSE(separator.empty()) << md;
  EXPECT_EQ(header, "| cell | parity | modular |");
  EXPECT_EQ(markdown_columns(separator), 3u) << separator;
  for (const auto& line : lines_of(md)) {
    if (line.rfind("| ", 0) == 0) {
      EXPECT_EQ(markdown_columns(line), 3u) << line;
    }
  }
  EXPECT_TRUE(contains(md, "| lstm | 0.80 ± 0.14 (1/2 solved) | 0.95 (1/2 solved, 1 failed) |"));
  EXPECT_TRUE(contains(md, "## Failures\n\n- cell=lstm task.name=modular train.seed=2: training"));
}

TEST(SweepReport, HtmlHasOneBalancedSvgChartPerTask) {
  const std::string html = sweep_report_html(sweep(false));
  EXPECT_EQ(count(html, "<svg"), 2u);
  EXPECT_EQ(count(html, "</svg>"), 2u);
  EXPECT_EQ(count(html, "<table"), count(html, "</table>"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(contains(html, "</body>\n</html>\n"));
  // Self-contained: nothing is fetched.
  EXPECT_FALSE(contains(html, "<script"));
  EXPECT_FALSE(contains(html, "<link"));
  EXPECT_FALSE(contains(html, "src="));
}

TEST(SweepReport, HtmlChartHasOnePolylinePerRowWithResultsForThatTask) {
  const auto charts = svg_elements(sweep_report_html(sweep(false)));
  ASSERT_EQ(charts.size(), 2u);
  EXPECT_EQ(count(charts[0], "<polyline"), 3u);  // parity: lstm, mlstm, transformer
  EXPECT_EQ(count(charts[1], "<polyline"), 2u);  // modular: the transformer has no run
  // Each curve is the mean over seeds: lstm/parity at length 48 is (0.9 + 0.7) / 2 = 0.8, drawn
  // at y = 16 + (1 - 0.8) * 260 = 68; its min–max band spans 0.7…0.9.
  EXPECT_TRUE(contains(charts[0], ",68.0 ")) << charts[0];
  EXPECT_EQ(count(charts[0], "class=\"band\""), 1u);  // mlstm's seeds agree: no band
  for (const auto& chart : charts) {
    EXPECT_TRUE(contains(chart, "class=\"chance\"")) << chart;
    EXPECT_TRUE(contains(chart, "stroke-dasharray")) << chart;
    EXPECT_TRUE(contains(chart, ">evaluated length</text>")) << chart;
    EXPECT_TRUE(contains(chart, ">accuracy</text>")) << chart;
    EXPECT_TRUE(contains(chart, ">lstm (mean over runs)</text>")) << chart;  // the legend
  }
}

TEST(SweepReport, HtmlChartShadesTheTrainingRange) {
  const auto charts = svg_elements(sweep_report_html(sweep(false)));
  ASSERT_FALSE(charts.empty());
  // Lengths 3 (train_lengths[0]) … 64 map onto x 56 … 700; the training range 3 … 40 starts at the
  // left edge and is (40 - 3) / (64 - 3) * 644 = 390.6 wide.
  EXPECT_TRUE(
      contains(charts[0], "<rect class=\"train-range\" x=\"56.0\" y=\"16.0\" width=\"390.6\""))
      << charts[0];
}

TEST(SweepReport, HtmlEscapesEverythingThatComesFromInput) {
  SweepReportInput in = sweep(false);
  in.name = "q<1> & \"quotes\"";
  in.results.push_back(
      failed_run("<script>alert('x')</script>", "parity", 1, "bad <b>reason</b> & 'more'"));
  const std::string html = sweep_report_html(in);
  EXPECT_FALSE(contains(html, "<script>"));
  EXPECT_FALSE(contains(html, "<b>"));
  EXPECT_FALSE(contains(html, "q<1>"));
  EXPECT_TRUE(contains(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  EXPECT_TRUE(contains(html, "bad &lt;b&gt;reason&lt;/b&gt; &amp; &#39;more&#39;"));
  EXPECT_TRUE(contains(html, "q&lt;1&gt; &amp; &quot;quotes&quot;"));
  const std::string md = sweep_report_markdown(in);
  EXPECT_FALSE(contains(md, "<script>"));
  EXPECT_FALSE(contains(md, "<b>"));
}

TEST(SweepReport, MarkdownEscapesPipesSoCellsStayInTheirColumns) {
  SweepReportInput in = sweep(false);
  in.results.push_back(ok_run("a|b", "parity", 1, 0.5, false));
  const std::string md = sweep_report_markdown(in);
  const std::string row = line_starting(md, "| a\\|b |");
  ASSERT_FALSE(row.empty()) << md;
  EXPECT_EQ(markdown_columns(row), 3u) << row;
}

TEST(SweepReport, NonFiniteAccuracyOrLengthNeverReachesSvgPoints) {
  SweepReportInput in = sweep(false);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  in.results[0]["per_length"] = {{{"length", 40}, {"accuracy", 1.0}},
                                 {{"length", 48}, {"accuracy", nan}},
                                 {{"length", nan}, {"accuracy", 0.5}},
                                 {{"length", 64}, {"accuracy", inf}},
                                 {{"length", 80}, {"accuracy", nullptr}}};
  in.results[0]["scaled_accuracy_beyond_train"] = nan;
  const std::string html = sweep_report_html(in);
  const auto charts = svg_elements(html);
  ASSERT_EQ(charts.size(), 2u);
  for (const auto& chart : charts)
    for (const auto& points : points_attributes(chart)) {
      EXPECT_FALSE(points.empty());
      EXPECT_EQ(points.find_first_not_of("0123456789., -"), std::string::npos) << points;
    }
  EXPECT_FALSE(contains(html, "nan"));
  EXPECT_FALSE(contains(html, "inf\""));
  // The run without a finite scaled accuracy still counts in its cell's solved fraction.
  EXPECT_TRUE(contains(line_starting(format_sweep_table(in), "lstm "), "0.70 (1/2 solved)"));
}

TEST(SweepReport, GateSummaryAppearsOnlyWhenSomeResultHasProbes) {
  EXPECT_FALSE(contains(sweep_report_html(sweep(false)), "Gates and memory"));
  const std::string html = sweep_report_html(sweep(true));
  EXPECT_TRUE(contains(html, "Gates and memory"));
  EXPECT_EQ(count(html, "<table class=\"probes\""), 1u);  // only parity has a run with probes
  EXPECT_TRUE(contains(html, "<th>forget_gate saturated</th>"));
  EXPECT_TRUE(contains(html, "<th>transition negative</th>"));
  EXPECT_TRUE(contains(html, "<th>cell_norm growth</th>"));
  const size_t start = html.find("<table class=\"probes\"");
  const std::string table = html.substr(start, html.find("</table>", start) - start);
  // mlstm's forget gates: layers 0.8 and 0.4 -> 0.60; its one cell_norm layer grows at 0.58.
  const std::string mlstm = line_starting(table.substr(table.find("<tr><th>mlstm</th>")), "<tr>");
  EXPECT_TRUE(contains(mlstm, "<td>0.60</td>")) << table;
  EXPECT_TRUE(contains(mlstm, "<td>0.58</td>")) << table;
  EXPECT_FALSE(contains(table, "blocks.")) << table;  // layers are grouped by quantity
  // The lstm row has no probes.
  EXPECT_TRUE(contains(table, "<tr><th>lstm</th><td>-</td>")) << table;
}

TEST(SweepReport, SolvedMatrixColoursCellsBySolvedFraction) {
  SweepReportInput in = sweep(false);
  in.results.push_back(ok_run("gdn", "parity", 1, 1.0, true));
  const std::string html = sweep_report_html(in);
  EXPECT_TRUE(
      contains(html, "<td style=\"background:hsl(120, 65%, 80%)\">1/1 solved<br>1.00</td>"));
  EXPECT_TRUE(
      contains(html, "<td style=\"background:hsl(60, 65%, 80%)\">1/2 solved<br>0.80 ± 0.14"));
  EXPECT_TRUE(contains(html, "<td style=\"background:hsl(0, 65%, 80%)\">0/2 solved"));
  EXPECT_TRUE(contains(html, "<td class=\"empty\">-</td>"));
}

TEST(SweepReport, ReportsOfAnEmptySweepSayNothingHasFinished) {
  SweepReportInput in;
  in.name = "empty";
  in.grid_size = 4;
  EXPECT_TRUE(contains(format_sweep_table(in), "0/4 runs done: 0 ok, 0 failed"));
  EXPECT_TRUE(contains(sweep_report_markdown(in), "No run has finished yet."));
  EXPECT_EQ(count(sweep_report_html(in), "<svg"), 0u);
}

TEST(SweepReport, ResultThatIsNotAnObjectIsAnError) {
  SweepReportInput in = sweep(false);
  in.results.push_back(json::array({1, 2}));
  EXPECT_THROW(format_sweep_table(in), statelab::Error);
}
