// UnitIndex::run_at / Cursor (the O(1)-per-position lookups of the FSDP fills and verifies) give
// exactly what the binary-searching UnitIndex::at gives, in order and out of order.
#include <gtest/gtest.h>

#include <random>

#include "fsdp/fsdp_step.h"

using namespace dtbench;

namespace {
void expect_same(const ShardLayout& L) {
  UnitIndex idx(L);
  auto same = [](std::optional<ElementRef> a, std::optional<ElementRef> b) {
    return a.has_value() == b.has_value() && (!a || (a->item == b->item && a->elem == b->elem));
  };
  UnitIndex::Cursor seq = idx.cursor();
  for (int64_t p = -2; p < L.size() + 2; ++p) {
    const IndexRun run = idx.run_at(p);
    ASSERT_LE(run.begin, p);
    ASSERT_GT(run.end, p);
    ASSERT_TRUE(same(seq.at(p), idx.at(p))) << "position " << p;
  }
  std::mt19937 rng(7);
  UnitIndex::Cursor rnd = idx.cursor();
  for (int k = 0; k < 2000; ++k) {
    const int64_t p = int64_t(rng() % uint64_t(L.size() + 4)) - 2;
    ASSERT_TRUE(same(rnd.at(p), idx.at(p))) << "position " << p;
  }
}
}  // namespace

TEST(UnitIndexRuns, CursorAgreesWithAt) {
  const std::vector<std::vector<TensorShape>> models = {
      {{2, 6}, {4, 4}, {4, 4}, {1, 2}, {1, 6}}, {{7, 3}, {5}, {2, 2, 2}}, {{1}}, {{3, 5}, {1, 1}, {9}}};
  for (int D = 1; D <= 7; ++D)
    for (const auto& shapes : models) {
      expect_same(ShardLayout(shapes, D, ShardLayoutKind::flat));
      expect_same(ShardLayout(shapes, D, ShardLayoutKind::flat, false));
      expect_same(ShardLayout(shapes, D, ShardLayoutKind::per_param));
    }
}
