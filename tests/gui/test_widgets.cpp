// Tests for the plotting widgets: the axis and colour maths exactly, and the ImGui widgets through
// a headless frame (a context with a built font atlas and no renderer), which checks that the
// gallery submits balanced windows and that big heatmaps and line plots are reduced to about
// one primitive per pixel instead of one per data point.
#include <gtest/gtest.h>
#include <imgui.h>
#include <imgui_internal.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <tuple>

#include "gui/widgets/colormap.hpp"
#include "gui/widgets/gallery.hpp"
#include "gui/widgets/heatmap.hpp"
#include "gui/widgets/line_plot.hpp"
#include "gui/widgets/scale.hpp"
#include "kernels/error.hpp"

namespace statelab::widgets {
namespace {

// m x 10^k with m in {1, 2, 5}, up to rounding.
bool is_nice_step(double step) {
  double k = std::floor(std::log10(step) + 1e-9);
  double m = step / std::pow(10.0, k);
  return std::abs(m - 1) < 1e-6 || std::abs(m - 2) < 1e-6 || std::abs(m - 5) < 1e-6;
}

void expect_valid_nice_ticks(double lo, double hi, int max_ticks) {
  SCOPED_TRACE(testing::Message() << "[" << lo << ", " << hi << "] max " << max_ticks);
  Ticks t = nice_ticks(lo, hi, max_ticks);
  ASSERT_GE(t.values.size(), 2u);
  ASSERT_LE(t.values.size(), size_t(std::max(max_ticks, 3)));
  ASSERT_EQ(t.labels.size(), t.values.size());
  double step = t.values[1] - t.values[0];
  double tol = 1e-9 * (hi - lo);
  EXPECT_LE(t.values.front(), lo + tol);
  EXPECT_GE(t.values.back(), hi - tol);
  EXPECT_TRUE(is_nice_step(step)) << step;
  for (size_t i = 1; i < t.values.size(); ++i) {
    EXPECT_NEAR(t.values[i] - t.values[i - 1], step, 1e-9 * step);
  }
  EXPECT_EQ(std::set<std::string>(t.labels.begin(), t.labels.end()).size(), t.labels.size())
      << "labels must tell ticks apart";
}

TEST(NiceTicks, EncloseTheRangeWithEvenOneTwoFiveStepsAndAtMostMaxTicks) {
  expect_valid_nice_ticks(0, 1, 6);
  expect_valid_nice_ticks(-0.1, 0.1, 3);
  expect_valid_nice_ticks(0.1, 0.9, 3);
  expect_valid_nice_ticks(1000, 1001, 5);
  expect_valid_nice_ticks(-3e7, 1.2e8, 7);
  expect_valid_nice_ticks(1e-7, 3e-7, 4);
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> exponent(-8, 8), unit(-1, 1);
  for (int trial = 0; trial < 2000; ++trial) {
    double scale = std::pow(10.0, exponent(rng));
    double a = unit(rng) * scale, b = unit(rng) * scale;
    expect_valid_nice_ticks(std::min(a, b), std::max(a, b), 3 + trial % 8);
  }
}

TEST(NiceTicks, LabelsAreFixedForModerateValuesAndScientificForLargeOnes) {
  Ticks t = nice_ticks(0, 1, 6);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"}));
  EXPECT_EQ(nice_ticks(0, 0.5, 3).labels, (std::vector<std::string>{"0", "0.5"}));
  EXPECT_EQ(nice_ticks(0, 2e5, 3).labels, (std::vector<std::string>{"0", "1e+05", "2e+05"}));
  EXPECT_EQ(nice_ticks(1e5, 2e5, 3).labels,
            (std::vector<std::string>{"1e+05", "1.5e+05", "2e+05"}));
  EXPECT_EQ(nice_ticks(100, 300, 3).labels, (std::vector<std::string>{"100", "200", "300"}));
  EXPECT_EQ(nice_ticks(-0.001, 0, 3).labels.back(), "0") << "no negative zero";
}

TEST(NiceTicks, DegenerateOrNonFiniteInputGivesAFiniteRange) {
  const double nan = NAN, inf = INFINITY;
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {3, 3}, {0, 0}, {nan, nan}, {inf, -inf}, {nan, 5}, {-inf, 2}, {5, 1}, {1e308, 1e308}}) {
    SCOPED_TRACE(testing::Message() << lo << ", " << hi);
    Ticks t = nice_ticks(lo, hi, 5);
    ASSERT_GE(t.values.size(), 2u);
    for (double v : t.values) EXPECT_TRUE(std::isfinite(v));
    EXPECT_LT(t.values.front(), t.values.back());
    if (std::isfinite(lo) && lo == hi && lo < 1e300) {
      EXPECT_LE(t.values.front(), lo);
      EXPECT_GE(t.values.back(), lo);
    }
  }
}

bool is_power_of_ten(double v) {
  double k = std::round(std::log10(v));
  return std::abs(v / std::pow(10.0, k) - 1) < 1e-9;
}

TEST(LogTicks, ArePowersOfTenInsideTheRange) {
  Ticks t = log_ticks(1e-3, 1e2, 6);
  EXPECT_EQ(t.values.size(), 6u);
  for (double lo_hi : {1e-3, 1e2}) EXPECT_TRUE(std::count(t.values.begin(), t.values.end(), lo_hi));
  for (auto [lo, hi, max_ticks] : std::vector<std::tuple<double, double, int>>{
           {1e-3, 1e2, 6}, {1e-10, 1e10, 5}, {0.5, 2e4, 4}, {3e-7, 7e-1, 8}}) {
    SCOPED_TRACE(testing::Message() << lo << ".." << hi);
    Ticks ticks = log_ticks(lo, hi, max_ticks);
    EXPECT_GE(ticks.values.size(), 2u);
    EXPECT_LE(ticks.values.size(), size_t(max_ticks));
    for (double v : ticks.values) {
      EXPECT_TRUE(is_power_of_ten(v)) << v;
      EXPECT_GE(v, lo * (1 - 1e-9));
      EXPECT_LE(v, hi * (1 + 1e-9));
    }
  }
}

TEST(LogTicks, AddTwoAndFiveTimesPowersWhenFewDecadesFit) {
  Ticks t = log_ticks(1.5, 80, 10);
  std::vector<double> expected{2, 5, 10, 20, 50};
  ASSERT_EQ(t.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(t.values[i], expected[i], 1e-9);
  EXPECT_EQ(t.labels.front(), "2");
}

TEST(AxisMap, RoundTripsLinearAndLogValues) {
  AxisMap linear{-3, 7, false, 10, 410};
  for (double v : {-3.0, -1.25, 0.0, 2.5, 7.0})
    EXPECT_NEAR(linear.from_px(linear.to_px(v)), v, 1e-4);
  EXPECT_FLOAT_EQ(linear.to_px(-3), 10);
  EXPECT_FLOAT_EQ(linear.to_px(7), 410);
  AxisMap log{1e-3, 1e3, true, 0, 600};
  EXPECT_NEAR(log.to_px(1), 300, 1e-3);
  for (double v : {1e-3, 0.02, 1.0, 37.0, 1e3}) EXPECT_NEAR(log.from_px(log.to_px(v)) / v, 1, 1e-5);
}

TEST(AxisMap, YAxisWithPixelsGrowingDownPutsHighValuesOnTop) {
  AxisMap y{0, 1, false, 300, 20};
  EXPECT_FLOAT_EQ(y.to_px(0), 300);
  EXPECT_FLOAT_EQ(y.to_px(1), 20);
  EXPECT_LT(y.to_px(0.7), y.to_px(0.3));
  EXPECT_NEAR(y.from_px(160), 0.5, 1e-6);
}

TEST(AxisMap, ClampsNonPositiveLogValuesDegenerateRangesAndOutliers) {
  AxisMap log{1, 100, true, 300, 20};
  EXPECT_FLOAT_EQ(log.to_px(0), 300);
  EXPECT_FLOAT_EQ(log.to_px(-5), 300);
  AxisMap flat{2, 2, false, 0, 100};
  EXPECT_FLOAT_EQ(flat.to_px(2), 50);
  AxisMap x{0, 1, false, 0, 100};
  EXPECT_TRUE(std::isfinite(x.to_px(1e300)));
  EXPECT_TRUE(std::isfinite(x.to_px(INFINITY)));
  EXPECT_TRUE(std::isnan(x.to_px(NAN)));
}

TEST(AxisTicks, KeepOnlyTicksOnTheAxisAndUseTheTickBudget) {
  Ticks t = axis_ticks(AxisMap{0.03, 0.97, false, 0, 100}, 6);
  ASSERT_FALSE(t.values.empty());
  for (double v : t.values) {
    EXPECT_GE(v, 0.03);
    EXPECT_LE(v, 0.97);
  }
  // Enclosing ticks for [-0.03, 1.03] step by 0.5; the axis can afford 0.2.
  Ticks padded = axis_ticks(AxisMap{-0.03, 1.03, false, 0, 100}, 6);
  EXPECT_EQ(padded.labels, (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"}));
  Ticks exact = axis_ticks(AxisMap{0, 1, false, 0, 100}, 3);
  EXPECT_EQ(exact.labels, (std::vector<std::string>{"0", "0.5", "1"}));
}

TEST(DataRange, IgnoresNonFiniteValuesAndNonPositiveOnesUnderLog) {
  std::vector<double> a{NAN, 2, -1, INFINITY}, b{5, -INFINITY, 0};
  EXPECT_EQ(data_range({&a, &b, nullptr}, false, 0.0), (std::pair<double, double>{-1, 5}));
  EXPECT_EQ(data_range({&a, &b}, true, 0.0), (std::pair<double, double>{2, 5}));
  auto padded = data_range({&a, &b}, false, 0.1);
  EXPECT_DOUBLE_EQ(padded.first, -1.6);
  EXPECT_DOUBLE_EQ(padded.second, 5.6);
  auto log_padded = data_range({&a}, true, 0.5);  // one value 2 -> [1, 4] -> +-0.5 * log10(4)
  EXPECT_NEAR(log_padded.first, 0.5, 1e-12);
  EXPECT_NEAR(log_padded.second, 8, 1e-12);
  std::vector<double> none{NAN, -INFINITY}, one{3};
  EXPECT_EQ(data_range({&none}, false), (std::pair<double, double>{0, 1}));
  EXPECT_EQ(data_range({&none}, true), (std::pair<double, double>{1, 10}));
  auto widened = data_range({&one}, false, 0.0);
  EXPECT_LT(widened.first, 3);
  EXPECT_GT(widened.second, 3);
  float xy[] = {1, 10, NAN, 20, -4, NAN, 3, 30};  // [4, 2]
  EXPECT_EQ(data_range(xy, 4, 2, false, 0.0), (std::pair<double, double>{-4, 3}));
  EXPECT_EQ(data_range(xy + 1, 4, 2, false, 0.0), (std::pair<double, double>{10, 30}));
}

bool same(Rgba a, Rgba b) { return pack(a) == pack(b); }

TEST(ColorScale, EndpointsMapToTheColormapEndsAndOutsideValuesClamp) {
  ColorScale s{2, 4, Colormap::viridis};
  EXPECT_TRUE(same(s.color(2), colormap(Colormap::viridis, 0)));
  EXPECT_TRUE(same(s.color(4), colormap(Colormap::viridis, 1)));
  EXPECT_TRUE(same(s.color(-100), s.color(2)));
  EXPECT_TRUE(same(s.color(100), s.color(4)));
  EXPECT_FALSE(same(s.color(2), s.color(4)));
  EXPECT_DOUBLE_EQ(s.fraction(3), 0.5);
  Rgba mid = colormap(Colormap::diverging, 0.5);
  EXPECT_GT(std::min({mid.r, mid.g, mid.b}), 230) << "the diverging map is white at zero";
  EXPECT_GT(colormap(Colormap::diverging, 0).b, colormap(Colormap::diverging, 0).r);
  EXPECT_GT(colormap(Colormap::diverging, 1).r, colormap(Colormap::diverging, 1).b);
}

TEST(ColorScale, NonFiniteValuesGetTheNanColour) {
  ColorScale s;
  s.nan_color = {1, 2, 3, 4};
  EXPECT_TRUE(same(s.color(NAN), s.nan_color));
  EXPECT_TRUE(same(s.color(INFINITY), s.nan_color));
  EXPECT_TRUE(same(s.color(-INFINITY), s.nan_color));
}

TEST(FitColorScale, GateIsUnitViridisEigenvalueSymmetricOtherKindsMinMax) {
  std::vector<float> v{0.2f, NAN, -0.5f, 0.8f, INFINITY};
  ColorScale gate = fit_color_scale(v.data(), int64_t(v.size()), "gate");
  EXPECT_EQ(gate.lo, 0);
  EXPECT_EQ(gate.hi, 1);
  EXPECT_EQ(gate.map, Colormap::viridis);
  ColorScale eig = fit_color_scale(v.data(), int64_t(v.size()), "eigenvalue");
  EXPECT_EQ(eig.lo, -1);
  EXPECT_EQ(eig.hi, 1);
  EXPECT_EQ(eig.map, Colormap::diverging);
  std::vector<float> big{0.3f, -1.75f};
  ColorScale eig_big = fit_color_scale(big.data(), 2, "eigenvalue");
  EXPECT_EQ(eig_big.lo, -1.75);
  EXPECT_EQ(eig_big.hi, 1.75);
  ColorScale norm = fit_color_scale(v.data(), int64_t(v.size()), "norm");
  EXPECT_FLOAT_EQ(norm.lo, -0.5f);
  EXPECT_FLOAT_EQ(norm.hi, 0.8f);
  EXPECT_EQ(norm.map, Colormap::viridis);
}

TEST(FitColorScale, DegenerateOrEmptyDataGivesAWideEnoughRange) {
  std::vector<float> flat{5, 5, 5}, zero{0, 0}, none{NAN};
  ColorScale f = fit_color_scale(flat.data(), 3, "norm");
  EXPECT_LT(f.lo, 5);
  EXPECT_GT(f.hi, 5);
  ColorScale z = fit_color_scale(zero.data(), 2, "value");
  EXPECT_LT(z.lo, z.hi);
  ColorScale n = fit_color_scale(none.data(), 1, "norm");
  EXPECT_EQ(n.lo, 0);
  EXPECT_EQ(n.hi, 1);
  EXPECT_LT(fit_color_scale(nullptr, 0, "value").lo, fit_color_scale(nullptr, 0, "value").hi);
}

TEST(DownsampleGrid, AveragesEachBucketExactly) {
  // [2, 4] -> [1, 2]: buckets are columns {0, 1} and {2, 3} over both rows.
  std::vector<float> g{1, 2, 3, 4,  //
                       5, 6, 7, 8};
  EXPECT_EQ(downsample_grid(g.data(), 2, 4, 1, 2), (std::vector<float>{3.5f, 5.5f}));
  // [3, 3] -> [2, 2]: row buckets {0}, {1, 2}; column buckets {0}, {1, 2}.
  std::vector<float> h{1, 2, 3,  //
                       4, 5, 6,  //
                       7, 8, 9};
  EXPECT_EQ(downsample_grid(h.data(), 3, 3, 2, 2), (std::vector<float>{1, 2.5f, 5.5f, 7}));
}

TEST(DownsampleGrid, IgnoresNonFiniteCellsAndGivesNanWhenNoneIsFinite) {
  std::vector<float> g{1, NAN,      NAN, NAN,  //
                       3, INFINITY, NAN, NAN};
  std::vector<float> out = downsample_grid(g.data(), 2, 4, 1, 2);
  EXPECT_FLOAT_EQ(out[0], 2);
  EXPECT_TRUE(std::isnan(out[1]));
}

TEST(DownsampleGrid, IsTheIdentityWhenSizesAreEqualAndRejectsUpsampling) {
  std::vector<float> g{1, 2, 3, 4, 5, 6};
  EXPECT_EQ(downsample_grid(g.data(), 2, 3, 2, 3), g);
  EXPECT_THROW(downsample_grid(g.data(), 2, 3, 3, 3), ShapeError);
  EXPECT_THROW(downsample_grid(g.data(), 2, 3, 2, 0), ShapeError);
}

TEST(Colors, CategoricalColoursDifferForTheFirstEightAndNegativeIsGrey) {
  std::set<uint32_t> seen;
  for (int32_t k = 0; k < 8; ++k) seen.insert(pack(categorical(k)));
  EXPECT_EQ(seen.size(), 8u);
  Rgba grey = categorical(-1);
  EXPECT_TRUE(grey.r == grey.g && grey.g == grey.b);
  EXPECT_EQ(pack(Rgba{1, 2, 3, 4}), 0x04030201u) << "IM_COL32 byte order";
  EXPECT_EQ(pack(Rgba{1, 2, 3, 4}), IM_COL32(1, 2, 3, 4));
}

// A headless ImGui: frames produce draw data without a renderer or a window.
class HeadlessImGui : public testing::Test {
 protected:
  void SetUp() override {
    context_ = ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.DisplaySize = ImVec2(1280, 900);
    io.IniFilename = nullptr;
    io.BackendFlags |= ImGuiBackendFlags_RendererHasVtxOffset;  // as the OpenGL3 backend does
    unsigned char* pixels = nullptr;
    int w = 0, h = 0;
    io.Fonts->GetTexDataAsRGBA32(&pixels, &w, &h);
  }
  void TearDown() override { ImGui::DestroyContext(context_); }

  // Runs `frames` frames of draw() and returns the last one's vertex count. The first frame of
  // a new window is hidden while ImGui measures it, hence more than one. balanced_ records
  // whether every frame's draw() closed what it opened; ImGui's recovery then closes the rest,
  // so an unbalanced widget fails the test instead of aborting on ImGui's assert.
  template <typename Draw>
  int render(Draw draw, int frames = 2) {
    balanced_ = true;
    for (int i = 0; i < frames; ++i) {
      ImGui::NewFrame();
      draw();
      balanced_ = balanced_ && balanced();
      ImGui::ErrorCheckEndFrameRecover(nullptr);
      ImGui::Render();
    }
    return ImGui::GetDrawData()->TotalVtxCount;
  }

  // Only ImGui's implicit "Debug" window is left open, with its ID stack untouched.
  static bool balanced() {
    ImGuiContext& g = *ImGui::GetCurrentContext();
    return g.CurrentWindowStack.Size == 1 && g.CurrentWindow->IsFallbackWindow &&
           g.CurrentWindow->IDStack.Size == 1;
  }

  static void fixed_window(const char* name, ImVec2 size) {
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(size);
    ImGui::Begin(name, nullptr, ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoSavedSettings);
  }

  ImGuiContext* context_ = nullptr;
  bool balanced_ = false;
};

TEST_F(HeadlessImGui, GalleryDrawsThousandsOfVerticesAndLeavesNoWindowOpen) {
  const GalleryData data = make_gallery_data();
  int vertices = render([&] { draw_widget_gallery(nullptr, data); });
  EXPECT_TRUE(balanced_);
  EXPECT_GT(vertices, 5000);
}

TEST_F(HeadlessImGui, CollapsedGalleryStillEndsItsWindow) {
  bool open = true;
  GalleryData data = make_gallery_data();
  render([&] {
    ImGui::SetNextWindowCollapsed(true);
    draw_widget_gallery(&open, data);
  });
  EXPECT_TRUE(balanced_);
  EXPECT_TRUE(open);
}

TEST_F(HeadlessImGui, HeatmapOf64By2048AggregatesToAtMostOneRectPerPixel) {
  constexpr int kRows = 64, kCols = 2048;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> values(kRows * kCols);
  for (float& v : values) v = u(rng);
  HeatmapData data{values.data(), kRows, kCols, "head", "t"};
  int vertices = render([&] {
    fixed_window("heatmap", ImVec2(400, 320));
    heatmap("##h", data, ColorScale{}, 256);
    ImGui::End();
  });
  // One rectangle (4 vertices) per pixel column of the 384-px content per row; one per cell
  // would be 4 * 131072.
  EXPECT_LT(vertices, 4 * 400 * kRows);
  EXPECT_GT(vertices, 4 * 200 * kRows) << "random cells should need most pixel columns";
}

TEST_F(HeadlessImGui, HeatmapMergesRunsOfEqualColourIntoOneRect) {
  std::vector<float> values(64 * 2048, 0.5f);
  HeatmapData data{values.data(), 64, 2048, "head", "t"};
  int vertices = render([&] {
    fixed_window("heatmap", ImVec2(400, 320));
    heatmap("##h", data, ColorScale{}, 256);
    ImGui::End();
  });
  EXPECT_LT(vertices, 4 * 64 + 2000);  // a rect per row, plus the frame and tick labels
}

TEST_F(HeadlessImGui, LinePlotOf100kPointsDecimatesToAboutTwoPointsPerPixelColumn) {
  PlotSeries s;
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 0.3);
  for (int i = 0; i < 100000; ++i) {
    s.x.push_back(i);
    s.y.push_back(std::sin(i * 1e-4) + noise(rng));
  }
  PlotOptions options;
  options.legend = false;
  int vertices = render([&] {
    fixed_window("plot", ImVec2(400, 260));
    line_plot("##p", {s}, options);
    ImGui::End();
  });
  // ~380 columns x 2 points x at most 4 vertices per thick anti-aliased point, plus the axes.
  EXPECT_LT(vertices, 400 * 2 * 4 + 3000);
}

TEST_F(HeadlessImGui, HeatmapReportsTheCellUnderTheMouse) {
  std::vector<float> values(4 * 10);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  HeatmapData data{values.data(), 4, 10, "head", "t"};
  ImVec2 grid_min;
  float grid_w = 0;
  int row = -1, col = -1;
  bool hovered = false;
  auto draw = [&] {
    fixed_window("heatmap", ImVec2(400, 200));
    grid_min = ImGui::GetCursorScreenPos();
    grid_w = ImGui::GetContentRegionAvail().x;
    hovered = heatmap("##h", data, ColorScale{0, 39}, 100, &row, &col);
    ImGui::End();
  };
  render(draw, 1);
  EXPECT_FALSE(hovered);
  EXPECT_EQ(row, -1);
  ImGui::GetIO().MousePos = ImVec2(grid_min.x + grid_w * 3.5f / 10, grid_min.y + 100 * 2.5f / 4);
  render(draw, 2);
  EXPECT_TRUE(hovered);
  EXPECT_EQ(row, 2);
  EXPECT_EQ(col, 3);
}

TEST_F(HeadlessImGui, LinePlotIsHoveredOnlyWhileTheMouseIsOverIt) {
  PlotSeries s;
  s.label = "loss";
  s.x = {0, 1, 2, 3};
  s.y = {4, NAN, 2, 1};
  PlotOptions options;
  bool hovered = true;
  auto draw = [&] {
    fixed_window("plot", ImVec2(400, 260));
    hovered = line_plot("##p", {s}, options);
    ImGui::End();
  };
  ImGui::GetIO().MousePos = ImVec2(200, 100);
  render(draw, 2);
  EXPECT_TRUE(hovered);
  ImGui::GetIO().MousePos = ImVec2(900, 800);
  render(draw, 2);
  EXPECT_FALSE(hovered);
}

}  // namespace
}  // namespace statelab::widgets
