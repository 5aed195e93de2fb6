#pragma once
// Local math of Megatron's reduce-scatter with fp32 accumulation (shared/research/megatron.md §C),
// kept apart from any communicator so both backends and the suites use the same code:
//   1. all_to_all in the input dtype: rank r receives chunk r of every rank j into
//      gathered[j*S, (j+1)*S), S = numel/W (a scratch buffer the size of the input);
//   2. sum_chunks_fp32: widen, add the W chunks in fp32 in rank order, round once (RNE).
// A plain bf16 ring reduce-scatter instead rounds after every hop (sum_chunks_native), which for
// W >= 3 differs from the once-rounded sum; with W == 2 there is one add and one rounding, so the
// two agree.
#include <cstddef>
#include <cstdint>

#include "dtype.h"

namespace dtbench {

// out[i] = RNE_dt(sum over j = 0..W-1 of gathered[j*S + i]) with the sum in fp32.
// `out` holds S elements of dt and must not overlap gathered.
void sum_chunks_fp32(DType dt, const void* gathered, int W, size_t S, void* out);

// Same inputs, but the running sum is rounded to dt after every add, the chunks taken in ring order
// first_rank, first_rank+1, ... (mod W). NCCL's ring ends at the owner, so owner r's chunk
// is accumulated from first_rank = (r+1) % W.
void sum_chunks_native(DType dt, const void* gathered, int W, size_t S, void* out, int first_rank = 0);

// Rejects a bad call before any communication, so one rank's mistake cannot desync the group:
// W < 1, input_elems not divisible by W, or a scratch buffer whose size differs from the input.
void check_scratch(size_t scratch_elems, size_t input_elems, int W);

// --- bf16 pattern where the accumulation order shows -------------------------------------------
// x(rank, i) = 1 + k * 2^-7 with k = (base(i) + rank) mod 128: every value is exact in bf16 (7
// fraction bits in [1, 2)), and a sum over W ranks is W + K * 2^-7, exact in fp32 for W < 2^16 in
// any order. Its bf16 rounding keeps only 7 - floor(log2(sum)) fraction bits, so every partial sum
// of W >= 3 ranks may round, and per-hop rounding drifts from the once-rounded total.
constexpr int64_t kAccumSteps = 128;  // k takes 128 values: 2^-7 steps of [1, 2)

DT_HD int64_t bf16_accum_base(uint64_t seed, uint64_t i) {
  return int64_t((i * 2654435761u + seed) % uint64_t(kAccumSteps));  // odd multiplier: all residues
}

DT_HD float bf16_accum_pattern(int rank, uint64_t i, uint64_t seed = 0) {
  int64_t k = (bf16_accum_base(seed, i) + rank) % kAccumSteps;
  return 1.0f + float(k) * (1.0f / 128.0f);
}

// RNE-to-bf16 (as fp32) of the exact sum of bf16_accum_pattern over ranks 0..W-1, in O(1):
// sum of k = whole cycles of 0..127 plus one run base, base+1, ... that may wrap once.
DT_HD float bf16_accum_expected(int W, uint64_t i, uint64_t seed = 0) {
  int64_t base = bf16_accum_base(seed, i);
  int64_t cycles = W / kAccumSteps, run = W % kAccumSteps;
  int64_t k_sum = cycles * (kAccumSteps * (kAccumSteps - 1) / 2);
  if (base + run <= kAccumSteps) {
    k_sum += run * base + run * (run - 1) / 2;
  } else {
    int64_t head = kAccumSteps - base, tail = run - head;  // base..127, then 0..tail-1
    k_sum += (base + kAccumSteps - 1) * head / 2 + tail * (tail - 1) / 2;
  }
  float exact = float(W) + float(k_sum) * (1.0f / 128.0f);  // exact in fp32 for W < 2^16
  return bf16_to_f32(f32_to_bf16(exact));
}

}  // namespace dtbench
