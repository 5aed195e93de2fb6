// dtbench-p2p's schedules and link verdicts (src/p2p/link_schedule.h).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "p2p/link_schedule.h"

using namespace dtbench;

namespace {

std::vector<std::vector<int>> one_node(int n) {
  std::vector<int> ranks;
  for (int r = 0; r < n; ++r) ranks.push_back(r);
  return {ranks};
}

// No rank sends twice or receives twice to/from one peer in a round, and none is in two pairs
// of a pairs round.
void expect_round_shape(const LinkRound& round) {
  std::set<std::pair<int, int>> seen;
  for (const Link& l : round) {
    EXPECT_NE(l.src, l.dst);
    EXPECT_TRUE(seen.insert({l.src, l.dst}).second) << l.src << "->" << l.dst << " twice in a round";
  }
}

}  // namespace

TEST(CircleRounds, EveryPairOnceNoEntityTwicePerRound) {
  for (int n = 1; n <= 9; ++n) {
    auto rounds = circle_rounds(n);
    EXPECT_EQ(rounds.size(), size_t(n < 2 ? 0 : n % 2 ? n : n - 1)) << n;
    std::set<std::pair<int, int>> pairs;
    for (const auto& round : rounds) {
      std::set<int> busy;
      EXPECT_EQ(round.size(), size_t(n / 2)) << n;
      for (auto [a, b] : round) {
        EXPECT_LT(a, b);
        EXPECT_TRUE(busy.insert(a).second && busy.insert(b).second) << "n=" << n;
        EXPECT_TRUE(pairs.insert({a, b}).second) << a << "," << b << " twice";
      }
    }
    EXPECT_EQ(pairs.size(), size_t(n * (n - 1) / 2)) << n;
  }
}

TEST(LinkSchedule, PairsUniMeasuresEachDirectedLinkAlone) {
  for (int n = 2; n <= 7; ++n) {
    LinkSchedule s = make_link_schedule(LinkPattern::pairs, LinkDirection::uni, false, one_node(n), 0);
    std::set<std::pair<int, int>> links;
    for (const LinkRound& round : s.rounds) {
      expect_round_shape(round);
      std::set<int> senders, receivers;
      for (const Link& l : round) {
        EXPECT_TRUE(senders.insert(l.src).second);
        EXPECT_TRUE(receivers.insert(l.dst).second);
        // uni: nobody sends and receives in the same round
        EXPECT_EQ(receivers.count(l.src) + senders.count(l.dst), 0u);
        links.insert({l.src, l.dst});
      }
    }
    EXPECT_EQ(links.size(), size_t(n * (n - 1)));
    EXPECT_EQ(s.rounds.size(), size_t(2 * (n % 2 ? n : n - 1)));
  }
}

TEST(LinkSchedule, NodePairsAreRailAligned) {
  // Three nodes of two ranks, interleaved rank numbers as a cyclic placement gives.
  std::vector<std::vector<int>> nodes = {{0, 3}, {1, 4}, {2, 5}};
  LinkSchedule s = make_link_schedule(LinkPattern::pairs, LinkDirection::bi, true, nodes, 0);
  EXPECT_EQ(s.rounds.size(), 3u);  // odd: 3 rounds, one node sits out each
  std::set<std::pair<int, int>> links;
  for (const LinkRound& round : s.rounds) {
    expect_round_shape(round);
    EXPECT_EQ(round.size(), 4u);  // one node pair, both ways, two rails
    for (const Link& l : round) {
      EXPECT_EQ(l.src / 3, l.dst / 3) << "rail: same local rank";  // local rank = rank / 3 here
      links.insert({l.src, l.dst});
    }
  }
  EXPECT_EQ(links.size(), 12u);
  EXPECT_THROW(make_link_schedule(LinkPattern::pairs, LinkDirection::uni, true, {{0, 1}, {2}}, 0), InputError);
  EXPECT_THROW(make_link_schedule(LinkPattern::pairs, LinkDirection::uni, true, {{0, 1}}, 0), InputError);
}

TEST(LinkSchedule, RingAndOneToAll) {
  LinkSchedule ring = make_link_schedule(LinkPattern::ring, LinkDirection::bi, false, one_node(4), 0);
  ASSERT_EQ(ring.rounds.size(), 1u);
  EXPECT_EQ(ring.rounds[0].size(), 8u);
  expect_round_shape(ring.rounds[0]);
  LinkSchedule ring2 = make_link_schedule(LinkPattern::ring, LinkDirection::bi, false, one_node(2), 0);
  EXPECT_EQ(ring2.rounds[0].size(), 2u);  // both neighbours are the same rank
  expect_round_shape(ring2.rounds[0]);
  LinkSchedule one = make_link_schedule(LinkPattern::one_to_all, LinkDirection::uni, false, one_node(5), 3);
  EXPECT_EQ(one.rounds.size(), 8u);
  for (const LinkRound& round : one.rounds) {
    ASSERT_EQ(round.size(), 1u);
    EXPECT_TRUE(round[0].src == 3 || round[0].dst == 3);
  }
  EXPECT_THROW(make_link_schedule(LinkPattern::one_to_all, LinkDirection::uni, false, one_node(4), 4), InputError);
}

TEST(PayloadSeed, DependsOnSeedAndDestination) {
  std::set<uint64_t> seeds;
  for (uint64_t seed = 0; seed < 8; ++seed)
    for (int dst = 0; dst < 64; ++dst) seeds.insert(payload_seed(seed, dst));
  EXPECT_EQ(seeds.size(), 8u * 64u);
}

TEST(JudgeLinks, SlowEndIsNamedNotItsPeers) {
  // Four ranks, every ordered pair; rank 2's links at 1/8 of the rest: half the links are slow.
  std::vector<std::pair<int, int>> ends;
  std::vector<double> gbps;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b)
      if (a != b) ends.push_back({a, b}), gbps.push_back(a == 2 || b == 2 ? 1.0 : 8.0);
  LinkVerdicts v = judge_links(ends, gbps, 0.5);
  EXPECT_DOUBLE_EQ(v.median_gbps, 8.0);
  ASSERT_EQ(v.slow_ends.size(), 1u);
  EXPECT_EQ(v.slow_ends[0].entity, 2);
  EXPECT_EQ(v.slow_ends[0].slow_links, 6);
  EXPECT_EQ(v.slow_ends[0].links, 6);
  EXPECT_TRUE(v.slow_links.empty());
}

TEST(JudgeLinks, SlowLinkWhoseEndsAreFineElsewhere) {
  std::vector<std::pair<int, int>> ends;
  std::vector<double> gbps;
  for (int a = 0; a < 5; ++a)
    for (int b = 0; b < 5; ++b)
      if (a != b) ends.push_back({a, b}), gbps.push_back(a == 1 && b == 3 ? 0.5 : 10.0);
  LinkVerdicts v = judge_links(ends, gbps, 0.5);
  EXPECT_TRUE(v.slow_ends.empty());
  ASSERT_EQ(v.slow_links.size(), 1u);
  EXPECT_EQ(ends[v.slow_links[0]], std::make_pair(1, 3));
  // Nothing slow: no verdict at all.
  std::vector<double> even(ends.size(), 10.0);
  LinkVerdicts ok = judge_links(ends, even, 0.5);
  EXPECT_TRUE(ok.slow_ends.empty() && ok.slow_links.empty());
}
