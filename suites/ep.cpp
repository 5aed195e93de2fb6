// dtbench-ep: expert-parallel gradient sync and the MoE token all-to-all, as Megatron-Core does them
// (parallel_state.py groups, DistributedDataParallel gradient scaling and start_grad_sync,
// finalize_model_grads.py). The suite reads top to bottom as the pattern:
//   1. build the TP/PP/dp_cp/expt_dp/EP/embedding communicators from ParallelLayout (ep_grads.h) and
//      check them;
//   2. plan this rank's MoE stage: dense and expert grads in separate buffers, bucketed by BucketPlan;
//   3. prove the groups: 2^rank fill, every element == sum of 2^r over the intended group;
//   4. sync dense grads over dp_cp and expert grads over expt_dp for every DDP scaling mode, with
//      all-reduce and with the distributed optimizer's in-place reduce-scatter, and check every element;
//   5. finalize_model_grads: conditional-embedder PP reduce, TP SUM/AVG of replicated params,
//      embedding all-reduce over the first and last PP stage, num_tokens scaling;
//   6. dispatch tokens to their experts and combine them back (all-to-all-v over the EP group);
//   7. time the two-level sync against one flat all-reduce of the same bytes, and the all-to-all-v
//      against a plain all-to-all of the same bytes;
//   8. the reduce-scatter with fp32 accumulation on the expert grads over expt_dp (the check set
//      shared with dtbench-fsdp, fp32_accum_checks.h).
// The grad buffers, Megatron's finish_grad_sync over dtbench-ddp's engine and DistOpt ownership
// live in src/ep/ep_grads.h; the closed forms in src/ep/ep_sync.h; the token all-to-all in
// src/ep/token_dispatch.h.
// With --dist-opt-instances N > 1 (partial distributed optimizer) the DistOpt sync reduce-
// scatters over the intra group (DP/N ranks) and all-reduces the own shard over the inter group.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "core/check_kit.h"
#include "core/element_ops.h"
#include "core/error.h"
#include "core/fp32_accum_checks.h"
#include "core/perf_names.h"
#include "core/suite.h"
#include "ddp/bucket_plan.h"
#include "ep/ep_grads.h"
#include "ep/ep_sync.h"
#include "ep/token_dispatch.h"
#include "ep/moe_routing.h"
#include "layout/parallel_layout.h"

using namespace dtbench;

namespace {

struct EpOptions {
  int tp = 1, cp = 1, pp = 1, ep = 0, etp = 0;  // ep 0: 2 when the world allows it, else 1
  MoeModelShape shape;
  int top_k = 2, tokens = 64, token_hidden = 0;  // token_hidden 0: --hidden
  int vpp = 2;
  int instances = 1;  // --dist-opt-instances: num_distributed_optimizer_instances
  int64_t bucket_size = 0;  // elements, as in dtbench-ddp; 0: one bucket per buffer
  std::string routing = "uniform", optimizer = "both";
  std::vector<std::string> scaling = {"all"};
  // decided by validate_options
  std::optional<int64_t> bucket_elems;  // none: Megatron without overlap_grad_reduce
  std::vector<GradScaleMode> modes;
  std::vector<bool> distopt;
  RoutingDistribution distribution;
};
EpOptions g_opt;

ParallelSizes sizes_for(int world) {
  ParallelSizes s;
  s.world = world, s.tp = g_opt.tp, s.cp = g_opt.cp, s.pp = g_opt.pp, s.ep = g_opt.ep, s.etp = g_opt.etp;
  s.dist_opt_instances = g_opt.instances;
  if (s.ep == 0) {
    const int etp = s.etp ? s.etp : s.tp;
    s.ep = world % (2 * etp * s.pp) == 0 ? 2 : 1;
  }
  return s;
}

RoutingConfig routing_for(const ParallelLayout& layout, uint64_t seed) {
  RoutingConfig c;
  c.seed = seed, c.tokens_per_rank = g_opt.tokens, c.num_experts = g_opt.shape.experts, c.top_k = g_opt.top_k;
  c.distribution = g_opt.distribution, c.ep_size = layout.ep();
  return c;
}

const char* mode_name(GradScaleMode m) {
  switch (m) {
    case GradScaleMode::default_sum: return "default";
    case GradScaleMode::average_in_collective: return "average_in_collective";
    case GradScaleMode::per_token_loss: return "per_token_loss";
  }
  return "?";
}

// The sync faults this rank injects (ep_grads.h).
EpSyncFaults sync_faults(const Context& ctx) {
  EpSyncFaults f;
  f.missing_scale = ctx.fault.applies("missing-scale", ctx.run.rank);
  f.skip_inter_ar = ctx.fault.applies("skip-inter-ar", ctx.run.rank);
  f.wrong_group = ctx.fault.kind == "wrong-group";
  return f;
}

// --- 1. communicators -------------------------------------------------------------------------
// Every group built from ParallelLayout (ep_grads.h) has exactly the members of Megatron's rank
// formulas, and the sizes multiply up to the world.
void check_groups(Context& ctx, const ParallelLayout& layout, const MoeGroups& g) {
  for (const auto& [kind, comm] : g.all()) {
    std::vector<int> want = layout.group(kind, ctx.run.rank);
    if (want.empty()) want = {ctx.run.rank};  // outside the embedding group: a group of its own
    auto text = [](const std::vector<int>& v) {
      std::string s;
      for (int r : v) s += (s.empty() ? "" : " ") + std::to_string(r);
      return "[" + s + "]";
    };
    ctx.check_condition({"groups.members", group_kind_name(kind), "", "communicator members == Megatron rank formulas"},
                        comm->members() == want, text(comm->members()), text(want));
  }
  const bool sizes_ok = layout.edp() * layout.etp() * layout.ep() * layout.pp() == layout.world() &&
                        layout.dp_cp() * layout.tp() * layout.pp() == layout.world();
  ctx.check_condition({"groups.sizes", "", "", "EDP*ETP*EP*PP == DP*CP*TP*PP == world"}, sizes_ok);
  if (layout.dist_opt_instances() > 1) {
    const int n = layout.dist_opt_instances();
    const bool ok = g.intra_dp_cp->size() * g.inter_dp_cp->size() == g.dp_cp->size() &&
                    g.intra_expt_dp->size() * g.inter_expt_dp->size() == g.expt_dp->size() &&
                    g.inter_dp_cp->size() == n && g.inter_expt_dp->size() == n;
    ctx.check_condition({"groups.partial_distopt", "N=" + std::to_string(n), "",
                         "|intra| * |inter| == |dp_cp| and |expt_dp|, |inter| == N"},
                        ok, "intra " + std::to_string(g.intra_dp_cp->size()) + "/" + std::to_string(g.intra_expt_dp->size()) +
                                " inter " + std::to_string(g.inter_dp_cp->size()) + "/" + std::to_string(g.inter_expt_dp->size()),
                        "intra DPCP/N, EDP/N; inter N");
  }
}

// --- 3. group identity ----------------------------------------------------------------------------
// With a DistOpt plan (partial DistOpt: `prefix` group_identity.distopt) the own shard must hold the
// sum over the whole group, i.e. intra RS + inter AR covered every member, and the other shards 2^rank.
void check_group_identity(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const BucketPlan& plan,
                          const std::string& prefix = "group_identity") {
  const int rank = ctx.run.rank;
  const std::vector<int> dense_members = layout.group(GroupKind::dp_cp, rank);
  const std::vector<int> expert_members = layout.group(GroupKind::expert_dp, rank);
  if (!power_sum_exact_in_fp32(dense_members) || !power_sum_exact_in_fp32(expert_members)) {
    ctx.progress("group identity: 2^rank sums are not exact in fp32 at this world size, skipped");
    return;
  }
  // Megatron's test fills main_grad (fp32) with 2^rank and uses per-token loss (no scaling).
  GradBuffers g = make_grad_buffers(ctx.backend, plan, DType::f32);
  const float mine = float(std::ldexp(1.0, rank));
  fill_with(g.dense_buf(), 0, g.dense_buf().count(), [&](size_t) { return mine; });
  fill_with(g.expert_buf(), 0, g.expert_buf().count(), [&](size_t) { return mine; });
  const GradScaling none = grad_scaling(GradScaleMode::per_token_loss, false, layout.dp_cp(), layout.edp());
  sync_grads(ctx, g, groups, none, none, sync_faults(ctx));

  const bool distopt = plan.options().distributed_optimizer;
  const std::string how = distopt ? " on the own shard (N=" + std::to_string(layout.dist_opt_instances()) +
                                        ": intra RS + inter AR), 2^rank elsewhere"
                                  : "";
  for (bool expert_side : {false, true}) {
    const std::vector<int>& want = expert_side ? expert_members : dense_members;
    const double expected = expected_group_power_sum(want);
    const Ownership own(plan, g.index(expert_side), layout.group_index(owner_kind(layout, expert_side), rank));
    // Reduced over the wrong group, the sum names the members it really had: blame the first
    // rank present that should not be (or missing that should).
    auto culprit = [&, want](size_t, double observed, bool owned) {
      if (!owned) return rank;
      std::vector<int> got;
      return decode_power_sum(observed, ctx.run.size, &got) ? first_group_difference(want, got) : -1;
    };
    check_pieces(ctx,
                 {prefix + (expert_side ? ".expert" : ".dense"), "2^rank", "fp32",
                  (expert_side ? "sum of 2^r over expt_dp" : "sum of 2^r over dp_cp") + how},
                 g.buf(expert_side), g.numel(expert_side),
                 [&](auto fn) { own.for_pieces(g.numel(expert_side), fn); },
                 [&](size_t, bool owned) { return owned ? expected : double(mine); }, 0, culprit);
  }
  if (distopt) return;
  // The expert group is a different group wherever the layout says so (TP != ETP*EP, ...).
  // Only a rank that holds both buffers can compare them: the others check nothing (n_checked 0), and
  // with no such rank the check is not applicable (no row) rather than a PASS.
  const bool both = g.expert >= 0 && g.dense >= 0;
  if (ctx.sum_over_ranks(both ? 1.0 : 0.0) == 0) {
    ctx.progress("group_identity.expert_differs: no rank holds both a dense and an expert buffer; not applicable");
    return;
  }
  LocalVerify v;
  if (both) {
    const float d = g.dense_buf().to_host_f32(0, 1)[0], e = g.expert_buf().to_host_f32(0, 1)[0];
    const bool differ_expected = dense_members != expert_members;
    v.n_checked = 1;
    if ((d != e) != differ_expected) {
      v.n_wrong = 1, v.first_index = 0, v.culprit = rank, v.expected = d, v.observed = e;
      std::fprintf(stderr, "rank %d: group_identity.expert_differs: dense %s expert %s (expected %s)\n", rank,
                   format_double(d).c_str(), format_double(e).c_str(), differ_expected ? "different sums" : "equal sums");
    }
  }
  ctx.report_check({"group_identity.expert_differs", "2^rank", "fp32", "expert sum != dense sum iff groups differ"}, v);
}

// --- 4. grad sync ---------------------------------------------------------------------------------
enum class Fill { pattern, b3_ones };

// Raw grads: the closed-form pattern, or Megatron's test_grad_sync numbers (dense 1, expert EP*ETP/TP).
double raw_value(Fill fill, const ParallelLayout& layout, bool expert, uint64_t seed, int rank, size_t i) {
  if (fill == Fill::b3_ones) return expert ? double(layout.ep()) * layout.etp() / layout.tp() : 1.0;
  return raw_grad(seed + (expert ? 7919 : 0), rank, i, layout.dp_cp());
}

void fill_grads(GradBuffers& g, Fill fill, const ParallelLayout& layout, uint64_t seed, int rank) {
  for (bool e : {false, true})
    fill_with(g.buf(e), 0, g.numel(e), [&](size_t i) { return float(raw_value(fill, layout, e, seed, rank, i)); });
}

// Checks every element of both buffers after a sync: the reduced value on owned elements, the
// pre-scaled local value elsewhere (DistOpt). `extra` scales the expectation (num_tokens), as fp32.
bool check_synced(Context& ctx, GradBuffers& g, const ParallelLayout& layout, GradScaleMode mode, Fill fill,
                  uint64_t seed, const std::string& check_prefix, const std::string& case_name, float extra = 0) {
  const int rank = ctx.run.rank;
  bool ok = true;
  for (bool expert_side : {false, true}) {
    const GroupKind kind = expert_side ? GroupKind::expert_dp : GroupKind::dp_cp;
    const GroupSum group = group_sum_of(layout.group(kind, rank));
    const GradScaling s = grad_scaling(mode, expert_side, layout.dp_cp(), layout.edp());
    const Ownership own(*g.plan, g.index(expert_side), layout.group_index(owner_kind(layout, expert_side), rank));
    const uint64_t fseed = seed + (expert_side ? 7919 : 0);
    const DType dt = g.buf(expert_side).dtype();
    auto synced = [&](size_t i, bool owned) {
      double v;
      if (fill == Fill::pattern) {
        v = expected_synced_grad(s, fseed, i, group, layout.dp_cp(), rank, owned);
      } else {
        const double raw = raw_value(fill, layout, expert_side, seed, rank, i);
        v = owned ? reduced_grad(s, raw * group.size, group.size) : double(float(raw) * float(s.pre_scale));
      }
      return v;
    };
    auto expected = [&](size_t i, bool owned) {
      const double v = synced(i, owned);
      return extra != 0 ? double(round_to(dt, round_to(dt, float(v)) * extra)) : v;
    };
    auto culprit = [&](size_t i, double observed, bool owned) {
      if (fill != Fill::pattern || !owned) return -1;
      return missing_scale_culprit(s, fseed, i, layout.dp_cp(), group.size, observed, synced(i, owned), ctx.run.size);
    };
    const std::string detail = std::string(expert_side ? "expert grads over expt_dp (" : "dense grads over dp_cp (") +
                               std::to_string(group.size) + " ranks), pre-scale " + format_double(s.pre_scale) +
                               (s.op == GradReduceOp::avg ? ", AVG" : ", SUM");
    ok &= check_pieces(ctx, {check_prefix + (expert_side ? ".expert" : ".dense"), case_name, dtype_name(dt), detail},
                       g.buf(expert_side), g.numel(expert_side),
                       [&](auto fn) { own.for_pieces(g.numel(expert_side), fn); }, expected,
                       sync_tolerance_ulps(s, group.size, dt), culprit);
  }
  return ok;
}

void run_grad_sync(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const BucketPlan& plain,
                   const BucketPlan& distopt) {
  const DType dt = ctx.opts.dtype;
  for (GradScaleMode mode : g_opt.modes) {
    for (bool use_distopt : g_opt.distopt) {
      const BucketPlan& plan = use_distopt ? distopt : plain;
      GradBuffers g = make_grad_buffers(ctx.backend, plan, dt);
      for (Fill fill : {Fill::pattern, Fill::b3_ones}) {
        const std::string case_name = std::string(mode_name(mode)) + (use_distopt ? "/distopt" : "/allreduce") +
                                      (fill == Fill::pattern ? "/pattern" : "/b3_ones");
        const uint64_t seed = ctx.opts.seed;
        fill_grads(g, fill, layout, seed, ctx.run.rank);
        sync_grads(ctx, g, groups, grad_scaling(mode, false, layout.dp_cp(), layout.edp()),
                   grad_scaling(mode, true, layout.dp_cp(), layout.edp()), sync_faults(ctx));
        const bool ok = check_synced(ctx, g, layout, mode, fill, seed, "grad_sync", case_name);
        ctx.progress("grad sync " + case_name + (ok ? ": ok" : ": CHECK FAILED"));
      }
    }
  }
}

// --- 5. finalize_model_grads ---------------------------------------------------------------------
// Megatron's finalize_model_grads, one function per reduction it makes, each followed by its check:
// the DP grad sync, the conditional embedder over PP, replicated params over TP, the word embedding
// over its group, then the scale by 1/num_tokens.
struct FinalizeCase {
  const ParallelLayout& layout;
  MoeGroups& groups;
  DenseCoords dc;
  uint64_t seed;
  std::string name;
};

// The conditional embedder (Megatron's _allreduce_conditional_embedding_grads): its weight
// (marked pipeline_parallel) summed over the local VPP chunks into chunk 0, all-reduced over PP,
// copied back to every chunk; the bias (not marked) untouched.
void allreduce_conditional_embedding_grads(Context& ctx, const FinalizeCase& fc) {
  const DType dt = ctx.opts.dtype;
  const size_t w_n = 100, b_n = 10, chunk_n = w_n + b_n;
  Buffer cond = ctx.backend.alloc(dt, chunk_n * size_t(g_opt.vpp));
  fill_with(cond, 0, cond.count(), [&](size_t i) { return float(cond_embedder_grad(fc.dc.pp, int(i / chunk_n))); });
  {
    std::vector<float> host = cond.to_host_f32(0, cond.count());
    for (int c = 1; c < g_opt.vpp; ++c)
      for (size_t i = 0; i < w_n; ++i) host[i] += host[size_t(c) * chunk_n + i];
    fill_with(cond, 0, w_n, [&](size_t i) { return host[i]; });
    if (fc.groups.pp->size() > 1) fc.groups.pp->all_reduce(cond.at(0), cond.at(0), w_n, dt, RedOp::sum);
    for (int c = 1; c < g_opt.vpp; ++c) copy_elements(cond, size_t(c) * chunk_n, cond, 0, w_n);
  }
  const double cond_total = cond_embedder_reduced(fc.layout.pp(), g_opt.vpp);
  ctx.check({"finalize.cond_embedder", fc.name, dtype_name(dt),
             "weight == sum over VPP chunks and PP stages of 10p+c (PP=4,VPP=2: 124); bias unchanged"},
            cond, 0, cond.count(), 0,
            [&](size_t i) {
              const size_t c = i / chunk_n;
              return i % chunk_n < w_n ? double(round_to(dt, float(cond_total))) : cond_embedder_grad(fc.dc.pp, int(c));
            },
            dt == DType::f32 ? 0 : double(fc.layout.pp() * g_opt.vpp));
}

// Params replicated over TP, all-reduced as one coalesced buffer per op: the layernorms under
// sequence parallelism with SUM (Megatron's _allreduce_non_tensor_model_parallel_grads), the router
// with AVG (average_gradients_across_tp_domain).
void allreduce_tp_replicated_grads(Context& ctx, const FinalizeCase& fc, bool average) {
  const DType dt = ctx.opts.dtype;
  const int64_t h = g_opt.shape.hidden;
  const int layers = first_moe_layer(g_opt.shape.moe_layers, fc.layout.pp(), fc.dc.pp + 1) -
                     first_moe_layer(g_opt.shape.moe_layers, fc.layout.pp(), fc.dc.pp);
  const size_t n = size_t(layers) * size_t(average ? g_opt.shape.experts * h : 2 * h);
  const uint64_t s = fc.seed + (average ? 31 : 17);
  Buffer tp = ctx.backend.alloc(dt, n);
  fill_with(tp, 0, n, [&](size_t i) { return float(tp_grad(s, fc.dc.tp, i)); });
  if (fc.groups.tp->size() > 1) fc.groups.tp->all_reduce(tp.data(), tp.data(), n, dt, average ? RedOp::avg : RedOp::sum);
  const bool exact = dt == DType::f32 && (!average || (fc.layout.tp() & (fc.layout.tp() - 1)) == 0);
  ctx.check({average ? "finalize.tp_avg" : "finalize.tp_sum", fc.name, dtype_name(dt),
             average ? "router grads AVG over TP" : "layernorm grads SUM over TP"},
            tp, 0, n, 0, [&](size_t i) { return tp_reduced(s, fc.layout.tp(), i, average); },
            exact ? 0 : double(fc.layout.tp() + 2));
}

// The word embedding (Megatron's _allreduce_word_embedding_grads): SUM over the embedding group,
// the first and last PP stage only.
void allreduce_word_embedding_grads(Context& ctx, const FinalizeCase& fc) {
  const DType dt = ctx.opts.dtype;
  const int rank = ctx.run.rank;
  const bool holds = fc.dc.pp == 0 || fc.dc.pp == fc.layout.pp() - 1;
  const size_t n = holds ? size_t(g_opt.shape.vocab / fc.layout.tp() * g_opt.shape.hidden) : 0;
  const uint64_t s = fc.seed + 53;
  Buffer emb = ctx.backend.alloc(dt, n);
  fill_with(emb, 0, n, [&](size_t i) { return float(embedding_grad(s, rank, i)); });
  if (fc.groups.in_embedding && fc.groups.embedding->size() > 1)
    fc.groups.embedding->all_reduce(emb.data(), emb.data(), n, dt, RedOp::sum);
  const GroupSum group = group_sum_of(fc.layout.group(GroupKind::embedding, rank));
  ctx.check({"finalize.embedding", fc.name, dtype_name(dt), "word embedding SUM over first+last PP stage"}, emb, 0, n,
            0, [&](size_t i) { return embedding_reduced(s, group, i); }, dt == DType::f32 ? 0 : 4.0);
}

// num_tokens: counted on the last PP stage, broadcast over PP, summed over dp_cp (other stages start
// from -1 so a missing broadcast shows); every synced grad is then scaled by 1/max(n, 1), checked
// against the sync's closed form times that factor. Returns whether the scaled grads check passed;
// *count = the num_tokens this rank saw.
bool scale_grads_by_num_tokens(Context& ctx, const FinalizeCase& fc, GradBuffers& g, GradScaleMode mode,
                               double* count) {
  Buffer tokens = ctx.backend.alloc(DType::f32, 1);
  const float local_tokens = fc.dc.pp == fc.layout.pp() - 1 ? float(g_opt.tokens) : -1.0f;
  fill_with(tokens, 0, 1, [&](size_t) { return local_tokens; });
  if (fc.groups.pp->size() > 1) fc.groups.pp->broadcast(tokens.data(), 1, DType::f32, fc.groups.pp->size() - 1);
  if (fc.groups.dp_cp->size() > 1) fc.groups.dp_cp->all_reduce(tokens.data(), tokens.data(), 1, DType::f32, RedOp::sum);
  const double num_tokens = tokens.to_host_f32(0, 1)[0];
  const double expected_tokens = double(g_opt.tokens) * fc.layout.dp_cp();
  ctx.check_condition({"finalize.num_tokens", fc.name, "fp32", "num_tokens = sum over dp_cp of the last stage's count"},
                      num_tokens == expected_tokens, format_double(num_tokens), format_double(expected_tokens));
  const float factor = num_tokens_factor(expected_tokens);
  const float applied = ctx.fault.applies("missing-scale", ctx.run.rank) ? 1.0f : num_tokens_factor(num_tokens);
  scale_elements(g.dense_buf(), 0, g.dense_buf().count(), applied);
  scale_elements(g.expert_buf(), 0, g.expert_buf().count(), applied);
  *count = num_tokens;
  return check_synced(ctx, g, fc.layout, mode, Fill::pattern, fc.seed, "finalize.num_tokens_scale", fc.name, factor);
}

void run_finalize(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const BucketPlan& plan,
                  const std::string& opt_name) {
  const int rank = ctx.run.rank;
  const FinalizeCase fc{layout, groups, layout.dense_coords(rank), ctx.opts.seed + 104729, opt_name};

  // The DP grad sync (finish_grad_sync) with per-token loss: no pre-scale, SUM.
  GradBuffers g = make_grad_buffers(ctx.backend, plan, ctx.opts.dtype);
  fill_grads(g, Fill::pattern, layout, fc.seed, rank);
  const GradScaleMode mode = GradScaleMode::per_token_loss;
  sync_grads(ctx, g, groups, grad_scaling(mode, false, layout.dp_cp(), layout.edp()),
             grad_scaling(mode, true, layout.dp_cp(), layout.edp()), sync_faults(ctx));

  allreduce_conditional_embedding_grads(ctx, fc);
  allreduce_tp_replicated_grads(ctx, fc, false);
  allreduce_tp_replicated_grads(ctx, fc, true);
  allreduce_word_embedding_grads(ctx, fc);
  double num_tokens = 0;
  const bool scaled_ok = scale_grads_by_num_tokens(ctx, fc, g, mode, &num_tokens);
  ctx.progress("finalize_model_grads (" + opt_name + "), num_tokens " + format_double(num_tokens) +
               (scaled_ok ? ": ok" : ": CHECK FAILED"));
}

// --- 6. token dispatch and combine ---------------------------------------------------------------
// The counts size the all-to-all-v, so both sides must agree on them before it runs: every rank echoes
// what it received back to the senders, which compare the echo with what they sent (a count corrupted
// in transit would otherwise size a receive wrongly: MPI_ERR_TRUNCATE instead of a FAIL row). A count
// must also be a whole number of rows no larger than what one rank routes. Collective; the verdict is
// the same on every rank, so all skip the exchange together when it fails.
bool counts_agree(Context& ctx, Comm& ep, const DispatchPlan& plan, const Buffer& counts_in,
                  const std::vector<float>& got, int max_rows) {
  const int EP = ep.size();
  Buffer echo = ctx.backend.alloc(DType::f32, size_t(EP));
  ep.all_to_all(counts_in.data(), echo.data(), 1, DType::f32);
  const std::vector<float> back = echo.to_host_f32(0, size_t(EP));
  auto verdict = [&](const std::vector<float>& echoed) {
    LocalVerify v;
    v.n_checked = uint64_t(2 * EP);
    auto wrong = [&](int p, double want, double seen) {
      if (v.n_wrong++ == 0) v.first_index = p, v.expected = want, v.observed = seen, v.culprit = ep.members()[size_t(p)];
    };
    for (int p = 0; p < EP; ++p) {
      if (echoed[size_t(p)] != float(plan.send_counts[size_t(p)])) wrong(p, plan.send_counts[size_t(p)], echoed[size_t(p)]);
      const float c = got[size_t(p)];
      if (!(c >= 0 && c <= float(max_rows) && c == std::floor(c))) wrong(p, -1, c);
    }
    return v;
  };
  // A "flip" fault corrupts only the copy being verified; whether the exchange can run depends on the
  // real counts, agreed over the world.
  std::vector<float> seen = back;
  apply_flip_fault(ctx.fault, ctx.run.rank, "dispatch.counts", DType::f32, seen);
  ctx.report_check({"dispatch.counts", "", "fp32", "rows per EP peer agree between sender and receiver"}, verdict(seen));
  return ctx.max_over_ranks(verdict(back).n_wrong ? 1.0 : 0.0) == 0.0;
}

void run_dispatch(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const MoeRouting& routing) {
  const int rank = ctx.run.rank;
  const DType dt = ctx.opts.dtype;
  Comm& ep = *groups.ep;
  const int EP = ep.size(), H = g_opt.token_hidden, T = g_opt.tokens, K = g_opt.top_k;
  const int my_ep = layout.expert_coords(rank).ep;
  const int64_t misroute = ctx.fault.applies("wrong-expert", rank) ? ctx.fault.index : -1;
  const DispatchPlan plan = plan_dispatch(routing, rank, misroute);
  const size_t rows = plan.rows.size();

  // Counts first (Megatron's preprocess): rows per EP peer, exchanged with an all-to-all.
  Buffer counts_out = ctx.backend.alloc(DType::f32, size_t(EP)), counts_in = ctx.backend.alloc(DType::f32, size_t(EP));
  fill_with(counts_out, 0, size_t(EP), [&](size_t p) { return float(plan.send_counts[p]); });
  ep.all_to_all(counts_out.data(), counts_in.data(), 1, DType::f32);
  const std::vector<float> got = counts_in.to_host_f32(0, size_t(EP));
  if (!counts_agree(ctx, ep, plan, counts_in, got, T * K)) {
    ctx.progress("dispatch: token counts disagree between senders and receivers; dispatch and combine skipped");
    return;
  }
  std::vector<size_t> rows_from_peer(got.begin(), got.end());
  const TokenExchange x = token_exchange(plan, rows_from_peer, H);
  Buffer send = ctx.backend.alloc(dt, rows * size_t(H)), recv = ctx.backend.alloc(dt, x.recv_rows * size_t(H));
  fill_with(send, 0, send.count(), [&](size_t i) { return float(dispatch_element(routing, plan, H, i)); });
  const CollArgs dispatch = dispatch_args(x, dt, send.data(), recv.data());
  ep.run(dispatch);

  // Expert side: every row is a token routed to one of this EP rank's experts, from the rank whose
  // chunk it arrived in, in dispatch order.
  {
    std::vector<float> host = recv.to_host_f32(0, recv.count());
    std::vector<float> seen = host;  // a "flip" fault corrupts only the copy being verified
    apply_flip_fault(ctx.fault, rank, "dispatch.received", dt, seen);
    LocalVerify v;
    v.n_checked = x.recv_rows;
    std::string why;
    size_t row = 0;
    for (int p = 0; p < EP; ++p) {
      int64_t prev = -1;
      for (size_t j = 0; j < x.recv_counts[p] / size_t(H); ++j, ++row) {
        RowCheck c = check_received_row(routing, &seen[row * size_t(H)], H, ep.members()[p], my_ep, &prev);
        if (c.ok) continue;
        if (v.n_wrong++ == 0) v.first_index = int64_t(row), v.culprit = c.culprit, why = c.why;
      }
    }
    if (!why.empty()) std::fprintf(stderr, "rank %d: dispatch.received: %s\n", rank, why.c_str());
    ctx.report_check({"dispatch.received", "", dtype_name(dt), "each row reaches an expert of its EP rank, in order"}, v);
    run_experts(routing, host, H);  // out = (payload + expert) mod 256, for the expert the row names
    fill_with(recv, 0, recv.count(), [&](size_t i) { return host[i]; });
  }

  // Combine: the reverse all-to-all-v brings every row back; un-permute into (token, slot) order.
  ep.run(combine_args(x, dt, send.data(), recv.data()));
  Buffer slots = ctx.backend.alloc(dt, size_t(T) * size_t(K) * size_t(H));
  unpermute(plan, K, H, send, slots);
  const std::vector<int> slot_expert = slot_experts(routing, rank);
  ctx.check({"combine.slots", "", dtype_name(dt), "every (token, slot) row comes back processed by its expert"}, slots, 0,
            slots.count(), 0,
            [&](size_t i) {
              const size_t row = i / size_t(H);
              const uint64_t id = routing.token_id(rank, int(row / size_t(K)), int(row % size_t(K)));
              return double(expert_output(payload_value(id, int(i % size_t(H))), slot_expert[row]));
            },
            0, [&](size_t i) { return ep.members()[size_t(routing.expert_owner(slot_expert[i / size_t(H)]))]; });

  // Load: tokens each EP rank receives, over this rank's EP group (max/mean = imbalance).
  const RoutingLoad load = routing.load(ep.members());
  const double worst = ctx.max_over_ranks(load.imbalance);
  PerfRow routing_row;
  routing_row.op = "moe_routing", routing_row.group_size = EP, routing_row.layout = g_opt.routing;
  routing_row.case_name = "worst EP group";
  ctx.perf(metric_row(routing_row, "load_imbalance_max_over_mean", worst, "ratio"));
  if (ctx.is_root())
    for (int p = 0; p < EP; ++p) {
      routing_row.case_name = "ep_group0/ep_rank=" + std::to_string(p);
      ctx.perf(metric_row(routing_row, "tokens_received", double(load.per_ep_rank[size_t(p)]), "rows"));
    }
  const double recv_max = ctx.max_over_ranks(double(x.recv_rows));
  const double recv_mean = ctx.sum_over_ranks(double(x.recv_rows)) / ctx.run.size;
  routing_row.op = "all_to_allv", routing_row.case_name = "all ranks";
  ctx.perf(metric_row(routing_row, "recv_rows_max_over_mean", recv_mean > 0 ? recv_max / recv_mean : 0, "ratio"));
  ctx.progress("token dispatch: " + std::to_string(T) + " tokens x top-" + std::to_string(K) + " over EP=" +
               std::to_string(EP) + ", load imbalance " + format_double(worst, 4));

  // Perf: dispatch all-to-all-v next to a plain all-to-all of the same bytes per rank (every rank
  // sends T*K rows; only their spread over peers differs).
  if (ctx.opts.iters > 0) {
    const size_t bytes = rows * size_t(H) * dtype_size(dt);
    TimingStats tv = ctx.time_op(ctx.world, ctx.opts.warmup, ctx.opts.iters, [&] { ep.run(dispatch); });
    const size_t per_peer = rows * size_t(H) / size_t(EP);
    Buffer a = ctx.backend.alloc(dt, per_peer * size_t(EP)), b = ctx.backend.alloc(dt, per_peer * size_t(EP));
    TimingStats tp = ctx.time_op(ctx.world, ctx.opts.warmup, ctx.opts.iters,
                                 [&] { ep.all_to_all(a.data(), b.data(), per_peer, dt); });
    for (int plain = 0; plain < 2; ++plain) {
      const TimingStats& t = plain ? tp : tv;
      PerfRow p;
      p.case_name = std::to_string(T) + "x" + std::to_string(K) + "x" + std::to_string(H);
      p.op = plain ? "all_to_all" : "all_to_allv";
      p.dtype = dtype_name(dt), p.group_size = EP, p.layout = plain ? "equal bytes" : "moe dispatch " + g_opt.routing;
      p.count = plain ? per_peer : rows * size_t(H);
      p.bytes = plain ? per_peer * size_t(EP) * dtype_size(dt) : bytes;
      set_times(p, t);
      set_bandwidths(p, coll_busbw_factor(CollKind::all_to_all, EP));
      ctx.perf(p);
    }
  }
}

// --- 7. two-level sync vs one flat all-reduce ----------------------------------------------------
void run_sync_perf(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const BucketPlan& plain,
                   const BucketPlan& distopt) {
  if (ctx.opts.iters <= 0) return;
  const DType dt = ctx.opts.dtype;
  const GradScaling s = grad_scaling(GradScaleMode::default_sum, false, layout.dp_cp(), layout.edp());
  std::map<std::string, TimingStats> times;
  size_t max_elems = 0;
  for (bool use_distopt : g_opt.distopt) {
    GradBuffers g = make_grad_buffers(ctx.backend, use_distopt ? distopt : plain, dt);
    g.dense_buf().fill_zero();
    if (!g.expert_buf().empty()) g.expert_buf().fill_zero();
    max_elems = std::max<size_t>(max_elems, size_t(ctx.max_over_ranks(double(g.dense_buf().count() + g.expert_buf().count()))));
    times[use_distopt ? "distopt" : "allreduce"] = ctx.time_op(ctx.world, ctx.opts.warmup, ctx.opts.iters,
                                                               [&] { sync_grads(ctx, g, groups, s, s, sync_faults(ctx), true); });
  }
  Buffer flat = ctx.backend.alloc(dt, max_elems);
  flat.fill_zero();
  const TimingStats tf = ctx.time_op(ctx.world, ctx.opts.warmup, ctx.opts.iters,
                                     [&] { ctx.world.all_reduce(flat.data(), flat.data(), max_elems, dt, RedOp::sum); });
  const std::string groups_text = "dense=dp_cp(" + std::to_string(layout.dp_cp()) + ") expert=expt_dp(" +
                                  std::to_string(layout.edp()) + ")";
  auto emit = [&](const std::string& op, const std::string& lay, const TimingStats& t) {
    PerfRow p;
    p.case_name = "grad sync", p.op = op, p.dtype = dtype_name(dt), p.redop = "sum", p.in_place = "1";
    p.group_size = op == "all_reduce" ? ctx.run.size : layout.dp_cp(), p.layout = lay;
    p.count = max_elems, p.bytes = max_elems * dtype_size(dt);
    set_times(p, t);
    // The two-level sync is two collectives over different groups: no single bus factor.
    set_bandwidths(p, op == "all_reduce" ? coll_busbw_factor(CollKind::all_reduce, ctx.run.size) : -1);
    ctx.perf(p);
  };
  emit("all_reduce", "flat over world, same bytes", tf);
  for (const auto& [name, t] : times) {
    emit(perf_names::kTwoLevelSync, name + " " + groups_text, t);
    PerfRow ratio;
    ratio.case_name = "grad sync", ratio.op = perf_names::kTwoLevelSync, ratio.layout = name + " " + groups_text;
    ratio.metric = "time_over_flat_all_reduce", ratio.unit = "ratio";
    ratio.value = tf.med_s > 0 ? t.med_s / tf.med_s : 0;
    ctx.perf(ratio);
    ctx.progress("two-level sync (" + name + "): " + format_double(t.med_s * 1e6, 4) + " us vs flat all-reduce " +
                 format_double(tf.med_s * 1e6, 4) + " us of " + std::to_string(max_elems * dtype_size(dt)) + " B");
  }
}


// --- 8. reduce-scatter with fp32 accumulation on the expert grads ----------------------------------
// Megatron's reduce_scatter_with_fp32_accumulation for the expert buffer of the DistOpt plan, bucket
// by bucket, in place over expt_dp: the check set shared with dtbench-fsdp (fp32_accum_checks.h),
// with the pre-scale by 2^-k = 1/DPCP (rounded up to a power of two) that Megatron applies first.
void check_expert_fp32_accum(Context& ctx, const ParallelLayout& layout, MoeGroups& groups, const BucketPlan& plan) {
  Fp32AccumCheckPlan p;
  p.group = "expt_dp", p.seed = ctx.opts.seed + 15485863;
  for (const GradBuffer& b : plan.buffers())
    if (b.key.expert)
      for (const GradBucket& bucket : b.buckets) p.buckets.push_back({size_t(bucket.offset), size_t(bucket.numel)});
  p.case_name = "expt_dp W=" + std::to_string(groups.expt_dp->size()) + "/" + std::to_string(p.buckets.size()) + " buckets";
  while ((1 << p.prescale_log2) < std::max(layout.dp_cp(), 2)) ++p.prescale_log2;
  run_fp32_accum_checks(ctx, *groups.expt_dp, p);
}

// --- driver --------------------------------------------------------------------------------------
void run(Context& ctx) {
  const ParallelLayout layout(sizes_for(ctx.run.size));
  const MoeRouting routing(routing_for(layout, ctx.opts.seed));
  const int rank = ctx.run.rank;
  ctx.progress("layout: TP " + std::to_string(layout.tp()) + " CP " + std::to_string(layout.cp()) + " PP " +
               std::to_string(layout.pp()) + " DP " + std::to_string(layout.dp()) + " | ETP " +
               std::to_string(layout.etp()) + " EP " + std::to_string(layout.ep()) + " EDP " +
               std::to_string(layout.edp()) + " | experts " + std::to_string(g_opt.shape.experts) + " per layer");

  // 1. communicators
  MoeGroups groups = build_moe_groups(ctx.world, layout);
  check_groups(ctx, layout, groups);

  // 2. this rank's MoE stage and its bucket plans
  const ModelSpec model = build_moe_stage_model(g_opt.shape, layout, routing, rank, ctx.opts.dtype);
  BucketPlanOptions po;
  po.dp_size = layout.dp_cp(), po.expert_dp_size = layout.edp();
  po.bucket_size = g_opt.bucket_elems;
  const BucketPlan plain(model, po);
  po.distributed_optimizer = true;
  // fp32-accum RS over the whole expt_dp (and the N = 1 DistOpt): buffers padded for D = |group|.
  const BucketPlan full_distopt(model, po);
  // Partial DistOpt pads for, and shards over, the intra groups (D / N).
  po.dp_size = layout.dp_cp() / layout.dist_opt_instances();
  po.expert_dp_size = layout.edp() / layout.dist_opt_instances();
  const BucketPlan distopt(model, po);
  {
    // Uneven experts: expert buffers differ between EP ranks but agree inside every expt_dp group.
    int64_t expert_numel = 0;
    for (const GradBuffer& b : distopt.buffers())
      if (b.key.expert) expert_numel = b.numel;
    Comm& edp = *groups.expt_dp;
    Buffer mine = ctx.backend.alloc(DType::f32, 2), all = ctx.backend.alloc(DType::f32, 2 * size_t(edp.size()));
    fill_with(mine, 0, 2, [&](size_t i) { return float(i == 0 ? expert_numel >> 16 : expert_numel & 0xffff); });
    edp.all_gather(mine.data(), all.data(), 2, DType::f32);
    const std::vector<float> v = all.to_host_f32(0, all.count());
    bool same = true;
    for (int p = 0; p < edp.size(); ++p) same &= v[2 * p] == v[0] && v[2 * p + 1] == v[1];
    ctx.check_condition({"expert_buffers.consistent", "distopt", "", "expert buffer numel equal across expt_dp"}, same,
                        "differs inside expt_dp", "equal");
    const int my_ep = layout.expert_coords(rank).ep;
    ctx.progress("rank 0 stage: " + std::to_string(model.tensors.size()) + " tensors, " +
                 std::to_string(routing.num_local_experts(my_ep)) + " local experts, " +
                 std::to_string(plain.buffers().size()) + " grad buffers, " + std::to_string(plain.num_buckets()) +
                 " buckets");
  }

  // 3. group identity; 4. grad sync; 5. finalize; 6. tokens; 7. perf
  check_group_identity(ctx, layout, groups, plain);
  if (layout.dist_opt_instances() > 1 && std::count(g_opt.distopt.begin(), g_opt.distopt.end(), true))
    check_group_identity(ctx, layout, groups, distopt, "group_identity.distopt");
  run_grad_sync(ctx, layout, groups, plain, distopt);
  for (bool use_distopt : g_opt.distopt)
    run_finalize(ctx, layout, groups, use_distopt ? distopt : plain, use_distopt ? "distopt" : "allreduce");
  run_dispatch(ctx, layout, groups, routing);
  run_sync_perf(ctx, layout, groups, plain, distopt);
  check_expert_fp32_accum(ctx, layout, groups, full_distopt);

  PerfRow mem;
  mem.op = "memory", mem.metric = "peak_bytes_per_rank_max", mem.unit = "bytes";
  mem.value = ctx.max_over_ranks(double(memory_stats(ctx.backend.mem_space()).peak_bytes));
  ctx.perf(mem);
}

void add_options(CLI::App& app, CommonOptions& opts) {
  opts.iters = 10, opts.warmup = 2;
  // Checked at parse time: the defaults below divide by these sizes.
  app.add_option("--tp", g_opt.tp, "tensor-parallel size")->capture_default_str()->check(at_least(1));
  app.add_option("--cp", g_opt.cp, "context-parallel size")->capture_default_str()->check(at_least(1));
  app.add_option("--pp", g_opt.pp, "pipeline-parallel size")->capture_default_str()->check(at_least(1));
  app.add_option("--ep", g_opt.ep, "expert-parallel size (0: 2 when the world allows it, else 1)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--etp", g_opt.etp, "expert tensor-parallel size (0: --tp)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--experts,--num-experts", g_opt.shape.experts, "experts per MoE layer, split over EP (uneven allowed)")
      ->capture_default_str();
  // The shape's sizes are checked with the layout (check_moe_shape): most must divide by a size.
  app.add_option("--moe-layers", g_opt.shape.moe_layers, "MoE layers, split over PP stages")->capture_default_str();
  app.add_option("--hidden", g_opt.shape.hidden, "hidden size")->capture_default_str();
  app.add_option("--ffn", g_opt.shape.ffn, "expert MLP inner size")->capture_default_str();
  app.add_option("--vocab", g_opt.shape.vocab, "vocabulary (word embedding rows)")->capture_default_str();
  app.add_option("--top-k", g_opt.top_k, "experts per token")->capture_default_str();
  app.add_option("--tokens-per-rank", g_opt.tokens, "tokens routed by each rank (also its num_tokens)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--token-hidden", g_opt.token_hidden, "elements per token row in the all-to-all (0: --hidden; >= 8)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--routing", g_opt.routing, "expert choice distribution: uniform or zipf:S")->capture_default_str();
  app.add_option("--scaling", g_opt.scaling,
                 "comma-separated DDP gradient scaling modes: default, average_in_collective, per_token_loss, or all")
      ->default_str("all")
      ->delimiter(',')
      ->check(one_of({"default", "average_in_collective", "per_token_loss", "all"}));
  app.add_option("--optimizer", g_opt.optimizer, "allreduce (plain DDP), distopt (reduce-scatter) or both")
      ->capture_default_str()
      ->check(one_of({"allreduce", "distopt", "both"}));
  app.add_option("--bucket-size", g_opt.bucket_size,
                 bucket_size_help("default one bucket per buffer (Megatron without overlap_grad_reduce)"))
      ->transform(bucket_elements());
  app.add_option("--vpp", g_opt.vpp, "virtual pipeline chunks of the conditional embedder")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--dist-opt-instances,--num-distributed-optimizer-instances", g_opt.instances,
                 "partial distributed optimizer: N instances (DistOpt RS over DP/N ranks, then AR over N); "
                 "N must divide DP*CP and the expert DP size")
      ->capture_default_str()
      ->check(at_least(1));
}

// The planners' field names (ParallelLayout, check_moe_shape, MoeRouting) as this suite's flags.
const std::map<std::string, std::string> kFlagOf = {
    {"tp", "--tp"},       {"cp", "--cp"},           {"pp", "--pp"},
    {"ep", "--ep"},       {"ep_size", "--ep"},      {"etp", "--etp"},
    {"dist_opt_instances", "--dist-opt-instances"}, {"hidden", "--hidden"},
    {"ffn", "--ffn"},     {"vocab", "--vocab"},     {"experts", "--experts"},
    {"num_experts", "--experts"},                   {"moe_layers", "--moe-layers"},
    {"top_k", "--top-k"}, {"tokens_per_rank", "--tokens-per-rank"}};

void validate_plan(const RunInfo& run, CommonOptions& opts);
void validate_options(const RunInfo& run, CommonOptions& opts) {
  with_flag_names(kFlagOf, [&] { validate_plan(run, opts); });
}

void validate_plan(const RunInfo& run, CommonOptions& opts) {
  {
    const int n = g_opt.instances;
    g_opt.instances = 1;
    const ParallelLayout base(sizes_for(run.size));
    g_opt.instances = n;
    if (base.dp_cp() % n != 0 || base.edp() % n != 0)
      throw InputError("--dist-opt-instances " + std::to_string(n) + ": must divide DP*CP = " +
                       std::to_string(base.dp_cp()) + " and the expert DP size " + std::to_string(base.edp()));
  }
  const ParallelLayout layout(sizes_for(run.size));
  // A fault the layout cannot reveal is refused, never a silent PASS.
  const FaultSpec fault = opts.inject_fault.empty() ? FaultSpec{} : parse_fault_spec(opts.inject_fault);
  const std::string& fault_kind = fault.kind;
  refuse_unrevealable_fp32_accum_fault(fault, layout.edp(), "expert-DP");
  if (fault_kind == "skip-inter-ar" && g_opt.instances < 2)
    throw InputError("--inject-fault skip-inter-ar: there is no inter-instance all-reduce without "
                     "--dist-opt-instances >= 2");
  if (fault_kind == "wrong-group") {
    bool differ = false;
    for (int r = 0; r < run.size && !differ; ++r)
      differ = layout.group(GroupKind::dp_cp, r) != layout.group(GroupKind::expert_dp, r);
    if (!differ)
      throw InputError("--inject-fault wrong-group: in this layout the expert DP group is the dense DP group on every "
                       "rank, so reducing expert grads over the dense group changes nothing (choose EP/ETP so that "
                       "expert DP != dense DP, e.g. -np 4 with the default --ep 2)");
  }
  g_opt.distribution = parse_routing_distribution(g_opt.routing, "--routing");
  check_moe_shape(g_opt.shape, layout);
  const MoeRouting routing(routing_for(layout, 1));
  if (g_opt.token_hidden == 0) g_opt.token_hidden = int(g_opt.shape.hidden);
  if (g_opt.token_hidden < 8)
    throw InputError("--token-hidden: rows need at least 8 elements to carry a token id (got " +
                     std::to_string(g_opt.token_hidden) + ")");
  g_opt.bucket_elems.reset();
  if (g_opt.bucket_size > 0) g_opt.bucket_elems = g_opt.bucket_size;
  g_opt.modes.clear();
  for (const std::string& name : g_opt.scaling)  // names one_of checked; "all" is every mode once
    if (name == "all") g_opt.modes = {GradScaleMode::default_sum, GradScaleMode::average_in_collective,
                                      GradScaleMode::per_token_loss};
  if (g_opt.modes.empty())
    for (const std::string& name : g_opt.scaling) g_opt.modes.push_back(parse_grad_scale_mode(name, "--scaling"));
  g_opt.distopt = g_opt.optimizer == "allreduce" ? std::vector<bool>{false}
                  : g_opt.optimizer == "distopt" ? std::vector<bool>{true}
                                                 : std::vector<bool>{false, true};
  if (g_opt.instances > 1 && g_opt.optimizer == "allreduce")
    throw InputError("--dist-opt-instances: N > 1 needs the distributed optimizer (--optimizer distopt or both)");
  if (g_opt.shape.experts > 0 && int64_t(g_opt.tokens) * g_opt.top_k * g_opt.token_hidden * 4 > (int64_t(1) << 30))
    throw InputError("--tokens-per-rank: dispatch buffer over 1 GiB; lower --tokens-per-rank or --token-hidden");
}

}  // namespace

int main(int argc, char** argv) {
  Suite suite;
  suite.name = "ep";
  suite.summary =
      "expert-parallel grad sync (dense over dp_cp, expert over expt_dp), finalize_model_grads and MoE token "
      "all-to-all-v, validated per element";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 4 dtbench-ep                                   # EP 2, all scalings, allreduce + distopt\n"
      "  mpirun -np 8 dtbench-ep --tp 2 --etp 1 --ep 4             # expert DP (2) != dense DP (4)\n"
      "  mpirun -np 8 dtbench-ep --ep 4 --experts 6 --routing zipf:1.2 --top-k 2\n"
      "  mpirun -np 8 dtbench-ep --pp 4 --vpp 2 --scaling per_token_loss   # the '124' embedder case\n"
      "  mpirun -np 8 dtbench-ep --dist-opt-instances 2 --optimizer distopt   # partial DistOpt: intra RS + inter AR\n"
      "  mpirun -np 4 dtbench-ep --inject-fault wrong-group        # expert grads over dp_cp: FAIL, exit 1\n"
      "  mpirun -np 8 dtbench-ep --inject-fault bf16-accum,rank=2  # bf16 sums where fp32 was asked: FAIL, exit 1\n"
      "Faults: flip[,rank=R,op=CHECK,index=I], wrong-group (all ranks), missing-scale,rank=R,\n"
      "wrong-expert,rank=R[,index=ROW], skip-inter-ar (all ranks; partial DistOpt), and for the fp32-accumulation\n"
      "RS on the expert grads: bf16-accum,rank=R, rs-wrong-offset,rank=R, fp32-in-bf16-rs, accept-bad-scratch\n"
      "(the last two on all ranks). Timings cover collectives only (pre-scale excluded).";
  suite.add_options = add_options;
  suite.faults = {"wrong-group", "wrong-expert", "missing-scale", "bf16-accum", "fp32-in-bf16-rs", "rs-wrong-offset", "skip-inter-ar", "accept-bad-scratch"};
  suite.validate = validate_options;
  suite.body = run;
  return suite_main(argc, argv, suite);
}
