// Local math of the fp32-accumulating reduce-scatter (Megatron's reduce_scatter_with_fp32_accumulation.py):
// the once-rounded fp32 sum is RNE(exact sum) bit for bit, a bf16 ring's per-hop rounding is not
// (W >= 3), 2^-k pre-scaling commutes with it, and bad scratch sizes are rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/fp32_accum.h"

namespace dtbench {
namespace {

constexpr size_t kShard = 1100;  // > the 1024-element block and not a multiple of it

// What owner rank `owner` holds after the all_to_all: chunk j = rank j's values for the owner's
// shard, elements owner*S .. owner*S+S-1 of the full input, as bf16 bits (scaled by `scale`).
std::vector<uint16_t> gathered_bf16(int W, int owner, size_t S, uint64_t seed = 1, float scale = 1.0f) {
  std::vector<uint16_t> gathered(size_t(W) * S);
  for (int j = 0; j < W; ++j)
    for (size_t i = 0; i < S; ++i)
      gathered[j * S + i] = f32_to_bf16(accum_rank_value(j, owner * S + i, seed, W) * scale);
  return gathered;
}

TEST(AccumPattern, ValuesAreExactBf16InOneToTwo) {
  for (int W : {1, 2, 3, 4, 7, 16, 17, 40, 300})
    for (int j = 0; j < W; ++j)
      for (uint64_t i = 0; i < 256; ++i) {
        float v = accum_value(j, i, 3, W);
        ASSERT_EQ(round_to(DType::bf16, v), v) << "W " << W << " j " << j << " i " << i;
        ASSERT_TRUE(v >= 1.0f && v < 2.0f);
      }
}

TEST(AccumPattern, ClosedFormIsRneOfExactSum) {
  // W > 16 uses consecutive k, and W up to 300 wraps k past 127 more than once; 256 consecutive i
  // cover every base of both families; the seed shifts them.
  for (uint64_t seed : {0u, 1u, 5u}) {
    for (int W = 1; W <= 300; W += W < 40 ? 1 : 13) {
      for (uint64_t i = 0; i < 256; ++i) {
        double exact = 0, rotated = 0;
        for (int j = 0; j < W; ++j) exact += accum_value(j, i, seed, W), rotated += accum_rank_value(j, i, seed, W);
        ASSERT_EQ(exact, rotated) << "the rank rotation keeps the multiset, W " << W << " i " << i;
        ASSERT_EQ(accum_expected(W, i, seed), round_to(DType::bf16, float(exact)))
            << "W " << W << " i " << i << " seed " << seed;
      }
    }
  }
}

// Reduction orders a bf16 reduce-scatter may use, each rounding after every add: rings from every
// start (NCCL: ending at the owner), the butterfly of recursive halving (pairs at distance W/2
// first) and of recursive doubling (distance 1 first) for powers of two, and a binomial tree.
float ring_sum(const std::vector<float>& v, int start) {
  const int W = int(v.size());
  float acc = v[size_t(start)];
  for (int s = 1; s < W; ++s) acc = round_to(DType::bf16, acc + v[size_t((start + s) % W)]);
  return acc;
}
float butterfly_sum(std::vector<float> v, bool halving) {
  const int W = int(v.size());
  std::vector<int> dists;
  for (int d = W / 2; d >= 1; d /= 2) dists.push_back(d);
  if (!halving) std::reverse(dists.begin(), dists.end());
  for (int d : dists) {
    std::vector<float> next(v.size());
    for (int r = 0; r < W; ++r) {
      const int lo = std::min(r, r ^ d), hi = std::max(r, r ^ d);
      next[size_t(r)] = round_to(DType::bf16, v[size_t(lo)] + v[size_t(hi)]);
    }
    v = next;
  }
  return v[0];
}
float binomial_sum(std::vector<float> v) {
  const int W = int(v.size());
  for (int d = 1; d < W; d *= 2)
    for (int r = 0; r + d < W; r += 2 * d) v[size_t(r)] = round_to(DType::bf16, v[size_t(r)] + v[size_t(r + d)]);
  return v[0];
}

TEST(AccumPattern, PerHopRoundingDiffersFromThreeRanksInEveryOrder) {
  for (uint64_t seed : {1u, 2u, 7u}) {
    for (int W = 1; W <= 24; ++W) {
      const bool pow2 = (W & (W - 1)) == 0;
      std::vector<int> differs(size_t(W) + 3, 0);  // rings, binomial, halving, doubling
      for (uint64_t i = 0; i < 512; ++i) {
        std::vector<float> v(static_cast<size_t>(W), 0.0f);
        for (int r = 0; r < W; ++r) v[size_t(r)] = accum_rank_value(r, i, seed, W);
        const float want = accum_expected(W, i, seed);
        for (int st = 0; st < W; ++st) differs[size_t(st)] += ring_sum(v, st) != want;
        differs[size_t(W)] += binomial_sum(v) != want;
        if (pow2 && W > 1) {
          differs[size_t(W) + 1] += butterfly_sum(v, true) != want;
          differs[size_t(W) + 2] += butterfly_sum(v, false) != want;
        }
      }
      for (size_t o = 0; o < differs.size(); ++o) {
        if (o > size_t(W) && !(pow2 && W > 1)) continue;
        if (W <= 2) EXPECT_EQ(differs[o], 0) << "W " << W << " order " << o;  // one add, one rounding
        else EXPECT_GT(differs[o], W <= 16 ? 50 : 0) << "W " << W << " order " << o << " seed " << seed;
      }
    }
  }
}

TEST(SumChunks, HandWorkedThreeRanks) {
  // Element 0, seed 0, W = 3: base 0, table 0 offsets 16, 17, 25: members give 1 + 16/128,
  // 1 + 17/128, 1 + 25/128; the exact sum 3 + 58/128 = 3 + 29/64 is a bf16 (1/64 steps in [2, 4)).
  // A ring from member 0 first rounds 2 + 33/128 (a tie) to 2 + 16/64, then adds 1 + 25/128:
  // 3 + 57/128, a tie again -> 3 + 28/64 = 3.4375.
  EXPECT_EQ(accum_value(0, 0, 0, 3), 1.0f + 16.0f / 128);
  EXPECT_EQ(accum_value(1, 0, 0, 3), 1.0f + 17.0f / 128);
  EXPECT_EQ(accum_value(2, 0, 0, 3), 1.0f + 25.0f / 128);
  std::vector<uint16_t> gathered(3);
  for (int j = 0; j < 3; ++j) gathered[j] = f32_to_bf16(accum_value(j, 0, 0, 3));
  uint16_t fp32_accum = 0, native = 0;
  sum_chunks_fp32(DType::bf16, gathered.data(), 3, 1, &fp32_accum);
  sum_chunks_native(DType::bf16, gathered.data(), 3, 1, &native);
  EXPECT_EQ(bf16_to_f32(fp32_accum), 3.453125f);
  EXPECT_EQ(accum_expected(3, 0, 0), 3.453125f);
  EXPECT_EQ(bf16_to_f32(native), 3.4375f);
}

TEST(SumChunks, Fp32AccumulationIsRoundedExactSum) {
  for (int W = 1; W <= 20; ++W) {
    for (int owner = 0; owner < W; ++owner) {
      std::vector<uint16_t> gathered = gathered_bf16(W, owner, kShard), out(kShard);
      sum_chunks_fp32(DType::bf16, gathered.data(), W, kShard, out.data());
      for (size_t i = 0; i < kShard; ++i)
        ASSERT_EQ(out[i], f32_to_bf16(accum_expected(W, owner * kShard + i, 1)))
            << "W " << W << " owner " << owner << " i " << i;
    }
  }
}

// Elements where a bf16 ring (per-hop rounding, starting after the owner) disagrees with RNE(exact).
size_t native_mismatches(int W) {
  size_t wrong = 0;
  for (int owner = 0; owner < W; ++owner) {
    std::vector<uint16_t> gathered = gathered_bf16(W, owner, kShard), out(kShard);
    sum_chunks_native(DType::bf16, gathered.data(), W, kShard, out.data(), (owner + 1) % W);
    for (size_t i = 0; i < kShard; ++i) wrong += out[i] != f32_to_bf16(accum_expected(W, owner * kShard + i, 1));
  }
  return wrong;
}

TEST(SumChunks, NativeBf16DiffersFromThreeRanks) {
  EXPECT_EQ(native_mismatches(1), 0u);
  EXPECT_EQ(native_mismatches(2), 0u);  // one add, one rounding: same as fp32 accumulation
  for (int W = 3; W <= 20; ++W) EXPECT_GT(native_mismatches(W), 0u) << "W " << W;
}

TEST(SumChunks, PowerOfTwoPrescaleCommutes) {
  // Scaling bf16 inputs by 2^-k is exact, and so is scaling the rounded sum: the fp32-accumulated
  // sum of scaled inputs must equal the closed-form result times 2^-k, bit for bit.
  for (int W : {3, 8}) {
    for (int k = 1; k <= 4; ++k) {
      float scale = std::ldexp(1.0f, -k);
      for (int owner = 0; owner < W; ++owner) {
        std::vector<uint16_t> gathered = gathered_bf16(W, owner, kShard, 1, scale), out(kShard);
        sum_chunks_fp32(DType::bf16, gathered.data(), W, kShard, out.data());
        for (size_t i = 0; i < kShard; ++i) {
          float expected = accum_expected(W, owner * kShard + i, 1) * scale;
          ASSERT_EQ(bf16_to_f32(out[i]), expected) << "W " << W << " k " << k << " owner " << owner << " i " << i;
        }
      }
    }
  }
}

TEST(SumChunks, Fp32AndFp16Paths) {
  // fp32: chunk j holds j + i, so the sum is W(W-1)/2 + W*i, exact in any order.
  const int W = 5;
  const size_t S = 2000;
  std::vector<float> in(W * S), out(S), ring(S);
  for (int j = 0; j < W; ++j)
    for (size_t i = 0; i < S; ++i) in[j * S + i] = float(j) + float(i);
  sum_chunks_fp32(DType::f32, in.data(), W, S, out.data());
  sum_chunks_native(DType::f32, in.data(), W, S, ring.data(), 3);
  for (size_t i = 0; i < S; ++i) {
    ASSERT_EQ(out[i], float(W * (W - 1) / 2 + W * i)) << i;
    ASSERT_EQ(ring[i], out[i]) << i;
  }
  // fp16: the bf16 pattern is exact in fp16 too; the result is the fp16 rounding of the exact sum.
  const int W16 = 12;
  std::vector<uint16_t> half(W16 * S), half_out(S);
  for (int j = 0; j < W16; ++j)
    for (size_t i = 0; i < S; ++i) half[j * S + i] = f32_to_f16(accum_value(j, i, 1, W16));
  sum_chunks_fp32(DType::f16, half.data(), W16, S, half_out.data());
  for (size_t i = 0; i < S; ++i) {
    double exact = 0;
    for (int j = 0; j < W16; ++j) exact += accum_value(j, i, 1, W16);
    ASSERT_EQ(half_out[i], f32_to_f16(float(exact))) << i;
  }
}

TEST(SumChunks, RejectsBadGroup) {
  uint16_t x = 0, y = 0;
  EXPECT_THROW(sum_chunks_fp32(DType::bf16, &x, 0, 1, &y), InputError);
  EXPECT_THROW(sum_chunks_native(DType::bf16, &x, 1, 1, &y, 1), InputError);
}

TEST(CheckScratch, RejectsBadSizesBeforeCommunicating) {
  EXPECT_NO_THROW(check_scratch(800, 800, 8));
  EXPECT_NO_THROW(check_scratch(0, 0, 3));
  EXPECT_THROW(check_scratch(799, 800, 8), InputError);  // scratch smaller than the input
  EXPECT_THROW(check_scratch(1600, 800, 8), InputError);  // or larger
  EXPECT_THROW(check_scratch(802, 802, 8), InputError);  // numel not divisible by W
  EXPECT_THROW(check_scratch(8, 8, 0), InputError);
}

}  // namespace
}  // namespace dtbench
