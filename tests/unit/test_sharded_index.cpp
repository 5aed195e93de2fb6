// ShardedIndex against Megatron-Core's dist_checkpointing: ShardedTensor.from_rank_offsets, save-time
// validation (validate_sharding_integrity), the fully-parallel save distribution of
// test_fully_parallel.py, resharding loads over the splits of test_uneven_1d_sharding, strict
// handling (StrictHandling, test_serialization.py TestNonStrictLoad), the index file and writer
// binning. Geometry is checked against brute force over every element of small shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <tuple>
#include <unordered_set>

#include "core/error.h"
#include "ckpt/sharded_index.h"

namespace dtbench {
namespace {

using Pieces = std::vector<std::vector<ShardedPiece>>;  // [rank] -> that rank's pieces

// Uneven 1-D split: rank r holds sizes[r] elements after those of ranks < r. Constructed
// directly (no axis_fragmentations), as Megatron's test_uneven_1d_sharding does.
Pieces split_1d(const std::string& key, DType dtype, const std::vector<int64_t>& sizes) {
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  Pieces pieces(sizes.size());
  int64_t offset = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    ShardedPiece p;
    p.key = key;
    p.dtype = dtype;
    p.local_shape = {sizes[r]};
    p.global_shape = {total};
    p.global_offset = {offset};
    pieces[r].push_back(p);
    offset += sizes[r];
  }
  return pieces;
}

// Regular grid: global_shape cut into fragments[a] pieces per axis, each piece held by `replicas`
// ranks (replica_id (0, 0, d), main for d == 0). Ranks: grid cells row-major, replica outermost.
Pieces grid(const std::string& key, DType dtype, const TensorShape& global_shape,
            const TensorShape& fragments, int replicas = 1) {
  TensorShape local(global_shape.size());
  int64_t cells = 1;
  for (size_t a = 0; a < global_shape.size(); ++a) {
    local[a] = global_shape[a] / fragments[a];
    cells *= fragments[a];
  }
  Pieces pieces(size_t(cells * replicas));
  for (int d = 0; d < replicas; ++d)
    for (int64_t cell = 0; cell < cells; ++cell) {
      std::vector<RankOffset> offsets(global_shape.size());
      for (size_t a = global_shape.size(), rest = size_t(cell); a-- > 0;) {
        offsets[a] = {int(a), int64_t(rest % size_t(fragments[a])), fragments[a]};
        rest /= size_t(fragments[a]);
      }
      pieces[size_t(d * cells + cell)].push_back(
          ShardedPiece::from_rank_offsets(key, dtype, local, offsets, {0, 0, d}));
    }
  return pieces;
}

Pieces merge(Pieces a, const Pieces& b) {
  a.resize(std::max(a.size(), b.size()));
  for (size_t r = 0; r < b.size(); ++r) a[r].insert(a[r].end(), b[r].begin(), b[r].end());
  return a;
}

std::string validation_error(const Pieces& pieces) {
  try {
    validate_sharding(pieces);
  } catch (const CheckpointingError& e) {
    return e.what();
  }
  return "";
}

// The uneven 1-D splits of Megatron's test_uneven_1d_sharding (8 ranks), save and load sides.
const std::vector<std::vector<int64_t>> kUnevenSplits = {
    {3, 3, 3, 3, 3, 3, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8},  {1, 5, 7, 3, 6, 2, 5, 4},
    {2, 2, 2, 2, 2, 2, 2, 1}, {2, 2, 2, 2, 2, 2, 2, 10}, {5, 5, 5, 5, 5, 5, 0, 0},
    {15, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 2, 16}, {14, 3, 6, 3, 1, 1, 2, 3},
    {5, 0, 5, 0, 5, 5, 3, 7},  {0, 0, 0, 3, 3, 3, 3, 3},
};

// --- ShardedTensor.from_rank_offsets -----------------------------------------------------------

TEST(ShardedPiece, FromRankOffsetsTp2Pp4KeyA) {
  // test_partition_change_save_load: keyA (1,1) per rank, axis 0 by TP, axis 1 by PP -> (2, 4).
  for (int rank = 0; rank < 8; ++rank) {
    const int tp = rank % 2, pp = rank / 2;
    ShardedPiece p = ShardedPiece::from_rank_offsets("keyA", DType::f32, {1, 1},
                                                     {{0, tp, 2}, {1, pp, 4}});
    EXPECT_EQ(p.global_shape, (TensorShape{2, 4}));
    EXPECT_EQ(p.global_offset, (TensorShape{tp, pp}));
    EXPECT_EQ(p.axis_fragmentations, (TensorShape{2, 4}));
    EXPECT_EQ(p.box_shape(), (TensorShape{1, 1}));
    EXPECT_TRUE(p.is_main_replica());
  }
}

TEST(ShardedPiece, FromRankOffsetsPrependAxis) {
  // keyB loaded on TP1xPP2 as a (5,80) slab at prepended axis 0 = rank//2, replica rank%2.
  for (int rank = 0; rank < 8; ++rank) {
    ShardedPiece p = ShardedPiece::from_rank_offsets("keyB", DType::f32, {5, 80}, {{0, rank / 2, 4}},
                                                     {rank % 2}, 1);
    EXPECT_EQ(p.global_shape, (TensorShape{4, 5, 80}));
    EXPECT_EQ(p.global_offset, (TensorShape{rank / 2, 0, 0}));
    EXPECT_EQ(p.local_shape, (TensorShape{5, 80}));
    EXPECT_EQ(p.box_shape(), (TensorShape{1, 5, 80}));
    EXPECT_EQ(p.numel(), 400);
    EXPECT_EQ(p.is_main_replica(), rank % 2 == 0);
  }
}

TEST(ShardedPiece, FromRankOffsetsLastAxis) {
  // test_multi_process_save keyB: ones(3,5,7) split on axis 2 by rank over 8 ranks.
  ShardedPiece p = ShardedPiece::from_rank_offsets("keyB", DType::bf16, {3, 5, 7}, {{2, 5, 8}});
  EXPECT_EQ(p.global_shape, (TensorShape{3, 5, 56}));
  EXPECT_EQ(p.global_offset, (TensorShape{0, 0, 35}));
  EXPECT_EQ(p.bytes(), 3 * 5 * 7 * 2);
  ShardedPiece whole = ShardedPiece::from_rank_offsets("keyA", DType::f32, {2, 4}, {}, {3});
  EXPECT_EQ(whole.global_shape, (TensorShape{2, 4}));
  EXPECT_EQ(whole.global_offset, (TensorShape{0, 0}));
  EXPECT_FALSE(whole.is_main_replica());
}

TEST(ShardedPiece, MainReplicaRule) {
  ShardedPiece p = ShardedPiece::from_rank_offsets("k", DType::f32, {4}, {});
  for (auto [replica, is_main] : std::vector<std::pair<std::vector<int>, bool>>{
           {{0}, true}, {{0, 0, 0}, true}, {{1}, false}, {{0, 1, 0}, false}, {{0, 0, 2}, false}}) {
    p.replica_id = replica;
    EXPECT_EQ(p.is_main_replica(), is_main);
  }
}

TEST(ShardedPiece, FromRankOffsetsRejectsInvalidOffsets) {
  const std::vector<std::vector<RankOffset>> bad = {
      {{0, 2, 2}},             // idx >= frags
      {{0, -1, 2}},            // idx < 0
      {{0, 0, 0}},             // frags < 1
      {{-1, 0, 2}},            // axis < 0
      {{2, 0, 2}},             // axis beyond the 2 axes
      {{0, 0, 2}, {0, 1, 2}},  // axis twice
  };
  for (const auto& offsets : bad) {
    try {
      ShardedPiece::from_rank_offsets("keyX", DType::f32, {2, 3}, offsets);
      ADD_FAILURE() << "accepted invalid rank offsets";
    } catch (const CheckpointingError& e) {
      EXPECT_NE(std::string(e.what()).find("Invalid rank offset"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("keyX"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ShardedPiece::from_rank_offsets("keyX", DType::f32, {2}, {}, {0}, -1),
               CheckpointingError);
}

TEST(ShardedPiece, CheckInvariants) {
  ShardedPiece good = ShardedPiece::from_rank_offsets("k", DType::f32, {2, 3}, {{1, 1, 2}});
  EXPECT_NO_THROW(good.check());
  auto expect_bad = [](ShardedPiece p, const char* what) {
    try {
      p.check();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const CheckpointingError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  ShardedPiece p = good;
  p.global_offset = {0};
  expect_bad(p, "different numbers of axes");
  p = good;
  p.prepend_axis_num = 1;
  expect_bad(p, "prepended axes");
  p = good;
  p.global_offset = {0, 2};  // regular grid: 2 % 3 != 0
  expect_bad(p, "divisible");
  p.axis_fragmentations.clear();  // the same box as an uneven piece is fine
  EXPECT_NO_THROW(p.check());
  p.global_offset = {0, 4};  // 4 + 3 > 6
  expect_bad(p, "leaves the global shape");
  p = good;
  p.replica_id = {};
  expect_bad(p, "replica_id");
  // Empty pieces (test_uneven_1d_sharding's [5]*6+[0,0]) may sit anywhere on the grid, also at the end.
  ShardedPiece empty = good;
  empty.local_shape = {2, 0};
  empty.global_offset = {0, 6};
  EXPECT_NO_THROW(empty.check());
}

// --- save-time validation (validate_sharding_integrity) ----------------------------------------

TEST(ValidateSharding, AcceptsUnevenOneDimensionalSplits) {
  for (const auto& sizes : kUnevenSplits)
    EXPECT_EQ(validation_error(split_1d("w", DType::f32, sizes)), "") << ::testing::PrintToString(sizes);
}

TEST(ValidateSharding, AcceptsTpPpGridsWithDataParallelReplicas) {
  // TP x PP grids over 8 ranks; the remaining factor replicates as DP (replica (0, 0, dp)).
  for (auto [tp, pp] : std::vector<std::pair<int, int>>{{2, 4}, {4, 2}, {1, 8}, {8, 1}, {2, 2}, {1, 1}})
    EXPECT_EQ(validation_error(grid("w", DType::bf16, {8, 16}, {tp, pp}, 8 / (tp * pp))), "")
        << tp << "x" << pp;
  // A 3-D tensor cut on two axes, plus a TP-replicated tensor: replica (0, tp_rank, dp_rank).
  Pieces pieces = grid("qkv", DType::f32, {4, 6, 8}, {2, 1, 4});
  for (int rank = 0; rank < 8; ++rank)
    pieces[rank].push_back(ShardedPiece::from_rank_offsets("bias", DType::f32, {6}, {},
                                                           {0, rank % 2, rank / 2}));
  EXPECT_EQ(validation_error(pieces), "");
}

TEST(ValidateSharding, AcceptsAsyncSaveReplicasAndMultiplePiecesPerRank) {
  // test_async_save: keyA ones(2,4) replica=rank, keyB ones(3,5,7) replica=W-1-rank.
  Pieces pieces(8);
  for (int r = 0; r < 8; ++r) {
    pieces[r].push_back(ShardedPiece::from_rank_offsets("keyA", DType::f32, {2, 4}, {}, {r}));
    pieces[r].push_back(ShardedPiece::from_rank_offsets("keyB", DType::f32, {3, 5, 7}, {}, {7 - r}));
  }
  EXPECT_EQ(validation_error(pieces), "");
  // Several pieces on one rank, none on others: rank 0 holds [0,3) and [10,12), rank 2 the rest.
  Pieces multi = split_1d("m", DType::f32, {3, 7, 2});
  multi[0].push_back(multi[2][0]);
  multi[2] = {multi[1][0]};
  multi[1].clear();
  multi.resize(4);
  EXPECT_EQ(validation_error(multi), "");
  // A 0-d tensor with one main replica.
  Pieces scalar(3);
  for (int r = 0; r < 3; ++r)
    scalar[r].push_back(ShardedPiece::from_rank_offsets("step", DType::f32, {}, {}, {r}));
  EXPECT_EQ(validation_error(scalar), "");
}

TEST(ValidateSharding, DoesNotMaterialiseHugeTensors) {
  // 2^40 elements in 8 uneven pieces: the sweep looks at 9 edges, not at elements.
  const int64_t n = int64_t(1) << 37;
  EXPECT_EQ(validation_error(split_1d("huge", DType::f32, {n, n, n, n, n, n, n - 5, n + 5})), "");
  Pieces broken = split_1d("huge", DType::f32, {n, n, n, n, n, n, n - 5, n + 5});
  broken[7][0].global_offset = {7 * n - 4};
  broken[7][0].local_shape = {n + 4};
  EXPECT_NE(validation_error(broken).find("hole at global index (" + std::to_string(7 * n - 5) + ")"),
            std::string::npos);
}

TEST(ValidateSharding, RejectsOverlapHoleAndTwoMainReplicas) {
  Pieces overlap = split_1d("w", DType::f32, {5, 5});
  overlap[1][0].global_offset = {4};
  overlap[1][0].local_shape = {6};
  std::string err = validation_error(overlap);
  EXPECT_NE(err.find("Invalid access pattern for key 'w'"), std::string::npos) << err;
  EXPECT_NE(err.find("overlap at global index (4)"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 0"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 1"), std::string::npos) << err;

  Pieces hole = split_1d("w", DType::f32, {4, 6});
  hole[1][0].global_offset = {5};
  hole[1][0].local_shape = {5};
  err = validation_error(hole);
  EXPECT_NE(err.find("Invalid access pattern for key 'w': hole at global index (4)"), std::string::npos)
      << err;

  Pieces two_main(2);
  for (int r = 0; r < 2; ++r)
    two_main[r].push_back(ShardedPiece::from_rank_offsets("keyA", DType::f32, {2, 4}, {}));
  err = validation_error(two_main);
  EXPECT_NE(err.find("Invalid access pattern for key 'keyA': overlap at global index (0, 0)"),
            std::string::npos)
      << err;

  Pieces none(2);  // replicas only: nothing gets written
  for (int r = 0; r < 2; ++r)
    none[r].push_back(ShardedPiece::from_rank_offsets("keyA", DType::f32, {2, 4}, {}, {r + 1}));
  err = validation_error(none);
  EXPECT_NE(err.find("hole at global index (0, 0): no main replica"), std::string::npos) << err;
}

TEST(ValidateSharding, NamesTheFirstHoleInAGrid) {
  Pieces pieces = grid("w", DType::f32, {2, 4}, {2, 4});  // rank = 4*row + col
  pieces[6].clear();                                      // the cell at (1, 2)
  EXPECT_NE(validation_error(pieces).find("hole at global index (1, 2)"), std::string::npos);
  pieces = grid("w", DType::f32, {4, 8}, {2, 4});
  pieces[5][0].replica_id = {1};  // rows [2,4), cols [2,4)
  EXPECT_NE(validation_error(pieces).find("hole at global index (2, 2)"), std::string::npos);
}

TEST(ValidateSharding, RejectsDifferentDtypeOrGlobalShape) {
  Pieces pieces = split_1d("w", DType::f32, {4, 4});
  pieces[1][0].dtype = DType::bf16;
  std::string err = validation_error(pieces);
  EXPECT_NE(err.find("key 'w'"), std::string::npos) << err;
  EXPECT_NE(err.find("bf16"), std::string::npos) << err;
  pieces = split_1d("w", DType::f32, {4, 4});
  pieces[1][0].global_shape = {12};
  err = validation_error(pieces);
  EXPECT_NE(err.find("global shape (12)"), std::string::npos) << err;
}

// Random partitions of small 1-3-D shapes, sometimes broken; the verdict and the reported index
// must match a brute-force count of main replicas per element (the first bad one, row-major).
TEST(ValidateSharding, MatchesBruteForceOnRandomLayouts) {
  std::mt19937 rng(1234);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int passes = 0, overlaps = 0, holes = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const size_t ndim = size_t(uniform(1, 3));
    TensorShape global(ndim);
    for (auto& g : global) g = uniform(1, 5);
    std::vector<Box> boxes{{TensorShape(ndim, 0), global}};
    for (int split = 0; split < 6; ++split) {  // split a random box along a random axis
      Box& b = boxes[size_t(uniform(0, int64_t(boxes.size()) - 1))];
      const size_t axis = size_t(uniform(0, int64_t(ndim) - 1));
      if (b.shape[axis] < 2) continue;
      const int64_t cut = uniform(1, b.shape[axis] - 1);
      Box upper = b;
      upper.offset[axis] += cut;
      upper.shape[axis] -= cut;
      b.shape[axis] = cut;
      boxes.push_back(upper);
    }
    Box& victim = boxes[size_t(uniform(0, int64_t(boxes.size()) - 1))];
    const size_t axis = size_t(uniform(0, int64_t(ndim) - 1));
    switch (uniform(0, 3)) {
      case 0: break;                                      // exact partition
      case 1: boxes.push_back(victim); break;             // a second main replica
      case 2: boxes.erase(boxes.begin()); break;          // a missing piece
      case 3:                                             // grow or shrink one piece
        if (victim.offset[axis] + victim.shape[axis] < global[axis]) ++victim.shape[axis];
        else --victim.shape[axis];
        break;
    }
    if (boxes.empty()) continue;  // no key at all: nothing to validate
    Pieces pieces(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) {
      ShardedPiece p;
      p.key = "rand";
      p.local_shape = boxes[i].shape;
      p.global_shape = global;
      p.global_offset = boxes[i].offset;
      pieces[i].push_back(p);
    }
    // Brute force: count covers of every element; find the first element not covered once.
    std::vector<int> count(size_t(shape_numel(global)), 0);
    for (const Box& b : boxes)
      for (int64_t i = 0; i < shape_numel(global); ++i) {
        bool inside = true;
        for (size_t a = 0, rest = size_t(i); a < ndim; ++a) {
          const int64_t stride = shape_numel(TensorShape(global.begin() + a + 1, global.end()));
          const int64_t coord = int64_t(rest) / stride;
          rest %= size_t(stride);
          inside &= coord >= b.offset[a] && coord < b.offset[a] + b.shape[a];
        }
        count[size_t(i)] += inside;
      }
    const auto bad = std::find_if(count.begin(), count.end(), [](int c) { return c != 1; });
    const std::string err = validation_error(pieces);
    if (bad == count.end()) {
      EXPECT_EQ(err, "") << "trial " << trial;
      ++passes;
      continue;
    }
    TensorShape coord(ndim);
    for (size_t a = ndim, rest = size_t(bad - count.begin()); a-- > 0;) {
      coord[a] = int64_t(rest % size_t(global[a]));
      rest /= size_t(global[a]);
    }
    const std::string expected =
        std::string(*bad == 0 ? "hole" : "overlap") + " at global index " + shape_str(coord);
    (*bad == 0 ? holes : overlaps)++;
    EXPECT_NE(err.find(expected), std::string::npos) << "trial " << trial << ": " << err
                                                     << " (expected " << expected << ")";
  }
  EXPECT_GT(passes, 100);  // every kind of verdict was exercised
  EXPECT_GT(overlaps, 100);
  EXPECT_GT(holes, 100);
}

// --- fully-parallel save distribution (distribute_shards_to_ranks) -----------------------------

// test_fully_parallel.py get_sharded_state_dict() on global rank `rank`, TP2 over 8 ranks.
std::vector<ShardedPiece> fully_parallel_state(int rank) {
  const int tp = rank % 2, dp = rank / 2;
  return {
      ShardedPiece::from_rank_offsets("key_TP_repl1", DType::f32, {10}, {{0, tp, 2}}, {dp}),
      ShardedPiece::from_rank_offsets("key_TP_repl2", DType::f32, {10}, {{0, tp, 2}}, {dp}),
      ShardedPiece::from_rank_offsets("keyB", DType::f32, {20}, {{0, rank, 8}}),
      ShardedPiece::from_rank_offsets("keyC", DType::f32, {100}, {}, {rank}),
      ShardedPiece::from_rank_offsets("keyD", DType::f32, {1000}, {}, {rank}),
      ShardedPiece::from_rank_offsets("keyE", DType::f32, {100}, {}, {rank}),
  };
}

// Megatron's map_reduce(main_rank_for_shard, key): key -> writing ranks, in shard order.
std::map<std::string, std::vector<int>> ranks_by_key(const ShardDistribution& d) {
  std::map<std::string, std::vector<int>> out;
  for (const auto& [id, rank] : d.main_rank_for_shard) out[id.key].push_back(rank);
  return out;
}

using KeyRanks = std::map<std::string, std::vector<int>>;

TEST(FullyParallel, WorldGroupSaveMatchesMegatron) {
  Pieces pieces;
  for (int r = 0; r < 8; ++r) pieces.push_back(fully_parallel_state(r));
  const ShardDistribution d = determine_main_replica_distribution(pieces);
  const KeyRanks expected = {
      {"keyB", {0, 1, 2, 3, 4, 5, 6, 7}},  // disjoint shards, coverage 1
      {"key_TP_repl1", {0, 1}},            // coverage 4, first TP domain
      {"key_TP_repl2", {2, 3}},            // coverage 4, second TP domain
      {"keyD", {4}},                       // largest replicated tensor
      {"keyC", {5}},                       // then by shard id
      {"keyE", {6}},
  };
  EXPECT_EQ(ranks_by_key(d), expected);
  EXPECT_EQ(d.ranks_for_shard.at({"key_TP_repl1", {10}}), (std::vector<int>{1, 3, 5, 7}));

  // After marking, every shard has exactly one main replica and each rank writes what was assigned.
  for (int r = 0; r < 8; ++r) apply_distribution(pieces[r], r, d);
  EXPECT_EQ(validation_error(pieces), "");
  for (int r = 0; r < 8; ++r)
    for (const ShardedPiece& p : pieces[r]) {
      const auto& writers = expected.at(p.key);
      EXPECT_EQ(p.is_main_replica(), std::count(writers.begin(), writers.end(), r) == 1)
          << p.key << " on rank " << r;
    }
}

TEST(FullyParallel, DataParallelGroupsMatchMegatron) {
  auto group = [](int tp) {  // DP group of TP rank tp: global ranks tp, tp+2, tp+4, tp+6
    Pieces pieces;
    for (int dp = 0; dp < 4; ++dp) pieces.push_back(fully_parallel_state(2 * dp + tp));
    return pieces;
  };
  const KeyRanks tp0 = {{"keyB", {0, 1, 2, 3}}, {"keyD", {0}},         {"keyC", {1}},
                        {"keyE", {2}},          {"key_TP_repl1", {3}}, {"key_TP_repl2", {3}}};
  EXPECT_EQ(ranks_by_key(determine_main_replica_distribution(group(0))), tp0);
  // Save: C, D, E have their main replica outside this group, so it leaves them alone.
  EXPECT_EQ(ranks_by_key(determine_main_replica_distribution(group(1))),
            (KeyRanks{{"keyB", {0, 1, 2, 3}}, {"key_TP_repl1", {0}}, {"key_TP_repl2", {1}}}));
  // Load (test_load_distribution, aligned): cross-group reads C, D, E are assigned last.
  EXPECT_EQ(ranks_by_key(determine_main_replica_distribution(group(0), true)), tp0);
  EXPECT_EQ(ranks_by_key(determine_main_replica_distribution(group(1), true)),
            (KeyRanks{{"keyB", {0, 1, 2, 3}},
                      {"key_TP_repl1", {0}},
                      {"key_TP_repl2", {1}},
                      {"keyD", {2}},
                      {"keyC", {3}},
                      {"keyE", {0}}}));
}

TEST(FullyParallel, TiesGoToTheLowerRank) {
  const ShardId a{"a", {0}}, b{"b", {0}};
  const auto assignment = distribute_shards_to_ranks({{a, {3, 1}}, {b, {1, 3}}}, {{a, 8}, {b, 8}}, 4);
  EXPECT_EQ(assignment.at(a), 1);  // both idle: lower rank
  EXPECT_EQ(assignment.at(b), 3);  // rank 1 now holds 8 bytes
  EXPECT_THROW(distribute_shards_to_ranks({{a, {4}}}, {{a, 8}}, 4), RuntimeError);
}

// --- hyper-rectangles and byte ranges ----------------------------------------------------------

TEST(Intersect, Examples) {
  auto box = intersect({0}, {5}, {3}, {7});
  ASSERT_TRUE(box);
  EXPECT_EQ(box->offset, TensorShape{3});
  EXPECT_EQ(box->shape, TensorShape{2});
  EXPECT_FALSE(intersect({0}, {5}, {5}, {1}));  // touching is not intersecting
  EXPECT_FALSE(intersect({0}, {0}, {0}, {4}));  // empty piece
  box = intersect({0, 2}, {4, 4}, {1, 0}, {2, 3});
  ASSERT_TRUE(box);
  EXPECT_EQ(box->offset, (TensorShape{1, 2}));
  EXPECT_EQ(box->shape, (TensorShape{2, 1}));
  box = intersect({1, 0, 4}, {1, 5, 4}, {0, 2, 0}, {4, 2, 6});
  ASSERT_TRUE(box);
  EXPECT_EQ(box->offset, (TensorShape{1, 2, 4}));
  EXPECT_EQ(box->shape, (TensorShape{1, 2, 2}));
  EXPECT_FALSE(intersect({0, 0, 0}, {2, 2, 2}, {0, 2, 0}, {2, 2, 2}));
  box = intersect({}, {}, {}, {});  // 0-d: the single element
  ASSERT_TRUE(box);
  EXPECT_EQ(box->numel(), 1);
  EXPECT_THROW(intersect({0}, {1}, {0, 0}, {1, 1}), RuntimeError);
}

TEST(CopyRanges, CoalescesWholeRowsAndBlocks) {
  // Rows 1..2 of a (4,6) fp32 piece into the same layout: one range.
  auto ranges = copy_ranges({{1, 0}, {2, 6}}, {0, 0}, {4, 6}, 1000, {0, 0}, {4, 6}, 4);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].src_offset, 1000 + 6 * 4);
  EXPECT_EQ(ranges[0].length, 2 * 6 * 4);
  EXPECT_EQ(ranges[0].dst_offset, 6 * 4);
  // Columns 2..3 of each row: one range per row.
  ranges = copy_ranges({{0, 2}, {3, 2}}, {0, 0}, {3, 6}, 0, {0, 2}, {3, 2}, 2);
  ASSERT_EQ(ranges.size(), 3u);
  for (int64_t row = 0; row < 3; ++row) {
    EXPECT_EQ(ranges[row].src_offset, (row * 6 + 2) * 2);
    EXPECT_EQ(ranges[row].length, 4);
    EXPECT_EQ(ranges[row].dst_offset, row * 4);
  }
  // A (1,3,4) slab of a (2,3,4) piece is one block, whatever the leading offset.
  ranges = copy_ranges({{1, 0, 0}, {1, 3, 4}}, {0, 0, 0}, {2, 3, 4}, 8, {1, 0, 0}, {1, 3, 4}, 4);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].src_offset, 8 + 12 * 4);
  EXPECT_EQ(ranges[0].length, 12 * 4);
  EXPECT_TRUE(copy_ranges({{0}, {0}}, {0}, {4}, 0, {0}, {4}, 4).empty());
  EXPECT_THROW(copy_ranges({{3}, {2}}, {0}, {4}, 0, {0}, {8}, 4), RuntimeError);  // leaves src
}

// Random source piece, destination piece and their intersection in a small global shape: the
// ranges must copy exactly the box, read nothing else, and be as few as a row-major walk allows.
TEST(CopyRanges, MatchBruteForceIn1d2d3d) {
  std::mt19937 rng(99);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int checked = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t ndim = size_t(1 + trial % 3);
    TensorShape global(ndim), so(ndim), ss(ndim), dof(ndim), ds(ndim);
    for (size_t a = 0; a < ndim; ++a) {
      global[a] = uniform(1, 6);
      so[a] = uniform(0, global[a] - 1);
      ss[a] = uniform(1, global[a] - so[a]);
      dof[a] = uniform(0, global[a] - 1);
      ds[a] = uniform(1, global[a] - dof[a]);
    }
    const std::optional<Box> box = intersect(so, ss, dof, ds);
    if (!box) continue;
    ++checked;
    const int64_t base = 4 * uniform(0, 5);  // the piece's first byte in its file
    const auto ranges = copy_ranges(*box, so, ss, base, dof, ds, 4);

    // Element value = its global linear index; the file holds the source piece after `base`.
    auto linear = [&](const TensorShape& off, const TensorShape& shape, int64_t i) {
      int64_t g = 0;
      for (size_t a = ndim, rest = size_t(i); a-- > 0;) {
        const int64_t coord = off[a] + int64_t(rest % size_t(shape[a]));
        rest /= size_t(shape[a]);
        g += coord * shape_numel(TensorShape(global.begin() + a + 1, global.end()));
      }
      return g;
    };
    std::vector<int32_t> file(size_t(base / 4 + shape_numel(ss)), -7);
    for (int64_t i = 0; i < shape_numel(ss); ++i) file[size_t(base / 4 + i)] = int32_t(linear(so, ss, i));
    std::vector<int32_t> dst(size_t(shape_numel(ds)), -1);
    int64_t bytes = 0;
    for (const ByteRange& r : ranges) {
      ASSERT_GE(r.src_offset, base);
      ASSERT_LE(r.src_offset + r.length, int64_t(file.size()) * 4);
      ASSERT_GE(r.dst_offset, 0);
      ASSERT_LE(r.dst_offset + r.length, int64_t(dst.size()) * 4);
      std::memcpy(reinterpret_cast<char*>(dst.data()) + r.dst_offset,
                  reinterpret_cast<const char*>(file.data()) + r.src_offset, size_t(r.length));
      bytes += r.length;
    }
    EXPECT_EQ(bytes, box->numel() * 4);
    // Brute force: each destination element holds its own value inside the box, -1 outside; count
    // the breaks in a row-major walk of the box (src or dst not adjacent) for the minimal ranges.
    size_t min_ranges = 0;
    int64_t prev_src = -2, prev_dst = -2;
    for (int64_t i = 0; i < shape_numel(ds); ++i) {
      const int64_t g = linear(dof, ds, i);
      TensorShape coord(ndim);
      for (size_t a = ndim, rest = size_t(i); a-- > 0;) {
        coord[a] = dof[a] + int64_t(rest % size_t(ds[a]));
        rest /= size_t(ds[a]);
      }
      bool inside = true;
      int64_t src_pos = 0;
      for (size_t a = 0; a < ndim; ++a) {
        inside &= coord[a] >= box->offset[a] && coord[a] < box->offset[a] + box->shape[a];
        src_pos = src_pos * ss[a] + (coord[a] - so[a]);
      }
      EXPECT_EQ(dst[size_t(i)], inside ? g : -1) << "trial " << trial << " element " << i;
      if (inside) {
        if (src_pos != prev_src + 1 || i != prev_dst + 1) ++min_ranges;
        prev_src = src_pos;
        prev_dst = i;
      }
    }
    EXPECT_EQ(ranges.size(), min_ranges) << "trial " << trial;
  }
  EXPECT_GT(checked, 1500);
}

// --- checkpoint element values -----------------------------------------------------------------

TEST(CkptValue, ExactAndDistinctPerDtype) {
  const uint64_t ha = key_hash("decoder.layers.0.mlp.linear_fc1.weight");
  const uint64_t hb = key_hash("decoder.layers.0.mlp.linear_fc2.weight");
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const int64_t window = dtype == DType::f32 ? (int64_t(1) << 20) : (int64_t(1) << 15);
    std::unordered_set<float> seen;
    for (int64_t i = 0; i < window; ++i) {
      const float v = ckpt_value(dtype, ha, 1000 + i);
      ASSERT_TRUE(std::isfinite(v));
      ASSERT_EQ(round_to(dtype, v), v) << dtype_name(dtype) << " index " << i;
      if (dtype == DType::f32) {
        ASSERT_EQ(v, std::trunc(v));  // an integer below 2^24
      }
      ASSERT_TRUE(seen.insert(v).second) << dtype_name(dtype) << " repeats at index " << i;
      if (i < 4096) {
        ASSERT_NE(v, ckpt_value(dtype, hb, 1000 + i)) << "keys agree at " << i;
      }
    }
  }
  EXPECT_EQ(ckpt_value(ha, 77), ckpt_value(DType::f32, ha, 77));
  EXPECT_LE(std::fabs(ckpt_value(ha, 5)), 16777216.0f);
}

TEST(CkptValue, FillMatchesPointValues) {
  const uint64_t h = key_hash("keyB");
  const TensorShape global{4, 5, 80}, offset{1, 2, 30}, shape{2, 3, 10};
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    std::vector<char> buf(size_t(shape_numel(shape)) * dtype_size(dtype));
    fill_ckpt_values(dtype, h, global, offset, shape, buf.data());
    size_t i = 0;
    for (int64_t x = 0; x < 2; ++x)
      for (int64_t y = 0; y < 3; ++y)
        for (int64_t z = 0; z < 10; ++z, ++i) {
          const int64_t g = ((1 + x) * 5 + (2 + y)) * 80 + (30 + z);
          ASSERT_EQ(load_elem(dtype, buf.data(), i), ckpt_value(dtype, h, g));
        }
  }
  EXPECT_THROW(fill_ckpt_values(DType::f32, h, global, {3, 0, 0}, {2, 1, 1}, nullptr), RuntimeError);
}

// The fill generates rows in 32-bit arithmetic (vectorized); the closed form is defined in 64 bits:
// fp32 element i is ((i * ((h >> 32) | 1) + h) mod 2^25) - 2^24. Long rows (vector body and tail)
// and indices across 2^32 must agree with that definition bit for bit.
TEST(CkptValue, FillMatchesThe64BitDefinitionAcross2To32) {
  const uint64_t h = key_hash("decoder.layers.3.self_attention.linear_qkv.weight");
  const int64_t first = (int64_t(1) << 32) - 1001, n = 2003;  // a row that crosses 2^32
  std::vector<float> row(static_cast<size_t>(n));
  fill_ckpt_values(DType::f32, h, {int64_t(1) << 33}, {first}, {n}, row.data());
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t code = (uint64_t(first + j) * ((h >> 32) | 1) + h) & ((uint64_t(1) << 25) - 1);
    const float expected = float(int64_t(code) - (int64_t(1) << 24));
    ASSERT_EQ(row[size_t(j)], expected) << "index " << first + j;
    ASSERT_EQ(ckpt_value(h, first + j), expected) << "index " << first + j;
  }
  for (DType dtype : {DType::bf16, DType::f16}) {
    std::vector<uint16_t> half(static_cast<size_t>(n));
    fill_ckpt_values(dtype, h, {int64_t(1) << 33}, {first}, {n}, half.data());
    for (int64_t j = 0; j < n; ++j)
      ASSERT_EQ(load_elem(dtype, half.data(), size_t(j)), ckpt_value(dtype, h, first + j)) << "index " << first + j;
  }
}

// --- index file ----------------------------------------------------------------------------------

// Every main replica of pieces_by_rank written to in-memory files, binned over `writers` per rank,
// with its index round-tripped through the text format as a loader would read it.
struct SavedCheckpoint {
  CheckpointIndex index;
  std::map<std::string, std::vector<char>> files;
};

SavedCheckpoint save_checkpoint(const Pieces& pieces_by_rank, int writers, int64_t step = 10) {
  validate_sharding(pieces_by_rank);
  std::vector<IndexEntry> entries;
  std::map<std::string, std::vector<char>> files;
  for (size_t r = 0; r < pieces_by_rank.size(); ++r) {
    std::vector<const ShardedPiece*> mains;
    std::vector<WriteItem> items;
    for (const ShardedPiece& p : pieces_by_rank[r])
      if (p.is_main_replica()) {
        mains.push_back(&p);
        items.push_back({p.bytes()});
      }
    for (const WriterFile& file : plan_writer_files(int(r), items, writers)) {
      std::vector<char>& bytes = files[file.name];
      for (size_t i : file.items) {
        const ShardedPiece& p = *mains[i];
        std::vector<char> data(size_t(p.bytes()));
        fill_ckpt_values(p.dtype, key_hash(p.key), p.global_shape, p.global_offset, p.box_shape(),
                         data.data());
        entries.push_back(make_index_entry(p, file.name, int64_t(bytes.size()),
                                           xxh64_checksum(data.data(), data.size())));
        bytes.insert(bytes.end(), data.begin(), data.end());
      }
    }
  }
  const CheckpointIndex index(int(pieces_by_rank.size()), step, entries);
  return {CheckpointIndex::parse(index.serialize(), "test.index"), std::move(files)};
}

// Reads [offset, offset+shape) of key the way a loader would and checks that every element is
// written exactly once, only bytes of intersecting pieces are read, and the values are the saved ones.
void expect_loads_exactly(const SavedCheckpoint& ckpt, const std::string& key, DType dtype,
                          const TensorShape& offset, const TensorShape& shape) {
  SCOPED_TRACE(key + " at " + shape_str(offset) + " shape " + shape_str(shape));
  const int64_t eb = int64_t(dtype_size(dtype)), n = shape_numel(shape);
  std::vector<char> out(size_t(n * eb), 0);
  std::vector<int> writes(size_t(n), 0);
  for (const PieceRead& read : plan_read(ckpt.index, key, dtype, offset, shape)) {
    const IndexEntry& e = *read.entry;
    const std::vector<char>& file = ckpt.files.at(e.file);
    ASSERT_LE(e.byte_offset + e.byte_length, int64_t(file.size()));
    EXPECT_EQ(xxh64_checksum(file.data() + e.byte_offset, size_t(e.byte_length)), e.checksum);
    for (const ByteRange& r : read.ranges) {
      ASSERT_GE(r.src_offset, e.byte_offset);
      ASSERT_LE(r.src_offset + r.length, e.byte_offset + e.byte_length);
      ASSERT_EQ(r.length % eb, 0);
      std::memcpy(out.data() + r.dst_offset, file.data() + r.src_offset, size_t(r.length));
      for (int64_t i = r.dst_offset / eb; i < (r.dst_offset + r.length) / eb; ++i) ++writes[size_t(i)];
    }
  }
  EXPECT_EQ(std::count(writes.begin(), writes.end(), 1), n) << "elements not written exactly once";
  std::vector<char> expected(out.size());
  fill_ckpt_values(dtype, key_hash(key), ckpt.index.lookup(key).front()->global_shape, offset, shape,
                   expected.data());
  EXPECT_EQ(out, expected);
}

TEST(Resharding, EveryUnevenSplitPairLoadsEachElementOnce) {
  // Megatron's test_uneven_1d_sharding: every save split to every load split of the same length
  // (24: [3]*8, [2]*7+[10], [1]*6+[2,16]; 33; 30 with empty shards; 15; 36).
  int pairs = 0;
  for (const auto& saved_sizes : kUnevenSplits)
    for (const auto& load_sizes : kUnevenSplits) {
      const auto total = [](const std::vector<int64_t>& s) {
        return std::accumulate(s.begin(), s.end(), int64_t(0));
      };
      if (total(saved_sizes) != total(load_sizes)) continue;
      ++pairs;
      const SavedCheckpoint ckpt = save_checkpoint(split_1d("w", DType::f32, saved_sizes), 2);
      for (const auto& rank_pieces : split_1d("w", DType::f32, load_sizes))
        for (const ShardedPiece& p : rank_pieces)
          expect_loads_exactly(ckpt, "w", DType::f32, p.global_offset, p.local_shape);
    }
  EXPECT_EQ(pairs, 3 * 3 + 2 * 2 + 2 * 2 + 3 * 3 + 1);
}

TEST(Resharding, PartitionChangeTp2Pp4ToTp1Pp2) {
  // test_partition_change_save_load: keyA (2,4) one element per rank, keyB (4,5,80) cut on axis 2.
  Pieces saved = grid("keyA", DType::bf16, {2, 4}, {2, 4});
  for (int r = 0; r < 8; ++r)
    saved[r].push_back(ShardedPiece::from_rank_offsets("keyB", DType::f16, {4, 5, 10}, {{2, r, 8}}));
  const SavedCheckpoint ckpt = save_checkpoint(saved, 1);
  expect_loads_exactly(ckpt, "keyA", DType::bf16, {0, 0}, {2, 4});  // full tensors everywhere
  expect_loads_exactly(ckpt, "keyB", DType::f16, {0, 0, 0}, {4, 5, 80});
  for (int rank = 0; rank < 8; ++rank) {  // TP1xPP2: keyA column dp_rank, keyB slab rank//2
    const ShardedPiece column = ShardedPiece::from_rank_offsets("keyA", DType::bf16, {2, 1},
                                                                {{1, rank % 4, 4}}, {rank / 4});
    expect_loads_exactly(ckpt, "keyA", DType::bf16, column.global_offset, column.box_shape());
    const ShardedPiece slab = ShardedPiece::from_rank_offsets("keyB", DType::f16, {5, 80},
                                                              {{0, rank / 2, 4}}, {rank % 2}, 1);
    const std::vector<PieceRead> reads = plan_read(ckpt.index, slab);
    EXPECT_EQ(reads.size(), 8u);  // one 10-wide strip from every saved piece
    expect_loads_exactly(ckpt, "keyB", DType::f16, slab.global_offset, slab.box_shape());
  }
}

TEST(Resharding, GridToGridIn2dAnd3d) {
  const std::vector<TensorShape> grids2d = {{2, 4}, {4, 2}, {1, 1}, {8, 1}, {1, 8}, {2, 2}, {4, 4}};
  for (const TensorShape& from : grids2d) {
    const SavedCheckpoint ckpt = save_checkpoint(grid("w", DType::f32, {8, 16}, from, 2), 2);
    for (const TensorShape& to : grids2d)
      for (const auto& rank_pieces : grid("w", DType::f32, {8, 16}, to))
        expect_loads_exactly(ckpt, "w", DType::f32, rank_pieces[0].global_offset,
                             rank_pieces[0].local_shape);
  }
  const SavedCheckpoint ckpt3 = save_checkpoint(grid("qkv", DType::bf16, {4, 6, 8}, {2, 1, 4}), 3);
  for (const TensorShape& to : std::vector<TensorShape>{{1, 3, 2}, {4, 2, 1}, {2, 2, 2}, {1, 1, 1}})
    for (const auto& rank_pieces : grid("qkv", DType::bf16, {4, 6, 8}, to))
      expect_loads_exactly(ckpt3, "qkv", DType::bf16, rank_pieces[0].global_offset,
                           rank_pieces[0].local_shape);
}

TEST(Resharding, PlanReadRejectsWhatTheCheckpointCannotServe) {
  const SavedCheckpoint ckpt = save_checkpoint(grid("keyA", DType::f32, {2, 32}, {1, 8}), 1);
  EXPECT_THROW(plan_read(ckpt.index, "nope", DType::f32, {0, 0}, {1, 1}), CheckpointingError);
  EXPECT_THROW(plan_read(ckpt.index, "keyA", DType::bf16, {0, 0}, {1, 1}), CheckpointingError);
  // test_tensor_shape_mismatch: a rigid (2,9) piece per PP rank over 4 ranks asks for 36 > 32.
  EXPECT_THROW(plan_read(ckpt.index, "keyA", DType::f32, {0, 27}, {2, 9}), CheckpointingError);
  EXPECT_THROW(plan_read(ckpt.index, "keyA", DType::f32, {0}, {2}), CheckpointingError);
  EXPECT_EQ(plan_read(ckpt.index, "keyA", DType::f32, {0, 19}, {2, 7}).size(), 3u);  // cols 16.., 20.., 24..
}

// Two keys, three pieces: the exact text of the documented format.
CheckpointIndex small_index() {
  return CheckpointIndex(2, 100,
                         {{"b.bias", DType::bf16, {6}, {0}, {6}, "__1_0", 0, 12, 0xabcdefull},
                          {"a.weight", DType::f32, {2, 4}, {1, 0}, {1, 4}, "__1_0", 12, 16, 2},
                          {"a.weight", DType::f32, {2, 4}, {0, 0}, {1, 4}, "__0_0", 0, 16, 1}});
}

const char* const kSmallIndexText =
    "dtbench-ckpt-index 1\n"
    "world_size 2\n"
    "step 100\n"
    "pieces 3\n"
    "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 16 0000000000000001\n"
    "a.weight fp32 [2,4] [1,0] [1,4] __1_0 12 16 0000000000000002\n"
    "b.bias bf16 [6] [0] [6] __1_0 0 12 0000000000abcdef\n"
    "end\n";

TEST(CheckpointIndex, SerializesTheDocumentedFormat) {
  EXPECT_EQ(small_index().serialize(), kSmallIndexText);
}

TEST(CheckpointIndex, RoundTripAndLookup) {
  const SavedCheckpoint ckpt = save_checkpoint(
      merge(merge(grid("keyA", DType::bf16, {2, 4}, {2, 4}), split_1d("w", DType::f32, {5, 0, 5, 0, 5, 5, 3, 7})),
            grid("qkv", DType::f16, {4, 6, 8}, {2, 1, 4})),
      3, 1234);
  const CheckpointIndex& index = ckpt.index;
  EXPECT_EQ(index.world_size(), 8);
  EXPECT_EQ(index.step(), 1234);
  EXPECT_EQ(index.keys(), (std::set<std::string>{"keyA", "qkv", "w"}));
  EXPECT_EQ(index.lookup("keyA").size(), 8u);
  EXPECT_EQ(index.lookup("w").size(), 8u);  // empty pieces are recorded too
  EXPECT_TRUE(index.lookup("absent").empty());
  const std::vector<const IndexEntry*> w = index.lookup("w");
  for (size_t i = 1; i < w.size(); ++i) EXPECT_LE(w[i - 1]->global_offset, w[i]->global_offset);
  const CheckpointIndex again = CheckpointIndex::parse(index.serialize(), "again");
  EXPECT_EQ(again.serialize(), index.serialize());
  ASSERT_EQ(again.entries().size(), index.entries().size());
  for (size_t i = 0; i < index.entries().size(); ++i) {
    const IndexEntry &x = index.entries()[i], &y = again.entries()[i];
    EXPECT_EQ(std::tie(x.key, x.global_shape, x.global_offset, x.local_shape, x.file, x.byte_offset,
                       x.byte_length, x.checksum),
              std::tie(y.key, y.global_shape, y.global_offset, y.local_shape, y.file, y.byte_offset,
                       y.byte_length, y.checksum));
    EXPECT_EQ(x.dtype, y.dtype);
  }
}

TEST(CheckpointIndex, ReadsAFileAndNamesAMissingOne) {
  const std::string path = ::testing::TempDir() + "dtbench_sharded_index_test.index";
  {
    std::ofstream out(path);
    out << kSmallIndexText;
  }
  EXPECT_EQ(CheckpointIndex::read(path).serialize(), kSmallIndexText);
  std::remove(path.c_str());
  try {
    CheckpointIndex::read(path);
    ADD_FAILURE() << "read a missing file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// Replaces line `line` (1-based) of kSmallIndexText; an empty replacement removes the line.
std::string with_line(int line, const std::string& replacement) {
  std::istringstream in(kSmallIndexText);
  std::string text, current;
  for (int n = 1; std::getline(in, current); ++n) {
    if (n != line) text += current + "\n";
    else if (!replacement.empty()) text += replacement + "\n";
  }
  return text;
}

TEST(CheckpointIndex, RejectsMalformedLinesNamingFileAndLine) {
  struct Case {
    std::string text;
    std::string location;  // "idx:<line>:" or "idx:" for whole-index problems
    std::string problem;
  };
  const std::string a0 = "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 16 0000000000000001";
  const std::string text = kSmallIndexText;
  const std::vector<Case> cases = {
      {"", "idx:1:", "not a dtbench checkpoint index"},
      {with_line(1, "dtbench-ckpt-index"), "idx:1:", "not a dtbench checkpoint index"},
      {with_line(1, "dtbench-ckpt-index 2"), "idx:1:", "unsupported index format version"},
      {with_line(2, "world_size 0"), "idx:2:", "world_size"},
      {with_line(2, "world_size two"), "idx:2:", "world_size"},
      {with_line(3, "step -1"), "idx:3:", "step"},
      {with_line(3, "steps 1"), "idx:3:", "step"},
      {with_line(4, "pieces"), "idx:4:", "pieces"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 16"), "idx:5:", "expected 9"},
      {with_line(5, "a.weight  fp32 [2,4] [0,0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "expected 9"},
      {with_line(5, "a.weight fp64 [2,4] [0,0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "unknown dtype 'fp64'"},
      {with_line(5, "a.weight fp32 [2,x] [0,0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "bad global_shape"},
      {with_line(5, "a.weight fp32 (2,4) [0,0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "bad global_shape"},
      {with_line(5, "a.weight fp32 [2,4] [0,-1] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "bad global_offset"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4,] __0_0 0 16 0000000000000001"), "idx:5:",
       "bad local_shape"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0x0 16 0000000000000001"), "idx:5:",
       "bad byte_offset"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 +16 0000000000000001"), "idx:5:",
       "bad byte_length"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 16 000000000000001"), "idx:5:",
       "bad xxh64"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 16 000000000000000A"), "idx:5:",
       "bad xxh64"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] rank0_0 0 16 0000000000000001"), "idx:5:",
       "file name 'rank0_0'"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __2_0 0 16 0000000000000001"), "idx:5:",
       "rank < 2"},
      {with_line(5, "a.weight fp32 [2,4] [0,0] [1,4] __0_0 0 32 0000000000000001"), "idx:5:",
       "expected offset >= 0 and 16 bytes"},
      {with_line(5, "a.weight fp32 [2,4] [0,1] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "leaves global shape"},
      {with_line(5, "a.weight fp32 [2,4] [0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "different numbers of axes"},
      // Found by the ckpt_index fuzz target: the whole tensor must be countable in int64.
      {with_line(6, "a.weight fp32 [2777,777777000000777774] [1,0] [1,4] __1_0 12 16 0000000000000002"),
       "idx:6:", "global shape (2777, 777777000000777774) of key 'a.weight' has more elements than int64"},
      {with_line(5, "a weight fp32 [2,4] [0,0] [1,4] __0_0 0 16 0000000000000001"), "idx:5:",
       "expected 9"},
      {with_line(4, "pieces 4"), "idx:8:", "truncated: expected 4 piece lines, found 3"},
      {with_line(4, "pieces 2"), "idx:7:", "expected 'end' after 2 pieces"},
      {with_line(8, ""), "idx:8:", "missing 'end'"},  // the writer died before the last line
      {text.substr(0, text.find("b.bias") + 20), "idx:7:", "expected 9"},  // ... or mid-line
      {text + "junk\n", "idx:9:", "unexpected content after 'end'"},
      {text + "\n", "idx:9:", "unexpected content after 'end'"},
      // Lines that parse but contradict each other: the message names both lines.
      {with_line(6, a0), "idx:", "line 6: duplicate piece of key 'a.weight' at global offset (0, 0) (also line 5)"},
      {with_line(6, "a.weight bf16 [2,4] [1,0] [1,4] __1_0 12 8 0000000000000002"), "idx:",
       "line 6: key 'a.weight' is bf16 (2, 4) but line 5 says fp32 (2, 4)"},
      {with_line(6, "a.weight fp32 [2,4] [0,2] [2,2] __1_0 12 16 0000000000000002"), "idx:",
       "Invalid access pattern for key 'a.weight': overlap at global index (0, 2): line 5 and line 6"},
      {with_line(6, "a.weight fp32 [2,4] [1,0] [1,2] __1_0 12 8 0000000000000002"), "idx:",
       "Invalid access pattern for key 'a.weight': hole at global index (1, 2): no piece covers it"},
  };
  for (const Case& c : cases) {
    try {
      CheckpointIndex::parse(c.text, "idx");
      ADD_FAILURE() << "accepted:\n" << c.text;
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(c.location + " ", 0), 0u) << msg << "\n(expected location " << c.location << ")";
      EXPECT_NE(msg.find(c.problem), std::string::npos) << msg << "\n(expected " << c.problem << ")";
    }
  }
  EXPECT_NO_THROW(CheckpointIndex::parse(text.substr(0, text.size() - 1), "idx"));  // no final \n
}

TEST(CheckpointIndex, ConstructorChecksEntries) {
  EXPECT_THROW(CheckpointIndex(0, 0, {}), CheckpointingError);
  EXPECT_THROW(CheckpointIndex(1, -1, {}), CheckpointingError);
  try {
    CheckpointIndex(1, 0, {{"a b", DType::f32, {1}, {0}, {1}, "__0_0", 0, 4, 0}});
    ADD_FAILURE() << "accepted a key with a space";
  } catch (const CheckpointingError& e) {
    EXPECT_NE(std::string(e.what()).find("entry 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(CheckpointIndex(1, 0, {}).serialize(), "dtbench-ckpt-index 1\nworld_size 1\nstep 0\npieces 0\nend\n");
}

// --- strict handling (StrictHandling) ------------------------------------------------------------

TEST(StrictHandling, NamesRoundTrip) {
  const std::vector<std::string> names = {"assume_ok_unexpected", "log_unexpected", "log_all",
                                          "raise_unexpected",     "raise_all",      "return_unexpected",
                                          "return_all",           "ignore_all"};
  for (const std::string& name : names) {
    StrictHandling mode;
    ASSERT_TRUE(parse_strict_handling(name, &mode)) << name;
    EXPECT_EQ(strict_handling_name(mode), name);
  }
  StrictHandling mode;
  EXPECT_FALSE(parse_strict_handling("strict", &mode));
}

// TestNonStrictLoad: TenA, TenB, TenC, ObjA, ObjB saved on every rank.
const std::set<std::string> kSaved = {"TenA", "TenB", "TenC", "ObjA", "ObjB"};
using S = StrictHandling;
using Keys = std::set<std::string>;

std::string strict_error(S mode, const Keys& requested) {
  try {
    apply_strict_handling(mode, requested, requested, kSaved);
  } catch (const CheckpointingError& e) {
    return e.what();
  }
  return "";
}

TEST(StrictHandling, UnexpectedKeys) {
  Keys requested = kSaved;
  requested.insert({"UnexpectedTenD", "UnexpectedObjD"});
  const Keys unexpected = {"UnexpectedTenD", "UnexpectedObjD"};
  // assume_ok: nothing checked; the loader's own lookup fails on the unknown keys later.
  StrictOutcome out = apply_strict_handling(S::assume_ok_unexpected, requested, requested, kSaved);
  EXPECT_EQ(out.keys_to_load, requested);
  EXPECT_TRUE(out.unexpected.empty() && out.missing.empty() && out.warning.empty());
  for (S mode : {S::raise_unexpected, S::raise_all}) {
    const std::string err = strict_error(mode, requested);
    EXPECT_NE(err.find("Unexpected keys"), std::string::npos) << err;
    EXPECT_NE(err.find("UnexpectedTenD"), std::string::npos) << err;
    EXPECT_NE(err.find("UnexpectedObjD"), std::string::npos) << err;
    EXPECT_EQ(err.find("Missing keys"), std::string::npos) << err;
  }
  for (S mode : {S::log_unexpected, S::log_all}) {
    out = apply_strict_handling(mode, requested, requested, kSaved);
    EXPECT_EQ(out.keys_to_load, kSaved);
    EXPECT_NE(out.warning.find("Unexpected keys"), std::string::npos) << out.warning;
    EXPECT_NE(out.warning.find("UnexpectedObjD"), std::string::npos) << out.warning;
    EXPECT_EQ(out.warning.find("Missing keys"), std::string::npos) << out.warning;
    EXPECT_FALSE(out.returns_mismatch);
  }
  for (S mode : {S::return_unexpected, S::return_all}) {
    out = apply_strict_handling(mode, requested, requested, kSaved);
    EXPECT_EQ(out.keys_to_load, kSaved);
    EXPECT_EQ(out.unexpected, unexpected);
    EXPECT_TRUE(out.missing.empty());
    EXPECT_TRUE(out.returns_mismatch);
  }
  out = apply_strict_handling(S::ignore_all, requested, requested, kSaved);
  EXPECT_EQ(out.keys_to_load, kSaved);
  EXPECT_TRUE(out.unexpected.empty() && out.missing.empty() && out.warning.empty());
}

TEST(StrictHandling, MissingKeys) {
  const Keys requested = {"TenB", "TenC", "ObjA"};  // TenA and ObjB not requested by any rank
  for (S mode : {S::assume_ok_unexpected, S::raise_unexpected, S::log_unexpected,
                 S::return_unexpected, S::ignore_all}) {
    const StrictOutcome out = apply_strict_handling(mode, requested, requested, kSaved);
    EXPECT_EQ(out.keys_to_load, requested) << strict_handling_name(mode);
    EXPECT_TRUE(out.missing.empty() && out.unexpected.empty() && out.warning.empty())
        << strict_handling_name(mode);
  }
  const std::string err = strict_error(S::raise_all, requested);
  EXPECT_NE(err.find("Missing keys"), std::string::npos) << err;
  EXPECT_NE(err.find("TenA"), std::string::npos) << err;
  EXPECT_NE(err.find("ObjB"), std::string::npos) << err;
  EXPECT_EQ(err.find("Unexpected keys"), std::string::npos) << err;
  StrictOutcome out = apply_strict_handling(S::log_all, requested, requested, kSaved);
  EXPECT_NE(out.warning.find("Missing keys"), std::string::npos) << out.warning;
  EXPECT_NE(out.warning.find("TenA"), std::string::npos) << out.warning;
  EXPECT_EQ(out.warning.find("Unexpected keys"), std::string::npos) << out.warning;
  EXPECT_EQ(out.missing, (Keys{"TenA", "ObjB"}));
  out = apply_strict_handling(S::return_all, requested, requested, kSaved);
  EXPECT_EQ(out.missing, (Keys{"TenA", "ObjB"}));
  EXPECT_TRUE(out.unexpected.empty());
  EXPECT_TRUE(out.returns_mismatch);
  // Missing means requested by no rank: another rank asking for TenA and ObjB clears it.
  out = apply_strict_handling(S::raise_all, requested, kSaved, kSaved);
  EXPECT_TRUE(out.missing.empty());
}

TEST(StrictHandling, ExactLoadIsQuietInEveryMode) {
  for (S mode : {S::assume_ok_unexpected, S::log_unexpected, S::log_all, S::raise_unexpected,
                 S::raise_all, S::return_unexpected, S::return_all, S::ignore_all}) {
    const StrictOutcome out = apply_strict_handling(mode, kSaved, kSaved, kSaved);
    EXPECT_EQ(out.keys_to_load, kSaved) << strict_handling_name(mode);
    EXPECT_TRUE(out.missing.empty() && out.unexpected.empty() && out.warning.empty())
        << strict_handling_name(mode);
  }
}

// --- writer files (per-rank binning into __<rank>_<k>) -------------------------------------------

TEST(WriterFiles, LargestTensorIntoLeastFilledBin) {
  // Sorted by bytes: 40 -> bin0, 30 -> bin1, 20 -> bin1 (30 < 40), 10 -> bin0 (40 < 50).
  const auto files = plan_writer_files(0, {{10}, {40}, {30}, {20}}, 2);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].name, "__0_0");
  EXPECT_EQ(files[0].items, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(files[0].bytes, 50);
  EXPECT_EQ(files[1].name, "__0_1");
  EXPECT_EQ(files[1].items, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(files[1].bytes, 50);
}

TEST(WriterFiles, ObjectsRoundRobinAndNotBalanced) {
  // Objects 0, 2 go to bins 0, 1; tensors 100 -> bin0 (tie), 60 -> bin1, 50 -> bin1 (60 < 100).
  const auto files = plan_writer_files(1, {{5, true}, {100}, {7, true}, {60}, {50}}, 2);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].items, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(files[0].bytes, 105);
  EXPECT_EQ(files[1].items, (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ(files[1].bytes, 117);
}

TEST(WriterFiles, OneWriterKeepsOrderAndEmptyBinsMakeNoFile) {
  const auto one = plan_writer_files(3, {{8}, {1, true}, {64}}, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].name, "__3_0");
  EXPECT_EQ(one[0].items, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(one[0].bytes, 73);
  // 8 writers, 3 equal tensors: 3 files numbered without gaps, input order kept on ties.
  const auto many = plan_writer_files(2, {{16}, {16}, {16}}, 8);
  ASSERT_EQ(many.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(many[k].name, "__2_" + std::to_string(k));
    EXPECT_EQ(many[k].items, std::vector<size_t>{k});
  }
  EXPECT_TRUE(plan_writer_files(0, {}, 4).empty());
  EXPECT_THROW(plan_writer_files(0, {{1}}, 0), InputError);
}


// An uneven split gives some ranks an empty piece whose (key, offset) id is the next rank's real
// piece. Each split below failed save validation with "hole at global index (0)" while empty pieces
// took part in the distribution: the empty holder (lower rank) was chosen to write the shard.
TEST(FullyParallel, EmptyPiecesNeverWriteAShard) {
  const std::vector<std::vector<int64_t>> splits = {
      {0, 4, 7}, {0, 5, 5, 0}, {4, 0, 7}, {0, 0, 3}, {3, 0, 0}, {0, 1, 0, 1, 0}};
  for (const auto& sizes : splits) {
    Pieces pieces = split_1d("w", DType::f32, sizes);
    for (auto& rank_pieces : pieces)  // every piece starts as a main replica, as a suite marks it
      for (ShardedPiece& p : rank_pieces) p.replica_id = {0};
    const ShardDistribution d = determine_main_replica_distribution(pieces);
    for (size_t r = 0; r < pieces.size(); ++r) apply_distribution(pieces[r], int(r), d);
    EXPECT_EQ(validation_error(pieces), "") << ::testing::PrintToString(sizes);
    for (size_t r = 0; r < pieces.size(); ++r)
      for (const ShardedPiece& p : pieces[r])
        EXPECT_EQ(p.is_main_replica(), sizes[r] > 0)
            << "rank " << r << " of " << ::testing::PrintToString(sizes);
  }
}

}  // namespace
}  // namespace dtbench
