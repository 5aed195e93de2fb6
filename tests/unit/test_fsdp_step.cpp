// FSDP units, position lookup, collective counts per strategy and the closed-form data of
// dtbench-fsdp (src/fsdp/fsdp_step.h). The collective step itself runs under MPI (tests/integration/fsdp.sh).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fp32_accum.h"
#include "fsdp/fsdp_step.h"

namespace dtbench {
namespace {

ModelSpec d3_model() {
  // Layer 0 = the D = 5 test vector of Megatron-FSDP's test_dbuffer.py; root = one 1-D tensor;
  // layer 1 = two more.
  ModelSpec m;
  m.name = "d3";
  auto t = [](std::string name, std::vector<int64_t> shape, int layer) {
    TensorSpec s;
    s.name = name, s.shape = shape, s.layer = layer;
    return s;
  };
  m.tensors = {t("emb", {3}, -1),   t("a", {2, 6}, 0), t("b", {4, 4}, 0), t("c", {4, 4}, 0),
               t("d", {1, 2}, 0),   t("e", {1, 6}, 0), t("f", {2, 6}, 1), t("g", {5, 4}, 1)};
  return m;
}

TEST(FsdpUnits, OnePerLayerPlusRootInForwardOrder) {
  std::vector<FsdpUnit> units = plan_fsdp_units(d3_model(), 5, ShardLayoutKind::flat, true);
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(units[0].name, "root");
  EXPECT_TRUE(units[0].root);
  EXPECT_EQ(units[1].name, "layer0");
  EXPECT_EQ(units[2].name, "layer1");
  EXPECT_EQ(units[1].tensors, (std::vector<size_t>{1, 2, 3, 4, 5}));
  // Layer 0 is the test_dbuffer.py vector: offsets (0, 12, 32, 28, 48), size 60.
  const ShardLayout& L = units[1].layout;
  EXPECT_EQ(L.size(), 60);
  std::vector<int64_t> offsets;
  for (const ShardItem& it : L.items()) offsets.push_back(it.offset);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 12, 32, 28, 48}));
}

TEST(FsdpUnits, NoShardIsUnpaddedFlatForAnyLayout) {
  for (ShardLayoutKind kind : {ShardLayoutKind::flat, ShardLayoutKind::per_param}) {
    std::vector<FsdpUnit> units = plan_fsdp_units(d3_model(), 4, kind, false);
    for (const FsdpUnit& u : units) {
      EXPECT_FALSE(u.layout.sharded());
      EXPECT_EQ(u.layout.kind(), ShardLayoutKind::flat);
      EXPECT_EQ(u.layout.shard_size(), u.layout.size());
    }
  }
}

TEST(FsdpUnits, EmptyModelRejected) {
  ModelSpec m;
  m.name = "empty";
  EXPECT_THROW(plan_fsdp_units(m, 2, ShardLayoutKind::flat, true), InputError);
}

// Every element of every tensor sits at exactly one position; everything else is padding.
void expect_index_covers(const ShardLayout& L) {
  UnitIndex idx(L);
  std::set<std::pair<size_t, int64_t>> seen;
  for (int64_t p = 0; p < L.size(); ++p) {
    auto e = idx.at(p);
    if (!e) continue;
    ASSERT_LT(e->elem, L.item(e->item).numel);
    ASSERT_TRUE(seen.insert({e->item, e->elem}).second) << "position " << p << " duplicates an element";
  }
  size_t total = 0;
  for (const ShardItem& it : L.items()) total += size_t(it.numel);
  EXPECT_EQ(seen.size(), total);
  EXPECT_FALSE(idx.at(-1));
  EXPECT_FALSE(idx.at(L.size()));
}

TEST(UnitIndex, CoversEveryElementOnceFlatAndPerParam) {
  std::vector<TensorShape> shapes = {{2, 6}, {4, 4}, {4, 4}, {1, 2}, {1, 6}};
  for (int D = 1; D <= 6; ++D) {
    expect_index_covers(ShardLayout(shapes, D, ShardLayoutKind::flat));
    expect_index_covers(ShardLayout(shapes, D, ShardLayoutKind::per_param));
    expect_index_covers(ShardLayout({{7, 3}, {5}, {2, 2, 2}}, D, ShardLayoutKind::per_param));  // uneven dim 0
  }
}

TEST(UnitIndex, AgreesWithLocalPieces) {
  // The element a rank holds at shard position q (local_piece) is the one the gathered
  // buffer has at shard_begin(r) + q.
  std::vector<TensorShape> shapes = {{2, 6}, {4, 4}, {4, 4}, {1, 2}, {1, 6}};
  for (ShardLayoutKind kind : {ShardLayoutKind::flat, ShardLayoutKind::per_param}) {
    ShardLayout L(shapes, 5, kind);
    UnitIndex idx(L);
    for (int r = 0; r < 5; ++r)
      for (size_t i = 0; i < shapes.size(); ++i) {
        auto piece = L.local_piece(i, r);
        if (!piece) continue;
        for (int64_t k = 0; k < piece->length; ++k) {
          auto e = idx.at(L.shard_begin(r) + piece->shard_pos + k);
          ASSERT_TRUE(e);
          EXPECT_EQ(e->item, i);
          EXPECT_EQ(e->elem, piece->item_start + k);
        }
      }
  }
}

TEST(CollectiveCounts, PerStrategyAsMegatronD1) {
  // 2 layer units + root, 3 microbatches.
  EXPECT_EQ(expected_counts(FsdpStrategy::no_shard, 2, true, 3, false), (CollectiveCounts{0, 0, 3}));
  EXPECT_EQ(expected_counts(FsdpStrategy::optim, 2, true, 3, false), (CollectiveCounts{3, 3, 0}));
  EXPECT_EQ(expected_counts(FsdpStrategy::optim_grads, 2, true, 3, false), (CollectiveCounts{3, 9, 0}));
  EXPECT_EQ(expected_counts(FsdpStrategy::optim_grads_params, 2, true, 3, false), (CollectiveCounts{15, 9, 0}));
  // HSDP: RS = AR x microbatches, AR = number of buckets (the counts of Megatron-FSDP's test_fully_shard.py).
  CollectiveCounts h = expected_counts(FsdpStrategy::optim_grads_params, 2, true, 3, true);
  EXPECT_EQ(h.all_reduce, 3);
  EXPECT_EQ(h.reduce_scatter, h.all_reduce * 3);
  EXPECT_EQ(expected_counts(FsdpStrategy::optim_grads_params, 4, false, 1, false), (CollectiveCounts{8, 4, 0}));
}

TEST(FsdpData, GradClosedFormMatchesSumOverRanks) {
  for (int W : {1, 2, 3, 5, 8}) {
    for (int k : {1, 2, 3}) {
      for (DType dt : {DType::f32, DType::bf16}) {
        const int64_t m = fsdp_grad_modulus(dt, W, k), q = fsdp_grad_extra(dt, W, k, m);
        if (m == 0) continue;
        std::set<int64_t> sums;
        for (int64_t elem = 0; elem < 64; ++elem) {
          int64_t sum = 0;
          for (int mb = 0; mb < k; ++mb)
            for (int r = 0; r < W; ++r) sum += fsdp_grad_h(7, r, mb, 2, 1, elem, m, q);
          ASSERT_EQ(fsdp_grad_expected(7, W, k, 2, 1, elem, m, q), sum) << "W " << W << " k " << k;
          sums.insert(sum);
        }
        // Position: the reduced grad is not one value at every element (another rank's shard differs).
        EXPECT_GT(sums.size(), 1u) << dtype_name(dt) << " W " << W << " k " << k;
      }
    }
  }
}

TEST(FsdpData, GradModulusKeepsSumsExact) {
  EXPECT_EQ(fsdp_grad_modulus(DType::f32, 8, 2), 64);
  // bf16: k * W^2 * m <= 256.
  EXPECT_EQ(fsdp_grad_modulus(DType::bf16, 4, 2), 8);
  // 256 / 50 = 5 would divide W = 5: every element would sum to the same value, so 4.
  EXPECT_EQ(fsdp_grad_modulus(DType::bf16, 5, 2), 4);
  for (int W = 1; W <= 64; ++W) {
    const int64_t m = fsdp_grad_modulus(DType::f32, W, 1);
    if (m > 2) EXPECT_NE(W % m, 0) << "W " << W;
  }
  EXPECT_EQ(fsdp_grad_modulus(DType::bf16, 9, 2), 0);  // cannot be exact
  for (int W = 1; W <= 8; ++W)
    for (int k = 1; k <= 2; ++k) {
      int64_t m = fsdp_grad_modulus(DType::bf16, W, k);
      if (m == 0) continue;
      const int64_t q = fsdp_grad_extra(DType::bf16, W, k, m);
      EXPECT_LE(int64_t(k) * W * (W * m + q), 256);  // the largest partial sum (AVG sums DP * h)
      if (m == 1) EXPECT_GT(q, 0) << "no position information at W " << W;
    }
}

TEST(FsdpData, ParamValuesExactInBf16AndChangeWithVersion) {
  int changed = 0;
  for (int64_t e = 0; e < 500; ++e) {
    float v = fsdp_param_value(3, 1, 2, e, 0);
    ASSERT_EQ(round_to(DType::bf16, v), v);
    ASSERT_LE(std::fabs(v), 125.0f);
    changed += v != fsdp_param_value(3, 1, 2, e, 1);
  }
  EXPECT_EQ(changed, 500);  // a stale (old version) buffer differs everywhere
}

// The accumulation-order pattern and its tests moved to fp32_accum.h / test_fp32_accum.cpp.

}  // namespace
}  // namespace dtbench
