#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "core/sweep_eta.h"

using namespace dtbench;

// A doubling sweep: after the first half of the steps by count, most of the bytes are still ahead,
// so the estimate is far larger than the time spent.
TEST(SweepEta, WeighsStepsByBytes) {
  std::vector<double> w;
  for (int e = 0; e < 10; ++e) w.push_back(double(1u << e));  // 1 .. 512, total 1023
  SweepEta eta(w, 0);
  // 5 steps (1+2+4+8+16 = 31 units) took 31 s: 1 s per unit, 992 units left.
  EXPECT_DOUBLE_EQ(eta.step_done(4, 31), 992);
  EXPECT_EQ(eta.text(), "5/10, ETA 16m32s");
  EXPECT_DOUBLE_EQ(eta.step_done(9, 1023), 0);
  EXPECT_EQ(eta.text(), "10/10, ETA 0s");
  // A latency share per step makes equal small steps count.
  SweepEta flat({0, 0, 0, 0}, 1);
  EXPECT_DOUBLE_EQ(flat.step_done(0, 2), 6);
}

TEST(SweepEta, WarnsOncePastTheDeadline) {
  SweepEta eta(std::vector<double>(10, 1), 0);
  eta.step_done(1, 10);  // 5 s per step, 40 s left
  EXPECT_FALSE(eta.deadline_warning(5).has_value()) << "not before 3 steps";
  eta.step_done(2, 15);  // 35 s left: ends at 50 s
  EXPECT_FALSE(eta.deadline_warning(60).has_value()) << "ends before the deadline";
  auto w = eta.deadline_warning(30);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->find("about 35s more (estimated from 3 of 10 steps) but the job ends in 15s"), std::string::npos) << *w;
  eta.step_done(3, 20);
  EXPECT_FALSE(eta.deadline_warning(30).has_value()) << "said once";
}

TEST(SweepEta, DurationsAndDeadlineFromEnvironment) {
  EXPECT_EQ(format_duration(0.4), "0s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(200), "3m20s");
  EXPECT_EQ(format_duration(7500), "2h05m");
  EXPECT_EQ(format_duration(-1), "?");
  unsetenv("DTBENCH_DEADLINE");
  EXPECT_FALSE(seconds_to_deadline().has_value());
  setenv("DTBENCH_DEADLINE", "soon", 1);
  EXPECT_FALSE(seconds_to_deadline().has_value());
  setenv("DTBENCH_DEADLINE", std::to_string(std::time(nullptr) + 600).c_str(), 1);
  ASSERT_TRUE(seconds_to_deadline().has_value());
  EXPECT_NEAR(*seconds_to_deadline(), 600, 5);
  unsetenv("DTBENCH_DEADLINE");
}
