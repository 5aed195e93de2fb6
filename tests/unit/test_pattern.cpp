// Closed forms of kernels/pattern.h against brute force, and the element math they rely on.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "../../kernels/pattern.h"
#include "core/dtype.h"

using namespace dtbench;

TEST(ElementMath, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(ElementMath, Fp16RoundTripsEveryHalf) {
  // Every finite half converts to fp32 and back to the same bits.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // overflow rounds to infinity
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
}

TEST(Pattern, ReduceSumClosedFormEqualsBruteForce) {
  for (int dt = 0; dt < 3; ++dt) {
    for (int64_t n = 1; n <= 16; ++n) {
      int64_t m = reduce_modulus(dt, n);
      for (uint64_t seed : {1ull, 77ull, 123456789ull}) {
        for (uint64_t i = 0; i < 300; ++i) {
          int64_t brute = 0;
          for (int r = 0; r < n; ++r) brute += int64_t(reduce_value(seed, r, i, m));
          ASSERT_EQ(reduce_sum(seed, n, i, m), brute) << "dt " << dt << " n " << n << " i " << i;
        }
      }
    }
  }
}

TEST(Pattern, SumsAreExactInTheirTypeInAnyOrder) {
  const DType types[] = {DType::f32, DType::bf16, DType::f16};
  for (int dt = 0; dt < 3; ++dt) {
    for (int n = 1; n <= 16; ++n) {
      int64_t m = reduce_modulus(dt, n);
      for (uint64_t i = 0; i < 200; ++i) {
        // Forward and backward accumulation, rounding to the type after every add.
        float fwd = 0, bwd = 0;
        for (int r = 0; r < n; ++r) fwd = round_to(types[dt], fwd + reduce_value(5, r, i, m));
        for (int r = n - 1; r >= 0; --r) bwd = round_to(types[dt], bwd + reduce_value(5, r, i, m));
        ASSERT_EQ(fwd, float(reduce_sum(5, n, i, m)));
        ASSERT_EQ(bwd, fwd);
      }
    }
  }
}

TEST(Pattern, ReduceValuesDependOnRank) {
  int64_t m = reduce_modulus(0, 8);
  int differing = 0;
  for (uint64_t i = 0; i < 100; ++i) differing += reduce_value(3, 0, i, m) != reduce_value(3, 1, i, m);
  EXPECT_EQ(differing, 100);
}

TEST(Pattern, GatherValuesAreDistinctPerRankAndExact) {
  for (uint64_t i = 0; i < 50; ++i) {
    std::set<float> seen;
    for (int r = 0; r < 64; ++r) {
      float v = gather_value(9, r, i);
      EXPECT_EQ(round_to(DType::bf16, v), v);
      EXPECT_EQ(round_to(DType::f16, v), v);
      seen.insert(v);
    }
    EXPECT_EQ(seen.size(), 64u) << "index " << i;
  }
}

// --- The identity pattern (dtbench-coll) -------------------------------------------------------
// Its guarantees, enumerated without running any collective: the shares add up to the total at
// every world size 1..2048 and exactly in the element type in any order; the total carries the
// position at every world size; and a block moved by any offset, a shard of another rank, another
// source's block or another seed's data differs from what is expected.

namespace {
const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};
// Bits of identity per element: sums (log2 of the number of totals) and moved values.
double sum_bits(DType dt) { return dt == DType::f32 ? 24 : dt == DType::bf16 ? 8 : 11; }
double moved_bits(DType dt) { return dt == DType::f32 ? 28 : dt == DType::bf16 ? 12 : 15; }
}  // namespace

TEST(IdentityPattern, SharesAddUpToTheTotalAtEveryWorldSize) {
  for (DType dt : kTypes) {
    const int code = dtype_code(dt);
    for (int n = 1; n <= 2048; ++n) {
      for (uint64_t i : {0ull, 63ull, 123457ull, (1ull << 32) + 5}) {
        const float total = sum_total_at(11, code, i);
        float fwd = 0, bwd = 0;  // rounded to the type after every add, forward and backward
        for (int r = 0; r < n; ++r) {
          const float share = sum_share_at(11, code, r, n, i);
          ASSERT_GE(share, 0.0f);
          ASSERT_LE(share, std::ceil(total / float(n)));
          fwd = round_to(dt, fwd + share);
        }
        for (int r = n - 1; r >= 0; --r) bwd = round_to(dt, bwd + sum_share_at(11, code, r, n, i));
        ASSERT_EQ(fwd, total) << dtype_name(dt) << " n " << n << " index " << i;
        ASSERT_EQ(bwd, total) << dtype_name(dt) << " n " << n << " index " << i;
        ASSERT_LE(total, std::ldexp(1.0f, int(sum_bits(dt))));
      }
    }
  }
}

TEST(IdentityPattern, PairwiseOrderIsExactToo) {
  // A tree reduction (pairs, then pairs of pairs) over 1000 ranks in bf16 and fp16.
  for (DType dt : {DType::bf16, DType::f16}) {
    for (uint64_t i = 0; i < 64; ++i) {
      std::vector<float> v;
      for (int r = 0; r < 1000; ++r) v.push_back(sum_share_at(3, dtype_code(dt), r, 1000, i));
      while (v.size() > 1) {
        std::vector<float> next;
        for (size_t k = 0; k + 1 < v.size(); k += 2) next.push_back(round_to(dt, v[k] + v[k + 1]));
        if (v.size() % 2) next.push_back(v.back());
        v.swap(next);
      }
      ASSERT_EQ(v[0], sum_total_at(3, dtype_code(dt), i));
    }
  }
}

TEST(IdentityPattern, EveryRankContributesAndNoRankIsSilent) {
  // At 512 and 2048 ranks bf16 totals are below n, so most shares are 0; the rotation still gives
  // every rank non-zero shares at some indices (a missing contribution from any rank shows).
  for (int n : {3, 64, 512, 2048}) {
    std::vector<int> nonzero(size_t(n), 0);
    for (uint64_t i = 0; i < 20000; ++i)
      for (int r = 0; r < n; ++r) nonzero[size_t(r)] += sum_share_at(5, 1, r, n, i) != 0;
    for (int r = 0; r < n; ++r) ASSERT_GT(nonzero[size_t(r)], 0) << "rank " << r << " of " << n;
  }
}

TEST(IdentityPattern, ResultCarriesPositionAtEveryWorldSize) {
  // The expectation does not depend on n (checked above: the shares add up to the same total), so
  // it is never constant: over 4096 indices it takes nearly as many distinct values as the type has.
  for (DType dt : kTypes) {
    std::set<float> seen;
    for (uint64_t i = 0; i < 4096; ++i) seen.insert(sum_total_at(9, dtype_code(dt), i));
    const double possible = std::min(4096.0, std::ldexp(1.0, int(sum_bits(dt))) + 1);
    EXPECT_GT(double(seen.size()), 0.6 * possible) << dtype_name(dt);
  }
}

// Offsets a chunked or buggy transfer can produce: every offset up to 4096, powers of two and
// their neighbours up to 2^31, and multiples of the chunk sizes NCCL and MPI use.
std::vector<uint64_t> offsets_to_test() {
  std::vector<uint64_t> d;
  for (uint64_t k = 1; k <= 4096; ++k) d.push_back(k);
  for (int b = 12; b <= 31; ++b)
    for (int64_t e : {-1, 0, 1}) d.push_back(uint64_t((int64_t(1) << b) + e));
  for (uint64_t chunk : {64ull, 128ull, 512ull, 1024ull * 1024 / 4, 1024ull * 1024 / 2})
    for (uint64_t m : {3ull, 5ull, 7ull, 255ull, 256ull, 2048ull}) d.push_back(chunk * m);
  return d;
}

TEST(IdentityPattern, AnyBlockMovedByAnyOffsetIsSeen) {
  // For every offset d and block start p, a block of K elements that arrived d places away differs
  // from the expectation in at least one element; and the per-element collision rate stays near the
  // 2^-b the type's identity bits allow (so a K-element block passes with probability ~2^-bK).
  const auto offsets = offsets_to_test();
  for (DType dt : kTypes) {
    const int code = dtype_code(dt);
    const size_t K = dt == DType::f32 ? 4 : 8;
    const size_t span = 4096;
    std::vector<float> base(span);
    for (size_t i = 0; i < span; ++i) base[i] = sum_total_at(21, code, i);
    double collisions = 0, compared = 0;
    for (uint64_t d : offsets) {
      size_t equal_run = 0;
      for (size_t i = 0; i < span; ++i) {
        const bool same = f32_bits(sum_total_at(21, code, i + d)) == f32_bits(base[i]);
        collisions += same, compared += 1;
        equal_run = same ? equal_run + 1 : 0;
        ASSERT_LT(equal_run, K) << dtype_name(dt) << ": " << K << " elements moved by " << d << " at " << i
                                << " look right";
      }
    }
    const double rate = collisions / compared, bound = 1.3 * (std::ldexp(1.0, -int(sum_bits(dt))) + 1.0 / 4096);
    EXPECT_LE(rate, bound) << dtype_name(dt) << " sums: per-element collision rate";
  }
}

TEST(IdentityPattern, MovedValuesNameTheirSourceAndPosition) {
  const auto offsets = offsets_to_test();
  for (DType dt : kTypes) {
    const int code = dtype_code(dt);
    const size_t K = 4;
    const size_t span = 2048;
    // Another position of the same source.
    double collisions = 0, compared = 0;
    for (uint64_t d : offsets) {
      size_t run = 0;
      for (size_t i = 0; i < span; ++i) {
        const bool same = f32_bits(moved_value_at(4, code, 1, i + d)) == f32_bits(moved_value_at(4, code, 1, i));
        collisions += same, compared += 1;
        run = same ? run + 1 : 0;
        ASSERT_LT(run, K) << dtype_name(dt) << " offset " << d;
      }
    }
    EXPECT_LE(collisions / compared, 1.3 * (std::ldexp(1.0, -int(moved_bits(dt))) + 1.0 / 4096)) << dtype_name(dt);
    // The same position of another source (ranks r and r + d, including the old 251-rank repeat),
    // up to 2048 ranks; and another seed (a stale buffer from the previous round).
    for (int r : {0, 1, 7, 250, 1000, 2046}) {
      for (int dr : {1, 2, 64, 251, 256, 1024}) {
        if (r + dr >= 2048) continue;
        size_t run = 0;
        for (size_t i = 0; i < span; ++i) {
          run = f32_bits(moved_value_at(4, code, r, i)) == f32_bits(moved_value_at(4, code, r + dr, i)) ? run + 1 : 0;
          ASSERT_LT(run, K) << dtype_name(dt) << " ranks " << r << " and " << r + dr;
        }
      }
    }
    size_t run = 0;
    for (size_t i = 0; i < span; ++i) {
      run = f32_bits(moved_value_at(4, code, 3, i)) == f32_bits(moved_value_at(5, code, 3, i)) ? run + 1 : 0;
      ASSERT_LT(run, K) << dtype_name(dt) << " seeds 4 and 5";
    }
  }
}

TEST(IdentityPattern, SignedZerosAppearAndAreExactInEveryType) {
  for (DType dt : kTypes) {
    const int code = dtype_code(dt);
    int pos_zero = 0, neg_zero = 0, zero_total = 0;
    for (uint64_t i = 0; i < 8192; ++i) {
      const float v = moved_value_at(8, code, 2, i);
      ASSERT_TRUE(std::isfinite(v));
      ASSERT_EQ(f32_bits(round_to(dt, v)), f32_bits(v)) << "moved value not exact in " << dtype_name(dt);
      pos_zero += f32_bits(v) == 0u;
      neg_zero += f32_bits(v) == 0x80000000u;
      zero_total += f32_bits(sum_total_at(8, code, i)) == 0u;
    }
    EXPECT_GT(pos_zero, 16);
    EXPECT_GT(neg_zero, 16);
    EXPECT_GT(zero_total, 32) << "sums need +0 results for the -0 fault to show";
  }
}

TEST(IdentityPattern, ReduceScatterShardOfAnotherRankIsWrong) {
  // Rank r expects the totals at [r*count, (r+1)*count); rank r+1's shard is the same totals moved by
  // count: for every world size up to 2048 and counts that are powers of two, one block differs.
  for (DType dt : kTypes) {
    for (uint64_t count : {1ull, 2ull, 64ull, 1000ull, 4096ull}) {
      for (int n : {2, 3, 5, 64, 256, 2048}) {
        for (int r = 0; r < n; r += std::max(1, n / 7)) {
          const int other = (r + 1) % n;
          size_t differing = 0;
          for (uint64_t k = 0; k < std::min<uint64_t>(count, 256); ++k)
            differing += sum_total_at(1, dtype_code(dt), r * count + k) != sum_total_at(1, dtype_code(dt), other * count + k);
          if (count >= 8) {
            EXPECT_GT(differing, 0u) << dtype_name(dt) << " n " << n << " rank " << r;
          }
        }
      }
    }
  }
}
