// Local math of the fp32-accumulating reduce-scatter (megatron.md §C): the once-rounded fp32 sum is
// RNE(exact sum) bit for bit, a bf16 ring's per-hop rounding is not (W >= 3), 2^-k pre-scaling
// commutes with it, and bad scratch sizes are rejected.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "error.h"
#include "fp32_accum.h"

namespace dtbench {
namespace {

constexpr size_t kShard = 1100;  // > the 1024-element block and not a multiple of it

// What owner rank `owner` holds after the all_to_all: chunk j = rank j's values for the owner's
// shard, elements owner*S .. owner*S+S-1 of the full input, as bf16 bits (scaled by `scale`).
std::vector<uint16_t> gathered_bf16(int W, int owner, size_t S, float scale = 1.0f) {
  std::vector<uint16_t> gathered(size_t(W) * S);
  for (int j = 0; j < W; ++j)
    for (size_t i = 0; i < S; ++i)
      gathered[j * S + i] = f32_to_bf16(bf16_accum_pattern(j, owner * S + i) * scale);
  return gathered;
}

TEST(Bf16AccumPattern, ValuesAreExactBf16) {
  for (int rank = 0; rank < 300; ++rank)
    for (uint64_t i = 0; i < 256; ++i) {
      float v = bf16_accum_pattern(rank, i);
      ASSERT_EQ(round_to(DType::bf16, v), v) << "rank " << rank << " i " << i;
      ASSERT_TRUE(v >= 1.0f && v < 2.0f);
    }
}

TEST(Bf16AccumPattern, ClosedFormMatchesSumOverRanks) {
  // W up to 300 wraps k past 127 more than once; 128 consecutive i cover every base; seed shifts it.
  for (uint64_t seed : {0u, 5u}) {
    for (int W = 1; W <= 300; ++W) {
      for (uint64_t i = 0; i < 128; ++i) {
        double exact = 0;
        for (int r = 0; r < W; ++r) exact += bf16_accum_pattern(r, i, seed);
        ASSERT_EQ(bf16_accum_expected(W, i, seed), round_to(DType::bf16, float(exact)))
            << "W " << W << " i " << i << " seed " << seed;
      }
    }
  }
}

TEST(SumChunks, HandWorkedThreeRanks) {
  // Element 0: base 0, so ranks give 1, 1 + 1/128, 1 + 2/128; exact sum 3 + 3/128.
  // bf16 in [2, 4) has 1/64 steps: 3 + 1.5/64 is a tie -> even -> 3 + 2/64 = 3.03125.
  // A ring first rounds 2 + 1/128 (tie) to 2, then adds 1 + 2/128: 3 + 1/64 = 3.015625.
  std::vector<uint16_t> gathered = gathered_bf16(3, 0, 1);
  uint16_t fp32_accum = 0, native = 0;
  sum_chunks_fp32(DType::bf16, gathered.data(), 3, 1, &fp32_accum);
  sum_chunks_native(DType::bf16, gathered.data(), 3, 1, &native);
  EXPECT_EQ(bf16_to_f32(fp32_accum), 3.03125f);
  EXPECT_EQ(bf16_accum_expected(3, 0), 3.03125f);
  EXPECT_EQ(bf16_to_f32(native), 3.015625f);
}

TEST(SumChunks, Fp32AccumulationIsRoundedExactSum) {
  for (int W = 1; W <= 16; ++W) {
    for (int owner = 0; owner < W; ++owner) {
      std::vector<uint16_t> gathered = gathered_bf16(W, owner, kShard), out(kShard);
      sum_chunks_fp32(DType::bf16, gathered.data(), W, kShard, out.data());
      for (size_t i = 0; i < kShard; ++i)
        ASSERT_EQ(out[i], f32_to_bf16(bf16_accum_expected(W, owner * kShard + i)))
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
    for (size_t i = 0; i < kShard; ++i) wrong += out[i] != f32_to_bf16(bf16_accum_expected(W, owner * kShard + i));
  }
  return wrong;
}

TEST(SumChunks, NativeBf16DiffersFromThreeRanks) {
  EXPECT_EQ(native_mismatches(1), 0u);
  EXPECT_EQ(native_mismatches(2), 0u);  // one add, one rounding: same as fp32 accumulation
  for (int W = 3; W <= 16; ++W) EXPECT_GT(native_mismatches(W), 0u) << "W " << W;
}

TEST(SumChunks, PowerOfTwoPrescaleCommutes) {
  // Scaling bf16 inputs by 2^-k is exact, and so is scaling the rounded sum: the fp32-accumulated
  // sum of scaled inputs must equal the closed-form result times 2^-k, bit for bit.
  const int W = 8;
  for (int k = 1; k <= 4; ++k) {
    float scale = std::ldexp(1.0f, -k);
    for (int owner = 0; owner < W; ++owner) {
      std::vector<uint16_t> gathered = gathered_bf16(W, owner, kShard, scale), out(kShard);
      sum_chunks_fp32(DType::bf16, gathered.data(), W, kShard, out.data());
      for (size_t i = 0; i < kShard; ++i) {
        float expected = bf16_accum_expected(W, owner * kShard + i) * scale;
        ASSERT_EQ(bf16_to_f32(out[i]), expected) << "k " << k << " owner " << owner << " i " << i;
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
    for (size_t i = 0; i < S; ++i) half[j * S + i] = f32_to_f16(bf16_accum_pattern(j, i));
  sum_chunks_fp32(DType::f16, half.data(), W16, S, half_out.data());
  for (size_t i = 0; i < S; ++i) {
    double exact = 0;
    for (int j = 0; j < W16; ++j) exact += bf16_accum_pattern(j, i);
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
