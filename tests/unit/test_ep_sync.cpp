#include "ep/ep_sync.h"
#include "ep/token_dispatch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

using namespace dtbench;

namespace {

ParallelLayout make_layout(int world, int tp, int pp, int ep, int etp = 0, int cp = 1) {
  ParallelSizes s;
  s.world = world, s.tp = tp, s.cp = cp, s.pp = pp, s.ep = ep, s.etp = etp;
  return ParallelLayout(s);
}

MoeRouting make_routing(int tokens, int experts, int top_k, int ep, uint64_t seed = 3) {
  RoutingConfig c;
  c.seed = seed, c.tokens_per_rank = tokens, c.num_experts = experts, c.top_k = top_k, c.ep_size = ep;
  return MoeRouting(c);
}

template <class F>
std::string thrown_message(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

const GradScaleMode kModes[] = {GradScaleMode::default_sum, GradScaleMode::average_in_collective,
                                GradScaleMode::per_token_loss};

}  // namespace

// The planner names its fields; the suite turns them into flags (with_flag_names).
std::string field_of(const MoeModelShape& s, const ParallelLayout& l) {
  try {
    check_moe_shape(s, l);
  } catch (const ValueError& e) {
    return e.fields;
  }
  return "";
}

TEST(EpModel, ShapeErrorsNameTheField) {
  const ParallelLayout l = make_layout(8, 2, 1, 2, 1);
  MoeModelShape s;
  s.hidden = 63;
  EXPECT_EQ(field_of(s, l), "hidden");
  EXPECT_NE(thrown_message([&] { check_moe_shape(s, l); }).find("63 is not divisible by TP = 2"), std::string::npos);
  s = MoeModelShape{};
  s.vocab = 255;
  EXPECT_EQ(field_of(s, l), "vocab");
  s = MoeModelShape{};
  s.experts = 0;
  EXPECT_EQ(field_of(s, l), "experts");
  const ParallelLayout etp4 = make_layout(8, 1, 1, 1, 4);
  s = MoeModelShape{};
  s.ffn = 6;
  EXPECT_EQ(field_of(s, etp4), "ffn");
  EXPECT_NO_THROW(check_moe_shape(MoeModelShape{}, l));
}

TEST(EpModel, LayersSplitOverStages) {
  EXPECT_EQ(first_moe_layer(5, 2, 0), 0);
  EXPECT_EQ(first_moe_layer(5, 2, 1), 3);
  EXPECT_EQ(first_moe_layer(5, 2, 2), 5);
  EXPECT_EQ(first_moe_layer(2, 4, 2), 2);  // fewer layers than stages: later stages hold none
  EXPECT_EQ(first_moe_layer(2, 4, 3), 2);
}

TEST(EpModel, StageTensorsFollowTheLayout) {
  // world 8 = TP 2 x PP 2 x DP 2; experts: ETP 1 x EP 2 x EDP 2 x PP 2; 5 experts -> 3 + 2.
  const ParallelLayout l = make_layout(8, 2, 2, 2, 1);
  const MoeRouting routing = make_routing(4, 5, 2, 2);
  MoeModelShape s;
  s.moe_layers = 3;
  for (int rank = 0; rank < 8; ++rank) {
    const ModelSpec m = build_moe_stage_model(s, l, routing, rank, DType::f32);
    const int stage = l.dense_coords(rank).pp, ep = l.expert_coords(rank).ep;
    int experts = 0, embeddings = 0, layers_seen = 0;
    std::set<int> layers;
    for (const TensorSpec& t : m.tensors) {
      if (t.shared_embedding) {
        ++embeddings;
        EXPECT_EQ(t.shape, (std::vector<int64_t>{s.vocab / 2, s.hidden}));
      }
      if (t.expert) {
        ++experts;
        const bool fc1 = t.name.find("fc1") != std::string::npos;
        EXPECT_EQ(t.shape, fc1 ? (std::vector<int64_t>{2 * s.ffn, s.hidden}) : (std::vector<int64_t>{s.hidden, s.ffn}));
      }
      if (t.name.find("linear_qkv") != std::string::npos) {
        EXPECT_EQ(t.shape[0], 3 * s.hidden / 2);
      }
      if (t.layer >= 0) layers.insert(t.layer);
    }
    layers_seen = int(layers.size());
    EXPECT_EQ(layers_seen, stage == 0 ? 2 : 1) << rank;
    EXPECT_EQ(experts, 2 * layers_seen * (ep == 0 ? 3 : 2)) << rank;
    EXPECT_EQ(embeddings, 1) << rank;  // word embedding on stage 0, output layer on stage 1
    EXPECT_EQ(m.tensors.front().name == "embedding.word_embeddings.weight", stage == 0);
    EXPECT_EQ(m.tensors.back().name == "output_layer.weight", stage == 1);
  }
  // PP = 1: one stage holds the embedding once; E < EP: some EP ranks hold no experts.
  const ParallelLayout one = make_layout(4, 1, 1, 4);
  const MoeRouting few = make_routing(4, 2, 1, 4);
  const ModelSpec m = build_moe_stage_model(s, one, few, 3, DType::bf16);
  int shared = 0, experts = 0;
  for (const TensorSpec& t : m.tensors) shared += t.shared_embedding, experts += t.expert;
  EXPECT_EQ(shared, 1);
  EXPECT_EQ(experts, 0);
}

TEST(EpSync, ExpectedMatchesBruteForce) {
  // Every layout of 8 ranks, both groups, every scaling: the closed form equals the sum of the
  // pre-scaled contributions computed one by one (exact with power-of-two sizes).
  const uint64_t seed = 11;
  for (int tp : {1, 2})
    for (int ep : {1, 2, 4})
      for (int etp : {1, 2}) {
        if (8 % (ep * etp) != 0) continue;
        const ParallelLayout l = make_layout(8, tp, 1, ep, etp);
        for (bool expert : {false, true})
          for (GradScaleMode mode : kModes) {
            const GradScaling s = grad_scaling(mode, expert, l.dp_cp(), l.edp());
            for (int rank = 0; rank < 8; ++rank) {
              const std::vector<int> members = l.group(expert ? GroupKind::expert_dp : GroupKind::dp_cp, rank);
              const GroupSum g = group_sum_of(members);
              for (uint64_t i = 0; i < 50; ++i) {
                double sum = 0;
                for (int r : members) sum += float(raw_grad(seed, r, i, l.dp_cp())) * float(s.pre_scale);
                const double want = s.op == GradReduceOp::avg ? sum / double(members.size()) : sum;
                EXPECT_EQ(expected_synced_grad(s, seed, i, g, l.dp_cp(), rank, true), want);
                EXPECT_EQ(expected_synced_grad(s, seed, i, g, l.dp_cp(), rank, false),
                          float(raw_grad(seed, rank, i, l.dp_cp())) * float(s.pre_scale));
              }
              EXPECT_EQ(sync_tolerance_ulps(s, g.size, DType::f32), 0.0);
            }
          }
      }
  // Non-power-of-two groups get a tolerance; bf16 always does.
  const GradScaling third = grad_scaling(GradScaleMode::default_sum, false, 3, 3);
  EXPECT_GT(sync_tolerance_ulps(third, 3, DType::f32), 0.0);
  const GradScaling half = grad_scaling(GradScaleMode::default_sum, false, 2, 2);
  EXPECT_GT(sync_tolerance_ulps(half, 2, DType::bf16), 0.0);
}

TEST(EpSync, B3NumbersEndAtOne) {
  // Megatron's test_grad_sync at TP = 1: dense grads 1, expert grads EP*ETP; after the sync both
  // are 1 in the default and the average-in-collective mode.
  for (int ep : {1, 2})
    for (int etp : {1, 2}) {
      const ParallelLayout l = make_layout(8, 1, 1, ep, etp);
      for (GradScaleMode mode : {GradScaleMode::default_sum, GradScaleMode::average_in_collective}) {
        const GradScaling d = grad_scaling(mode, false, l.dp_cp(), l.edp());
        const GradScaling e = grad_scaling(mode, true, l.dp_cp(), l.edp());
        EXPECT_EQ(reduced_grad(d, 1.0 * l.dp_cp(), l.dp_cp()), 1.0);
        EXPECT_EQ(reduced_grad(e, double(ep * etp) * l.edp(), l.edp()), 1.0);
      }
      // DistOpt, default mode, element 0 on a non-zero intra rank: only pre-scaled (1/DPCP, 1/EDP).
      const GradScaling e = grad_scaling(GradScaleMode::default_sum, true, l.dp_cp(), l.edp());
      EXPECT_EQ(double(ep * etp) * e.pre_scale, 1.0 / l.edp());
    }
}

TEST(EpSync, MissingScaleNamesTheRank) {
  const ParallelLayout l = make_layout(8, 1, 1, 2);
  const uint64_t seed = 5;
  for (bool expert : {false, true})
    for (GradScaleMode mode : {GradScaleMode::default_sum, GradScaleMode::average_in_collective}) {
      const GradScaling s = grad_scaling(mode, expert, l.dp_cp(), l.edp());
      if (s.pre_scale == 1.0) continue;  // nothing to miss
      const std::vector<int> members = l.group(expert ? GroupKind::expert_dp : GroupKind::dp_cp, 3);
      for (int culprit : members)
        for (uint64_t i = 0; i < 20; ++i) {
          double sum = 0;
          for (int r : members) sum += raw_grad(seed, r, i, l.dp_cp()) * (r == culprit ? 1.0 : s.pre_scale);
          const double observed = s.op == GradReduceOp::avg ? sum / members.size() : sum;
          const double expected = expected_synced_grad(s, seed, i, group_sum_of(members), l.dp_cp(), 3, true);
          EXPECT_EQ(missing_scale_culprit(s, seed, i, l.dp_cp(), int(members.size()), observed, expected, 8), culprit);
        }
      // A difference of another form names nobody.
      const double expected = expected_synced_grad(s, seed, 0, group_sum_of(members), l.dp_cp(), 3, true);
      EXPECT_EQ(missing_scale_culprit(s, seed, 0, l.dp_cp(), int(members.size()), expected + 0.37, expected, 8), -1);
    }
}

TEST(EpSync, PowerSumsNameTheGroup) {
  std::vector<int> m;
  EXPECT_TRUE(decode_power_sum(1 + 4 + 32, 8, &m));
  EXPECT_EQ(m, (std::vector<int>{0, 2, 5}));
  EXPECT_FALSE(decode_power_sum(2.5, 8, &m));
  EXPECT_FALSE(decode_power_sum(256, 8, &m));  // rank 8 does not exist
  EXPECT_EQ(first_group_difference({0, 2}, {0, 1, 2, 3}), 1);
  EXPECT_EQ(first_group_difference({1, 3}, {1}), 3);
  EXPECT_EQ(first_group_difference({4, 6}, {6, 4}), -1);
}

TEST(EpFinalize, ClosedForms) {
  EXPECT_EQ(cond_embedder_reduced(4, 2), 124.0);  // test_grad_reduce_for_replicated_embedder.py
  for (int pp : {1, 2, 3, 4})
    for (int vpp : {1, 2, 3}) {
      double sum = 0;
      for (int p = 0; p < pp; ++p)
        for (int c = 0; c < vpp; ++c) sum += cond_embedder_grad(p, c);
      EXPECT_EQ(cond_embedder_reduced(pp, vpp), sum);
    }
  for (int tp : {1, 2, 3, 8})
    for (uint64_t i = 0; i < 30; ++i) {
      double sum = 0;
      for (int t = 0; t < tp; ++t) sum += tp_grad(9, t, i);
      EXPECT_EQ(tp_reduced(9, tp, i, false), sum);
      EXPECT_DOUBLE_EQ(tp_reduced(9, tp, i, true), sum / tp);
    }
  const ParallelLayout l = make_layout(8, 1, 4, 1);
  for (int rank = 0; rank < 8; ++rank) {
    const std::vector<int> members = l.group(GroupKind::embedding, rank);
    if (members.empty()) continue;
    EXPECT_EQ(members.size(), 2u);
    double sum = 0;
    for (int r : members) sum += embedding_grad(4, r, 17);
    EXPECT_EQ(embedding_reduced(4, group_sum_of(members), 17), sum);
  }
  EXPECT_EQ(num_tokens_factor(0), 1.0f);
  EXPECT_EQ(num_tokens_factor(0.5), 1.0f);
  EXPECT_EQ(num_tokens_factor(256), 1.0f / 256);
}

TEST(EpDispatch, PlanChunksFollowTheOwners) {
  for (int ep : {1, 2, 3, 4}) {
    const MoeRouting routing = make_routing(40, 7, 2, ep);
    for (int rank = 0; rank < 5; ++rank) {
      const DispatchPlan p = plan_dispatch(routing, rank);
      ASSERT_EQ(p.rows.size(), 80u);
      size_t total = 0;
      for (int d = 0; d < ep; ++d) {
        EXPECT_EQ(p.send_displs[d], total);
        for (size_t j = p.send_displs[d]; j < p.send_displs[d] + p.send_counts[d]; ++j) {
          EXPECT_EQ(p.dest[j], d);
          EXPECT_EQ(routing.expert_owner(p.rows[j].expert), d);
        }
        total += p.send_counts[d];
        // The expert side sees exactly these rows, in this order.
        const std::vector<TokenSlot> recv = routing.received_from(rank, d);
        ASSERT_EQ(recv.size(), p.send_counts[d]);
        for (size_t j = 0; j < recv.size(); ++j) EXPECT_EQ(recv[j].token, p.rows[p.send_displs[d] + j].token);
      }
      EXPECT_EQ(total, 80u);
    }
  }
}

TEST(EpDispatch, MisrouteMovesOneRowToTheNextRank) {
  const MoeRouting routing = make_routing(30, 6, 2, 3);
  const DispatchPlan good = plan_dispatch(routing, 1), bad = plan_dispatch(routing, 1, 4);
  const int from = good.dest[4], to = (from + 1) % 3;
  EXPECT_EQ(bad.send_counts[from], good.send_counts[from] - 1);
  EXPECT_EQ(bad.send_counts[to], good.send_counts[to] + 1);
  int misplaced = 0;
  for (size_t j = 0; j < bad.rows.size(); ++j) misplaced += routing.expert_owner(bad.rows[j].expert) != bad.dest[j];
  EXPECT_EQ(misplaced, 1);
}

TEST(EpDispatch, ReceivedRowsAreChecked) {
  const int H = 12;
  const MoeRouting routing = make_routing(20, 4, 2, 2);
  const int src = 3;
  auto row_of = [&](const TokenSlot& r) {
    std::vector<float> row(H);
    for (int e = 0; e < H; ++e) row[e] = float(payload_value(routing.token_id(r.src_rank, r.token, r.slot), e));
    return row;
  };
  for (int me = 0; me < 2; ++me) {
    int64_t prev = -1;
    for (const TokenSlot& r : routing.received_from(src, me)) {
      const RowCheck c = check_received_row(routing, row_of(r).data(), H, src, me, &prev);
      EXPECT_TRUE(c.ok) << c.why;
    }
  }
  // A row for EP rank 0 arriving at EP rank 1 names its source rank.
  const TokenSlot r0 = routing.received_from(src, 0).front();
  int64_t prev = -1;
  RowCheck c = check_received_row(routing, row_of(r0).data(), H, src, 1, &prev);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.culprit, src);
  EXPECT_NE(c.why.find("arrived at EP rank 1"), std::string::npos);
  // Corrupted payload, wrong sender chunk, out of order.
  std::vector<float> row = row_of(r0);
  row[H - 1] += 1;
  prev = -1;
  EXPECT_FALSE(check_received_row(routing, row.data(), H, src, 0, &prev).ok);
  prev = -1;
  c = check_received_row(routing, row_of(r0).data(), H, 2, 0, &prev);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.culprit, src);
  const std::vector<TokenSlot> rows = routing.received_from(src, 0);
  ASSERT_GE(rows.size(), 2u);
  prev = -1;
  EXPECT_TRUE(check_received_row(routing, row_of(rows[1]).data(), H, src, 0, &prev).ok);
  EXPECT_FALSE(check_received_row(routing, row_of(rows[0]).data(), H, src, 0, &prev).ok);
  EXPECT_EQ(expert_output(250, 9), 3);
}

// The whole token round trip of one EP group, with the all-to-all-v done by hand from the
// exchange's counts and displacements: every (token, slot) comes back processed by its expert.
TEST(EpDispatch, DispatchExpertsCombineRoundTrip) {
  const int H = 9, EP = 3;
  const MoeRouting routing = make_routing(11, 7, 2, EP);
  std::vector<DispatchPlan> plans;
  for (int r = 0; r < EP; ++r) plans.push_back(plan_dispatch(routing, r));
  std::vector<TokenExchange> x;
  std::vector<std::vector<float>> tokens(EP), expert_rows(EP);
  for (int r = 0; r < EP; ++r) {
    std::vector<size_t> from_peer;
    for (int p = 0; p < EP; ++p) from_peer.push_back(plans[size_t(p)].send_counts[size_t(r)]);
    x.push_back(token_exchange(plans[size_t(r)], from_peer, H));
    tokens[size_t(r)].resize(plans[size_t(r)].rows.size() * H);
    for (size_t i = 0; i < tokens[size_t(r)].size(); ++i)
      tokens[size_t(r)][i] = float(dispatch_element(routing, plans[size_t(r)], H, i));
    expert_rows[size_t(r)].resize(x.back().recv_rows * H);
  }
  // One all-to-all-v: what rank s sends to r lands in r's chunk for s, by the CollArgs of each side.
  auto exchange = [&](const std::vector<CollArgs>& a, const std::vector<std::vector<float>*>& from,
                      const std::vector<std::vector<float>*>& into) {
    for (int s = 0; s < EP; ++s)
      for (int r = 0; r < EP; ++r) {
        ASSERT_EQ(a[size_t(s)].send_counts[size_t(r)], a[size_t(r)].recv_counts[size_t(s)]);
        std::copy_n(from[size_t(s)]->begin() + long(a[size_t(s)].send_displs[size_t(r)]),
                    a[size_t(s)].send_counts[size_t(r)], into[size_t(r)]->begin() + long(a[size_t(r)].recv_displs[size_t(s)]));
      }
  };
  std::vector<CollArgs> dispatch, combine;
  std::vector<std::vector<float>*> tok, exp;
  for (int r = 0; r < EP; ++r) {
    dispatch.push_back(dispatch_args(x[size_t(r)], DType::f32, nullptr, nullptr));
    combine.push_back(combine_args(x[size_t(r)], DType::f32, nullptr, nullptr));
    tok.push_back(&tokens[size_t(r)]), exp.push_back(&expert_rows[size_t(r)]);
  }
  EXPECT_EQ(combine[0].send_counts, dispatch[0].recv_counts);
  EXPECT_EQ(combine[0].recv_displs, dispatch[0].send_displs);
  exchange(dispatch, tok, exp);
  for (int r = 0; r < EP; ++r) {
    // Every received row is valid at its expert side before the experts run.
    size_t row = 0;
    for (int s = 0; s < EP; ++s) {
      int64_t prev = -1;
      for (size_t j = 0; j < x[size_t(r)].recv_counts[size_t(s)] / H; ++j, ++row)
        EXPECT_TRUE(check_received_row(routing, &expert_rows[size_t(r)][row * H], H, s, r, &prev).ok);
    }
    run_experts(routing, expert_rows[size_t(r)], H);
  }
  exchange(combine, exp, tok);
  for (int r = 0; r < EP; ++r) {
    Buffer back(MemSpace::host, DType::f32, tokens[size_t(r)].size());
    back.copy_from_host(tokens[size_t(r)].data(), 0, back.count());
    Buffer slots(MemSpace::host, DType::f32, size_t(11 * 2 * H));
    unpermute(plans[size_t(r)], 2, H, back, slots);
    const std::vector<float> got = slots.to_host_f32(0, slots.count());
    const std::vector<int> experts = slot_experts(routing, r);
    ASSERT_EQ(experts.size(), 22u);
    for (size_t i = 0; i < got.size(); ++i) {
      const size_t row = i / H;
      const uint64_t id = routing.token_id(r, int(row / 2), int(row % 2));
      ASSERT_EQ(got[i], float(expert_output(payload_value(id, int(i % H)), experts[row]))) << "rank " << r << " " << i;
    }
  }
}
