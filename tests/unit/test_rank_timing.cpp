#include <gtest/gtest.h>

#include "core/rank_timing.h"

using namespace dtbench;

namespace {
// `iters` iterations of one group; rank `late` arrives `late_s` after the others (it waits that much
// less in the barrier) and takes `own_late_s` inside the op, the others `own_s`.
std::vector<RankSamples> group_of(int n, int iters, int late, double late_s, double own_s, double own_late_s) {
  std::vector<RankSamples> v(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < iters; ++i) {
      v[size_t(r)].wait_s.push_back(r == late ? 1e-6 : 1e-6 + late_s);
      v[size_t(r)].own_s.push_back(r == late ? own_late_s : own_s);
    }
  return v;
}
}  // namespace

TEST(RankTiming, LatenessFromBarrierWaitsNamesTheLateRank) {
  const auto t = rank_timing(group_of(4, 10, 2, 3e-3, 1e-3, 2e-3));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[2].arrived_last, 10);
  EXPECT_NEAR(t[2].late_p50_s, 3e-3, 1e-12);
  EXPECT_NEAR(t[0].late_p50_s, 0, 1e-12);
  EXPECT_NEAR(t[2].own_p50_s, 2e-3, 1e-12);
  EXPECT_NEAR(t[2].straggler_score, 5.0, 1e-9);  // (2 + 3) ms over the best rank's 1 ms
  EXPECT_NEAR(t[1].straggler_score, 1.0, 1e-9);
  EXPECT_EQ(clear_straggler(t), 2);
}

TEST(RankTiming, GroupsAreJudgedApart) {
  // Two communicators of two ranks: rank 1 is late in group 0, rank 2 in group 2 by less.
  auto a = group_of(2, 8, 1, 1e-3, 1e-4, 1e-4);
  auto b = group_of(2, 8, 0, 2e-4, 1e-4, 1e-4);
  for (auto& s : a) s.group = 0;
  for (auto& s : b) s.group = 2;
  std::vector<RankSamples> all = {a[0], a[1], b[0], b[1]};
  const auto t = rank_timing(all);
  EXPECT_EQ(t[1].arrived_last, 8);
  EXPECT_EQ(t[2].arrived_last, 8);
  EXPECT_EQ(t[3].arrived_last, 0);
  EXPECT_NEAR(t[2].late_p50_s, 2e-4, 1e-12);  // within its own group
  EXPECT_EQ(clear_straggler(t), 1);           // the later of the two
}

TEST(RankTiming, NoStragglerInNoiseOrTinyLateness) {
  // Arrival order changing from one iteration to the next: nobody is clearly last.
  std::vector<RankSamples> v(4);
  for (int i = 0; i < 12; ++i)
    for (int r = 0; r < 4; ++r) {
      v[size_t(r)].wait_s.push_back(r == i % 4 ? 1e-6 : 5e-4);
      v[size_t(r)].own_s.push_back(1e-3);
    }
  EXPECT_EQ(clear_straggler(rank_timing(v)), -1);
  // Always last, but by 5 us: below the absolute floor.
  EXPECT_EQ(clear_straggler(rank_timing(group_of(4, 10, 3, 5e-6, 1e-3, 1e-3))), -1);
  // Always last by 100 us, but the op takes 10 ms: below a quarter of it.
  EXPECT_EQ(clear_straggler(rank_timing(group_of(4, 10, 3, 1e-4, 1e-2, 1e-2))), -1);
  // Too few iterations to tell.
  EXPECT_EQ(clear_straggler(rank_timing(group_of(4, 3, 3, 1e-2, 1e-3, 1e-3))), -1);
  // One rank: nothing to compare.
  EXPECT_EQ(clear_straggler(rank_timing(group_of(1, 10, 0, 1e-2, 1e-3, 1e-3))), -1);
}
