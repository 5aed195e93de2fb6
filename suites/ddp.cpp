// dtbench-ddp: DDP gradient bucketing as Megatron-Core (and PyTorch DDP) does it. Plan the grad
// buffers and buckets (BucketPlan), run a simulated backward that marks params ready in backward
// order while each bucket's collective starts as soon as its last param is ready (GradSync), check
// every element against its closed form, then time the step, its compute and its exposed
// communication, and the same bytes as one flat collective. Shared logic: src/ddp/ddp_sync.h.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <tuple>
#include <sstream>

#include "ddp/ddp_sync.h"
#include "core/perf_names.h"
#include "core/check_kit.h"
#include "core/error.h"
#include "model/model.h"
#include "core/suite.h"
#include "layout/layout_groups.h"

using namespace dtbench;

namespace {

// The typed options: CLI11 parses and checks every flag into these (ranges, sizes, needs/excludes);
// validate_options decides what depends on the world or on several of them, once.
struct DdpOptions {
  std::string model = "tiny";
  int layers = 0, hidden = 0;
  int64_t bucket_size = 0;  // elements; 0 = not given
  double bucket_mb = 0;
  int dp_size = 0;  // 0 = world
  bool distributed_optimizer = false, force_all_reduce = false, pad_high_busbw = false;
  int instances = 1;
  bool grad_reduce_in_fp32 = false, average_in_collective = false, no_overlap = false;
  int microbatches = 1;
  double backward_ms = 2;
  std::string bucket_sweep;  // "MIN:MAX" in elements, as size_span rewrites it
  // decided by validate_options
  ModelSpec spec;
  std::optional<int64_t> bucket_elems;
  int64_t sweep_min = 0, sweep_max = 0;
  int dp = 1;
};
DdpOptions g;
int g_world = 1;

// ----------------------------------------------------------------------------- setup

struct Groups {
  std::unique_ptr<Comm> dp, intra, inter, wrong;
  int dp_color = 0;
  SyncComms sync() const { return SyncComms{intra ? intra.get() : dp.get(), inter.get(), wrong.get()}; }
  Comm& reduce() const { return intra ? *intra : *dp; }
};

// DP groups follow Megatron's rank order with the rest of the world as tensor parallelism:
// rank = tp + TP*dp, so with --dp-size < world each DP group is strided.
Groups make_groups(Context& ctx) {
  const int world = ctx.run.size, rank = ctx.run.rank;
  ParallelLayout layout(ParallelSizes{world, world / g.dp, 1, 1, 1, 0, g.instances});
  Groups gr;
  gr.dp_color = layout.group_color(GroupKind::dp_cp, rank);
  gr.dp = split_layout_group(ctx.world, layout, GroupKind::dp_cp, "dp");
  if (g.instances > 1) {
    gr.intra = split_layout_group(ctx.world, layout, GroupKind::intra_dp_cp, "intra_dp");
    gr.inter = split_layout_group(ctx.world, layout, GroupKind::inter_dp_cp, "inter_dp");
  }
  if (ctx.fault.kind == "wrong-group") {
    // A group of the reduce group's size with other members: contiguous blocks, else strided,
    // else halves of the world (every rank takes the same decision).
    const Comm& reduce = gr.intra ? *gr.intra : *gr.dp;
    const int size = reduce.size();
    std::vector<int> block, strided;
    for (int i = 0; i < size; ++i) block.push_back(rank / size * size + i);
    for (int i = 0; i < size; ++i) strided.push_back(rank % (world / size) + i * (world / size));
    const bool block_same = ctx.max_over_ranks(block == reduce.members() ? 1 : 0) > 0;
    const bool strided_same = ctx.max_over_ranks(strided == reduce.members() ? 1 : 0) > 0;
    const int color = !block_same ? rank / size : !strided_same ? rank % (world / size) : int(rank >= world / 2);
    gr.wrong = ctx.world.split(color, rank, "wrong");
  }
  return gr;
}

// The buffer layout every plan of this run shares (padding, grad dtype), without a bucket cap: the
// flat peer (one collective per buffer) uses it as it is.
BucketPlanOptions buffer_options() {
  BucketPlanOptions o;
  o.dp_size = g.dp / g.instances;  // DistOpt pads to the intra group it shards over
  o.distributed_optimizer = g.distributed_optimizer;
  o.pad_for_high_busbw = g.pad_high_busbw;
  o.grad_reduce_in_fp32 = g.grad_reduce_in_fp32;
  return o;
}
// The configured plan: --bucket-mb, or Megatron's element cap (default or --bucket-size).
BucketPlanOptions plan_options() {
  BucketPlanOptions o = buffer_options();
  if (g.bucket_mb > 0 && !g.bucket_elems) o.bucket_mb = g.bucket_mb;
  else o.bucket_size = megatron_bucket_size(g.bucket_elems, g.dp, !g.no_overlap);
  return o;
}
// One step of --bucket-sweep: this cap, overlap or not.
BucketPlanOptions sweep_options(int64_t cap) {
  BucketPlanOptions o = buffer_options();
  o.bucket_size = cap;
  return o;
}

std::vector<GradScaling> scalings(const BucketPlan& plan) {
  const GradScaleMode mode = g.average_in_collective ? GradScaleMode::average_in_collective : GradScaleMode::default_sum;
  std::vector<GradScaling> s;
  for (const GradBuffer& b : plan.buffers()) s.push_back(grad_scaling(mode, b.key.expert, g.dp, g.dp));
  return s;
}

struct Buffers {
  std::vector<Buffer> grads, params;
};
Buffers allocate(Context& ctx, const BucketPlan& plan) {
  Buffers b;
  for (const GradBuffer& buf : plan.buffers()) {
    b.grads.push_back(ctx.backend.alloc(buf.key.grad_dtype, size_t(buf.numel)));
    b.grads.back().fill_zero();
    if (g.distributed_optimizer) b.params.push_back(ctx.backend.alloc(buf.key.param_dtype, size_t(buf.numel)));
  }
  return b;
}

SyncConfig sync_config(Context& ctx) {
  SyncConfig c;
  c.distributed_optimizer = g.distributed_optimizer;
  c.force_all_reduce = g.force_all_reduce;
  c.instances = g.instances;
  c.overlap = !g.no_overlap;
  const int r = ctx.run.rank;
  c.skip_prescale = ctx.fault.applies("missing-prescale", r);
  if (ctx.fault.applies("early-dispatch", r)) c.early_bucket = int(ctx.fault.index);
  if (ctx.fault.kind == "wrong-group") c.wrong_group_bucket = int(ctx.fault.index);
  return c;
}

std::string layout_text(const BucketPlan& plan) {
  std::ostringstream s;
  s << "model=" << g.spec.name << " params=" << g.spec.numel() << " layers=" << g.spec.num_layers()
    << " buffers=" << plan.buffers().size() << " buckets=" << plan.num_buckets() << " D=" << g.dp
    << " dp_groups=" << g_world / g.dp << " mode="
    << (!g.distributed_optimizer ? "all_reduce" : g.force_all_reduce ? "distopt_force_all_reduce" : "distopt")
    << (g.instances > 1 ? " instances=" + std::to_string(g.instances) : "")
    << (g.average_in_collective ? " avg_in_collective" : " prescale_sum")
    << (g.grad_reduce_in_fp32 ? " grad_fp32" : "") << " microbatches=" << g.microbatches
    << (g.no_overlap ? " no_overlap" : " overlap");
  return s.str();
}

// ----------------------------------------------------------------------------- the backward

// Backward order: the reverse of registration. Each param's simulated compute is proportional to
// its size; it runs in slices so that outstanding collectives keep progressing (MPI moves data only
// inside library calls; on the GPU the polls are cheap event queries).
struct Backward {
  const ModelSpec& model;
  double seconds = 0;  // per microbatch, spread over params by size
  void compute(Context& ctx, int tensor, GradSync* sync) const {
    double s = seconds * double(model.tensors[size_t(tensor)].numel()) / double(std::max<int64_t>(1, model.numel()));
    constexpr double kSlice = 100e-6;
    while (s > 0) {
      const double step = std::min(s, kSlice);
      ctx.backend.busy_compute(step);
      s -= step;
      if (sync) sync->poll();
    }
  }
};

// One training step for timing: k microbatches of backward, the last one registering grads (the
// earlier ones run under no_sync), then the grad sync and, with DistOpt, the param all-gather.
void timed_step(Context& ctx, const Backward& bw, GradSync* sync) {
  if (sync) sync->begin_step();
  for (int mb = 0; mb < g.microbatches; ++mb) {
    const bool last = mb == g.microbatches - 1;
    for (int t = int(bw.model.tensors.size()) - 1; t >= 0; --t) {
      bw.compute(ctx, t, sync);
      if (sync && last) sync->param_ready(t);
    }
  }
  if (sync) {
    sync->finish_grad_sync();
    sync->param_gather();
  }
}

// ----------------------------------------------------------------------------- validation

uint64_t buffer_seed(uint64_t round_seed, int dp_color, int buffer) {
  return round_seed * 1000003u + uint64_t(dp_color) * 131u + uint64_t(buffer) * 17u;
}

// Sorted param ranges of a buffer: elements outside them (alignment gaps, bucket padding) stay 0.
struct ParamRanges {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  bool contains(int64_t e) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(e, INT64_MAX));
    return it != ranges.begin() && e < std::prev(it)->second;
  }
  // Calls fn(begin, end, in_param) for consecutive pieces covering [lo, hi): each wholly inside one
  // param range or wholly outside every one (ranges are disjoint).
  template <class Fn>
  void for_pieces(size_t lo, size_t hi, Fn fn) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(int64_t(lo), INT64_MAX));
    if (it != ranges.begin()) --it;
    size_t pos = lo;
    for (; pos < hi && it != ranges.end() && size_t(it->first) < hi; ++it) {
      const size_t b = std::max(size_t(it->first), pos), e = std::min(size_t(it->second), hi);
      if (e <= b) continue;
      if (b > pos) fn(pos, b, false);
      fn(b, e, true);
      pos = e;
    }
    if (pos < hi) fn(pos, hi, false);
  }
};
std::vector<ParamRanges> param_ranges(const BucketPlan& plan) {
  std::vector<ParamRanges> out(plan.buffers().size());
  for (const BucketedParam& p : plan.params()) out[size_t(p.buffer)].ranges.push_back({p.start, p.end});
  for (ParamRanges& r : out) std::sort(r.ranges.begin(), r.ranges.end());
  return out;
}


// One validated step: k microbatches write grads (main_grad += D*v) in backward order, the last one
// registering them; then the sync; then every element of every grad buffer against its closed
// form; with DistOpt the optimizer writes its own shard of the params and the all-gather must
// restore the full param buffer on every rank.
void validate_step(Context& ctx, const BucketPlan& plan, Groups& gr, uint64_t round_seed, const std::string& case_name) {
  Buffers bufs = allocate(ctx, plan);
  const std::vector<GradScaling> scaling = scalings(plan);
  GradSync sync(plan, sync_config(ctx), gr.sync(), bufs.grads, bufs.params, scaling);
  const int q = gr.dp->rank();  // position in the full DP group
  const int nbuf = int(plan.buffers().size());
  std::vector<GradPattern> pattern;
  for (int b = 0; b < nbuf; ++b)
    pattern.push_back(GradPattern::make(buffer_seed(round_seed, gr.dp_color, b), g.dp, g.microbatches,
                                        plan.buffer(b).key.grad_dtype, scaling[size_t(b)]));
  if (g.distributed_optimizer)
    for (int b = 0; b < nbuf; ++b) {
      const uint64_t s = buffer_seed(round_seed, gr.dp_color, b);
      const int me = ctx.run.rank;
      fill_with(bufs.params[size_t(b)], 0, bufs.params[size_t(b)].count(), [=](size_t e) { return stale_param(s, me, e); });
    }

  sync.begin_step();
  const bool ignore_no_sync = ctx.fault.applies("ignore-no-sync", ctx.run.rank);
  int issued_in_no_sync = 0;
  for (int mb = 0; mb < g.microbatches; ++mb) {
    const bool last = mb == g.microbatches - 1;
    if (last) issued_in_no_sync = sync.collectives_issued();
    for (int t = int(g.spec.tensors.size()) - 1; t >= 0; --t) {
      const BucketedParam& p = plan.param(t);
      const GradPattern& pat = pattern[size_t(p.buffer)];
      add_elements(bufs.grads[size_t(p.buffer)], size_t(p.start), size_t(p.numel()),
                   [&](size_t e) { return float(pat.group_size) * float(pat.value(q, e)); });
      if (last || ignore_no_sync) sync.param_ready(t);
    }
  }
  sync.finish_grad_sync();

  // The grad-ready state machine: nothing before a bucket's last param, nothing under no_sync.
  OrderViolation why;
  const bool order_ok = check_dispatch_order(plan, sync.events(), &why);
  ctx.check_condition(CheckInfo{"dispatch_order", case_name, "", "every bucket's collective starts after its last param is ready"},
                      order_ok,
                      order_ok ? "" : "buffer " + std::to_string(why.buffer) + " bucket " + std::to_string(why.bucket) + ": " + why.what,
                      "dispatch after the bucket's last grad-ready");
  if (g.microbatches > 1)
    ctx.check_condition(CheckInfo{"no_sync", case_name, "", "no collective during the first k-1 microbatches"},
                        issued_in_no_sync == 0, std::to_string(issued_in_no_sync) + " collectives issued under no_sync", "0");

  // Grad values.
  const std::vector<ParamRanges> ranges = param_ranges(plan);
  const bool all_reduce = !g.distributed_optimizer || g.force_all_reduce;
  Comm& reduce = gr.reduce();
  CheckAccumulator reduced(all_reduce ? "grad.all_reduce" : "grad.distopt.own_shard");
  CheckAccumulator others("grad.distopt.other_shards");
  const std::vector<int>& members = gr.dp->members();
  for (int b = 0; b < nbuf; ++b) {
    const GradPattern& pat = pattern[size_t(b)];
    const ParamRanges& pr = ranges[size_t(b)];
    const Buffer& grad = bufs.grads[size_t(b)];
    // Param elements: closed forms (tables of the m values of b(e)); gaps and padding: 0.
    auto reduced_of = [&pat](size_t e) { return pat.reduced(e); };
    auto local_of = [&pat, q](size_t e) { return double(pat.prescaled(q, e)); };
    auto zero = [](size_t) { return 0.0; };
    auto culprit_reduced = [&](size_t e, double observed) {
      const int who = pat.position_without_prescale(e, observed);
      return who >= 0 ? members[size_t(who)] : -1;
    };
    auto nobody = [](size_t, double) { return -1; };
    auto me = [&](size_t, double) { return ctx.run.rank; };
    auto check_reduced = [&](size_t lo, size_t hi) {
      reduced.begin(ctx, grad, lo, hi - lo);
      pr.for_pieces(lo, hi, [&](size_t a, size_t z, bool in_param) {
        if (in_param) reduced.piece(grad, a, z - a, a, reduced_of, pat.tol_ulps(), culprit_reduced);
        else reduced.piece(grad, a, z - a, a, zero, pat.tol_ulps(), nobody);
      });
    };
    auto check_local = [&](size_t lo, size_t hi) {
      others.begin(ctx, grad, lo, hi - lo);
      pr.for_pieces(lo, hi, [&](size_t a, size_t z, bool in_param) {
        if (in_param) others.piece(grad, a, z - a, a, local_of, 0, me);
        else others.piece(grad, a, z - a, a, zero, 0, me);
      });
    };
    for (const GradBucket& bucket : plan.buffer(b).buckets) {
      if (all_reduce) {
        check_reduced(size_t(bucket.offset), size_t(bucket.offset + bucket.numel));
        continue;
      }
      const size_t lo = size_t(plan.owned_start(b, bucket.index, reduce.rank()));
      const size_t hi = size_t(plan.owned_end(b, bucket.index, reduce.rank()));
      const size_t begin = size_t(bucket.offset), end = begin + size_t(bucket.numel);
      check_local(begin, lo);
      check_reduced(lo, hi);
      check_local(hi, end);
    }
  }
  std::string detail = "sum over the DP group of pre-scaled grads";
  reduced.report(ctx, case_name, detail);
  if (!all_reduce) others.report(ctx, case_name, "outside the own shard: this rank's pre-scaled local grads");

  // DistOpt: the optimizer updates its own shard; the in-place all-gather restores every element.
  if (g.distributed_optimizer) {
    for (int b = 0; b < nbuf; ++b) {
      const uint64_t s = buffer_seed(round_seed, gr.dp_color, b);
      for (const GradBucket& bucket : plan.buffer(b).buckets) {
        const int64_t lo = plan.owned_start(b, bucket.index, reduce.rank());
        const int64_t hi = plan.owned_end(b, bucket.index, reduce.rank());
        fill_with(bufs.params[size_t(b)], size_t(lo), size_t(hi - lo), [=](size_t e) { return updated_param(s, e); });
      }
    }
    sync.param_gather();
    CheckAccumulator gathered("param.all_gather");
    for (int b = 0; b < nbuf; ++b) {
      const uint64_t s = buffer_seed(round_seed, gr.dp_color, b);
      for (const GradBucket& bucket : plan.buffer(b).buckets) {
        const int64_t shard = bucket.numel / reduce.size();
        const int64_t off = bucket.offset;
        const std::vector<int>& owners = reduce.members();
        gathered.add(ctx, bufs.params[size_t(b)], size_t(off), size_t(bucket.numel), size_t(off),
                     [=](size_t e) { return double(updated_param(s, e)); }, 0,
                     [=, &owners](size_t e, double) { return owners[size_t((int64_t(e) - off) / shard)]; });
      }
    }
    gathered.report(ctx, case_name, "full param buffer after the in-place all-gather; culprit = shard owner");
  }
}

// 2^rank through the same dispatch path (pre-scale 1, SUM): each bucket must hold the bitmask of
// its DP group, so a bucket reduced over the wrong communicator names a rank that should (not) be in it.
void group_identity(Context& ctx, const BucketPlan& plan, Groups& gr) {
  const std::vector<int>& members = gr.dp->members();
  for (const GradBuffer& b : plan.buffers())
    if (!power_sum_exact(b.key.grad_dtype, members) ||
        (gr.wrong && !power_sum_exact(b.key.grad_dtype, gr.wrong->members()))) {
      ctx.progress("group identity: sums of 2^rank are not exact in " + std::string(dtype_name(b.key.grad_dtype)) +
                   " for this group; skipped");
      return;
    }
  Buffers bufs = allocate(ctx, plan);
  const double mine = std::ldexp(1.0, ctx.run.rank);
  for (Buffer& grad : bufs.grads) fill_with(grad, 0, grad.count(), [=](size_t) { return float(mine); });
  GradSync sync(plan, sync_config(ctx), gr.sync(), bufs.grads, bufs.params,
                std::vector<GradScaling>(plan.buffers().size(), GradScaling{1.0, GradReduceOp::sum}));
  for (int t = int(g.spec.tensors.size()) - 1; t >= 0; --t) sync.param_ready(t);
  sync.finish_grad_sync();
  const double expected = expected_group_power_sum(members);
  const bool all_reduce = !g.distributed_optimizer || g.force_all_reduce;
  Comm& reduce = gr.reduce();
  for (size_t b = 0; b < plan.buffers().size(); ++b) {
    for (const GradBucket& bucket : plan.buffer(int(b)).buckets) {
      CheckAccumulator acc("group_identity");
      size_t lo = size_t(bucket.offset), hi = lo + size_t(bucket.numel);
      if (!all_reduce) {
        lo = size_t(plan.owned_start(int(b), bucket.index, reduce.rank()));
        hi = size_t(plan.owned_end(int(b), bucket.index, reduce.rank()));
      }
      acc.add(ctx, bufs.grads[b], lo, hi - lo, lo, [=](size_t) { return expected; }, 0,
              [=](size_t, double observed) { return identity_culprit(observed, expected); });
      std::ostringstream c;
      c << "buffer " << b << " bucket " << bucket.index;
      acc.report(ctx, c.str(), "2^rank summed over the bucket's DP group; culprit = a rank wrongly in or out of it");
    }
  }
}

// Σ over ranks of owned param elements == numel per DP group, each rank's pieces inside its shard.
void ownership_cover(Context& ctx, const BucketPlan& plan, Groups& gr) {
  const int r = gr.reduce().rank();
  std::vector<OwnedParamPiece> pieces = plan.owned_pieces(r);
  if (ctx.fault.applies("drop-piece", ctx.run.rank) && !pieces.empty()) pieces.pop_back();
  const CoverSummary s = summarize_ownership(plan, pieces, r);
  const int64_t independent = owned_param_elements(plan, r);
  const bool local_ok = s.consistent && s.owned_elements == independent;
  ctx.check_condition(CheckInfo{"ownership.cover.local", "", "", "this rank's owned pieces == its shards intersected with the params"},
                      local_ok, s.consistent ? std::to_string(s.owned_elements) + " owned elements" : s.problem,
                      std::to_string(independent));
  // Each reduce group covers every param element exactly once.
  const double total = ctx.sum_over_ranks(double(s.owned_elements));
  const double want = double(g.spec.numel()) * double(ctx.run.size / gr.reduce().size());
  ctx.check_condition(CheckInfo{"ownership.cover.total", "", "", "sum over ranks of owned elements == numel per group"},
                      total == want, format_double(total, 12), format_double(want, 12));
}

// ----------------------------------------------------------------------------- timing

// Timed steps move zeros (values stay stable however many iterations run) and leave the pre-scale
// out: it is a local elementwise pass, not communication, and identical for every bucket size.
struct Measured {
  TimingStats compute, comm, step;
  bool with_compute = false;
};

Measured measure(Context& ctx, const BucketPlan& plan, Groups& gr) {
  Buffers bufs = allocate(ctx, plan);
  if (g.distributed_optimizer)
    for (Buffer& p : bufs.params) p.fill_zero();
  SyncConfig config;
  config.distributed_optimizer = g.distributed_optimizer;
  config.force_all_reduce = g.force_all_reduce;
  config.instances = g.instances;
  config.overlap = !g.no_overlap;
  std::vector<GradScaling> scaling = scalings(plan);
  for (GradScaling& s : scaling) s.pre_scale = 1.0;
  GradSync sync(plan, config, gr.sync(), bufs.grads, bufs.params, scaling);
  const Backward none{g.spec, 0.0}, bw{g.spec, g.backward_ms * 1e-3};
  Measured m;
  m.with_compute = g.backward_ms > 0;
  const int w = ctx.opts.warmup, n = ctx.opts.iters;
  m.comm = ctx.time_op(ctx.world, w, n, [&] { timed_step(ctx, none, &sync); });
  if (m.with_compute) {
    m.compute = ctx.time_op(ctx.world, w, n, [&] { timed_step(ctx, bw, nullptr); });
    m.step = ctx.time_op(ctx.world, w, n, [&] { timed_step(ctx, bw, &sync); });
  } else {
    m.step = m.comm;
  }
  return m;
}

PerfRow row_for(const BucketPlan& plan, const std::string& case_name, const std::string& op,
                const TimingStats* t) {
  PerfRow row;
  row.case_name = case_name;
  row.op = op;
  row.dtype = dtype_name(plan.buffer(0).key.grad_dtype);
  row.redop = g.average_in_collective ? "avg" : "sum";
  row.in_place = "1";
  row.group_size = g.dp;
  row.layout = layout_text(plan);
  for (const GradBuffer& b : plan.buffers()) {
    row.count += (unsigned long long)b.numel;
    row.bytes += (unsigned long long)b.numel * dtype_size(b.key.grad_dtype);
  }
  if (t) set_times(row, *t);
  return row;
}

std::string us(double s) { return format_double(s * 1e6, 4) + " us"; }

// Writes the rows of one measured configuration; returns the grad-sync (comm only) time.
void report(Context& ctx, const BucketPlan& plan, const std::string& case_name, const Measured& m) {
  PerfRow sync = row_for(plan, case_name, perf_names::kDdpGradSync, &m.comm);
  const double factor = g.dp > 1 ? 2.0 * (g.dp - 1) / g.dp : 0.0;  // AR, or RS + AG: 2(n-1)/n
  set_bandwidths(sync, factor);
  ctx.perf(sync);
  std::string line = case_name + ": " + std::to_string(plan.num_buckets()) + " bucket(s), grad sync " + us(m.comm.med_s);
  if (m.with_compute) {
    const double exposed = std::max(0.0, m.step.med_s - m.compute.med_s);
    const double eff = m.comm.med_s > 0 ? std::clamp(1.0 - exposed / m.comm.med_s, 0.0, 1.0) : 1.0;
    ctx.perf(row_for(plan, case_name, perf_names::kDdpStep, &m.step));
    ctx.perf(row_for(plan, case_name, "compute", &m.compute));
    PerfRow base = row_for(plan, case_name, perf_names::kDdpStep, nullptr);
    ctx.perf(metric_row(base, perf_names::kExposedComm, exposed * 1e6, "us"));
    ctx.perf(metric_row(base, perf_names::kOverlapEfficiency, eff, "fraction"));
    line += ", step " + us(m.step.med_s) + " (compute " + us(m.compute.med_s) + ", exposed comm " + us(exposed) +
            ", overlap " + format_double(eff * 100, 3) + "%)";
  }
  ctx.progress(line);
}

std::string size_text(int64_t elems) {
  const char* units[] = {"", "K", "M", "G"};
  int u = 0;
  double v = double(elems);
  while (u < 3 && v >= 1024 && std::fmod(v, 1024) == 0) v /= 1024, ++u;
  return format_double(v, 6) + units[u];
}

// ----------------------------------------------------------------------------- the suite

void run(Context& ctx) {
  g_world = ctx.run.size;
  Groups gr = make_groups(ctx);
  BucketPlan plan(g.spec, plan_options());
  {
    std::ostringstream s;
    s << layout_text(plan) << "; bucket cap "
      << (plan.options().bucket_size ? std::to_string(*plan.options().bucket_size) + " elements"
          : plan.options().bucket_mb ? format_double(*plan.options().bucket_mb, 6) + " MiB (first 1 MiB)"
                                     : std::string("none (one bucket per buffer)"));
    ctx.progress(s.str());
  }

  // 1. Validation: every element, the order of dispatches, group identity, ownership cover.
  for (int rep = 0; rep < ctx.opts.check_iters; ++rep) {
    const uint64_t seed = ctx.opts.seed * 7919u + uint64_t(rep);
    validate_step(ctx, plan, gr, seed, "step " + std::to_string(rep));
  }
  if (ctx.opts.check_iters > 0) {
    group_identity(ctx, plan, gr);
    if (g.distributed_optimizer) ownership_cover(ctx, plan, gr);
    ctx.progress("validation done");
  }

  // 2. Timing: the configured buckets (or a sweep of bucket sizes) next to one flat collective.
  std::string best_case;
  int64_t best_size = 0;
  double best_time = 0, best_comm = 0;
  if (g.bucket_sweep.empty()) {
    const std::string case_name = plan.options().bucket_size ? "bucket=" + size_text(*plan.options().bucket_size)
                                  : plan.options().bucket_mb ? "bucket_mb=" + format_double(*plan.options().bucket_mb, 6)
                                                             : "bucket=none";
    Measured m = measure(ctx, plan, gr);
    report(ctx, plan, case_name, m);
    best_case = case_name, best_comm = m.comm.med_s;
  } else {
    int prev_buckets = -1;
    for (int64_t size = g.sweep_min; size <= g.sweep_max; size *= 2) {
      BucketPlan p(g.spec, sweep_options(size));
      if (p.num_buckets() == prev_buckets && p.num_buckets() == int(p.buffers().size())) break;  // no change any more
      prev_buckets = p.num_buckets();
      Measured m = measure(ctx, p, gr);
      const std::string case_name = "bucket=" + size_text(size);
      report(ctx, p, case_name, m);
      const double t = m.with_compute ? m.step.med_s : m.comm.med_s;
      if (best_case.empty() || t < best_time) best_case = case_name, best_size = size, best_time = t, best_comm = m.comm.med_s;
      if (size > g.sweep_max / 2) break;
    }
    PerfRow best = row_for(plan, best_case, "bucket_sweep", nullptr);
    ctx.perf(metric_row(best, perf_names::kBestBucketSize, double(best_size), "elements"));
    ctx.progress("best bucket size on this fabric: " + size_text(best_size) + " elements (" + best_case + ")");
  }

  // The peer: the same bytes as one collective per buffer (no bucketing), in the same run.
  BucketPlan flat(g.spec, buffer_options());
  Measured fm = measure(ctx, flat, gr);
  if (!g.bucket_sweep.empty()) {
    // The sweep's best is the minimum of several noisy medians, biased low; the ratio uses a fresh
    // measurement of that size taken right after the flat one, so both come from the same moment.
    BucketPlan best_plan(g.spec, sweep_options(best_size));
    best_comm = measure(ctx, best_plan, gr).comm.med_s;
  }
  PerfRow flat_row = row_for(flat, "flat", "flat_grad_sync", &fm.comm);
  const double factor = g.dp > 1 ? 2.0 * (g.dp - 1) / g.dp : 0.0;
  set_bandwidths(flat_row, factor);
  ctx.perf(flat_row);
  const double ratio = fm.comm.med_s > 0 ? best_comm / fm.comm.med_s : 0;
  ctx.perf(metric_row(row_for(plan, best_case, "bucketed_over_flat", nullptr), "bucketed_over_flat", ratio, "ratio"));
  ctx.progress("flat (one collective per buffer): " + us(fm.comm.med_s) + "; bucketed (" + best_case + ") / flat = " +
               format_double(ratio, 4));

  const double peak = ctx.max_over_ranks(double(memory_stats(ctx.backend.mem_space()).peak_bytes));
  ctx.perf(metric_row(row_for(plan, "memory", "peak_bytes", nullptr), "peak_bytes_per_rank", peak, "bytes"));
}

// ----------------------------------------------------------------------------- flags

void add_options(CLI::App& app, CommonOptions&) {
  app.add_option("--model", g.model, "preset (" + [] {
                   std::string s;
                   for (const std::string& n : preset_names()) s += (s.empty() ? "" : ", ") + n;
                   return s;
                 }() + ") or FILE.csv (name,shape,dtype,expert[,shared_embedding][,layer])")
      ->capture_default_str();
  app.add_option("--layers", g.layers, "preset: override the number of transformer layers")->check(at_least(0));
  app.add_option("--hidden", g.hidden, "preset: override the hidden size (ffn scales with it)")->check(at_least(0));
  CLI::Option* bucket_size =
      app.add_option("--bucket-size", g.bucket_size,
                     bucket_size_help("default max(40M, 1M*D), 16K for the tiny model; without overlap one bucket "
                                      "per buffer"))
          ->transform(bucket_elements());
  app.add_option("--bucket-mb", g.bucket_mb, "PyTorch bucket cap in MiB of grads (first bucket 1 MiB)")
      ->check(above(0))
      ->excludes(bucket_size);
  app.add_option("--dp-size", g.dp_size, "data-parallel group size D (default: the world; a divisor gives world/D "
                                         "independent DP groups, strided as Megatron's tp-dp order)")
      ->check(at_least(0));
  CLI::Option* distopt = app.add_flag("--distributed-optimizer", g.distributed_optimizer,
                                      "in-place reduce-scatter per bucket, then in-place all-gather of the param buffer");
  app.add_option("--dist-opt-instances", g.instances,
                 "partial distributed optimizer: N instances (RS over D/N ranks, AR over N)")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_flag("--force-all-reduce", g.force_all_reduce, "distributed optimizer buffers, but all-reduce the grads")
      ->needs(distopt);
  app.add_flag("--pad-for-high-busbw", g.pad_high_busbw, "distributed optimizer: pad bucket ends to 65536 elements");
  app.add_flag("--grad-reduce-in-fp32", g.grad_reduce_in_fp32, "fp32 grad buffers for 16-bit params");
  app.add_flag("--average-in-collective", g.average_in_collective, "no pre-scale; AVG in the collective");
  app.add_option("--microbatches", g.microbatches, "k microbatches, the first k-1 under no_sync")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_flag("--no-overlap", g.no_overlap, "issue the collectives after the whole backward (Megatron default)");
  app.add_option("--backward-ms", g.backward_ms,
                 "simulated backward compute per microbatch (ms, spread over params by size; 0 = none)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--bucket-sweep", g.bucket_sweep,
                 "MIN:MAX bucket caps in elements (e.g. 1M:1G), doubling: step time and exposed comm per size")
      ->transform(size_span());
}

void validate_options(const RunInfo& run, CommonOptions& opts) {
  g_world = run.size;
  const bool csv = g.model.size() > 4 && g.model.compare(g.model.size() - 4, 4, ".csv") == 0;
  if (csv && (g.layers || g.hidden)) throw InputError("--layers/--hidden apply to presets, not to --model " + g.model);
  g.spec = csv ? load_model_csv(g.model) : make_preset(g.model, opts.dtype, g.layers, g.hidden);
  if (g.spec.tensors.empty()) throw InputError("--model " + g.model + ": no tensors");

  g.dp = g.dp_size == 0 ? run.size : g.dp_size;
  if (run.size % g.dp != 0)
    throw InputError("--dp-size " + std::to_string(g.dp_size) + ": must divide the world size " + std::to_string(run.size));
  if (g.dp % g.instances != 0)
    throw InputError("--dist-opt-instances " + std::to_string(g.instances) + ": must divide the DP size " +
                     std::to_string(g.dp));
  if (g.instances > 1 && !g.distributed_optimizer)
    throw InputError("--dist-opt-instances > 1 needs --distributed-optimizer");
  if (g.bucket_mb > 0 && g.bucket_mb * 1024 * 1024 < 1) throw InputError("--bucket-mb must be at least one byte");
  g.bucket_elems.reset();
  if (g.bucket_size > 0) {
    g.bucket_elems = g.bucket_size;
  } else if (g.bucket_mb == 0 && g.model == "tiny" && !g.layers && !g.hidden) {
    g.bucket_elems = 16384;  // the tiny model fits one default bucket; give the default run several
  }
  if (!g.bucket_sweep.empty()) std::tie(g.sweep_min, g.sweep_max) = split_span(g.bucket_sweep);
  BucketPlan plan(g.spec, plan_options());  // InputError for bad caps, before anything runs

  if (!opts.inject_fault.empty()) {
    const FaultSpec f = parse_fault_spec(opts.inject_fault);
    const std::string k = f.kind;  // a known kind (suite_main checks it against suite.faults)
    const int nb = int(plan.buffer(0).buckets.size());
    if ((k == "early-dispatch" || k == "wrong-group") && (f.index < 0 || f.index >= nb))
      throw InputError("--inject-fault " + k + ": index " + std::to_string(f.index) + " is not a bucket of buffer 0 (0.." +
                       std::to_string(nb - 1) + ")");
    if (k == "wrong-group" && g.dp / g.instances < 2)
      throw InputError("--inject-fault wrong-group needs a reduce group of at least 2 ranks");
    if (k == "ignore-no-sync" && g.microbatches < 2) throw InputError("--inject-fault ignore-no-sync needs --microbatches >= 2");
    if (k == "drop-piece" && !g.distributed_optimizer) throw InputError("--inject-fault drop-piece needs --distributed-optimizer");
    if (k == "ignore-no-sync" && f.rank >= 0)
      throw InputError("--inject-fault ignore-no-sync applies to every rank (collectives must match); drop rank=");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Suite suite;
  suite.name = "ddp";
  suite.summary = "DDP gradient bucketing (Megatron-Core / PyTorch DDP): grad sync modes, overlap with a simulated "
                  "backward, per-element validation";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 4 dtbench-ddp                                   # tiny model, 16K-element buckets, checks + timing\n"
      "  mpirun -np 8 dtbench-ddp --model gpt-125m --layers 4 --bucket-size 4M --backward-ms 50\n"
      "  mpirun -np 8 dtbench-ddp --model gpt-1.3b -d bf16 --distributed-optimizer --dist-opt-instances 2 "
      "--grad-reduce-in-fp32\n"
      "  mpirun -np 8 dtbench-ddp --dp-size 4 --microbatches 4 --average-in-collective\n"
      "  mpirun -np 4 dtbench-ddp --model gpt-125m --backward-ms 0 --bucket-sweep 1M:1G -c 0   # best bucket size\n"
      "  mpirun -np 4 dtbench-ddp --bucket-mb 25 --model my_model.csv\n"
      "Faults (tests): --inject-fault KIND[,rank=R][,index=BUCKET] with KIND one of flip, missing-prescale, "
      "wrong-group,\n  early-dispatch, ignore-no-sync, drop-piece.";
  suite.add_options = add_options;
  suite.faults = {"missing-prescale", "wrong-group", "early-dispatch", "ignore-no-sync", "drop-piece"};
  suite.validate = validate_options;
  suite.body = run;
  return suite_main(argc, argv, suite);
}
