// dtbench-ckpt: asynchronous distributed checkpointing as Megatron-Core dist_checkpointing and
// PyTorch DCP (torch.distributed.checkpoint.async_save) do it, then a resharding load.
//   1. plan: each rank's sharded pieces (params + Adam state) under a DP/TP/PP(/FSDP) layout;
//   2. save: validate the sharding, a synchronous reference save, then a simulated training loop
//      (compute + DDP all-reduce + optimizer step) that schedules async saves at step boundaries,
//      stages them in the background while the next step computes, lets the optimizer step change
//      the state only once the snapshot is complete, and polls completion at step boundaries; rank 0
//      commits index, COMMIT and "latest";
//   3. load: the latest committed checkpoint under another layout/world size if asked, byte-range
//      reads, checksums of every saved piece, every loaded element against its closed form;
//   4. report: per-save metrics (medians over --repeat, min/max) and load/verify bandwidth.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <sstream>

#include "ckpt/ckpt_async.h"
#include "ckpt/ckpt_state.h"
#include "core/perf_names.h"
#include "core/error.h"
#include "core/pattern_fill.h"
#include "core/suite.h"
#include "core/units.h"

using namespace dtbench;

namespace {

struct CkptOptions {
  int tp = 1, pp = 1, layers = 2, hidden = 32;
  bool fsdp = false;
  std::string optimizer = "adam", split1d;
  int load_tp = 0, load_pp = 0;
  std::string load_fsdp = "same", load_optimizer = "same", load_split1d = "same";
  std::string strict = "assume_ok_unexpected";
  int writers = 1;
  std::string io = "auto", staging = "async";
  int steps_per_save = 4, repeat = 3, grad_elems = 65536;
  double compute_ms = 2;
  std::string ckpt_dir;
  bool save_only = false, load_only = false, overwrite = false, keep = false, fully_parallel = true;
  bool no_sync_save = false;
  int64_t load_step = -1;
  // parsed
  CkptLayout save, load;
  StrictHandling strict_mode = StrictHandling::assume_ok_unexpected;
};
CkptOptions g;

std::vector<int64_t> parse_split(const std::string& s, const std::string& flag) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end || v < 0) throw InputError(flag + ": expected comma-separated counts >= 0, got \"" + s + "\"");
    out.push_back(v);
  }
  return out;
}

// The live state: one backend buffer per piece (device memory on the NCCL backend).
struct LiveState {
  std::vector<ShardedPiece> pieces;
  std::vector<Buffer> bufs;
  void allocate(Context& ctx, std::vector<ShardedPiece> p) {
    pieces = std::move(p);
    bufs.clear();
    for (const ShardedPiece& x : pieces) bufs.push_back(ctx.backend.alloc(x.dtype, size_t(x.numel())));
  }
  // The simulated optimizer step: every element takes its value at `step`.
  void fill(int64_t step) {
    for (size_t i = 0; i < pieces.size(); ++i)
      fill_range_with(bufs[i], 0, bufs[i].count(), [&](void* dst) { fill_piece(pieces[i], step, dst); });
  }
  int64_t bytes() const {
    int64_t b = 0;
    for (const ShardedPiece& p : pieces) b += p.bytes();
    return b;
  }
};

struct MetricSeries {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
};

void perf_metric(Context& ctx, const std::string& case_name, const std::string& op, const std::string& metric,
                 const std::vector<double>& values, const std::string& unit, int64_t bytes) {
  if (values.empty()) return;
  PerfRow r;
  r.case_name = case_name, r.op = op, r.dtype = dtype_name(g.save.dtype), r.group_size = ctx.run.size;
  r.layout = "writers=" + std::to_string(g.writers) + ";io=" + g.io + ";staging=" + g.staging;
  r.bytes = (unsigned long long)std::max<int64_t>(bytes, 0);
  r.iters = int(values.size());
  r.metric = metric, r.unit = unit, r.value = median(values);
  ctx.perf(r);
  if (values.size() > 1) {
    r.metric = metric + ".min", r.value = *std::min_element(values.begin(), values.end());
    ctx.perf(r);
    r.metric = metric + ".max", r.value = *std::max_element(values.begin(), values.end());
    ctx.perf(r);
  }
}

// --- save ----------------------------------------------------------------------------------------
struct SaveRun {
  std::vector<SaveOutcome> async_outcomes;
  double sync_save_s = 0, sync_write_gbps = 0;
  std::vector<double> base_steps, busy_steps;  // per-step times: no save in flight / a save in flight
  int64_t bytes = 0;
};

// One finalized save: a check row and, on failure, a line on every rank.
void report_outcome(Context& ctx, const SaveOutcome& o) {
  if (!o.committed)
    std::fprintf(stderr, "dtbench-ckpt: rank %d: checkpoint step %lld NOT committed (failed ranks:%s): %s\n",
                 ctx.run.rank, (long long)o.step,
                 [&] {
                   std::string s;
                   for (int r : o.failed_ranks) s += " " + std::to_string(r);
                   return s;
                 }()
                     .c_str(),
                 o.error.c_str());
  ctx.check_condition({"save.commit", "step " + std::to_string(o.step), dtype_name(g.save.dtype),
                       o.committed ? "" : o.error},
                      !o.failed_here, o.error, "every rank's writers succeed and rank 0 commits");
  if (o.committed)
    ctx.progress("save step " + std::to_string(o.step) + " committed: " + std::to_string(o.bytes) + " B, blocking " +
                 format_double(o.blocking_s * 1e3, 3) + " ms, write " + format_double(o.write_gbps, 3) +
                 " GB/s, durable after " + format_double(o.durable_s * 1e3, 4) + " ms");
}

bool run_saves(Context& ctx, AsyncCheckpointer& ck, const std::string& root, SaveRun* out) {
  const int rank = ctx.run.rank, world = ctx.run.size;
  LiveState state;
  std::vector<ShardedPiece> pieces = build_rank_state(g.save, world, rank);
  if (ctx.fault.applies("overlap", rank)) {
    // A rank that claims a box another main replica already covers (a bug in the layout code).
    for (const ShardedPiece& p : pieces)
      if (p.is_main_replica() && p.numel() > 0) {
        pieces.push_back(p);
        break;
      }
  }
  std::vector<size_t> to_write;
  SaveValidation v = ck.prepare(pieces, &to_write);
  bool culprit_here = std::find(v.culprits.begin(), v.culprits.end(), rank) != v.culprits.end();
  bool ok_here = v.ok || (!culprit_here && !(v.culprits.empty() && rank == 0));
  if (!v.ok && rank == 0) std::fprintf(stderr, "dtbench-ckpt: save-time validation: %s\n", v.error.c_str());
  if (!ctx.check_condition({"save.validate", g.save.describe(world), dtype_name(g.save.dtype), v.error}, ok_here,
                           v.error, "main replicas tile every key exactly once"))
    return false;
  state.allocate(ctx, pieces);
  ck.reserve_staging(pieces, to_write);  // once, before any save is timed
  // The save thread reads `state` until its snapshot is complete; on every way out of this function
  // (an exception included) it must be done before `state` goes away.
  struct SnapshotGuard {
    AsyncCheckpointer& ck;
    ~SnapshotGuard() {
      ck.release_staging_hold();
      ck.wait_staged();
    }
  } snapshot_guard{ck};
  out->bytes = int64_t(ctx.sum_over_ranks(double([&] {
    int64_t b = 0;
    for (size_t i : to_write) b += pieces[i].bytes();
    return b;
  }())));
  ctx.progress("layout " + g.save.describe(world) + ": " + std::to_string(out->bytes) + " B to save per checkpoint, " +
               std::to_string(state.bytes()) + " B live on rank 0");

  WriterConfig cfg;
  cfg.direct = g.io != "buffered";
  cfg.direct_fallback = g.io == "auto";
  int save_ordinal = 0;
  auto cfg_for = [&](int ordinal) {
    WriterConfig c = cfg;
    c.kill_mid_write = ctx.fault.applies("kill", rank) && ctx.fault.index == ordinal;
    c.fail_writer = ctx.fault.applies("writer-fail", rank) && ctx.fault.index == ordinal;
    c.stage_in_background = g.staging == "async";
    c.hold_staging = c.stage_in_background && ctx.fault.applies("early-mutate", rank) && ctx.fault.index == ordinal;
    return c;
  };
  // Staging: queued device-to-host copies into pinned memory on GPUs (a memcpy on the host backend).
  auto copy_out = [&](size_t i, void* dst) {
    ctx.backend.stage_to_host(state.bufs[i], 0, size_t(state.pieces[i].numel()), dst);
  };
  auto schedule = [&](int64_t step, std::optional<SaveOutcome>* prev) {
    try {
      ck.schedule(root, step, state.pieces, to_write, copy_out, cfg_for(save_ordinal++), prev);
      return true;
    } catch (const CheckpointingError& e) {
      ctx.check_condition({"save.schedule", "step " + std::to_string(step), dtype_name(g.save.dtype), e.what()},
                          rank != 0, e.what(), "a fresh step directory (or --overwrite)");
      return false;
    }
  };

  // The synchronous reference save: schedule and wait, as a blocking checkpoint would.
  const int K = g.steps_per_save;
  if (!g.no_sync_save) {
    state.fill(0);
    double t0 = wall_seconds();
    std::optional<SaveOutcome> prev;
    if (!schedule(0, &prev)) return false;
    ck.release_staging_hold();  // early-mutate: no optimizer step follows the synchronous save
    ck.wait_staged();
    std::optional<SaveOutcome> o = ck.poll(true);
    out->sync_save_s = ctx.max_over_ranks(wall_seconds() - t0);
    if (o) {
      report_outcome(ctx, *o);
      out->sync_write_gbps = o->write_gbps;
    }
  }

  // The training loop: compute + DDP all-reduce + optimizer step, an async save every K steps. The
  // state holds its value at the next save step; the optimizer step right after a save moves it on
  // (one update per save period stands in for K, which keeps the fill cost out of most steps).
  // The DDP all-reduce the saves run beside carries the identity pattern with a fresh seed every
  // step (a stale or misplaced result is wrong) and is verified outside the timed step.
  const size_t grad_n = size_t(g.grad_elems);
  Buffer grad_in = ctx.backend.alloc(DType::f32, grad_n), grad = ctx.backend.alloc(DType::f32, grad_n);
  grad.fill_zero();
  LocalVerify grads;
  const std::string grad_check = "train.grad_all_reduce";
  state.fill(K);
  const int total_steps = K * (g.repeat + 1);
  int64_t pending_update = -1;  // the state's next value, set when a save was just scheduled
  for (int step = 1; step <= total_steps; ++step) {
    const uint64_t grad_seed = 0x6772616400000000ull + uint64_t(step);
    PatternSpec shares;
    shares.kind = PatternSpec::reduce, shares.seed = grad_seed, shares.rank = rank, shares.group_size = ctx.run.size;
    ctx.backend.fill_pattern(grad_in, 0, grad_n, shares);
    ctx.backend.synchronize();
    bool busy = ck.in_flight();
    double t0 = wall_seconds();
    ctx.backend.busy_compute(g.compute_ms * 1e-3);
    ctx.world.all_reduce(grad_in.data(), grad.data(), grad_n, DType::f32);
    double fill_s = 0;
    if (pending_update >= 0) {
      // Optimizer step: the staged snapshot must be complete before the state changes. The faulty
      // rank changes it first and only then lets its (held) staging copy run.
      const bool early = ctx.fault.applies("early-mutate", rank) && g.staging == "async";
      if (!early) ck.wait_staged();
      const double f0 = wall_seconds();
      state.fill(pending_update);
      ctx.backend.synchronize();
      fill_s = wall_seconds() - f0;  // the closed-form fill is the simulator's cost, not the step's
      if (early) ck.release_staging_hold();
      pending_update = -1;
    }
    ctx.backend.synchronize();
    // Step boundary: completion is agreed collectively; finalize in FIFO order.
    if (std::optional<SaveOutcome> o = ck.poll(false)) {
      report_outcome(ctx, *o);
      out->async_outcomes.push_back(*o);
    }
    if (step % K == 0 && step / K <= g.repeat) {
      std::optional<SaveOutcome> prev;
      if (!schedule(step, &prev)) return false;
      if (prev) {
        report_outcome(ctx, *prev);
        out->async_outcomes.push_back(*prev);
      }
      pending_update = step + K;  // the next optimizer step; the staged snapshot must not see it
    }
    // Boundary to boundary, so that both the save call (sync staging) and the optimizer's wait for
    // the snapshot (async staging) count; a step that starts a save counts as one with a save.
    busy = busy || ck.in_flight();
    (busy ? out->busy_steps : out->base_steps).push_back(wall_seconds() - t0 - fill_s);
    combine_verify(grads, ctx.verify_local(grad_check, grad, 0, grad_n, 0,
                                           block_expected(
                                               DType::f32,
                                               [grad_seed](size_t i, size_t len, void* o) {
                                                 fill_sum_totals(DType::f32, o, len, grad_seed, i);
                                               },
                                               [grad_seed](size_t i, size_t len, const void* o) {
                                                 return sum_totals_differ(DType::f32, o, len, grad_seed, i);
                                               }),
                                           0, [](size_t) { return -1; }));
  }
  ctx.report_check({grad_check, "every step", "fp32", ""}, grads);
  if (std::optional<SaveOutcome> o = ck.poll(true)) {
    report_outcome(ctx, *o);
    out->async_outcomes.push_back(*o);
  }
  return true;
}

void report_saves(Context& ctx, const SaveRun& s) {
  std::vector<double> blocking, queued, stall, stall_ratio, stage, write, slowest, durable, blocking_ratio;
  double staging_bytes = 0;
  for (const SaveOutcome& o : s.async_outcomes) {
    if (!o.committed) continue;
    blocking.push_back(o.blocking_s * 1e3);
    queued.push_back(o.queued_s * 1e3);
    // What a training step really loses to this save: the save call's wait for the previous save
    // to commit plus the blocking part (the call itself and the optimizer's wait for staging).
    stall.push_back((o.queued_s + o.blocking_s) * 1e3);
    if (s.sync_save_s > 0) stall_ratio.push_back((o.queued_s + o.blocking_s) / s.sync_save_s);
    stage.push_back(o.stage_gbps);
    write.push_back(o.write_gbps);
    slowest.push_back(o.slowest_rank_gbps);
    durable.push_back(o.durable_s * 1e3);
    if (s.sync_save_s > 0) blocking_ratio.push_back(o.blocking_s / s.sync_save_s);
    staging_bytes = std::max(staging_bytes, o.staging_bytes_per_rank);
  }
  const std::string c = g.save.describe(ctx.run.size);
  // The headline first: the stall a step sees (wait for the previous save + blocking), then its parts.
  perf_metric(ctx, c, perf_names::kSave, "training_stall", stall, "ms", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, "stall_over_sync_save", stall_ratio, "ratio", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, perf_names::kBlockingTime, blocking, "ms", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, "wait_for_previous_save", queued, "ms", s.bytes);
  // The blocking time assumes the previous save has committed by the next save call; when saves
  // come faster than they complete, training also stalls there, and the user should know.
  if (!queued.empty() && median(queued) > median(blocking) && ctx.run.rank == 0)
    std::fprintf(stderr,
                 "dtbench-ckpt: note: saves come faster than they complete: each save call first waited a "
                 "median %.3g ms for the previous save to commit (at most one in flight), beyond the %.3g ms "
                 "blocking time (both are in training_stall); a larger --steps-per-save avoids it\n",
                 median(queued), median(blocking));
  perf_metric(ctx, c, perf_names::kSave, "staging_bw", stage, "GB/s", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, perf_names::kWriteBwAggregate, write, "GB/s", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, "write_bw_slowest_rank", slowest, "GB/s", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, perf_names::kTimeToDurableCommit, durable, "ms", s.bytes);
  perf_metric(ctx, c, perf_names::kSave, "blocking_over_sync_save", blocking_ratio, "ratio", s.bytes);
  if (s.sync_save_s > 0) perf_metric(ctx, c, perf_names::kSave, "sync_save_time", {s.sync_save_s * 1e3}, "ms", s.bytes);
  if (s.sync_write_gbps > 0) perf_metric(ctx, c, perf_names::kSave, "sync_write_bw_aggregate", {s.sync_write_gbps}, "GB/s", s.bytes);
  if (staging_bytes > 0) perf_metric(ctx, c, perf_names::kSave, "staging_bytes_per_rank", {staging_bytes}, "bytes", s.bytes);
  // Per save, for dtbench-report's timeline: phase boundaries in ms from the save call. The writers
  // start once the snapshot is staged and write for bytes / aggregate write bandwidth (first writer
  // start to last fsync); the commit follows at the next step boundary that sees every writer done.
  // With background staging the blocking part (the save call plus the optimizer's wait) overlaps
  // the staging, so it may end before the writers start.
  for (const SaveOutcome& o : s.async_outcomes) {
    if (!o.committed) continue;
    const std::string sc = c + " step " + std::to_string(o.step);
    const double block_ms = o.blocking_s * 1e3, durable_ms = o.durable_s * 1e3;
    const double start_ms = std::min(o.write_start_s * 1e3, durable_ms);
    const double write_ms = o.write_gbps > 0 ? double(o.bytes) / (o.write_gbps * 1e9) * 1e3 : 0;
    perf_metric(ctx, sc, perf_names::kSaveTimeline, perf_names::kBlockingEnd, {block_ms}, "ms", o.bytes);
    perf_metric(ctx, sc, perf_names::kSaveTimeline, perf_names::kWriteStart, {start_ms}, "ms", o.bytes);
    perf_metric(ctx, sc, perf_names::kSaveTimeline, perf_names::kWriteEnd, {std::min(start_ms + write_ms, durable_ms)}, "ms", o.bytes);
    perf_metric(ctx, sc, perf_names::kSaveTimeline, perf_names::kDurableCommit, {durable_ms}, "ms", o.bytes);
  }
  double base = ctx.max_over_ranks(median(s.base_steps)), busy = ctx.max_over_ranks(median(s.busy_steps));
  perf_metric(ctx, c, "train", "step_time_no_save", {base * 1e3}, "ms", 0);
  if (busy > 0) {
    perf_metric(ctx, c, "train", "step_time_save_in_flight", {busy * 1e3}, "ms", 0);
    if (base > 0) perf_metric(ctx, c, "train", "step_time_inflation", {busy / base}, "ratio", 0);
  }
}

// --- load ----------------------------------------------------------------------------------------
void run_load(Context& ctx, AsyncCheckpointer& ck, const std::string& root) {
  const int rank = ctx.run.rank, world = ctx.run.size;
  const std::string dt = dtype_name(g.load.dtype);
  // Rank 0 resolves "latest", checks COMMIT and the index; everyone gets the index text.
  std::string problem, text, dir;
  if (rank == 0) {
    try {
      dir = resolve_checkpoint_dir(root, g.load_step);
      CheckpointIndex idx = open_committed(dir);
      text = idx.serialize();
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  problem = ck.agree_message(problem, "all_gather of the load check");
  if (!problem.empty() && rank == 0) std::fprintf(stderr, "dtbench-ckpt: load refused: %s\n", problem.c_str());
  if (!ctx.check_condition({"load.commit", root, dt, problem}, problem.empty() || rank != 0, problem,
                           "a committed checkpoint"))
    return;
  dir = ck.agree_message(dir, "all_gather of the checkpoint path");
  text = ck.agree_message(text, "all_gather of the checkpoint index");
  CheckpointIndex index = CheckpointIndex::parse(text, dir + "/index");
  ctx.progress("loading " + dir + " (step " + std::to_string(index.step()) + ", saved by " +
               std::to_string(index.world_size()) + " ranks) as " + g.load.describe(world));

  // Strict key handling (Megatron's StrictHandling, dist_checkpointing/validation.py).
  std::vector<ShardedPiece> requested = build_rank_state(g.load, world, rank);
  std::set<std::string> here, anywhere;
  for (const ShardedPiece& p : requested) here.insert(p.key);
  for (int r = 0; r < world; ++r)
    for (const ShardedPiece& p : build_rank_state(g.load, world, r)) anywhere.insert(p.key);
  StrictOutcome strict;
  std::string strict_error;
  try {
    strict = apply_strict_handling(g.strict_mode, here, anywhere, index.keys());
  } catch (const CheckpointingError& e) {
    strict_error = e.what();
    std::fprintf(stderr, "dtbench-ckpt: rank %d: --strict %s: %s\n", rank, g.strict.c_str(), e.what());
  }
  if (!strict.warning.empty() && (rank == 0 || !strict.unexpected.empty()))
    std::fprintf(stderr, "dtbench-ckpt: rank %d: warning: %s\n", rank, strict.warning.c_str());
  if (strict.returns_mismatch && rank == 0) {
    std::string m, u;
    for (const std::string& k : strict.missing) m += " " + k;
    for (const std::string& k : strict.unexpected) u += " " + k;
    ctx.progress("--strict " + g.strict + " returns missing keys:" + (m.empty() ? " none" : m) +
                 "; unexpected keys:" + (u.empty() ? " none" : u));
  }
  const std::string strict_text = ck.agree_message(strict_error, "all_gather of the strict-load verdict");
  if (!ctx.check_condition({"load.strict", g.strict, dt, strict_text}, strict_error.empty(), strict_error,
                           "no key mismatch that --strict " + g.strict + " raises on"))
    return;

  CheckpointReader reader(dir, index);
  auto report = [&](const std::string& check, const LoadProblem& p, uint64_t n_checked) {
    LocalVerify v;
    v.n_checked = n_checked;
    if (p.any()) {
      v.n_wrong = 1, v.first_index = p.offset, v.culprit = p.culprit;
      std::fprintf(stderr, "dtbench-ckpt: rank %d: %s: %s\n", rank, check.c_str(), p.message.c_str());
    }
    return ctx.report_check({check, dir, dt, ck.agree_message(p.message, "all_gather of a load check message")}, v);
  };

  // Whole files against the index, then every saved piece's checksum, spread over the ranks.
  std::vector<std::string> files;
  for (const IndexEntry& e : index.entries())
    if (std::find(files.begin(), files.end(), e.file) == files.end()) files.push_back(e.file);
  LoadProblem size_problem;
  uint64_t n_files = 0;
  for (size_t i = size_t(rank); i < files.size(); i += size_t(world), ++n_files)
    if (!size_problem.any()) size_problem = reader.check_file_size(files[i]);
  report("load.files", size_problem, n_files);

  LoadProblem sum_problem;
  int64_t verified = 0;
  uint64_t n_entries = 0;
  double t0 = wall_seconds();
  for (size_t i = size_t(rank); i < index.entries().size(); i += size_t(world), ++n_entries)
    verified += reader.verify_checksum(index.entries()[i], &sum_problem);
  double verify_s = ctx.max_over_ranks(wall_seconds() - t0);
  report("load.checksum", sum_problem, n_entries);

  // Byte-range reads of what this rank needs, into its (device or host) buffers.
  LiveState state;
  state.allocate(ctx, requested);
  std::vector<std::vector<PieceRead>> reads(requested.size());
  LoadProblem read_problem;
  int64_t read_bytes = 0;
  std::vector<char> host;
  t0 = wall_seconds();
  for (size_t i = 0; i < requested.size(); ++i) {
    if (!strict.keys_to_load.count(requested[i].key)) continue;
    host.assign(size_t(requested[i].bytes()), 0);
    try {
      read_bytes += reader.read_piece(requested[i], host.data(), &read_problem, &reads[i]);
    } catch (const CheckpointingError& e) {
      if (!read_problem.any()) read_problem.message = e.what();
    }
    state.bufs[i].copy_from_host(host.data(), 0, size_t(requested[i].numel()));
  }
  ctx.backend.synchronize();
  double load_s = ctx.max_over_ranks(wall_seconds() - t0);
  report("load.read", read_problem, requested.size());

  // Every loaded element, bit for bit, against its value at the checkpoint's step.
  LocalVerify v;
  std::string value_msg;
  bool flipped = false;
  for (size_t i = 0; i < requested.size(); ++i) {
    const ShardedPiece& p = requested[i];
    if (!strict.keys_to_load.count(p.key) || p.numel() == 0) continue;
    host.assign(size_t(p.bytes()), 0);
    state.bufs[i].copy_to_host(host.data(), 0, size_t(p.numel()));
    // The flip fault (the verify kit's rule: the first non-empty piece, index clamped): a corrupted
    // element after the read, in the host copy the closed form is checked against.
    const int64_t flip_at = flipped ? -1 : flip_target(ctx.fault, rank, "load.values", size_t(p.numel()));
    if (flip_at >= 0) {
      host[size_t(flip_at) * dtype_size(p.dtype)] ^= 1;
      flipped = true;
    }
    int64_t n_wrong = 0, first = first_wrong_element(p, index.step(), host.data(), &n_wrong);
    v.n_checked += uint64_t(p.numel());
    if (first < 0) continue;
    if (v.n_wrong == 0) {
      v.first_index = first;
      v.observed = load_elem(p.dtype, host.data(), size_t(first));
      std::vector<char> want(size_t(p.bytes()));
      fill_piece(p, index.step(), want.data());
      v.expected = load_elem(p.dtype, want.data(), size_t(first));
      v.culprit = culprit_of_element(p, reads[i], first);
      value_msg = "key '" + p.key + "' element " + std::to_string(first) + " of the piece at " +
                  shape_str(p.global_offset) + ": " + std::to_string(n_wrong) + " wrong values (file of rank " +
                  std::to_string(v.culprit) + ")";
      std::fprintf(stderr, "dtbench-ckpt: rank %d: load.values: %s\n", rank, value_msg.c_str());
    }
    v.n_wrong += uint64_t(n_wrong);
  }
  ctx.report_check({"load.values", dir, dt, ck.agree_message(value_msg, "all_gather of the load.values message")}, v);

  const std::string c = g.load.describe(world) + " from " + std::to_string(index.world_size()) + " ranks";
  double total_read = ctx.sum_over_ranks(double(read_bytes)), total_verified = ctx.sum_over_ranks(double(verified));
  perf_metric(ctx, c, "load", "load_bw", {load_s > 0 ? total_read / load_s / 1e9 : 0}, "GB/s", int64_t(total_read));
  perf_metric(ctx, c, "load", "verify_bw", {verify_s > 0 ? total_verified / verify_s / 1e9 : 0}, "GB/s",
              int64_t(total_verified));
  ctx.progress("load: " + format_double(total_read, 6) + " B read in " + format_double(load_s * 1e3, 4) +
               " ms, " + format_double(total_verified, 6) + " B checksummed in " + format_double(verify_s * 1e3, 4) +
               " ms");
}

void body(Context& ctx) {
  AsyncCheckpointer ck(g.writers, g.overwrite, g.fully_parallel);
  Backend& backend = ctx.backend;
  ck.use_staging([&backend](size_t bytes) { return backend.alloc_host_staging(bytes); },
                 [&backend](void* p) { backend.free_host_staging(p); }, [&backend] { backend.begin_staging(); },
                 [&backend] { backend.wait_staging(); });
  // corrupt-frame: a bit of the index-th checkpoint metadata frame this rank receives is flipped
  // after MPI delivered it; exchange.metadata must FAIL naming this rank.
  if (ctx.fault.applies("corrupt-frame", ctx.run.rank)) ck.exchange().corrupt_received(ctx.fault.index);
  std::string root = g.ckpt_dir;
  const bool created = root.empty();  // a private directory under --out, removed unless --keep-ckpt
  if (created && ctx.run.rank == 0) {
    make_dirs(ctx.opts.out_dir);
    root = ctx.opts.out_dir + "/ckpt-tmp-XXXXXX";
    if (!mkdtemp(&root[0])) throw RuntimeError("cannot create a checkpoint directory under " + ctx.opts.out_dir);
  }
  try {
    if (created) root = ck.agree_message(root, "all_gather of the checkpoint directory");
    if (!g.load_only) {
      SaveRun s;
      if (run_saves(ctx, ck, root, &s)) report_saves(ctx, s);
    }
    if (!g.save_only) run_load(ctx, ck, root);
  } catch (const CorruptExchange& e) {
    // MPI delivered checkpoint metadata that fails its frame check: nothing built on it is trusted,
    // so the run stops with a FAIL naming the ranks that received the bad frames.
    if (ctx.is_root()) std::fprintf(stderr, "dtbench-ckpt: %s\n", e.what());
    ctx.check_condition({"exchange.metadata", e.exchange(), dtype_name(g.save.dtype), e.what()}, e.local().empty(),
                        e.local(), "every rank's frame intact (source rank, exchange number, xxh64 of the payload)");
  }
  if (ck.exchange().corrupted()) note_fault_applied();
  ck.barrier();
  if (created && !g.keep && ctx.run.rank == 0) remove_tree(root);
  if (created && g.keep) ctx.progress("checkpoints kept in " + root);
}

void add_options(CLI::App& app, CommonOptions&) {
  app.add_option("--tp", g.tp, "tensor-parallel size of the saved layout")->capture_default_str()->check(at_least(1));
  app.add_option("--pp", g.pp, "pipeline-parallel size of the saved layout")->capture_default_str()->check(at_least(1));
  app.add_flag("--fsdp", g.fsdp, "params sharded over DP too (uneven rows), instead of DP replicas");
  app.add_option("--optimizer", g.optimizer, "adam (fp32 master weights + two moments, DP-sharded) or none")
      ->capture_default_str()
      ->check(one_of({"adam", "none"}));
  app.add_option("--layers", g.layers, "transformer layers")->capture_default_str()->check(at_least(1));
  app.add_option("--hidden", g.hidden, "hidden size (sets every tensor's size)")->capture_default_str()->check(at_least(1));
  app.add_option("--split1d", g.split1d, "extra 1-D key: elements per rank, e.g. 5,5,0,0 (uneven/empty splits)");
  app.add_option("--load-tp", g.load_tp, "TP size to load with (0 = as saved)")->check(at_least(0));
  app.add_option("--load-pp", g.load_pp, "PP size to load with (0 = as saved)")->check(at_least(0));
  app.add_option("--load-fsdp", g.load_fsdp, "same, on or off")->capture_default_str()->check(one_of({"same", "on", "off"}));
  app.add_option("--load-optimizer", g.load_optimizer, "same, adam or none")
      ->capture_default_str()
      ->check(one_of({"same", "adam", "none"}));
  app.add_option("--load-split1d", g.load_split1d, "split1d of the load (per load rank), 'same' or 'none'")
      ->capture_default_str();
  app.add_option("--strict", g.strict, "missing/unexpected keys (Megatron's StrictHandling)")
      ->capture_default_str()
      ->check(one_of(strict_handling_names()));
  app.add_option("--writers", g.writers, "files (writer threads) per rank")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--io", g.io, "write path: auto (O_DIRECT, buffered where the filesystem refuses it), direct (O_DIRECT + fsync) or buffered (write + fsync)")
      ->capture_default_str()
      ->check(one_of({"auto", "direct", "buffered"}));
  app.add_option("--staging", g.staging,
                 "async: the save thread copies the state to host memory while the next step computes; the "
                 "optimizer step waits for the copy (PyTorch DCP async staging). sync: the save call returns "
                 "after the copy (Megatron-Core's D2H preload)")
      ->capture_default_str()
      ->check(one_of({"async", "sync"}));
  app.add_option("--steps-per-save", g.steps_per_save, "training steps between saves")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--repeat", g.repeat, "async saves (metrics are medians over them)")->capture_default_str()->check(at_least(1));
  app.add_option("--compute-ms", g.compute_ms, "simulated compute per training step (ms)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--grad-elems", g.grad_elems, "fp32 elements of the per-step DDP all-reduce")
      ->capture_default_str()
      ->check(at_least(1));
  CLI::Option* ckpt_dir =
      app.add_option("--ckpt-dir", g.ckpt_dir, "checkpoint root (default: a temporary directory under --out, removed)");
  CLI::Option* save_only = app.add_flag("--save-only", g.save_only, "save (and keep) checkpoints, do not load");
  app.add_flag("--load-only", g.load_only, "load the latest checkpoint of --ckpt-dir, do not save")
      ->excludes(save_only)
      ->needs(ckpt_dir);
  app.add_option("--load-step", g.load_step, "load step_<N> instead of latest");
  app.add_flag("--overwrite", g.overwrite, "replace existing step directories");
  app.add_flag("--keep-ckpt", g.keep, "keep the temporary checkpoint directory");
  app.add_flag("--fully-parallel,!--no-fully-parallel", g.fully_parallel,
               "on by default: spread the writing of replicated shards over their holders (Megatron's fully "
               "parallel save, its default too); --no-fully-parallel: the first holder writes them");
  app.add_flag("--no-sync-save", g.no_sync_save, "skip the synchronous reference save at step 0");
}

// CkptLayout's fields as the flags of the save ("") or the load ("load-") layout.
std::map<std::string, std::string> layout_flags(const std::string& prefix) {
  std::map<std::string, std::string> m;
  for (const char* f : {"tp", "pp", "split1d"}) m[f] = "--" + prefix + f;
  m["layers"] = "--layers", m["hidden"] = "--hidden";
  return m;
}

void validate_options(const RunInfo& run, CommonOptions& opts) {
  auto layout_of = [&](int tp, int pp, bool fsdp, const std::string& opt, const std::string& split,
                       const std::string& prefix) {
    CkptLayout l;
    l.tp = tp, l.pp = pp, l.fsdp = fsdp, l.layers = g.layers, l.hidden = g.hidden, l.dtype = opts.dtype;
    l.adam = opt == "adam";
    if (!split.empty() && split != "none") l.split1d = parse_split(split, "--" + prefix + "split1d");
    with_flag_names(layout_flags(prefix), [&] { l.check(run.size); });
    return l;
  };
  if (g.staging == "sync" && opts.inject_fault.rfind("early-mutate", 0) == 0)
    throw InputError("--inject-fault early-mutate: needs --staging async (with sync staging the state cannot change early)");
  // Faults aimed at a save by its ordinal (0 = the first save of the run) must hit one, and one they
  // can change: never a silent PASS.
  if (!opts.inject_fault.empty()) {
    const FaultSpec f = parse_fault_spec(opts.inject_fault);
    const int saves = g.load_only ? 0 : g.repeat + (g.no_sync_save ? 0 : 1);
    if ((f.kind == "kill" || f.kind == "writer-fail" || f.kind == "early-mutate") && f.index >= saves)
      throw InputError("--inject-fault " + f.kind + ",index=" + std::to_string(f.index) + ": this run makes " +
                       std::to_string(saves) + " saves (index 0.." + std::to_string(saves - 1) + ")");
    if (f.kind == "early-mutate" && !g.no_sync_save && f.index == 0)
      throw InputError("--inject-fault early-mutate,index=0: that is the synchronous save, after which no optimizer "
                       "step follows (use index 1.." + std::to_string(saves - 1) + ")");
    // The save the fault corrupts is the one loaded and verified (by default the latest is).
    if (f.kind == "early-mutate" && g.load_step < 0 && f.index < saves - 1)
      g.load_step = int64_t(g.no_sync_save ? f.index + 1 : f.index) * g.steps_per_save;
  }
  parse_strict_handling(g.strict, &g.strict_mode);  // a name one_of checked
  // The saved layout only has to fit the world when this run saves.
  if (!g.load_only) g.save = layout_of(g.tp, g.pp, g.fsdp, g.optimizer, g.split1d, "");
  else g.save.dtype = opts.dtype;
  std::string lsplit = g.load_split1d == "same" ? g.split1d : g.load_split1d;
  g.load = layout_of(g.load_tp ? g.load_tp : g.tp, g.load_pp ? g.load_pp : g.pp,
                     g.load_fsdp == "same" ? g.fsdp : g.load_fsdp == "on",
                     g.load_optimizer == "same" ? g.optimizer : g.load_optimizer, lsplit, "load-");
  // A burn-in saves the same steps in every window: into a fresh temporary directory each time by
  // default, into --ckpt-dir only when it may overwrite them.
  if (opts.duration_s > 0 && !g.ckpt_dir.empty() && !g.load_only && !g.overwrite)
    throw InputError("--duration with --ckpt-dir: every window saves the same steps again; pass --overwrite, "
                     "or leave --ckpt-dir out (a temporary directory per window)");
  // Never overwrite a checkpoint by accident: the step directories this run would create.
  if (!g.ckpt_dir.empty() && !g.load_only && !g.overwrite) {
    std::vector<int64_t> steps;
    if (!g.no_sync_save) steps.push_back(0);
    for (int i = 1; i <= g.repeat; ++i) steps.push_back(int64_t(i) * g.steps_per_save);
    for (int64_t s : steps) {
      std::string d = g.ckpt_dir + "/" + step_dir_name(s);
      if (path_exists(d)) throw InputError("--ckpt-dir: " + d + " already exists; refusing to overwrite it (pass --overwrite)");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGXFSZ, SIG_IGN);  // a file-size limit (ulimit -f) is an EFBIG error, not a crash
  Suite suite;
  suite.name = "ckpt";
  suite.summary = "async distributed checkpoint: sharded save, durable commit, resharding load, verified";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 4 dtbench-ckpt                                   # TP1xPP1xDP4 + Adam, 3 async saves, load\n"
      "  mpirun -np 4 dtbench-ckpt --tp 2 --fsdp --writers 2 --load-tp 4 --load-fsdp off\n"
      "  mpirun -np 4 dtbench-ckpt --ckpt-dir /scratch/ck --save-only --tp 2\n"
      "  mpirun -np 3 dtbench-ckpt --ckpt-dir /scratch/ck --load-only --strict raise_all   # reshard 4 -> 3\n"
      "  mpirun -np 4 dtbench-ckpt --hidden 512 --layers 4 --repeat 5 --io direct          # benchmark\n";
  suite.add_options = add_options;
  suite.faults = {"corrupt-frame", "early-mutate", "kill", "overlap", "writer-fail"};
  suite.faults_that_can_miss = {"corrupt-frame"};
  suite.validate = validate_options;
  suite.body = body;
  return suite_main(argc, argv, suite);
}
