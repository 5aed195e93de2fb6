#pragma once
// The check set of the reduce-scatter with fp32 accumulation (fp32_accum.h), one for every suite
// that reduces 16-bit grads that way (dtbench-fsdp on its shard group, dtbench-ep on the expert
// grads over expt_dp). The grads are the bf16 accumulation-order pattern (group member j holds
// accum_rank_value(j, i)), whatever -d says: the point is how 16-bit sums round. Each bucket of the
// grad buffer is reduced in place over the group, and every check is bit-exact:
//   fp32_accum_rs.exact        own shard of every bucket == RNE(exact sum);
//   fp32_accum_rs.in_place     every element outside the own shards still holds this rank's input (W >= 2);
//   fp32_comm_rs.exact         (fp32_wire) widened to fp32, a plain fp32 RS, one RNE == RNE(exact);
//   fp32_accum_rs.bf16_differs a plain bf16 RS rounds per hop, so for W >= 3 it differs from
//                              RNE(exact) somewhere in the group (a count, not an element check);
//   fp32_accum_rs.bf16_identical  at W <= 2 (one add, one rounding) it equals RNE(exact) everywhere;
//   fp32_accum_rs.prescale     (prescale_log2 = k > 0) grads *= 2^-k first (Megatron's 1/DP when
//                              DP is a power of two): the result is RNE(exact) * 2^-k exactly;
//   fp32_accum_rs.bad_scratch_refused  a scratch of N+W elements is refused before any collective.
// The faults they exist to catch (--inject-fault): bf16-accum,rank=R (R sums in bf16, ring order),
// rs-wrong-offset,rank=R (R writes its shard at the next member's offset), fp32-in-bf16-rs (the
// "plain" RS widens to fp32), accept-bad-scratch (the scratch size goes unchecked), missing-scale,
// rank=R (R skips the 2^-k pre-scale); "flip" reaches every element check.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/suite.h"

namespace dtbench {

struct Fp32AccumBucket {
  size_t offset = 0, numel = 0;  // numel divisible by the group size
};

struct Fp32AccumCheckPlan {
  std::string case_name;                 // the checks' case column
  std::string group;                     // the group's name in progress lines ("expt_dp", "shard")
  std::vector<Fp32AccumBucket> buckets;  // disjoint ranges of one grad buffer, in order
  uint64_t seed = 0;
  bool fp32_wire = false;  // also check the RS with fp32 on the wire (fp32_comm_rs.exact)
  int prescale_log2 = 0;   // > 0: also check the 2^-k pre-scale (fp32_accum_rs.prescale)
};

// Runs every check of the plan over `comm` (collective over the world: every rank calls it, each
// with its own group) and writes the perf row bf16_rs_elements_differing_from_rne_exact.
void run_fp32_accum_checks(Context& ctx, Comm& comm, const Fp32AccumCheckPlan& plan);

// The fault kinds above that a group of W ranks cannot reveal are refused (InputError naming
// --inject-fault): with W <= 2 a bf16 sum is one rounding, the same as fp32 accumulation. So are
// accept-bad-scratch and fp32-in-bf16-rs on one rank only: the group's collectives would differ
// (a hang or a datatype mismatch, not a FAIL). `group` names the group ("expert-DP", "FSDP shard").
void refuse_unrevealable_fp32_accum_fault(const FaultSpec& fault, int W, const std::string& group);

}  // namespace dtbench
