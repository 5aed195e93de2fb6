// ShardLayout against the Megatron-FSDP v2 test vectors (GlobalLayout.build, mfsdp_v2/test_dbuffer.py
// in tests/unit_tests/distributed), the item-shard intersection rule, FSDP2-style per-parameter
// sharding, and invariants over random buckets.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "layout/shard_layout.h"

namespace dtbench {
namespace {

std::vector<int64_t> offsets_of(const ShardLayout& layout) {
  std::vector<int64_t> offsets;
  for (const ShardItem& item : layout.items()) offsets.push_back(item.offset);
  return offsets;
}

// rows[r][i] = local rows of item i on rank r.
std::vector<std::vector<int64_t>> local_rows_of(const ShardLayout& layout) {
  std::vector<std::vector<int64_t>> rows(layout.shard_group_size());
  for (int r = 0; r < layout.shard_group_size(); ++r)
    for (size_t i = 0; i < layout.items().size(); ++i) rows[r].push_back(layout.local_rows(i, r));
  return rows;
}

TEST(ShardLayoutFlat, VectorFragmentFillsGap) {
  // chunk = lcm(4, 6, 1) = 12; (5,4) leaves a 4-element gap that the (3,) fragment fills.
  ShardLayout layout({{5, 4}, {2, 6}, {3}}, 2);
  EXPECT_EQ(layout.chunk(), 12);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 24, 20}));
  EXPECT_EQ(layout.size(), 48);
  EXPECT_EQ(layout.shard_size(), 24);
  EXPECT_EQ(layout.unpadded_size(), 35);
}

TEST(ShardLayoutFlat, VectorFragmentAlignedToItsRow) {
  ShardLayout layout({{4, 4}, {1, 6}}, 2);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 18}));
  EXPECT_EQ(layout.size(), 24);
}

TEST(ShardLayoutFlat, VectorPairedRemaindersFiveRanks) {
  ShardLayout layout({{2, 6}, {4, 4}, {4, 4}, {1, 2}, {1, 6}}, 5);
  EXPECT_EQ(layout.chunk(), 12);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 12, 32, 28, 48}));
  EXPECT_EQ(layout.size(), 60);
  // r0 P0x2; r1 P1x3; r2 P1x1, P2x1, P3x1; r3 P2x3; r4 P4x1.
  std::vector<std::vector<int64_t>> expected = {
      {2, 0, 0, 0, 0}, {0, 3, 0, 0, 0}, {0, 1, 1, 1, 0}, {0, 0, 3, 0, 0}, {0, 0, 0, 0, 1}};
  EXPECT_EQ(local_rows_of(layout), expected);
  // P2 = [32, 48) on rank 2's shard [24, 36): its first row, at shard position 8 (32 - 24).
  std::optional<LocalPiece> piece = layout.local_piece(2, 2);
  ASSERT_TRUE(piece);
  EXPECT_EQ(piece->item_start, 0);
  EXPECT_EQ(piece->length, 4);
  EXPECT_EQ(piece->shard_pos, 8);
  // ...and its rows 1..3 on rank 3, at the start of that shard.
  piece = layout.local_piece(2, 3);
  ASSERT_TRUE(piece);
  EXPECT_EQ(piece->item_start, 4);
  EXPECT_EQ(piece->length, 12);
  EXPECT_EQ(piece->shard_pos, 0);
}

// The next vectors are worked by hand from the GlobalLayout.build rules, each for one rule the
// published vectors leave unexercised.
TEST(ShardLayoutFlat, RemaindersThatExactlyFillAChunkPair) {
  // chunk lcm(4, 4, 6) = 12: (5,4) leaves remainder 8, (4,4) remainder 4; 8 + 4 <= 12, so (4,4)
  // starts at 24 - 4 and ends at 36, where (2,6) follows.
  ShardLayout layout({{5, 4}, {4, 4}, {2, 6}}, 1);
  EXPECT_EQ(layout.chunk(), 12);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 20, 36}));
  EXPECT_EQ(layout.size(), 48);
}

TEST(ShardLayoutFlat, FragmentsTriedLargestFirst) {
  // chunk lcm(4, 1, 1, 6) = 12; gap [20, 24) after (5,4). Largest first: (1,6) does not fit
  // (aligned to 24), (4,) does at 20, (1,) no longer fits; leftovers (1,6) at 24, (1,) at 30.
  ShardLayout layout({{5, 4}, {1}, {4}, {1, 6}}, 2);
  EXPECT_EQ(layout.chunk(), 12);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 30, 20, 24}));
  EXPECT_EQ(layout.size(), 48);
}

TEST(ShardLayoutFlat, EqualFragmentsKeepBucketOrder) {
  // chunk lcm(4, 1, 3) = 12; (3,) and (1,3) tie at 3 elements, so (3,) is tried first and takes
  // [20, 23); (1,3) aligned to 24 does not fit the gap and goes to the tail at 24.
  ShardLayout layout({{5, 4}, {3}, {1, 3}}, 1);
  EXPECT_EQ(layout.chunk(), 12);
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 20, 24}));
  EXPECT_EQ(layout.size(), 36);
}

TEST(ShardLayoutFlat, EmptyLocalShards) {
  // One (2,3) tensor over 4 ranks: chunk 3, size 12; ranks 2 and 3 hold padding only.
  ShardLayout layout({{2, 3}}, 4);
  EXPECT_EQ(layout.size(), 12);
  EXPECT_EQ(local_rows_of(layout), (std::vector<std::vector<int64_t>>{{1}, {1}, {0}, {0}}));
  EXPECT_FALSE(layout.local_piece(0, 2));
  EXPECT_FALSE(layout.local_piece(0, 3));
}

TEST(ShardLayoutFlat, NoShardKeepsUnpaddedWholeBuffer) {
  // Same packing as the first vector, but no_shard: size = end of the last tensor (24 + 12), no
  // padding, and every rank holds every tensor whole at its flat offset.
  ShardLayout layout({{5, 4}, {2, 6}, {3}}, 2, ShardLayoutKind::flat, /*pad_to_shards=*/false);
  EXPECT_FALSE(layout.sharded());
  EXPECT_EQ(offsets_of(layout), (std::vector<int64_t>{0, 24, 20}));
  EXPECT_EQ(layout.size(), 36);
  EXPECT_EQ(layout.shard_size(), 36);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(layout.shard_begin(r), 0);
    for (size_t i = 0; i < 3; ++i) {
      std::optional<LocalPiece> piece = layout.local_piece(i, r);
      ASSERT_TRUE(piece);
      EXPECT_EQ(piece->item_start, 0);
      EXPECT_EQ(piece->length, layout.item(i).numel);
      EXPECT_EQ(piece->shard_pos, layout.item(i).offset);
    }
  }
}

TEST(ShardLayoutFlat, EmptyBucket) {
  ShardLayout layout({}, 3);
  EXPECT_EQ(layout.size(), 0);
  EXPECT_EQ(layout.shard_size(), 0);
}

TEST(IntersectItemShard, RuleOfD4) {
  // item [10, 30), shard [20, 40): item elements [10, 20) at shard position 0.
  std::optional<LocalPiece> piece = intersect_item_shard(10, 20, 20, 40);
  ASSERT_TRUE(piece);
  EXPECT_EQ(piece->item_start, 10);
  EXPECT_EQ(piece->length, 10);
  EXPECT_EQ(piece->shard_pos, 0);
  // item [25, 28) inside shard [20, 40): whole item at position 5.
  piece = intersect_item_shard(25, 3, 20, 40);
  ASSERT_TRUE(piece);
  EXPECT_EQ(piece->item_start, 0);
  EXPECT_EQ(piece->length, 3);
  EXPECT_EQ(piece->shard_pos, 5);
  EXPECT_FALSE(intersect_item_shard(0, 20, 20, 40));  // touching ends do not intersect
  EXPECT_FALSE(intersect_item_shard(40, 5, 20, 40));
}

TEST(ShardLayoutPerParam, UnevenDim0TenRowsOverFour) {
  // ceil(10/4) = 3 rows per rank: 3, 3, 3, 1; every slice padded to 3 rows of 2.
  ShardLayout layout({{10, 2}}, 4, ShardLayoutKind::per_param);
  EXPECT_EQ(local_rows_of(layout), (std::vector<std::vector<int64_t>>{{3}, {3}, {3}, {1}}));
  EXPECT_EQ(layout.item(0).numel, 20);
  EXPECT_EQ(layout.item(0).padded_numel, 24);
  EXPECT_EQ(layout.unpadded_size(), 20);
  EXPECT_EQ(layout.shard_size(), 6);
  EXPECT_EQ(layout.size(), 24);
  std::optional<LocalPiece> last = layout.local_piece(0, 3);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->item_start, 18);  // row 9
  EXPECT_EQ(last->length, 2);
}

TEST(ShardLayoutPerParam, ShortDim0LeavesRanksEmpty) {
  // (3,) over 5 ranks: one row each on ranks 0..2, none on 3 and 4. (6, 1) over 4: 2, 2, 2, 0.
  // Slices sit one after another in each rank's shard: (3,) at 0 (1 row), (6, 1) at 1 (2 rows).
  ShardLayout five({{3}}, 5, ShardLayoutKind::per_param);
  EXPECT_EQ(local_rows_of(five), (std::vector<std::vector<int64_t>>{{1}, {1}, {1}, {0}, {0}}));
  EXPECT_EQ(five.size(), 5);
  ShardLayout four({{3}, {6, 1}}, 4, ShardLayoutKind::per_param);
  EXPECT_EQ(local_rows_of(four), (std::vector<std::vector<int64_t>>{{1, 2}, {1, 2}, {1, 2}, {0, 0}}));
  EXPECT_EQ(offsets_of(four), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(four.shard_size(), 3);
  EXPECT_EQ(four.item(1).padded_numel, 8);
  EXPECT_EQ(four.local_piece(1, 2)->shard_pos, 1);
}

TEST(ShardLayout, RejectsBadInput) {
  EXPECT_THROW(ShardLayout({{4, 4}}, 0), InputError);
  EXPECT_THROW(ShardLayout({{4, 4}}, -2), InputError);
  EXPECT_THROW(ShardLayout(std::vector<TensorShape>{TensorShape{}}, 2), InputError);
  EXPECT_THROW(ShardLayout({{4, 0}}, 2), InputError);
  EXPECT_THROW(ShardLayout({{-1}}, 2), InputError);
  EXPECT_THROW(ShardLayout({{4}}, 2, ShardLayoutKind::per_param, /*pad_to_shards=*/false), InputError);
  EXPECT_THROW(ShardLayout({{int64_t(1) << 40, int64_t(1) << 40}}, 2), InputError);  // numel overflows
  ShardLayout ok({{4}}, 2);
  EXPECT_THROW(ok.local_piece(0, 2), std::out_of_range);
  EXPECT_THROW(ok.local_piece(1, 0), std::out_of_range);
}

// Every element of every item is held by exactly one rank, pieces stay inside their shard, do not
// overlap each other, and never split a row; where the buffer is flat, shard_begin + shard_pos is
// the element's flat position.
void expect_pieces_cover_items(const ShardLayout& layout) {
  const int D = layout.shard_group_size();
  std::vector<std::vector<int>> held(layout.items().size());
  for (size_t i = 0; i < held.size(); ++i) held[i].assign(layout.item(i).numel, 0);
  for (int r = 0; r < D; ++r) {
    std::vector<int> shard_use(layout.shard_size(), 0);
    for (size_t i = 0; i < held.size(); ++i) {
      const ShardItem& item = layout.item(i);
      std::optional<LocalPiece> piece = layout.local_piece(i, r);
      if (!piece) continue;
      ASSERT_GT(piece->length, 0);
      EXPECT_EQ(piece->item_start % item.row_size, 0) << "item " << i << " rank " << r;
      EXPECT_EQ(piece->length % item.row_size, 0) << "item " << i << " rank " << r;
      ASSERT_LE(piece->item_start + piece->length, item.numel);
      ASSERT_GE(piece->shard_pos, 0);
      ASSERT_LE(piece->shard_pos + piece->length, layout.shard_size());
      if (layout.kind() == ShardLayoutKind::flat) {
        EXPECT_EQ(layout.shard_begin(r) + piece->shard_pos, item.offset + piece->item_start);
      }
      for (int64_t e = 0; e < piece->length; ++e) {
        ++held[i][piece->item_start + e];
        ++shard_use[piece->shard_pos + e];
      }
    }
    for (int use : shard_use) ASSERT_LE(use, 1) << "overlapping pieces on rank " << r;
  }
  for (size_t i = 0; i < held.size(); ++i)
    for (int64_t e = 0; e < layout.item(i).numel; ++e) ASSERT_EQ(held[i][e], 1) << "item " << i << " element " << e;
}

std::vector<TensorShape> random_shapes(std::mt19937& rng) {
  std::uniform_int_distribution<int> count(1, 8), ndim(1, 3), dim(1, 7);
  std::vector<TensorShape> shapes(count(rng));
  for (TensorShape& shape : shapes) {
    shape.resize(ndim(rng));
    for (int64_t& d : shape) d = dim(rng);
  }
  return shapes;
}

TEST(ShardLayoutFlat, InvariantsOnRandomBuckets) {
  std::mt19937 rng(20240611);
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<TensorShape> shapes = random_shapes(rng);
    for (int D = 1; D <= 8; ++D) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " D " + std::to_string(D));
      ShardLayout layout(shapes, D);
      int64_t chunk = layout.chunk();
      for (const ShardItem& item : layout.items()) {
        EXPECT_EQ(chunk % item.row_size, 0);
        EXPECT_EQ(item.offset % item.row_size, 0) << format_shape(item.shape) << " at " << item.offset;
        EXPECT_LE(item.offset + item.numel, layout.size());
      }
      std::vector<int> use(layout.size(), 0);
      for (const ShardItem& item : layout.items())
        for (int64_t e = item.offset; e < item.offset + item.numel; ++e) ASSERT_EQ(++use[e], 1) << "overlap at " << e;
      EXPECT_EQ(layout.size() % (chunk * D), 0);
      EXPECT_EQ(layout.shard_size() * D, layout.size());
      EXPECT_EQ(layout.shard_size() % chunk, 0);
      expect_pieces_cover_items(layout);
    }
  }
}

TEST(ShardLayoutPerParam, InvariantsOnRandomBuckets) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<TensorShape> shapes = random_shapes(rng);
    for (int D = 1; D <= 8; ++D) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " D " + std::to_string(D));
      ShardLayout layout(shapes, D, ShardLayoutKind::per_param);
      int64_t slices = 0;
      for (const ShardItem& item : layout.items()) {
        int64_t rows_per_rank = (item.shape[0] + D - 1) / D;
        EXPECT_EQ(item.offset, slices);
        EXPECT_EQ(item.padded_numel, rows_per_rank * item.row_size * D);
        slices += rows_per_rank * item.row_size;
      }
      EXPECT_EQ(layout.shard_size(), slices);
      EXPECT_EQ(layout.size(), slices * D);
      expect_pieces_cover_items(layout);
    }
  }
}

}  // namespace
}  // namespace dtbench
