// Closed forms of kernels/pattern.h against brute force, and the element math they rely on.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "../../kernels/pattern.h"
#include "dtype.h"

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
