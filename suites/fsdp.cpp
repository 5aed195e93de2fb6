// dtbench-fsdp: Megatron-FSDP's sharded flat buffers and their collectives (megatron/core/distributed/
// fsdp, plus reduce_scatter_with_fp32_accumulation.py). The model is split into FSDP units (one per
// layer plus the root params), each laid out by ShardLayout; a training step unshards, computes,
// reduce-scatters and frees unit by unit (FsdpModel, src/fsdp/fsdp_step.h) for every sharding
// strategy and grad reduction form.
// The suite plans it, runs one validated step per configuration (prefetch off, then on), checks
// every result against its closed form, checks the fp32-accumulating reduce-scatter on a bf16
// pattern, then times the step and the unit collectives next to plain collectives of the same size.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/perf_names.h"
#include "core/check_kit.h"
#include "core/error.h"
#include "core/fp32_accum_checks.h"
#include "fsdp/fsdp_step.h"
#include "layout/layout_groups.h"
#include "core/suite.h"

using namespace dtbench;

namespace {

// The typed options: CLI11 parses and checks every flag into these (one_of, ranges); validate_options
// decides what depends on several of them once.
const std::vector<std::pair<std::string, FsdpStrategy>> kStrategyNames = {
    {"no_shard", FsdpStrategy::no_shard},
    {"optim", FsdpStrategy::optim},
    {"optim_grads", FsdpStrategy::optim_grads},
    {"optim_grads_params", FsdpStrategy::optim_grads_params}};
const std::vector<std::pair<std::string, GradReduce>> kReduceNames = {
    {"avg", GradReduce::avg}, {"prescale", GradReduce::prescale}, {"premul", GradReduce::premul}};
const std::vector<std::pair<std::string, ShardLayoutKind>> kLayoutNames = {
    {"flat", ShardLayoutKind::flat}, {"per-param", ShardLayoutKind::per_param}};

struct FsdpOptions {
  std::string model = "tiny", model_csv;
  int layers = 0, hidden = 0;
  std::vector<FsdpStrategy> strategies = {FsdpStrategy::no_shard, FsdpStrategy::optim, FsdpStrategy::optim_grads,
                                          FsdpStrategy::optim_grads_params};
  std::vector<GradReduce> reduces = {GradReduce::avg, GradReduce::prescale, GradReduce::premul};
  CLI::Option* reduces_flag = nullptr;  // given or not: the default list drops avg under fp32-accum
  std::string grad_comm = "native";     // the name: bf16 is native with a -d requirement
  ShardLayoutKind layout = ShardLayoutKind::flat;
  std::string prefetch = "both";
  int microbatches = 2, replicate = 1;
  double compute_us = 100;
  int accum_elems = 1024;
  // decided by validate_options
  GradComm comm = GradComm::native;
  ModelSpec spec;
};
FsdpOptions g_opt;

// Faults this suite injects (besides "flip", applied by the checks themselves).
FsdpFaults faults_for(const Context& ctx) {
  int me = ctx.run.rank;
  FsdpFaults f;
  f.wrong_offset = ctx.fault.applies("wrong-offset", me);
  f.missing_scale = ctx.fault.applies("missing-scale", me);
  f.eager_reduce = ctx.fault.applies("eager-reduce", me);
  f.stale_slot = ctx.fault.applies("stale-slot", me);
  f.late_prefetch = ctx.fault.applies("late-prefetch", me);
  f.no_free = ctx.fault.applies("no-free", me);
  f.bf16_accum = ctx.fault.applies("bf16-accum", me);
  return f;
}

// The groups of one strategy, as Megatron-FSDP's hybrid sharding builds them: no_shard reduces over
// the world; the others shard over a consecutive chunk of world/R ranks and (HSDP) all-reduce across
// the R replicas, the ranks at the same position of every chunk. In ParallelLayout's terms these are
// the intra and inter data-parallel groups of R optimizer instances.
struct Groups {
  std::unique_ptr<Comm> shard, replica;
};
Groups make_groups(Context& ctx) {
  ParallelSizes sizes;
  sizes.world = ctx.world.size(), sizes.dist_opt_instances = g_opt.replicate;
  const ParallelLayout layout(sizes);
  Groups g;
  g.shard = split_layout_group(ctx.world, layout, GroupKind::intra_dp_cp, "fsdp-shard");
  if (g_opt.replicate > 1) g.replica = split_layout_group(ctx.world, layout, GroupKind::inter_dp_cp, "fsdp-replica");
  return g;
}

struct RunResult {
  StepStats stats;
  std::vector<std::vector<float>> grads;  // own reduced grads per unit
  bool ok = true;
};

// One validated step: build, step with an observer checking every param buffer a compute reads,
// then the own grad shards, the collective counts, the live units and the peak bytes.
RunResult validated_step(Context& ctx, Groups& g, FsdpStrategy s, GradReduce red, bool prefetch) {
  const ModelSpec& spec = g_opt.spec;
  DType dt = ctx.opts.dtype;
  int W = ctx.world.size(), k = g_opt.microbatches;
  bool no_shard = s == FsdpStrategy::no_shard;
  Comm& shard = no_shard ? ctx.world : *g.shard;
  Comm* replica = no_shard ? nullptr : g.replica.get();
  FsdpConfig cfg;
  cfg.strategy = s, cfg.reduce = red, cfg.comm = g_opt.comm, cfg.microbatches = k, cfg.prefetch = prefetch;
  cfg.compute_s = g_opt.compute_us * 1e-6, cfg.dtype = dt, cfg.seed = ctx.opts.seed;
  cfg.grad_modulus = fsdp_grad_modulus(dt, W, k), cfg.grad_extra = fsdp_grad_extra(dt, W, k, cfg.grad_modulus);
  cfg.faults = faults_for(ctx);
  FsdpModel model(ctx.backend, shard, replica, ctx.world.rank(), W,
                  plan_fsdp_units(spec, shard.size(), g_opt.layout, !no_shard), cfg);
  const auto& units = model.units();
  std::string case_name = std::string(strategy_name(s)) + "/" + grad_reduce_name(red) + "/" +
                          grad_comm_name(g_opt.comm) + "/prefetch=" + (prefetch ? "on" : "off") +
                          (g_opt.replicate > 1 ? "/replicate=" + std::to_string(g_opt.replicate) : "");
  std::string dts = dtype_name(dt);
  bool sharded = !no_shard;
  std::vector<int> members = shard.members();

  // Unshard: every buffer a compute reads equals the closed-form full params of the current
  // version, bit for bit; a wrong block names the rank whose shard it is.
  CheckAccumulator unshard("unshard.params");
  uint64_t seed = ctx.opts.seed;
  auto observer = [&](size_t u, const char*, const Buffer& params, int version) {
    UnitIndex idx(units[u].layout);
    UnitIndex::Cursor cursor = idx.cursor();
    ParamValues want(seed, u, version);
    int64_t S = units[u].layout.shard_size();
    unshard.add(
        ctx, params, 0, params.count(), 0,
        [&](size_t pos) {
          auto e = cursor.at(int64_t(pos));
          return e ? double(want(e->item, e->elem)) : 0.0;
        },
        0, [&](size_t pos, double) { return sharded ? members[size_t(int64_t(pos) / S)] : -1; });
  };
  RunResult res;
  res.stats = model.step(observer);
  // ZeRO-1/2: the post-step all-gather refreshed the full params to the new version.
  if (s == FsdpStrategy::optim || s == FsdpStrategy::optim_grads)
    for (size_t u = 0; u < units.size(); ++u) observer(u, "after_step", *model.full_params(u), model.version());
  res.ok &= ctx.report_check({"unshard.params", case_name, dts,
                              "gathered params == closed form at every compute (and after the step's AG)"},
                             unshard.local());

  // Own grad shard == sum over microbatches and world ranks of g/DP, in closed form. A missing
  // 1/DP scale on rank c leaves (DP-1) * sum_mb h(c) too much: the culprit is the c that fits.
  int64_t gm = cfg.grad_modulus, gq = cfg.grad_extra;
  bool exact_scale = red == GradReduce::avg || (W & (W - 1)) == 0;
  double tol = exact_scale ? 0 : 2.0 * W * k;
  CheckAccumulator grads("grad.own_shard");
  for (size_t u = 0; u < units.size(); ++u) {
    UnitIndex idx(units[u].layout);
    UnitIndex::Cursor cursor = idx.cursor();
    auto expected = [&](size_t pos) {
      auto e = cursor.at(int64_t(pos));
      return e ? double(fsdp_grad_expected(seed, W, k, u, e->item, e->elem, gm, gq)) : 0.0;
    };
    auto culprit = [&](size_t pos, double observed) {
      auto e = idx.at(int64_t(pos));
      if (!e) return -1;
      double diff = double(observed) - expected(pos);
      for (int c = 0; c < W; ++c) {
        double h = 0;
        for (int mb = 0; mb < k; ++mb) h += double(fsdp_grad_h(seed, c, mb, u, e->item, e->elem, gm, gq));
        if (std::fabs(diff - (W - 1) * h) <= std::max(1.0, tol * ulp_of(dt, expected(pos)))) return c;
      }
      return -1;
    };
    size_t n = model.grad_count(u), first = model.grad_first(u);
    grads.add(ctx, model.grad_buffer(u), first, n, size_t(model.grad_position(u)), expected, tol, culprit);
    res.grads.push_back(model.grad_buffer(u).to_host_f32(first, n));
  }
  res.ok &= ctx.report_check({"grad.own_shard", case_name, dts,
                              "sum over " + std::to_string(k) + " microbatches and " + std::to_string(W) +
                                  " ranks of g/DP" + (tol ? ", tol " + format_double(tol, 3) + " ulps (1/DP inexact)" : "")},
                             grads.local());

  CollectiveCounts want = expected_counts(s, int(units.size()) - (units[0].root ? 1 : 0), units[0].root, k,
                                          g_opt.replicate > 1);
  res.ok &= ctx.check_condition({"collectives.count", case_name, dts, "per step: " + want.str()},
                                res.stats.counts == want, res.stats.counts.str(), want.str());

  int slots = prefetch ? 2 : 1;
  res.ok &= ctx.check_condition({"memory.live_units", case_name, dts,
                                 "temporary param and grad unit buffers <= " + std::to_string(slots) + " each"},
                                res.stats.max_param_temps <= slots && res.stats.max_grad_temps <= slots,
                                "params " + std::to_string(res.stats.max_param_temps) + ", grads " +
                                    std::to_string(res.stats.max_grad_temps),
                                "<= " + std::to_string(slots));
  size_t bound = model.theoretical_min_bytes();
  res.ok &= ctx.check_condition({"memory.peak_bytes", case_name, dts, "peak <= own shards + kept + slots x unit"},
                                res.stats.peak_bytes <= bound, std::to_string(res.stats.peak_bytes),
                                "<= " + std::to_string(bound));
  if (prefetch && params_sharded(s))
    res.ok &= ctx.check_condition({"prefetch.order", case_name, dts, "AG of unit i+1 issued before compute of i ends"},
                                  res.stats.prefetch_order_ok, res.stats.order_violation, "prefetch before compute end");

  PerfRow row;
  row.case_name = case_name, row.op = perf_names::kFsdpStep, row.dtype = dts, row.group_size = shard.size();
  row.layout = shard_layout_kind_name(g_opt.layout);
  row.metric = "peak_bytes", row.unit = "B", row.value = ctx.max_over_ranks(double(res.stats.peak_bytes));
  ctx.perf(row);
  row.metric = "theoretical_min_bytes", row.value = ctx.max_over_ranks(double(bound));
  ctx.perf(row);
  return res;
}

void run_validation(Context& ctx, Groups& g) {
  for (FsdpStrategy s : g_opt.strategies) {
    for (GradReduce red : g_opt.reduces) {
      bool off = g_opt.prefetch != "on", on = g_opt.prefetch != "off";
      RunResult a, b;
      if (off) a = validated_step(ctx, g, s, red, false);
      if (on) b = validated_step(ctx, g, s, red, true);
      if (off && on) {
        bool same = a.stats.digests == b.stats.digests && a.grads == b.grads;
        ctx.check_condition({"prefetch.identical", std::string(strategy_name(s)) + "/" + grad_reduce_name(red),
                             dtype_name(ctx.opts.dtype), "params seen by every compute and reduced grads, on == off"},
                            same, same ? "" : "prefetch on differs from off", "identical");
      }
      ctx.progress(std::string("validated ") + strategy_name(s) + " / " + grad_reduce_name(red));
    }
  }
}

// Megatron's reduce-scatter with fp32 accumulation on the shard group: the check set shared with
// dtbench-ep (fp32_accum_checks.h) on one bucket of --accum-elems elements per rank, plus the fp32
// wire that --grad-comm fp32 uses.
void check_grad_comm_fp32_accum(Context& ctx, Comm& shard) {
  Fp32AccumCheckPlan p;
  const size_t S = size_t(g_opt.accum_elems);
  p.case_name = "W=" + std::to_string(shard.size()) + "/S=" + std::to_string(S);
  p.group = "the shard group", p.seed = ctx.opts.seed, p.fp32_wire = true;
  p.buckets.push_back({0, S * size_t(shard.size())});
  run_fp32_accum_checks(ctx, shard, p);
}

// Unit collectives as the step issues them (own shard placed in the temporary full buffer + in-place
// AG; in-place RS) next to plain out-of-place collectives of the same size (dtbench-coll's rows),
// measured in the same run, and their busbw ratio.
void run_unit_collective_perf(Context& ctx, Comm& comm) {
  DType dt = ctx.opts.dtype;
  int D = comm.size(), r = comm.rank();
  std::vector<FsdpUnit> units = plan_fsdp_units(g_opt.spec, D, g_opt.layout, true);
  std::vector<int64_t> seen;
  for (const FsdpUnit& unit : units) {
    int64_t N = unit.layout.size(), S = unit.layout.shard_size();
    if (std::find(seen.begin(), seen.end(), N) != seen.end()) continue;
    seen.push_back(N);
    std::string case_name = unit.name + "/" + std::to_string(size_t(N) * dtype_size(dt)) + "B";
    Buffer shard = ctx.backend.alloc(dt, size_t(S)), grads = ctx.backend.alloc(dt, size_t(N));
    Buffer full = ctx.backend.alloc(dt, size_t(N));
    Buffer send = ctx.backend.alloc(dt, size_t(N));
    fill_with(shard, 0, size_t(S), [](size_t) { return 1.0f; });
    fill_with(send, 0, size_t(N), [](size_t) { return 0.0f; });
    auto emit = [&](const std::string& op, CollKind kind, const TimingStats& t, const std::string& layout) {
      PerfRow row;
      row.case_name = case_name, row.op = op, row.dtype = dtype_name(dt), row.group_size = D, row.layout = layout;
      row.count = size_t(S), row.bytes = coll_quoted_bytes(kind, size_t(S), dt, D);
      set_times(row, t);
      set_bandwidths(row, coll_busbw_factor(kind, D));
      row.in_place = layout == "coll" ? "0" : "1";
      ctx.perf(row);
      return row.busbw;
    };
    // The temporary full buffer comes from a double-buffer pool in Megatron-FSDP, so its allocation
    // is not part of the collective; placing the own shard and the in-place all-gather are.
    Buffer tmp = ctx.backend.alloc(dt, size_t(N));
    TimingStats ag = ctx.time_op(comm, ctx.opts.warmup, ctx.opts.iters, [&] {
      copy_elements(tmp, size_t(r) * size_t(S), shard, 0, size_t(S));
      comm.all_gather(tmp.at(size_t(r) * size_t(S)), tmp.data(), size_t(S), dt);
    });
    TimingStats ag_coll = ctx.time_op(comm, ctx.opts.warmup, ctx.opts.iters,
                                      [&] { comm.all_gather(shard.data(), full.data(), size_t(S), dt); });
    // The grad reduction as the step issues it: in place into the own region of the unit's grads
    // (the shard += reduced that follows is local work, timed within the step rows).
    TimingStats rs = ctx.time_op(comm, ctx.opts.warmup, ctx.opts.iters, [&] {
      comm.reduce_scatter(grads.data(), grads.at(size_t(r) * size_t(S)), size_t(S), dt);
    });
    TimingStats rs_coll = ctx.time_op(comm, ctx.opts.warmup, ctx.opts.iters,
                                      [&] { comm.reduce_scatter(send.data(), full.data(), size_t(S), dt); });
    double b_ag = emit("all_gather", CollKind::all_gather, ag, "fsdp_unshard");
    double b_agc = emit("all_gather", CollKind::all_gather, ag_coll, "coll");
    double b_rs = emit("reduce_scatter", CollKind::reduce_scatter, rs, "fsdp_grad_rs");
    double b_rsc = emit("reduce_scatter", CollKind::reduce_scatter, rs_coll, "coll");
    PerfRow ratio;
    ratio.case_name = case_name, ratio.dtype = dtype_name(dt), ratio.group_size = D, ratio.unit = "ratio";
    ratio.op = "all_gather", ratio.metric = "busbw_fsdp_over_coll", ratio.value = b_agc > 0 ? b_ag / b_agc : 0;
    ctx.perf(ratio);
    ratio.op = "reduce_scatter", ratio.value = b_rsc > 0 ? b_rs / b_rsc : 0;
    ctx.perf(ratio);
    std::ostringstream line;
    line << "unit " << case_name << ": AG busbw " << format_double(b_ag, 4) << " GB/s (coll " << format_double(b_agc, 4)
         << "), RS " << format_double(b_rs, 4) << " GB/s (coll " << format_double(b_rsc, 4) << ")";
    ctx.progress(line.str());
  }
}

// Step time with prefetch off and on; overlap efficiency = the fraction of the exposed
// communication time (step - compute) that prefetching hides.
void run_step_perf(Context& ctx, Groups& g) {
  int W = ctx.world.size(), k = g_opt.microbatches;
  for (FsdpStrategy s : g_opt.strategies) {
    bool no_shard = s == FsdpStrategy::no_shard;
    Comm& shard = no_shard ? ctx.world : *g.shard;
    double t[2] = {0, 0};
    double compute_s = 0;
    for (int pf = 0; pf < 2; ++pf) {
      FsdpConfig cfg;
      cfg.strategy = s, cfg.reduce = g_opt.reduces.front(), cfg.comm = g_opt.comm, cfg.microbatches = k;
      cfg.prefetch = pf == 1, cfg.compute_s = g_opt.compute_us * 1e-6, cfg.dtype = ctx.opts.dtype;
      cfg.seed = ctx.opts.seed, cfg.grad_modulus = fsdp_grad_modulus(ctx.opts.dtype, W, k);
      cfg.grad_extra = fsdp_grad_extra(ctx.opts.dtype, W, k, cfg.grad_modulus);
      FsdpModel model(ctx.backend, shard, no_shard ? nullptr : g.replica.get(), ctx.world.rank(), W,
                      plan_fsdp_units(g_opt.spec, shard.size(), g_opt.layout, !no_shard), cfg);
      compute_s = double(k) * 2.0 * double(model.units().size()) * cfg.compute_s;
      TimingStats ts = ctx.time_op(ctx.world, ctx.opts.warmup, ctx.opts.iters, [&] { model.step(); });
      t[pf] = ts.med_s;
      PerfRow row;
      row.case_name = std::string(strategy_name(s)) + "/prefetch=" + (pf ? "on" : "off");
      row.op = perf_names::kFsdpStep, row.dtype = dtype_name(ctx.opts.dtype), row.group_size = shard.size();
      row.redop = grad_reduce_name(cfg.reduce), row.layout = shard_layout_kind_name(g_opt.layout);
      set_times(row, ts);
      ctx.perf(row);
    }
    double exposed_off = t[0] - compute_s, exposed_on = t[1] - compute_s;
    double eff = exposed_off > 0 ? 1.0 - exposed_on / exposed_off : 0;
    PerfRow row;
    row.case_name = strategy_name(s), row.op = perf_names::kFsdpStep, row.dtype = dtype_name(ctx.opts.dtype);
    row.group_size = no_shard ? W : g.shard->size();
    row.metric = perf_names::kOverlapEfficiency, row.unit = "fraction", row.value = eff;
    ctx.perf(row);
    ctx.progress(std::string("step ") + strategy_name(s) + ": " + format_double(t[0] * 1e3, 4) + " ms (prefetch off), " +
                 format_double(t[1] * 1e3, 4) + " ms (on), compute " + format_double(compute_s * 1e3, 4) +
                 " ms, overlap efficiency " + format_double(eff, 3));
  }
}

void run(Context& ctx) {
  Groups g = make_groups(ctx);
  {
    std::vector<FsdpUnit> units = plan_fsdp_units(g_opt.spec, g.shard->size(), g_opt.layout, true);
    std::ostringstream line;
    line << "model " << g_opt.spec.name << ": " << g_opt.spec.tensors.size() << " tensors, " << units.size()
         << " units, shard group " << g.shard->size() << " x replicate " << g_opt.replicate << ", layout "
         << shard_layout_kind_name(g_opt.layout) << "; unit sizes";
    for (const FsdpUnit& u : units) line << " " << u.name << "=" << u.layout.size() << "(shard " << u.layout.shard_size() << ")";
    ctx.progress(line.str());
  }
  if (ctx.opts.check_iters > 0) {
    run_validation(ctx, g);
    check_grad_comm_fp32_accum(ctx, *g.shard);
  }
  if (ctx.opts.iters > 0) {
    run_unit_collective_perf(ctx, *g.shard);
    run_step_perf(ctx, g);
  }
}

void add_options(CLI::App& app, CommonOptions& opts) {
  opts.iters = 10, opts.warmup = 2;  // a small model: keep `make run` short
  app.add_option("--model", g_opt.model, "model preset (" + [] {
                   std::string s;
                   for (const auto& n : preset_names()) s += (s.empty() ? "" : ", ") + n;
                   return s;
                 }() + ")")->capture_default_str();
  app.add_option("--model-csv", g_opt.model_csv, "model spec CSV (name,shape,dtype,expert,shared_embedding,layer)");
  app.add_option("--layers", g_opt.layers, "override the preset's layer count (0: keep)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--hidden", g_opt.hidden, "override the preset's hidden size (0: keep)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--strategy", g_opt.strategies, "comma list of sharding strategies")
      ->delimiter(',')
      ->transform(one_of(kStrategyNames))
      ->default_str(names_of(kStrategyNames, g_opt.strategies));
  g_opt.reduces_flag = app.add_option("--grad-reduce", g_opt.reduces, "comma list of 1/DP forms")
                           ->delimiter(',')
                           ->transform(one_of(kReduceNames))
                           ->default_str(names_of(kReduceNames, g_opt.reduces));
  app.add_option("--grad-comm", g_opt.grad_comm,
                 "grad reduction wire type: native (the grad dtype), bf16 (= native, needs -d bf16), fp32, fp32-accum")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "bf16", "fp32", "fp32-accum"}));
  app.add_option("--layout", g_opt.layout, "flat (Megatron-FSDP) or per-param (FSDP2 dim-0)")
      ->transform(one_of(kLayoutNames))
      ->default_str("flat");
  app.add_option("--prefetch", g_opt.prefetch, "on, off or both (both: also checks they agree)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off", "both"}));
  app.add_option("--microbatches", g_opt.microbatches, "microbatches per step (grad accumulation)")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--replicate", g_opt.replicate, "HSDP: R replicas of world/R-rank shard groups")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--compute-us", g_opt.compute_us, "simulated compute per unit and pass (microseconds)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--accum-elems", g_opt.accum_elems, "elements per rank of the fp32-accumulation RS check")
      ->capture_default_str()
      ->check(at_least(1));
}

void validate_options(const RunInfo& run, CommonOptions& opts) {
  if (!g_opt.model_csv.empty()) g_opt.spec = load_model_csv(g_opt.model_csv);
  else g_opt.spec = make_preset(g_opt.model, opts.dtype, g_opt.layers, g_opt.hidden);
  if (g_opt.strategies.empty()) throw InputError("--strategy: none given");
  parse_grad_comm(g_opt.grad_comm, &g_opt.comm);  // a member of the list CLI11 checked
  if (g_opt.grad_comm == "bf16" && opts.dtype != DType::bf16)
    throw InputError("--grad-comm bf16: needs -d bf16 (use native for the grad dtype)");
  if (g_opt.comm == GradComm::fp32_accum && opts.dtype == DType::f32)
    throw InputError("--grad-comm fp32-accum: accumulates 16-bit grads; needs -d bf16 or fp16");
  if (g_opt.comm == GradComm::fp32_accum) {
    // The fp32-accumulating reduce-scatter only sums: avg is refused when asked for and dropped
    // from the default list.
    const bool has_avg = std::find(g_opt.reduces.begin(), g_opt.reduces.end(), GradReduce::avg) != g_opt.reduces.end();
    if (has_avg && g_opt.reduces_flag->count() > 0)
      throw InputError("--grad-reduce avg: the fp32-accumulating reduce-scatter only sums (--grad-comm fp32-accum)");
    g_opt.reduces.erase(std::remove(g_opt.reduces.begin(), g_opt.reduces.end(), GradReduce::avg), g_opt.reduces.end());
  }
  if (g_opt.reduces.empty()) throw InputError("--grad-reduce: none given");
  if (run.size % g_opt.replicate != 0)
    throw InputError("--replicate " + std::to_string(g_opt.replicate) + ": must divide the world size " +
                     std::to_string(run.size));
  // Faults that this configuration cannot reveal, or that would make ranks issue different
  // collectives (a hang, not a FAIL), are refused: never a silent PASS.
  if (!opts.inject_fault.empty()) {
    const FaultSpec f = parse_fault_spec(opts.inject_fault);
    const bool scales = std::any_of(g_opt.reduces.begin(), g_opt.reduces.end(),
                                    [](GradReduce r) { return r != GradReduce::avg; });
    const bool unsharded = std::any_of(g_opt.strategies.begin(), g_opt.strategies.end(),
                                       [](FsdpStrategy st) { return !grads_sharded(st); });
    refuse_unrevealable_fp32_accum_fault(f, run.size / g_opt.replicate, "FSDP shard");
    if (f.kind == "missing-scale" && !scales)
      throw InputError("--inject-fault missing-scale: --grad-reduce avg has no scale to skip (add prescale or premul)");
    if (f.kind == "eager-reduce" && f.rank >= 0)
      throw InputError("--inject-fault eager-reduce,rank=" + std::to_string(f.rank) +
                       ": one rank reducing early issues collectives the others do not (a hang); use it on every rank");
    if (f.kind == "eager-reduce" && (g_opt.microbatches < 2 || !unsharded))
      throw InputError("--inject-fault eager-reduce: needs --microbatches >= 2 and a strategy that keeps full grads "
                       "(no_shard or optim); sharded grads are reduced every microbatch anyway");
  }
  if (fsdp_grad_modulus(opts.dtype, run.size, g_opt.microbatches) == 0)
    throw InputError("-d " + std::string(dtype_name(opts.dtype)) + ": exact grad sums need microbatches x world^2 x 2 <= " +
                     std::to_string(exact_integer_limit(opts.dtype == DType::bf16 ? 1 : 2)) +
                     "; use fewer --microbatches or -d fp32");
}

}  // namespace

int main(int argc, char** argv) {
  Suite suite;
  suite.name = "fsdp";
  suite.summary = "Megatron-FSDP units: unshard / reduce-scatter per unit, ZeRO-1/2/3, HSDP, prefetch, fp32-accum RS";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 4 dtbench-fsdp                                   # tiny model, every strategy and 1/DP form\n"
      "  mpirun -np 4 dtbench-fsdp --strategy optim_grads_params --replicate 2   # HSDP, 2 replicas of 2\n"
      "  mpirun -np 8 dtbench-fsdp -d bf16 --grad-comm fp32-accum --microbatches 1\n"
      "  mpirun -np 5 dtbench-fsdp --layout per-param --model gpt-125m --layers 2 --hidden 256\n"
      "Faults (--inject-fault KIND[,rank=R]): flip, wrong-offset, missing-scale, eager-reduce, stale-slot,\n"
      "late-prefetch, no-free, bf16-accum, fp32-in-bf16-rs, rs-wrong-offset, accept-bad-scratch.";
  suite.add_options = add_options;
  suite.faults = {"wrong-offset", "missing-scale", "bf16-accum", "fp32-in-bf16-rs", "eager-reduce", "late-prefetch", "stale-slot", "no-free", "accept-bad-scratch", "rs-wrong-offset"};
  suite.validate = validate_options;
  suite.body = run;
  return suite_main(argc, argv, suite);
}
