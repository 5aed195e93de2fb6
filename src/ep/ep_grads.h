#pragma once
// One rank's side of expert-parallel grad sync (dtbench-ep) over dtbench-ddp's engine (GradSync):
// the communicators of ParallelLayout that the MoE pattern uses, the dense and expert grad buffers of
// a BucketPlan, Megatron's finish_grad_sync for them (dense grads over dp_cp, expert grads over
// expt_dp; with partial DistOpt an RS over the intra group and an AR of the own shard over the inter
// group), and which elements a rank owns under the distributed optimizer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/comm.h"
#include "core/suite.h"
#include "ddp/bucket_plan.h"
#include "ddp/ddp_sync.h"
#include "layout/parallel_layout.h"

namespace dtbench {

// --- communicators -------------------------------------------------------------------------------
struct MoeGroups {
  std::unique_ptr<Comm> tp, pp, dp_cp, expt_dp, ep, embedding;
  // Partial DistOpt (N > 1 only): RS over intra, AR of the own shard over inter.
  std::unique_ptr<Comm> intra_dp_cp, inter_dp_cp, intra_expt_dp, inter_expt_dp;
  bool in_embedding = false;  // this rank is in an embedding group (first or last PP stage)
  // Every communicator above that exists, with its kind (for the membership checks).
  std::vector<std::pair<GroupKind, Comm*>> all() const;
};
// Collective over `world`: every rank splits the same groups in the same order.
MoeGroups build_moe_groups(Comm& world, const ParallelLayout& layout);

// --- grad buffers --------------------------------------------------------------------------------
// One rank's grads under one BucketPlan: the dense buffer (reduced over dp_cp) and the expert buffer
// (reduced over expt_dp); either may be absent (an EP rank with no experts).
struct GradBuffers {
  const BucketPlan* plan = nullptr;
  int dense = -1, expert = -1;  // buffer index in the plan
  std::vector<Buffer> grads;    // by plan buffer: what GradSync reduces
  Buffer& buf(bool expert_side) {
    const int i = index(expert_side);
    return i >= 0 ? grads[size_t(i)] : absent;
  }
  Buffer& dense_buf() { return buf(false); }
  Buffer& expert_buf() { return buf(true); }
  size_t numel(bool expert_side) { return buf(expert_side).count(); }
  int index(bool expert_side) const { return expert_side ? expert : dense; }

 private:
  Buffer absent;  // the empty stand-in for a side this rank does not hold
};
// Throws RuntimeError when the plan holds more than one dense or expert buffer.
GradBuffers make_grad_buffers(Backend& backend, const BucketPlan& plan, DType dt);

// --- the sync ------------------------------------------------------------------------------------
// Faults this rank injects into the sync (the suite's --inject-fault kinds).
struct EpSyncFaults {
  bool missing_scale = false;  // "missing-scale": this rank skips its pre-scale
  bool skip_inter_ar = false;  // "skip-inter-ar": partial DistOpt's inter-group all-reduce left out
  bool wrong_group = false;    // "wrong-group" (every rank): expert grads reduced over the dense group
};

// Megatron's finish_grad_sync for this rank's buffers: every bucket pre-scaled and reduced in bucket
// order (no overlap: Megatron without overlap_grad_reduce). `collectives_only` skips the pre-scale
// (timing runs). Collective over the world (the wrong-group fault agrees on a common prefix).
void sync_grads(Context& ctx, GradBuffers& g, MoeGroups& groups, const GradScaling& dense,
                const GradScaling& expert, const EpSyncFaults& faults, bool collectives_only = false);

// --- ownership -----------------------------------------------------------------------------------
// The group whose rank index decides DistOpt shard ownership: the intra group with partial DistOpt.
GroupKind owner_kind(const ParallelLayout& layout, bool expert);

// Whether buffer element i lies in this rank's own shard (always true without the distributed optimizer).
class Ownership {
 public:
  Ownership(const BucketPlan& plan, int buffer, int group_rank);
  bool owned(size_t i) const;
  // Calls fn(begin, end, owned) for consecutive pieces covering [0, n), each all owned or all not
  // (what owned(i) says for every i in it), walking the buckets in order.
  template <class Fn>
  void for_pieces(size_t n, Fn fn) const {
    if (all_) return fn(size_t(0), n, true);
    int64_t pos = 0;
    const int64_t end = int64_t(n);
    for (size_t b = 0; b < bucket_end_.size() && pos < end; ++b) {
      const int64_t hi = std::min(bucket_end_[b], end);  // elements [pos, hi) belong to bucket b
      const int64_t os = std::clamp(own_start_[b], pos, std::max(pos, hi));
      const int64_t oe = std::clamp(own_end_[b], os, std::max(os, hi));
      if (os > pos) fn(size_t(pos), size_t(os), false);
      if (oe > os) fn(size_t(os), size_t(oe), true);
      if (hi > oe) fn(size_t(oe), size_t(hi), false);
      pos = std::max(pos, hi);
    }
    if (pos < end) fn(size_t(pos), size_t(end), false);
  }

 private:
  std::vector<int64_t> bucket_end_, own_start_, own_end_;
  bool all_ = true;
};

}  // namespace dtbench
