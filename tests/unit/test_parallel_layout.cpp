// ParallelLayout against (1) hand-checked examples from the rank formula, (2) a literal port of
// Megatron's generate_masked_orthogonal_rank_groups / RankGenerator, over a sweep of layouts.
#include "layout/parallel_layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

using namespace dtbench;
using Groups = std::vector<std::vector<int>>;

namespace {

const GroupKind kAllKinds[] = {
    GroupKind::tp,          GroupKind::cp,          GroupKind::dp,          GroupKind::dp_cp,
    GroupKind::pp,          GroupKind::expert_tp,   GroupKind::ep,          GroupKind::expert_dp,
    GroupKind::intra_dp_cp, GroupKind::inter_dp_cp, GroupKind::intra_expert_dp, GroupKind::inter_expert_dp,
    GroupKind::embedding,   GroupKind::position_embedding,
};

bool is_embedding_kind(GroupKind k) { return k == GroupKind::embedding || k == GroupKind::position_embedding; }

// --- Reference: parallel_state.py, transcribed line by line -------------------------------------
std::vector<int> decompose(int index, const std::vector<int>& shape) {
  std::vector<int> idx;
  int d = 1;
  for (int s : shape) {
    idx.push_back(index / d % s);
    d *= s;
  }
  return idx;
}

Groups generate_masked_orthogonal_rank_groups(int world, const std::vector<int>& parallel_size,
                                              const std::vector<bool>& mask) {
  std::vector<int> masked_shape, unmasked_shape, masked_stride, unmasked_stride;
  int global_stride = 1;
  for (size_t i = 0; i < parallel_size.size(); ++i) {
    (mask[i] ? masked_shape : unmasked_shape).push_back(parallel_size[i]);
    (mask[i] ? masked_stride : unmasked_stride).push_back(global_stride);
    global_stride *= parallel_size[i];
  }
  int group_size = 1;
  for (int s : masked_shape) group_size *= s;
  Groups ranks;
  for (int group_index = 0; group_index < world / group_size; ++group_index) {
    const std::vector<int> g = decompose(group_index, unmasked_shape);
    std::vector<int> rank;
    for (int rank_in_group = 0; rank_in_group < group_size; ++rank_in_group) {
      const std::vector<int> r = decompose(rank_in_group, masked_shape);
      int value = 0;
      for (size_t i = 0; i < r.size(); ++i) value += r[i] * masked_stride[i];
      for (size_t i = 0; i < g.size(); ++i) value += g[i] * unmasked_stride[i];
      rank.push_back(value);
    }
    ranks.push_back(rank);
  }
  return ranks;
}

// RankGenerator(tp, ep, dp, pp, cp, order="tp-cp-ep-dp-pp").get_ranks(token), token like "dp-cp".
Groups rank_generator_get_ranks(int tp, int ep, int dp, int pp, int cp, const std::string& token) {
  const std::vector<std::string> order = {"tp", "cp", "ep", "dp", "pp"};
  std::map<std::string, int> size = {{"tp", tp}, {"cp", cp}, {"ep", ep}, {"dp", dp}, {"pp", pp}};
  std::vector<int> ordered_size;
  std::vector<bool> mask;
  for (const auto& name : order) {
    ordered_size.push_back(size[name]);
    mask.push_back(("-" + token + "-").find("-" + name + "-") != std::string::npos);
  }
  return generate_masked_orthogonal_rank_groups(tp * ep * dp * pp * cp, ordered_size, mask);
}

// The groups Megatron builds for each kind (initialize_model_parallel).
Groups megatron_groups(const ParallelSizes& s, GroupKind kind) {
  const int etp = s.etp == 0 ? s.tp : s.etp;
  const int dp = s.world / (s.tp * s.cp * s.pp), edp = s.world / (etp * s.ep * s.pp);
  auto dense = [&](const std::string& token) { return rank_generator_get_ranks(s.tp, 1, dp, s.pp, s.cp, token); };
  auto expert = [&](const std::string& token) { return rank_generator_get_ranks(etp, s.ep, edp, s.pp, 1, token); };
  auto intra = [&](const Groups& whole) {
    Groups out;
    for (const auto& ranks : whole) {
      const size_t chunk = ranks.size() / s.dist_opt_instances;
      for (int i = 0; i < s.dist_opt_instances; ++i)
        out.emplace_back(ranks.begin() + i * chunk, ranks.begin() + (i + 1) * chunk);  // ranks[i*s:(i+1)*s]
    }
    return out;
  };
  auto inter = [&](const Groups& whole) {
    Groups out;
    for (const auto& ranks : whole) {
      const size_t chunk = ranks.size() / s.dist_opt_instances;
      for (size_t i = 0; i < chunk; ++i) {
        out.emplace_back();
        for (size_t j = i; j < ranks.size(); j += chunk) out.back().push_back(ranks[j]);  // ranks[i::s]
      }
    }
    return out;
  };
  switch (kind) {
    case GroupKind::tp: return dense("tp");
    case GroupKind::cp: return dense("cp");
    case GroupKind::dp: return dense("dp");
    case GroupKind::dp_cp: return dense("dp-cp");
    case GroupKind::pp: return dense("pp");
    case GroupKind::expert_tp: return expert("tp");
    case GroupKind::ep: return expert("ep");
    case GroupKind::expert_dp: return expert("dp");
    case GroupKind::intra_dp_cp: return intra(dense("dp-cp"));
    case GroupKind::inter_dp_cp: return inter(dense("dp-cp"));
    case GroupKind::intra_expert_dp: return intra(expert("dp"));
    case GroupKind::inter_expert_dp: return inter(expert("dp"));
    case GroupKind::embedding:
    case GroupKind::position_embedding: {
      Groups out;
      for (const auto& pp_ranks : dense("pp")) {
        if (kind == GroupKind::embedding && pp_ranks.size() > 1)
          out.push_back({pp_ranks.front(), pp_ranks.back()});
        else
          out.push_back({pp_ranks.front()});
      }
      return out;
    }
  }
  return {};
}

bool divides(int a, int b) { return b % a == 0; }

bool is_valid(const ParallelSizes& s) {
  const int etp = s.etp == 0 ? s.tp : s.etp;
  if (!divides(s.tp * s.cp * s.pp, s.world) || !divides(etp * s.ep * s.pp, s.world)) return false;
  const int dp_cp = s.world / (s.tp * s.pp), edp = s.world / (etp * s.ep * s.pp);
  return divides(s.dist_opt_instances, dp_cp) && divides(s.dist_opt_instances, edp);
}

std::string describe(const ParallelSizes& s) {
  return "world=" + std::to_string(s.world) + " tp=" + std::to_string(s.tp) + " cp=" + std::to_string(s.cp) +
         " pp=" + std::to_string(s.pp) + " ep=" + std::to_string(s.ep) + " etp=" + std::to_string(s.etp) +
         " N=" + std::to_string(s.dist_opt_instances);
}

// Every layout of world 1..16 with sizes in {1,2,3,4}, ETP in {tp,1,2,4}, N in {1,2,4}.
std::vector<ParallelSizes> sweep() {
  std::vector<ParallelSizes> out;
  for (int world = 1; world <= 16; ++world)
    for (int tp = 1; tp <= 4; ++tp)
      for (int cp = 1; cp <= 4; ++cp)
        for (int pp = 1; pp <= 4; ++pp)
          for (int ep = 1; ep <= 4; ++ep)
            for (int etp : {0, 1, 2, 4})
              for (int n : {1, 2, 4}) out.push_back({world, tp, cp, pp, ep, etp, n});
  return out;
}

std::vector<ParallelSizes> valid_sweep() {
  std::vector<ParallelSizes> out;
  for (const auto& s : sweep())
    if (is_valid(s)) out.push_back(s);
  return out;
}

}  // namespace

// --- Hand-checked examples ----------------------------------------------------------------------

// world 8, TP2, PP2 => DP 2. rank = tp + 2*(dp + 2*pp).
TEST(ParallelLayoutExample, World8Tp2Pp2) {
  ParallelLayout L({8, 2, 1, 2});
  EXPECT_EQ(L.dp(), 2);
  EXPECT_EQ(L.groups(GroupKind::tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  // dp varies, tp and pp fixed: (tp0,pp0) {0,2}, (tp1,pp0) {1,3}, (tp0,pp1) {4,6}, (tp1,pp1) {5,7}.
  EXPECT_EQ(L.groups(GroupKind::dp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(L.groups(GroupKind::dp_cp), L.groups(GroupKind::dp));  // CP = 1
  // pp stride TP*CP*DP = 4.
  EXPECT_EQ(L.groups(GroupKind::pp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(L.groups(GroupKind::embedding), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(L.groups(GroupKind::position_embedding), (Groups{{0}, {1}, {2}, {3}}));
  // rank 6 = tp 0, dp 1, pp 1.
  const DenseCoords c = L.dense_coords(6);
  EXPECT_EQ(c.tp, 0);
  EXPECT_EQ(c.cp, 0);
  EXPECT_EQ(c.dp, 1);
  EXPECT_EQ(c.pp, 1);
  // Expert grid with ETP = TP = 2, EP = 1: same as dense.
  EXPECT_EQ(L.groups(GroupKind::expert_dp), L.groups(GroupKind::dp_cp));
  EXPECT_EQ(L.group(GroupKind::dp, 3), (std::vector<int>{1, 3}));
  EXPECT_EQ(L.group_index(GroupKind::dp, 3), 1);
  EXPECT_EQ(L.group_color(GroupKind::dp, 3), 1);
}

// world 16, TP2, CP2, PP2 => DP 2. rank = tp + 2*(cp + 2*(dp + 2*pp)).
TEST(ParallelLayoutExample, World16Tp2Cp2Pp2) {
  ParallelLayout L({16, 2, 2, 2});
  EXPECT_EQ(L.dp(), 2);
  EXPECT_EQ(L.dp_cp(), 4);
  EXPECT_EQ(L.group(GroupKind::cp, 0), (std::vector<int>{0, 2}));
  EXPECT_EQ(L.group(GroupKind::dp, 0), (std::vector<int>{0, 4}));
  EXPECT_EQ(L.group(GroupKind::dp_cp, 0), (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(L.group(GroupKind::dp_cp, 9), (std::vector<int>{9, 11, 13, 15}));
  EXPECT_EQ(L.group(GroupKind::pp, 3), (std::vector<int>{3, 11}));
  // rank 13 = 1 + 2*(0 + 2*(1 + 2*1)).
  const DenseCoords c = L.dense_coords(13);
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.cp, 0);
  EXPECT_EQ(c.dp, 1);
  EXPECT_EQ(c.pp, 1);
  EXPECT_EQ(L.dense_rank({1, 0, 1, 1}), 13);
  // dp_cp index = cp + CP*dp: rank 13 is (cp 0, dp 1) -> index 2 in {9,11,13,15}.
  EXPECT_EQ(L.group_index(GroupKind::dp_cp, 13), 2);
}

// (TP, ETP) = (2, 1), EP 2, world 8: expert grid etp + 1*(ep + 2*(edp + 4*pp)), EDP = 4.
TEST(ParallelLayoutExample, ExpertGridTp2Etp1Ep2) {
  ParallelLayout L({8, 2, 1, 1, 2, 1});
  EXPECT_EQ(L.etp(), 1);
  EXPECT_EQ(L.edp(), 4);
  EXPECT_EQ(L.groups(GroupKind::expert_tp), (Groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}));
  EXPECT_EQ(L.groups(GroupKind::ep), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(L.groups(GroupKind::expert_dp), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}}));
  const ExpertCoords c = L.expert_coords(5);  // 5 = 1 + 2*2
  EXPECT_EQ(c.etp, 0);
  EXPECT_EQ(c.ep, 1);
  EXPECT_EQ(c.edp, 2);
  EXPECT_EQ(c.pp, 0);
  EXPECT_EQ(L.expert_rank(c), 5);
}

// (TP, ETP) = (1, 2), EP 1, world 8 (Megatron's B3b case): expert_dp {0,2,4,6}, dense dp_cp = all.
TEST(ParallelLayoutExample, ExpertGridTp1Etp2) {
  ParallelLayout L({8, 1, 1, 1, 1, 2});
  EXPECT_EQ(L.group(GroupKind::dp_cp, 0), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(L.group(GroupKind::expert_dp, 1), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(L.group(GroupKind::expert_tp, 6), (std::vector<int>{6, 7}));
  EXPECT_EQ(expected_group_power_sum(L.group(GroupKind::expert_dp, 1)), 2 + 8 + 32 + 128);
  EXPECT_EQ(expected_group_power_sum(L.group(GroupKind::dp_cp, 1)), 255);
}

// Partial DistOpt, world 8, N 2: dp_cp = all ranks; intra = halves, inter = same position.
TEST(ParallelLayoutExample, PartialDistOpt) {
  ParallelLayout L({8, 1, 1, 1, 1, 0, 2});
  EXPECT_EQ(L.groups(GroupKind::intra_dp_cp), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(L.groups(GroupKind::inter_dp_cp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(L.group_index(GroupKind::inter_dp_cp, 6), 1);
  EXPECT_EQ(L.group_color(GroupKind::inter_dp_cp, 6), 2);
  ParallelLayout L4({8, 2, 1, 1, 1, 0, 2});  // dp_cp {0,2,4,6},{1,3,5,7}
  EXPECT_EQ(L4.groups(GroupKind::intra_dp_cp), (Groups{{0, 2}, {4, 6}, {1, 3}, {5, 7}}));
  EXPECT_EQ(L4.groups(GroupKind::inter_dp_cp), (Groups{{0, 4}, {2, 6}, {1, 5}, {3, 7}}));
}

TEST(ParallelLayoutExample, EmbeddingGroupsSkipMiddleStages) {
  ParallelLayout L({8, 1, 1, 4});  // DP 2, pp groups {0,2,4,6}, {1,3,5,7}
  EXPECT_EQ(L.groups(GroupKind::embedding), (Groups{{0, 6}, {1, 7}}));
  EXPECT_EQ(L.groups(GroupKind::position_embedding), (Groups{{0}, {1}}));
  EXPECT_EQ(L.group(GroupKind::embedding, 7), (std::vector<int>{1, 7}));
  EXPECT_EQ(L.group_index(GroupKind::embedding, 7), 1);
  EXPECT_TRUE(L.group(GroupKind::embedding, 2).empty());
  EXPECT_EQ(L.group_color(GroupKind::embedding, 4), kNoGroup);
  EXPECT_EQ(L.group_index(GroupKind::embedding, 4), kNoGroup);
  EXPECT_EQ(L.group_color(GroupKind::position_embedding, 6), kNoGroup);

  ParallelLayout single({4, 2});  // PP 1: [pp_ranks[0]]
  EXPECT_EQ(single.groups(GroupKind::embedding), (Groups{{0}, {1}, {2}, {3}}));
}

TEST(ParallelLayoutExample, EtpDefaultsToTp) {
  ParallelLayout L({8, 2, 1, 1, 2});
  EXPECT_EQ(L.etp(), 2);
  EXPECT_EQ(L.edp(), 2);
}

// --- Errors -------------------------------------------------------------------------------------

void expect_input_error(const ParallelSizes& s, const std::string& needle) {
  try {
    ParallelLayout layout(s);
    ADD_FAILURE() << describe(s) << ": no InputError, expected one mentioning " << needle;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ParallelLayoutErrors, NamesTheField) {
  expect_input_error({6, 1, 1, 1, 4}, "ep/etp: world size 6 is not divisible by ETP*EP*PP = 4");
  expect_input_error({6, 4}, "tp/cp/pp: world size 6 is not divisible by TP*CP*PP = 4");
  expect_input_error({8, 1, 1, 1, 1, 0, 3}, "dist_opt_instances: DP*CP = 8");
  expect_input_error({8, 1, 1, 1, 4, 0, 4}, "dist_opt_instances: expert DP = 2");
  expect_input_error({8, 0}, "tp: must be >= 1 (got 0)");
  expect_input_error({8, 1, -1}, "cp: must be >= 1 (got -1)");
  expect_input_error({8, 1, 1, 0}, "pp: must be >= 1 (got 0)");
  expect_input_error({8, 1, 1, 1, 1, -2}, "etp: must be >= 1, or 0");
  expect_input_error({8, 1, 1, 1, 1, 3}, "ETP*EP*PP = 3");
  expect_input_error({0}, "world: must be >= 1");
}

// A suite maps the fields to its own flags; unknown fields keep their names.
TEST(ParallelLayoutErrors, SuiteNamesItsFlags) {
  const std::map<std::string, std::string> flags = {{"tp", "--tp"}, {"cp", "--cp"}, {"pp", "--pp"},
                                                    {"dist_opt_instances", "--dist-opt-instances"}};
  auto message = [&](const ParallelSizes& s) {
    try {
      with_flag_names(flags, [&] { return ParallelLayout(s); });
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message({6, 4}), "--tp/--cp/--pp: world size 6 is not divisible by TP*CP*PP = 4");
  EXPECT_EQ(message({8, 1, 1, 1, 1, 0, 3}), "--dist-opt-instances: DP*CP = 8 is not divisible by 3");
  EXPECT_EQ(message({6, 1, 1, 1, 4}), "ep/etp: world size 6 is not divisible by ETP*EP*PP = 4");
}

TEST(ParallelLayoutErrors, ThrowsExactlyWhenSomethingDoesNotDivide) {
  int valid = 0, invalid = 0;
  for (const auto& s : sweep()) {
    if (is_valid(s)) {
      EXPECT_NO_THROW(ParallelLayout{s}) << describe(s);
      ++valid;
    } else {
      EXPECT_THROW(ParallelLayout{s}, InputError) << describe(s);
      ++invalid;
    }
  }
  EXPECT_GT(valid, 500);
  EXPECT_GT(invalid, 500);
}

// --- Sweep against the formulas and the Megatron reference ----------------------------------------

TEST(ParallelLayoutSweep, CoordinatesFollowTheRankFormulas) {
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    const int TP = s.tp, CP = s.cp, PP = s.pp, DP = s.world / (TP * CP * PP);
    const int ETP = s.etp == 0 ? TP : s.etp, EP = s.ep, EDP = s.world / (ETP * EP * PP);
    ASSERT_EQ(L.dp(), DP);
    ASSERT_EQ(L.edp(), EDP);
    EXPECT_EQ(L.edp() * L.etp() * L.ep() * L.pp(), s.world);
    EXPECT_EQ(L.dp() * L.cp() * L.tp() * L.pp(), s.world);
    std::vector<int> seen_dense(s.world, 0), seen_expert(s.world, 0);
    for (int pp = 0; pp < PP; ++pp)
      for (int dp = 0; dp < DP; ++dp)
        for (int cp = 0; cp < CP; ++cp)
          for (int tp = 0; tp < TP; ++tp) {
            const int rank = tp + TP * (cp + CP * (dp + DP * pp));
            ++seen_dense[rank];
            const DenseCoords c = L.dense_coords(rank);
            EXPECT_TRUE(c.tp == tp && c.cp == cp && c.dp == dp && c.pp == pp) << "rank " << rank;
            EXPECT_EQ(L.dense_rank({tp, cp, dp, pp}), rank);
          }
    for (int pp = 0; pp < PP; ++pp)
      for (int edp = 0; edp < EDP; ++edp)
        for (int ep = 0; ep < EP; ++ep)
          for (int etp = 0; etp < ETP; ++etp) {
            const int rank = etp + ETP * (ep + EP * (edp + EDP * pp));
            ++seen_expert[rank];
            const ExpertCoords c = L.expert_coords(rank);
            EXPECT_TRUE(c.etp == etp && c.ep == ep && c.edp == edp && c.pp == pp) << "rank " << rank;
            EXPECT_EQ(L.expert_rank({etp, ep, edp, pp}), rank);
            EXPECT_EQ(c.pp, L.dense_coords(rank).pp) << "both grids must agree on the PP stage";
          }
    EXPECT_EQ(seen_dense, std::vector<int>(s.world, 1));
    EXPECT_EQ(seen_expert, std::vector<int>(s.world, 1));
  }
}

TEST(ParallelLayoutSweep, GroupsMatchMegatron) {
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    for (GroupKind kind : kAllKinds) {
      SCOPED_TRACE(group_kind_name(kind));
      const Groups want = megatron_groups(s, kind);
      const Groups got = L.groups(kind);
      ASSERT_EQ(got, want);
      EXPECT_EQ(L.num_groups(kind), int(want.size()));
      for (int color = 0; color < int(want.size()); ++color)
        for (int index = 0; index < int(want[color].size()); ++index) {
          const int rank = want[color][index];
          EXPECT_EQ(L.group_color(kind, rank), color);
          EXPECT_EQ(L.group_index(kind, rank), index);
          EXPECT_EQ(L.group(kind, rank), want[color]);
        }
    }
  }
}

TEST(ParallelLayoutSweep, GroupsPartitionTheWorldWithTheRightSizes) {
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    const int N = s.dist_opt_instances;
    const std::map<GroupKind, int> size = {
        {GroupKind::tp, L.tp()},
        {GroupKind::cp, L.cp()},
        {GroupKind::dp, L.dp()},
        {GroupKind::dp_cp, L.dp() * L.cp()},
        {GroupKind::pp, L.pp()},
        {GroupKind::expert_tp, L.etp()},
        {GroupKind::ep, L.ep()},
        {GroupKind::expert_dp, L.edp()},
        {GroupKind::intra_dp_cp, L.dp_cp() / N},
        {GroupKind::inter_dp_cp, N},
        {GroupKind::intra_expert_dp, L.edp() / N},
        {GroupKind::inter_expert_dp, N},
        {GroupKind::embedding, L.pp() > 1 ? 2 : 1},
        {GroupKind::position_embedding, 1},
    };
    for (GroupKind kind : kAllKinds) {
      SCOPED_TRACE(group_kind_name(kind));
      std::vector<int> times_seen(s.world, 0);
      for (const auto& g : L.groups(kind)) {
        EXPECT_EQ(int(g.size()), size.at(kind));
        EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
        for (int r : g) ++times_seen[r];
      }
      for (int r = 0; r < s.world; ++r) {
        const int stage = L.dense_coords(r).pp;
        const bool member = !is_embedding_kind(kind) || stage == 0 ||
                            (kind == GroupKind::embedding && stage == L.pp() - 1);
        EXPECT_EQ(times_seen[r], member ? 1 : 0) << "rank " << r;
      }
    }
  }
}

// Expert DP is the dense dp_cp group exactly when the expert tp x ep block is the dense tp block.
TEST(ParallelLayoutSweep, ExpertDpDiffersFromDpCpUnlessEtpTimesEpIsTp) {
  int differing = 0;
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    bool same = true;
    for (int r = 0; r < s.world; ++r) same &= L.group(GroupKind::expert_dp, r) == L.group(GroupKind::dp_cp, r);
    EXPECT_EQ(same, L.etp() * L.ep() == L.tp());
    if (s.ep > 1 && s.etp == 0) {
      EXPECT_FALSE(same);  // EP > 1 with ETP = TP always separates them
    }
    differing += !same;
  }
  EXPECT_GT(differing, 100);
}

// Partial DistOpt: intra x inter reproduces the whole DP group (RS over intra + AR over inter).
TEST(ParallelLayoutSweep, IntraAndInterCoverTheDpGroup) {
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    const std::pair<GroupKind, GroupKind> splits[] = {{GroupKind::intra_dp_cp, GroupKind::inter_dp_cp},
                                                      {GroupKind::intra_expert_dp, GroupKind::inter_expert_dp}};
    for (int r = 0; r < s.world; ++r) {
      for (const auto& [intra_kind, inter_kind] : splits) {
        const GroupKind whole_kind = intra_kind == GroupKind::intra_dp_cp ? GroupKind::dp_cp : GroupKind::expert_dp;
        const std::vector<int> whole = L.group(whole_kind, r);
        const std::vector<int> intra = L.group(intra_kind, r), inter = L.group(inter_kind, r);
        const int chunk = int(intra.size());
        ASSERT_EQ(int(whole.size()), chunk * s.dist_opt_instances);
        // Intra is a consecutive chunk of the whole list.
        const int pos = int(std::find(whole.begin(), whole.end(), r) - whole.begin());
        EXPECT_TRUE(std::equal(intra.begin(), intra.end(), whole.begin() + pos / chunk * chunk));
        // Inter holds the rank at r's chunk position in every chunk.
        for (int i = 0; i < s.dist_opt_instances; ++i) EXPECT_EQ(inter[i], whole[i * chunk + pos % chunk]);
        // With N = 1, intra is the whole group and inter is r alone.
        if (s.dist_opt_instances == 1) {
          EXPECT_EQ(intra, whole);
          EXPECT_EQ(inter, std::vector<int>{r});
        }
      }
    }
  }
}

// --- DDP gradient scaling (gradient_scaling_factor) and expectations -----------------------------

TEST(GradScaling, Table) {
  const int dpcp = 8, edp = 2;
  auto check = [&](GradScaleMode mode, bool expert, double pre, GradReduceOp op) {
    const GradScaling g = grad_scaling(mode, expert, dpcp, edp);
    EXPECT_EQ(g.pre_scale, pre);
    EXPECT_EQ(g.op, op);
  };
  check(GradScaleMode::default_sum, false, 1.0 / 8, GradReduceOp::sum);
  check(GradScaleMode::default_sum, true, 1.0 / 8, GradReduceOp::sum);
  check(GradScaleMode::average_in_collective, false, 1, GradReduceOp::avg);
  check(GradScaleMode::average_in_collective, true, 2.0 / 8, GradReduceOp::avg);
  check(GradScaleMode::per_token_loss, false, 1, GradReduceOp::sum);
  check(GradScaleMode::per_token_loss, true, 1, GradReduceOp::sum);
  EXPECT_THROW(grad_scaling(GradScaleMode::default_sum, false, 0, 1), std::invalid_argument);
}

TEST(GradScaling, ParseMode) {
  EXPECT_EQ(parse_grad_scale_mode("default", "--grad-scale"), GradScaleMode::default_sum);
  EXPECT_EQ(parse_grad_scale_mode("average_in_collective", "--grad-scale"), GradScaleMode::average_in_collective);
  EXPECT_EQ(parse_grad_scale_mode("per_token_loss", "--grad-scale"), GradScaleMode::per_token_loss);
  try {
    parse_grad_scale_mode("avg", "--grad-scale");
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--grad-scale: ", 0), 0u) << e.what();
  }
}

// Megatron's rule and test_grad_sync (test_grad_sync_with_expert_parallel.py) over the sweep:
// g_dense = Σ_{DPCP} g / DPCP and g_expert = Σ_{EDP} g / DPCP in both averaging modes; with dense
// grads 1 and expert grads EP*ETP/TP both end at 1.
TEST(GradScaling, B3NumbersOverTheSweep) {
  for (const auto& s : valid_sweep()) {
    SCOPED_TRACE(describe(s));
    ParallelLayout L(s);
    const double expert_fill = double(L.ep() * L.etp()) / L.tp();
    for (GradScaleMode mode : {GradScaleMode::default_sum, GradScaleMode::average_in_collective}) {
      const GradScaling dense = grad_scaling(mode, false, L.dp_cp(), L.edp());
      const GradScaling expert = grad_scaling(mode, true, L.dp_cp(), L.edp());
      EXPECT_DOUBLE_EQ(reduced_grad(dense, L.dp_cp() * 1.0, L.dp_cp()), 1.0);
      EXPECT_DOUBLE_EQ(reduced_grad(expert, L.edp() * expert_fill, L.edp()), 1.0);
      // Rule B2 for arbitrary contributions summing to 12.
      EXPECT_DOUBLE_EQ(reduced_grad(expert, 12, L.edp()), 12.0 / L.dp_cp());
      EXPECT_DOUBLE_EQ(reduced_grad(dense, 12, L.dp_cp()), 12.0 / L.dp_cp());
    }
    const GradScaling per_token = grad_scaling(GradScaleMode::per_token_loss, true, L.dp_cp(), L.edp());
    EXPECT_EQ(reduced_grad(per_token, 12, L.edp()), 12);
  }
}

TEST(GroupPowerSum, IdentifiesTheGroupAndStaysExactInFp32) {
  EXPECT_EQ(expected_group_power_sum({0, 2}), 5);
  EXPECT_EQ(expected_group_power_sum({1, 3}), 10);
  EXPECT_EQ(expected_group_power_sum({}), 0);
  // Any group of a world <= 24: fp32 accumulation in any order gives the exact double sum.
  ParallelLayout L({24, 2, 1, 2, 3, 1});
  for (int r = 0; r < 24; ++r) {
    for (GroupKind kind : {GroupKind::dp_cp, GroupKind::expert_dp, GroupKind::tp}) {
      std::vector<int> g = L.group(kind, r);
      ASSERT_TRUE(power_sum_exact_in_fp32(g));
      float forward = 0, backward = 0;
      for (int m : g) forward += std::ldexp(1.0f, m);
      for (auto it = g.rbegin(); it != g.rend(); ++it) backward += std::ldexp(1.0f, *it);
      EXPECT_EQ(double(forward), expected_group_power_sum(g));
      EXPECT_EQ(double(backward), expected_group_power_sum(g));
    }
  }
  std::vector<int> all24(24);
  for (int r = 0; r < 24; ++r) all24[r] = r;
  EXPECT_TRUE(power_sum_exact_in_fp32(all24));
  EXPECT_EQ(expected_group_power_sum(all24), double((1 << 24) - 1));
  EXPECT_FALSE(power_sum_exact_in_fp32({0, 24}));  // 2^24 + 1 is not a float
  EXPECT_NE(double(std::ldexp(1.0f, 24) + 1.0f), expected_group_power_sum({0, 24}));
  EXPECT_TRUE(power_sum_exact_in_fp32({100, 123}));
  EXPECT_FALSE(power_sum_exact_in_fp32({120, 128}));
}
