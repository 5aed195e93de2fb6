#include "ep/moe_routing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

using namespace dtbench;

namespace {

RoutingConfig make_config(int tokens, int experts, int top_k, int ep, const std::string& dist = "uniform",
                          uint64_t seed = 7) {
  RoutingConfig c;
  c.seed = seed;
  c.tokens_per_rank = tokens;
  c.num_experts = experts;
  c.top_k = top_k;
  c.ep_size = ep;
  c.distribution = parse_routing_distribution(dist, "--routing");
  return c;
}

// A spread of shapes: even/uneven expert splits, E < EP, top_k up to E, both distributions.
std::vector<RoutingConfig> configs() {
  std::vector<RoutingConfig> out;
  for (const std::string dist : {"uniform", "zipf:1.2", "zipf:0"})
    for (int experts : {1, 3, 8, 10, 64})
      for (int top_k : {1, 2, 3, 8})
        for (int ep : {1, 2, 4, 5})
          if (top_k <= experts) out.push_back(make_config(97, experts, top_k, ep, dist));
  return out;
}

std::string describe(const RoutingConfig& c) {
  return "E=" + std::to_string(c.num_experts) + " k=" + std::to_string(c.top_k) + " EP=" + std::to_string(c.ep_size) +
         (c.distribution.kind == RoutingDistribution::Kind::zipf ? " zipf:" + std::to_string(c.distribution.zipf_s)
                                                                  : " uniform");
}

}  // namespace

TEST(RoutingDistribution, Parse) {
  EXPECT_EQ(parse_routing_distribution("uniform", "--routing").kind, RoutingDistribution::Kind::uniform);
  const RoutingDistribution z = parse_routing_distribution("zipf:1.5", "--routing");
  EXPECT_EQ(z.kind, RoutingDistribution::Kind::zipf);
  EXPECT_EQ(z.zipf_s, 1.5);
  EXPECT_EQ(parse_routing_distribution("zipf:0", "--routing").zipf_s, 0);
  for (const std::string bad : {"zipf:", "zipf:-1", "zipf:abc", "zipf:1x", "zipf:nan", "normal", ""}) {
    try {
      parse_routing_distribution(bad, "--routing");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--routing: ", 0), 0u) << e.what();
    }
  }
}

TEST(MoeRouting, RejectsBadSizes) {
  EXPECT_THROW(MoeRouting(make_config(8, 2, 3, 1)), InputError);  // top_k > E
  EXPECT_THROW(MoeRouting(make_config(8, 0, 1, 1)), InputError);
  EXPECT_THROW(MoeRouting(make_config(8, 4, 0, 1)), InputError);
  EXPECT_THROW(MoeRouting(make_config(8, 4, 1, 0)), InputError);
  EXPECT_THROW(MoeRouting(make_config(-1, 4, 1, 1)), InputError);
  try {
    MoeRouting r(make_config(8, 2, 3, 1));
    ADD_FAILURE() << "top_k > num_experts accepted";
  } catch (const ValueError& e) {
    EXPECT_EQ(e.fields, "top_k");
    EXPECT_EQ(e.detail, "3 distinct experts per token but only 2 experts");
  }
}

// Experts are contiguous per EP rank; the first E % EP ranks own one more.
TEST(MoeRouting, UnevenExpertPlacement) {
  struct Case {
    int experts, ep;
    std::vector<int> local, first;
  };
  const Case cases[] = {
      {10, 4, {3, 3, 2, 2}, {0, 3, 6, 8}},
      {8, 4, {2, 2, 2, 2}, {0, 2, 4, 6}},
      {3, 4, {1, 1, 1, 0}, {0, 1, 2, 3}},
      {7, 1, {7}, {0}},
  };
  for (const Case& c : cases) {
    MoeRouting r(make_config(1, c.experts, 1, c.ep));
    int total = 0;
    for (int d = 0; d < c.ep; ++d) {
      EXPECT_EQ(r.num_local_experts(d), c.local[d]) << c.experts << "/" << c.ep << " rank " << d;
      EXPECT_EQ(r.first_expert(d), c.first[d]) << c.experts << "/" << c.ep << " rank " << d;
      for (int e = c.first[d]; e < c.first[d] + c.local[d]; ++e) EXPECT_EQ(r.expert_owner(e), d);
      total += c.local[d];
    }
    EXPECT_EQ(total, c.experts);
  }
}

// Routing is a pure function of (seed, rank, token): every rank recomputes any rank's choices, so a
// change would make ranks disagree with saved results. Pinned values (seed 7, 10 experts, top 3,
// EP 5), in the order experts_of returns them.
TEST(MoeRouting, Deterministic) {
  using Picks = std::vector<std::vector<int>>;
  const struct {
    const char* dist;
    int rank;
    Picks first_tokens;
  } golden[] = {
      {"uniform", 0, {{6, 3, 9}, {2, 9, 4}, {1, 7, 5}, {6, 2, 3}}},
      {"uniform", 3, {{9, 1, 2}, {0, 7, 9}, {8, 4, 3}, {1, 9, 6}}},
      {"zipf:1.2", 0, {{2, 0, 1}, {2, 6, 3}, {3, 5, 6}, {7, 3, 0}}},
      {"zipf:1.2", 3, {{0, 6, 3}, {0, 9, 4}, {0, 2, 1}, {6, 5, 0}}},
  };
  for (const auto& g : golden) {
    const MoeRouting r(make_config(8, 10, 3, 5, g.dist, 7));
    Picks got;
    for (int t = 0; t < 4; ++t) got.push_back(r.experts_of(g.rank, t));
    EXPECT_EQ(got, g.first_tokens) << g.dist << " rank " << g.rank;
  }
}

TEST(MoeRouting, DependsOnSeedRankAndToken) {
  MoeRouting r(make_config(256, 64, 4, 4));
  MoeRouting other_seed(make_config(256, 64, 4, 4, "uniform", 8));
  int differ_seed = 0, differ_rank = 0, differ_token = 0;
  for (int t = 0; t < 256; ++t) {
    differ_seed += r.experts_of(0, t) != other_seed.experts_of(0, t);
    differ_rank += r.experts_of(0, t) != r.experts_of(1, t);
    differ_token += r.experts_of(0, t) != r.experts_of(0, (t + 1) % 256);
  }
  // Two independent draws of 4 from 64 coincide with probability < 1e-6.
  EXPECT_GE(differ_seed, 250);
  EXPECT_GE(differ_rank, 250);
  EXPECT_GE(differ_token, 250);
}

TEST(MoeRouting, TopKDistinctExpertsInRange) {
  for (const RoutingConfig& c : configs()) {
    SCOPED_TRACE(describe(c));
    MoeRouting r(c);
    for (int t = 0; t < c.tokens_per_rank; ++t) {
      const std::vector<int> experts = r.experts_of(2, t);
      ASSERT_EQ(int(experts.size()), c.top_k);
      EXPECT_EQ(int(std::set<int>(experts.begin(), experts.end()).size()), c.top_k);
      for (int e : experts) EXPECT_TRUE(e >= 0 && e < c.num_experts) << e;
    }
  }
}

TEST(MoeRouting, SendCountsAndDispatchOrder) {
  for (const RoutingConfig& c : configs()) {
    SCOPED_TRACE(describe(c));
    MoeRouting r(c);
    const int rank = 1;
    const std::vector<int> counts = r.send_counts(rank);
    ASSERT_EQ(int(counts.size()), c.ep_size);
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), c.tokens_per_rank * c.top_k);
    for (int d = 0; d < c.ep_size; ++d) {
      if (r.num_local_experts(d) == 0) {
        EXPECT_EQ(counts[d], 0);
      }
    }

    const std::vector<TokenSlot> order = r.dispatch_order(rank);
    ASSERT_EQ(int(order.size()), c.tokens_per_rank * c.top_k);
    std::vector<int> seen(order.size(), 0);
    for (size_t i = 0; i < order.size(); ++i) {
      const TokenSlot& row = order[i];
      EXPECT_EQ(row.src_rank, rank);
      EXPECT_EQ(row.expert, r.experts_of(rank, row.token)[row.slot]);
      ++seen[size_t(row.token) * c.top_k + row.slot];
      if (i > 0) {  // sorted by expert, then token
        const TokenSlot& prev = order[i - 1];
        EXPECT_TRUE(prev.expert < row.expert || (prev.expert == row.expert && prev.token < row.token));
      }
    }
    EXPECT_EQ(seen, std::vector<int>(order.size(), 1));

    // The chunk for EP rank d starts after the chunks for ranks < d and is what d receives.
    size_t offset = 0;
    for (int d = 0; d < c.ep_size; ++d) {
      const std::vector<TokenSlot> received = r.received_from(rank, d);
      ASSERT_EQ(int(received.size()), counts[d]);
      for (size_t i = 0; i < received.size(); ++i) {
        EXPECT_EQ(r.expert_owner(received[i].expert), d);
        EXPECT_EQ(r.token_id(rank, received[i].token, received[i].slot),
                  r.token_id(rank, order[offset + i].token, order[offset + i].slot));
      }
      offset += received.size();
    }
  }
}

TEST(MoeRouting, AllExpertsWhenTopKIsE) {
  for (const std::string dist : {"uniform", "zipf:3"}) {
    MoeRouting r(make_config(50, 6, 6, 2, dist));
    for (int t = 0; t < 50; ++t) {
      std::vector<int> experts = r.experts_of(0, t);
      std::sort(experts.begin(), experts.end());
      EXPECT_EQ(experts, (std::vector<int>{0, 1, 2, 3, 4, 5})) << dist;
    }
  }
}

TEST(MoeRouting, UniformIsBalancedZipfIsSkewed) {
  const std::vector<int> ep_group = {0, 1, 2, 3};
  MoeRouting uniform(make_config(4096, 16, 2, 4, "uniform"));
  const RoutingLoad flat = uniform.load(ep_group);
  EXPECT_EQ(std::accumulate(flat.per_ep_rank.begin(), flat.per_ep_rank.end(), uint64_t(0)), 4u * 4096 * 2);
  EXPECT_EQ(flat.mean_per_ep_rank, 4096.0 * 2);
  EXPECT_LT(flat.imbalance, 1.05);  // 8192 per rank, sd ~ 80
  for (uint64_t n : flat.per_expert) EXPECT_NEAR(double(n), 2048.0, 250.0);

  MoeRouting zipf(make_config(4096, 16, 2, 4, "zipf:1.5"));
  const RoutingLoad hot = zipf.load(ep_group);
  EXPECT_EQ(hot.mean_per_ep_rank, 4096.0 * 2);
  EXPECT_GT(hot.imbalance, 1.5);
  EXPECT_EQ(hot.max_per_ep_rank, hot.per_ep_rank[0]);  // low expert ids live on EP rank 0
  EXPECT_GT(hot.per_expert[0], 3 * hot.per_expert[15]);
  for (int d = 1; d < 4; ++d) EXPECT_GT(hot.per_ep_rank[d - 1], hot.per_ep_rank[d]);

  // The first draw of zipf:s follows weight (e+1)^-s: with k = 1, expert 0 vs 1 is about 2^s.
  MoeRouting top1(make_config(20000, 8, 1, 1, "zipf:1"));
  const RoutingLoad one = top1.load({0});
  EXPECT_NEAR(double(one.per_expert[0]) / one.per_expert[1], 2.0, 0.15);
}

TEST(MoeRouting, UnevenSplitLoadsFollowExpertCounts) {
  // 10 experts over 4 ranks (3,3,2,2): uniform routing loads ranks in that ratio.
  MoeRouting r(make_config(8192, 10, 1, 4));
  const RoutingLoad load = r.load({0, 1});
  for (int d = 0; d < 4; ++d) EXPECT_NEAR(double(load.per_ep_rank[d]) / (2 * 8192), r.num_local_experts(d) / 10.0, 0.02);
  EXPECT_NEAR(load.imbalance, 1.2, 0.05);  // max 3/10 over mean 1/4
}

TEST(MoeRouting, EmptyLoad) {
  MoeRouting r(make_config(0, 4, 2, 2));
  const RoutingLoad load = r.load({0, 1});
  EXPECT_EQ(load.max_per_ep_rank, 0u);
  EXPECT_EQ(load.imbalance, 0);
  EXPECT_EQ(r.send_counts(0), (std::vector<int>{0, 0}));
  EXPECT_TRUE(r.dispatch_order(0).empty());
}

TEST(MoeRouting, TokenIdsAreUniqueAndDecode) {
  MoeRouting r(make_config(13, 8, 3, 2, "zipf:1"));
  std::set<uint64_t> ids;
  for (int src = 0; src < 5; ++src)
    for (int t = 0; t < 13; ++t)
      for (int s = 0; s < 3; ++s) {
        const uint64_t id = r.token_id(src, t, s);
        EXPECT_EQ(id, (uint64_t(src) * 13 + t) * 3 + s);
        ids.insert(id);
        const TokenSlot back = r.decode_token_id(id);
        EXPECT_EQ(back.src_rank, src);
        EXPECT_EQ(back.token, t);
        EXPECT_EQ(back.slot, s);
        EXPECT_EQ(back.expert, r.experts_of(src, t)[s]);
      }
  EXPECT_EQ(ids.size(), 5u * 13 * 3);
  EXPECT_THROW(r.token_id(0, 13, 0), std::out_of_range);
  EXPECT_THROW(r.token_id(0, 0, 3), std::out_of_range);
}

// A receiver's check: every row it expects decodes to a token routed to one of its experts, and
// the payload identifies the row exactly.
TEST(MoeRouting, PayloadRowsCarryTheirId) {
  MoeRouting r(make_config(64, 8, 2, 4, "uniform"));
  const int elements = 12;
  std::set<std::vector<float>> distinct_rows;
  for (int src = 0; src < 4; ++src)
    for (int dest = 0; dest < 4; ++dest)
      for (const TokenSlot& row : r.received_from(src, dest)) {
        const uint64_t id = r.token_id(row.src_rank, row.token, row.slot);
        std::vector<float> values(elements);
        for (int h = 0; h < elements; ++h) {
          const int v = payload_value(id, h);
          ASSERT_TRUE(v >= 0 && v <= 255);
          values[h] = float(v);
        }
        ASSERT_EQ(payload_row_id(values.data(), elements), int64_t(id));
        const TokenSlot decoded = r.decode_token_id(uint64_t(payload_row_id(values.data(), elements)));
        EXPECT_EQ(decoded.src_rank, src);
        EXPECT_EQ(r.expert_owner(decoded.expert), dest);
        distinct_rows.insert(values);
      }
  EXPECT_EQ(distinct_rows.size(), 4u * 64 * 2);

  // Elements of one row differ even where the id's bytes are equal (zero high bytes).
  EXPECT_NE(payload_value(0, 4), payload_value(0, 5));
  const float not_payload[8] = {1, 2, 3.5f, 0, 0, 0, 0, 0};
  EXPECT_EQ(payload_row_id(not_payload, 8), -1);
  const float out_of_range[2] = {256, 0};
  EXPECT_EQ(payload_row_id(out_of_range, 2), -1);
}
