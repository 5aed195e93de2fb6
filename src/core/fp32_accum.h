#pragma once
// Megatron's reduce-scatter with fp32 accumulation (reduce_scatter_with_fp32_accumulation.py in
// megatron/core/distributed), one implementation for every suite (dtbench-fsdp, dtbench-ep) and
// both backends:
//   1. all_to_all in the input dtype: rank r receives chunk r of every rank j into
//      scratch[j*S, (j+1)*S), S = numel/W (a scratch buffer the size of the input);
//   2. sum_chunks_fp32: widen, add the W chunks in fp32 in rank order, round once (RNE).
// A plain bf16 reduce-scatter instead rounds after every hop (sum_chunks_native), which for W >= 3
// differs from the once-rounded sum; with W == 2 there is one add and one rounding, so the two agree.
// The closed-form bf16 pattern below makes that difference show on the host (MPI) backend too.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/buffer.h"
#include "core/comm.h"
#include "core/dtype.h"

namespace dtbench {

// --- local math ---------------------------------------------------------------------------------
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

// --- the collective -----------------------------------------------------------------------------
// A started reduction: wait() finishes the communication, then runs the local step (the fp32 sum).
struct PendingReduce {
  RequestPtr request;
  std::function<void()> finish;
  void wait() {
    if (request) request->wait();
    if (finish) finish();
    request.reset();
    finish = nullptr;
  }
};

// Knobs that exist to inject faults; the defaults are the correct collective.
struct Fp32AccumFaults {
  bool native_sum = false;          // accumulate in the input dtype, rounding after every add (ring order)
  bool skip_scratch_check = false;  // accept any scratch >= the input (so nothing overflows)
};

// The reduce-scatter with fp32 accumulation over `comm` (W = comm.size()): `input` holds W*S
// elements of a 16-bit (or fp32) dtype; `scratch` must hold exactly as many of the same dtype
// (InputError before any communication otherwise). finish() writes the once-rounded sum of chunk
// `comm.rank()` into out[out_first, +S). In place (Megatron's DistOpt): out = input and
// out_first = rank*S; the other shards keep their local values.
PendingReduce start_reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, Buffer& scratch, Buffer& out,
                                              size_t out_first, const Fp32AccumFaults& faults = {});
// The same on input[in_first, in_first + in_count) (a DDP bucket inside its grad buffer): scratch
// must hold exactly in_count elements; in place: out = input, out_first = in_first + rank*S.
PendingReduce start_reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, size_t in_first, size_t in_count,
                                              Buffer& scratch, Buffer& out, size_t out_first,
                                              const Fp32AccumFaults& faults = {});
// Blocking forms: start + wait.
void reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, Buffer& scratch, Buffer& out, size_t out_first,
                               const Fp32AccumFaults& faults = {});
void reduce_scatter_fp32_accum(Comm& comm, const Buffer& input, size_t in_first, size_t in_count, Buffer& scratch,
                               Buffer& out, size_t out_first, const Fp32AccumFaults& faults = {});

// --- the bf16 pattern where the accumulation order shows ----------------------------------------
// Every value is 1 + k * 2^-7 (exact in bf16: 7 fraction bits in [1, 2)); a sum over W ranks is
// W + K * 2^-7, exact in fp32 for W < 2^16 in any order. bf16 keeps only 7 - floor(log2(sum))
// fraction bits of a partial sum, so any reduction that rounds per hop may drift from RNE(exact).
//
// Group member j contributes k = b(i) + o_f(j) at element i, with b(i) a hashed base in [0, 88) and
// o_f one of two fixed tables of 16 offsets in [0, 40) (f = i mod 2), so the exact sum is
// W*b + P_f(W) with P_f the table's prefix sum: O(1). Structured offsets do not do: consecutive k
// make every pair sum at W = 4 a tie whose even rounding matches the exact sum's, and any offsets
// whose parity repeats with period 4 (3j, j(j+1)/2) make the pairs at distance 4 of an 8-rank
// butterfly (MPI's recursive halving) exact, so a plain bf16 RS at W = 8 never differs. The tables
// were searched so that, over 512 elements and seeds 1, 2, 7, every W in 3..16 shows per-hop
// rounding for every ring start, recursive halving and doubling, and a binomial tree (at least
// 104 elements each); tests/unit/test_fp32_accum.cpp re-checks that. Beyond W = 16 the pattern
// falls back to consecutive k (mod 128).
//
// Suites fill with accum_rank_value (member j holds slot (j + i) mod W at element i: the same
// multiset per element, so the same exact sum, while any reduction tree pairs different values from
// element to element) and expect accum_expected, both O(1) per element. Host code (fill_with
// evaluates on the host for device buffers too).
constexpr int64_t kAccumSteps = 128;  // k takes 128 values: 2^-7 steps of [1, 2)
constexpr int kAccumTableRanks = 16;   // members the offset tables cover

namespace accum_detail {
constexpr int kTables = 2, kMaxOffset = 40;
constexpr int kOffsets[kTables][kAccumTableRanks] = {
    {16, 17, 25, 36, 25, 11, 39, 5, 14, 31, 0, 11, 33, 20, 32, 28},
    {14, 15, 20, 31, 30, 14, 26, 21, 35, 39, 17, 14, 3, 4, 32, 23}};
inline int64_t base(uint64_t seed, uint64_t i) {
  return int64_t((i * 2654435761u + seed) % uint64_t(kAccumSteps));  // odd multiplier: all residues
}
inline bool spread(int W) { return W <= kAccumTableRanks; }
inline int table(uint64_t i) { return int(i % kTables); }
inline int64_t spread_base(uint64_t seed, uint64_t i) { return base(seed, i / kTables) % (kAccumSteps - kMaxOffset); }
inline int64_t offset_sum(int t, int W) {  // P_t(W), W <= 16 table entries
  int64_t s = 0;
  for (int j = 0; j < W; ++j) s += kOffsets[t][j];
  return s;
}
// Sum over j < W of (b + j) mod 128: whole cycles of 0..127 plus one run that may wrap once.
inline int64_t consecutive_k_sum(int64_t b, int W) {
  int64_t cycles = W / kAccumSteps, run = W % kAccumSteps;
  int64_t k_sum = cycles * (kAccumSteps * (kAccumSteps - 1) / 2);
  if (b + run <= kAccumSteps) {
    k_sum += run * b + run * (run - 1) / 2;
  } else {
    int64_t head = kAccumSteps - b, tail = run - head;  // b..127, then 0..tail-1
    k_sum += (b + kAccumSteps - 1) * head / 2 + tail * (tail - 1) / 2;
  }
  return k_sum;
}
}  // namespace accum_detail

// The value group member j (0 <= j < W) contributes to the sum of element i.
inline float accum_value(int j, uint64_t i, uint64_t seed, int W) {
  int64_t k = accum_detail::spread(W)
                  ? accum_detail::spread_base(seed, i) + accum_detail::kOffsets[accum_detail::table(i)][j]
                  : (accum_detail::base(seed, i) + j) % kAccumSteps;
  return 1.0f + float(k) * (1.0f / 128.0f);
}

// What group member `rank` holds at element i of the reduce-scatter input (see above).
inline float accum_rank_value(int rank, uint64_t i, uint64_t seed, int W) {
  return accum_value(int((uint64_t(rank) + i) % uint64_t(W)), i, seed, W);
}

// RNE-to-bf16 (as fp32) of the exact sum over j = 0..W-1 of accum_value, O(1).
inline float accum_expected(int W, uint64_t i, uint64_t seed) {
  int64_t k_sum = accum_detail::spread(W)
                      ? int64_t(W) * accum_detail::spread_base(seed, i) +
                            accum_detail::offset_sum(accum_detail::table(i), W)
                      : accum_detail::consecutive_k_sum(accum_detail::base(seed, i), W);
  float exact = float(W) + float(k_sum) * (1.0f / 128.0f);  // exact in fp32 for W < 2^16
  return bf16_to_f32(f32_to_bf16(exact));
}

}  // namespace dtbench
