#include "ep/ep_grads.h"

#include <algorithm>

#include "core/element_ops.h"
#include "core/error.h"
#include "layout/layout_groups.h"

namespace dtbench {

std::vector<std::pair<GroupKind, Comm*>> MoeGroups::all() const {
  std::vector<std::pair<GroupKind, Comm*>> out = {{GroupKind::tp, tp.get()},       {GroupKind::pp, pp.get()},
                                                  {GroupKind::dp_cp, dp_cp.get()}, {GroupKind::expert_dp, expt_dp.get()},
                                                  {GroupKind::ep, ep.get()},       {GroupKind::embedding, embedding.get()}};
  if (intra_dp_cp)
    out.insert(out.end(), {{GroupKind::intra_dp_cp, intra_dp_cp.get()},
                           {GroupKind::inter_dp_cp, inter_dp_cp.get()},
                           {GroupKind::intra_expert_dp, intra_expt_dp.get()},
                           {GroupKind::inter_expert_dp, inter_expt_dp.get()}});
  return out;
}

MoeGroups build_moe_groups(Comm& world, const ParallelLayout& layout) {
  MoeGroups g;
  g.tp = split_layout_group(world, layout, GroupKind::tp);
  g.pp = split_layout_group(world, layout, GroupKind::pp);
  g.dp_cp = split_layout_group(world, layout, GroupKind::dp_cp);
  g.expt_dp = split_layout_group(world, layout, GroupKind::expert_dp);
  g.ep = split_layout_group(world, layout, GroupKind::ep);
  g.embedding = split_layout_group(world, layout, GroupKind::embedding);
  g.in_embedding = layout.group_color(GroupKind::embedding, world.rank()) != kNoGroup;
  if (layout.dist_opt_instances() > 1) {
    g.intra_dp_cp = split_layout_group(world, layout, GroupKind::intra_dp_cp);
    g.inter_dp_cp = split_layout_group(world, layout, GroupKind::inter_dp_cp);
    g.intra_expt_dp = split_layout_group(world, layout, GroupKind::intra_expert_dp);
    g.inter_expt_dp = split_layout_group(world, layout, GroupKind::inter_expert_dp);
  }
  return g;
}

GradBuffers make_grad_buffers(Backend& backend, const BucketPlan& plan, DType dt) {
  GradBuffers g;
  g.plan = &plan;
  for (size_t b = 0; b < plan.buffers().size(); ++b) {
    const GradBuffer& gb = plan.buffer(int(b));
    int& side = gb.key.expert ? g.expert : g.dense;
    if (side >= 0)
      throw RuntimeError(std::string("dtbench-ep: more than one ") + (gb.key.expert ? "expert" : "dense") + " grad buffer");
    side = int(b);
    g.grads.push_back(backend.alloc(dt, size_t(gb.numel)));
  }
  return g;
}

namespace {

// The groups a buffer is reduced over: dp_cp / expt_dp, or with partial DistOpt the intra group
// (RS) and the inter group (AR).
struct SyncGroups {
  Comm* reduce = nullptr;
  Comm* inter = nullptr;
};
SyncGroups sync_groups(const MoeGroups& groups, const BucketPlan& plan, bool expert) {
  const bool partial = plan.options().distributed_optimizer && groups.intra_dp_cp != nullptr;
  if (!partial) return {expert ? groups.expt_dp.get() : groups.dp_cp.get(), nullptr};
  return expert ? SyncGroups{groups.intra_expt_dp.get(), groups.inter_expt_dp.get()}
                : SyncGroups{groups.intra_dp_cp.get(), groups.inter_dp_cp.get()};
}

}  // namespace

void sync_grads(Context& ctx, GradBuffers& g, MoeGroups& groups, const GradScaling& dense,
                const GradScaling& expert, const EpSyncFaults& faults, bool collectives_only) {
  const BucketPlan& plan = *g.plan;
  const SyncGroups d = sync_groups(groups, plan, false), e = sync_groups(groups, plan, true);
  SyncConfig config;
  config.distributed_optimizer = plan.options().distributed_optimizer;
  config.instances = d.inter ? d.inter->size() : 1;
  config.overlap = false;
  config.skip_prescale = faults.missing_scale;
  config.skip_inter_all_reduce = faults.skip_inter_ar;
  config.expert_buffers = !faults.wrong_group;
  SyncComms comms;
  comms.reduce = d.reduce, comms.inter = d.inter;
  comms.expert_reduce = e.reduce, comms.expert_inter = e.inter;
  std::vector<GradScaling> scaling;
  for (const GradBuffer& gb : plan.buffers()) {
    GradScaling s = gb.key.expert ? expert : dense;
    if (collectives_only) s.pre_scale = 1.0;
    scaling.push_back(s);
  }
  std::vector<Buffer> no_params;  // the sync never gathers params here
  GradSync sync(plan, config, comms, g.grads, no_params, scaling);
  sync.finish_grad_sync();
  if (!faults.wrong_group) return;
  // The fault: expert grads reduced over the dense group. Expert buffers differ in size across that
  // group when experts split unevenly over EP (and some ranks may hold none), so the fault reduces
  // the prefix every rank has: the collectives still match and stay inside every buffer.
  if (g.expert >= 0 && !collectives_only)
    for (const GradBucket& b : plan.buffer(g.expert).buckets)
      scale_elements(g.expert_buf(), size_t(b.offset), size_t(b.numel), float(expert.pre_scale));
  const double mine = g.expert >= 0 ? double(g.expert_buf().count()) : 0.0;
  const size_t common = size_t(-ctx.max_over_ranks(-mine));
  if (common > 0 && d.reduce->size() > 1)
    d.reduce->all_reduce(g.expert_buf().data(), g.expert_buf().data(), common, g.expert_buf().dtype(),
                         expert.op == GradReduceOp::avg ? RedOp::avg : RedOp::sum);
}

GroupKind owner_kind(const ParallelLayout& layout, bool expert) {
  if (layout.dist_opt_instances() > 1) return expert ? GroupKind::intra_expert_dp : GroupKind::intra_dp_cp;
  return expert ? GroupKind::expert_dp : GroupKind::dp_cp;
}

Ownership::Ownership(const BucketPlan& plan, int buffer, int group_rank) {
  if (buffer < 0 || !plan.options().distributed_optimizer) return;
  all_ = false;
  const auto& buckets = plan.buffer(buffer).buckets;
  for (size_t b = 0; b < buckets.size(); ++b) {
    bucket_end_.push_back(buckets[b].offset + buckets[b].numel);
    own_start_.push_back(plan.owned_start(buffer, int(b), group_rank));
    own_end_.push_back(plan.owned_end(buffer, int(b), group_rank));
  }
}

bool Ownership::owned(size_t i) const {
  if (all_) return true;
  const size_t b = size_t(std::upper_bound(bucket_end_.begin(), bucket_end_.end(), int64_t(i)) - bucket_end_.begin());
  return b < bucket_end_.size() && int64_t(i) >= own_start_[b] && int64_t(i) < own_end_[b];
}

}  // namespace dtbench
