#include <gtest/gtest.h>

#include "../../tools/report/svg_plot.h"

using namespace dtbench::report;

// Legend names wrap to the legend column instead of being cut: every character is kept when the
// name fits in the lines, each line within the width, broken at a separator where one is near.
TEST(SvgPlot, LegendNamesWrapToTheColumn) {
  EXPECT_EQ(legend_lines("A out-of-place", 24, 3), std::vector<std::string>{"A out-of-place"});
  const std::string ab = "results/4242/B/rep3 out-of-place";
  const auto lines = legend_lines(ab, 24, 3);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "results/4242/B/rep3");
  EXPECT_EQ(lines[1], "out-of-place");
  std::string joined;
  const std::string nccl = "nccl-2.21.5+cuda12.4/results/job/A in-place";
  for (auto& l : legend_lines(nccl, 24, 3)) {
    EXPECT_LE(l.size(), 24u) << l;
    joined += l;
  }
  EXPECT_EQ(joined, nccl);  // broken after the '/', nothing lost
  // A word longer than the line is cut; more than max_lines keeps the end (runs differ there).
  const auto cut = legend_lines(std::string(30, 'x') + "_run7", 10, 2);
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[0], std::string(10, 'x'));
  EXPECT_EQ(cut[1].substr(cut[1].size() - 5), "_run7");
}
