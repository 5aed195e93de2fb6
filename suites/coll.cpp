// dtbench-coll: the raw collective sweep (all-reduce, reduce-scatter, all-gather, all-to-all,
// broadcast) over message sizes, in and out of place, timed and validated element by element.
// It follows nccl-tests: one descriptor per collective says how many elements move, how to fill the
// inputs and what every output element must be; the loop below measures and checks each.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>

#include "../kernels/pattern.h"
#include "core/error.h"
#include "core/pattern_fill.h"
#include "core/suite.h"
#include "core/sweep_eta.h"

using namespace dtbench;

namespace {

// The typed options: CLI11 parses and checks every flag into these (sizes, names, ranges);
// validate_options checks what depends on the world or on two of them.
const std::vector<std::pair<std::string, CollKind>> kCollNames = {
    {"all_reduce", CollKind::all_reduce}, {"reduce_scatter", CollKind::reduce_scatter},
    {"all_gather", CollKind::all_gather}, {"all_to_all", CollKind::all_to_all},
    {"broadcast", CollKind::broadcast}};
const std::vector<std::pair<std::string, RedOp>> kRedOpNames = {{"sum", RedOp::sum}, {"avg", RedOp::avg}};

struct CollOptions {
  uint64_t min_b = 8, max_b = 16 << 20;  // bytes
  double step_factor = 2;
  std::vector<CollKind> kinds = {CollKind::all_reduce, CollKind::reduce_scatter, CollKind::all_gather,
                                 CollKind::all_to_all, CollKind::broadcast};
  RedOp op = RedOp::sum;
  std::string placement = "both";  // out, in, both
  bool accumulate_fp32 = false;
  int root = 0;
};
CollOptions g_opt;

// How one collective is laid out, filled and checked (the nccl-tests testColl descriptor).
struct CollDescriptor {
  CollKind kind;
  int n, rank;
  size_t count;  // the count argument of the collective
  size_t send_elems() const {
    return kind == CollKind::reduce_scatter || kind == CollKind::all_to_all ? count * size_t(n) : count;
  }
  size_t recv_elems() const {
    return kind == CollKind::all_gather || kind == CollKind::all_to_all ? count * size_t(n) : count;
  }
  // Where the input sits in the receive buffer for in-place runs (NCCL's convention).
  size_t in_place_send_offset() const { return kind == CollKind::all_gather ? size_t(rank) * count : 0; }
  bool has_in_place() const { return kind != CollKind::all_to_all; }
};

// The per-rank count for a message of `bytes` (nccl-tests: S = bytes, split over ranks where the op does).
size_t count_for(CollKind kind, uint64_t bytes, DType dt, int n) {
  size_t elems = bytes / dtype_size(dt);
  if (kind == CollKind::reduce_scatter || kind == CollKind::all_gather || kind == CollKind::all_to_all)
    return elems / size_t(n);
  return elems;
}

// Inputs from the identity pattern (kernels/pattern.h): reductions get each rank's share of an exact
// per-index total, data movement gets values whose bits name (seed, source rank, index).
void fill_inputs(Context& ctx, const CollDescriptor& d, Buffer& send, Buffer& recv, bool in_place, uint64_t seed) {
  Buffer& in = in_place ? recv : send;
  size_t at = in_place ? d.in_place_send_offset() : 0;
  PatternSpec p;
  p.seed = seed, p.rank = d.rank, p.group_size = d.n;
  switch (d.kind) {
    case CollKind::all_reduce:
    case CollKind::reduce_scatter: p.kind = PatternSpec::reduce; break;
    case CollKind::broadcast:
      // Non-root ranks start from their own data so a broadcast that did not arrive is visible.
      p.kind = PatternSpec::gather;
      if (d.rank != g_opt.root) p.seed = seed + 977;
      break;
    default: p.kind = PatternSpec::gather; break;
  }
  ctx.backend.fill_pattern(in, at, d.send_elems(), p);
  if (!in_place && !recv.empty()) {
    PatternSpec junk;  // stale output must not pass as a result
    junk.kind = PatternSpec::gather, junk.seed = seed + 31337, junk.rank = d.rank;
    ctx.backend.fill_pattern(recv, 0, d.recv_elems(), junk);
  }
}

// Expected moved values of an output laid out as blocks of `count` per source rank: element i holds
// source (i / count)'s value at pattern index first_of_block + i % count.
auto moved_blocks(DType dt, uint64_t seed, size_t count, size_t first_of_block) {
  // Calls part(source, pattern index, n, data) for each source block's piece of [i, i + len).
  auto by_block = [=](size_t i, size_t len, auto* data, auto part) {
    while (len > 0) {
      const size_t src = i / count, in_block = i % count, take = std::min(len, count - in_block);
      if (part(int(src), first_of_block + in_block, take, data)) return true;
      i += take, data += take * dtype_size(dt), len -= take;
    }
    return false;
  };
  return block_expected(
      dt,
      [=](size_t i, size_t len, void* out) {
        by_block(i, len, static_cast<char*>(out), [=](int src, size_t at, size_t n, char* o) {
          fill_moved_values(dt, o, n, seed, src, at);
          return false;
        });
      },
      [=](size_t i, size_t len, const void* data) {
        return by_block(i, len, static_cast<const char*>(data), [=](int src, size_t at, size_t n, const char* o) {
          return moved_values_differ(dt, o, n, seed, src, at);
        });
      });
}

// Runs one validation round and reports it. Returns true when every rank's output is right.
bool validate(Context& ctx, Comm& comm, const CollDescriptor& d, Buffer& send, Buffer& recv, bool in_place,
              uint64_t seed, const std::string& case_name) {
  DType dt = ctx.opts.dtype;
  fill_inputs(ctx, d, send, recv, in_place, seed);
  CollArgs a;
  a.kind = d.kind, a.count = d.count, a.dtype = dt, a.op = g_opt.op, a.root = g_opt.root;
  a.accumulate_fp32 = g_opt.accumulate_fp32;
  a.recv = recv.data();
  a.send = in_place ? recv.at(d.in_place_send_offset()) : send.data();
  if (d.kind == CollKind::reduce_scatter && in_place) a.recv = recv.at(size_t(d.rank) * d.count);
  comm.run(a);

  CheckInfo info{std::string(coll_name(d.kind)) + (in_place ? ".in_place" : ".out_of_place"), case_name,
                 dtype_name(dt), ""};
  const int n = d.n, rank = d.rank;
  const size_t count = d.count;
  const bool avg = g_opt.op == RedOp::avg;
  // The reduced value at pattern index i. Sums are exact in any order, so compared bit for bit;
  // averages are not exact in any order: allow max(2, n) ULPs as nccl-tests does.
  auto sums = block_expected(
      dt, [=](size_t i, size_t len, void* out) { fill_sum_totals(dt, out, len, seed, i); },
      [=](size_t i, size_t len, const void* data) { return sum_totals_differ(dt, data, len, seed, i); });
  const int code = dtype_code(dt);
  auto averages = [=](size_t i) { return double(round_to(dt, float(double(sum_total_at(seed, code, i)) / n))); };
  auto check_reduced = [&](size_t out_at, size_t index_base) {
    return avg ? ctx.check(info, recv, out_at, count, index_base, averages, std::max(2.0, double(n)))
               : ctx.check(info, recv, out_at, count, index_base, sums);
  };
  auto source_block = [=](size_t i) { return int(i / count); };
  switch (d.kind) {
    case CollKind::all_reduce:
      return check_reduced(0, 0);
    case CollKind::reduce_scatter:
      return check_reduced(in_place ? size_t(rank) * count : 0, size_t(rank) * count);
    case CollKind::all_gather:
      return ctx.check(info, recv, 0, count * size_t(n), 0, moved_blocks(dt, seed, count, 0), 0, source_block);
    case CollKind::all_to_all:
      return ctx.check(info, recv, 0, count * size_t(n), 0, moved_blocks(dt, seed, count, size_t(rank) * count), 0,
                       source_block);
    case CollKind::broadcast: {
      const int root = g_opt.root;
      auto values = block_expected(
          dt, [=](size_t i, size_t len, void* out) { fill_moved_values(dt, out, len, seed, root, i); },
          [=](size_t i, size_t len, const void* data) { return moved_values_differ(dt, data, len, seed, root, i); });
      return ctx.check(info, recv, 0, count, 0, values, 0, [=](size_t) { return root; });
    }
    default:
      throw InputError("unsupported collective");
  }
}

void run_sweep(Context& ctx) {
  Comm& comm = ctx.world;
  int n = comm.size();
  DType dt = ctx.opts.dtype;
  // Buffers sized once for the largest message: S bytes plus the ops' own expansion.
  size_t max_elems = g_opt.max_b / dtype_size(dt) + size_t(n);
  Buffer send = ctx.backend.alloc(dt, max_elems);
  Buffer recv = ctx.backend.alloc(dt, max_elems);
  std::vector<uint64_t> sizes;
  for (double b = double(g_opt.min_b); b <= double(g_opt.max_b) + 0.5; b *= g_opt.step_factor) {
    sizes.push_back(uint64_t(b));
    if (g_opt.step_factor <= 1) break;
  }

  // Every (collective, size, placement) the sweep runs, in order: the progress lines count them and
  // estimate the time left from the bytes moved so far.
  auto runs_placement = [&](const CollDescriptor& d, bool in_place) {
    if ((in_place && g_opt.placement == "out") || (!in_place && g_opt.placement == "in")) return false;
    return !in_place || d.has_in_place();
  };
  const double rounds = double(ctx.opts.warmup + ctx.opts.iters + ctx.opts.check_iters);
  std::vector<double> step_bytes;
  for (CollKind kind : g_opt.kinds)
    for (uint64_t bytes : sizes) {
      CollDescriptor d{kind, n, comm.rank(), count_for(kind, bytes, dt, n)};
      for (int placement = 0; placement < 2; ++placement)
        if (d.count > 0 && runs_placement(d, placement == 1)) step_bytes.push_back(double(bytes) * rounds);
    }
  SweepEta eta(step_bytes, 64.0 * 1024 * rounds);
  const std::optional<double> deadline = seconds_to_deadline();
  const auto sweep_start = std::chrono::steady_clock::now();
  size_t step = 0;

  for (CollKind kind : g_opt.kinds) {
    for (uint64_t bytes : sizes) {
      CollDescriptor d{kind, n, comm.rank(), count_for(kind, bytes, dt, n)};
      if (d.count == 0) {
        ctx.progress(std::string(coll_name(kind)) + " " + std::to_string(bytes) + " B: below one element per rank, skipped");
        continue;
      }
      for (int placement = 0; placement < 2; ++placement) {
        bool in_place = placement == 1;
        if (!runs_placement(d, in_place)) continue;
        std::string case_name = std::to_string(coll_quoted_bytes(kind, d.count, dt, n)) + "B";

        fill_inputs(ctx, d, send, recv, in_place, ctx.opts.seed);
        CollArgs a;
        a.kind = kind, a.count = d.count, a.dtype = dt, a.op = g_opt.op, a.root = g_opt.root;
        a.accumulate_fp32 = g_opt.accumulate_fp32;
        a.recv = in_place && kind == CollKind::reduce_scatter ? recv.at(size_t(d.rank) * d.count) : recv.data();
        a.send = in_place ? recv.at(d.in_place_send_offset()) : send.data();
        TimingStats t = ctx.time_op(comm, ctx.opts.warmup, ctx.opts.iters, [&] { comm.run(a); });

        long long wrong = 0;
        for (int rep = 0; rep < ctx.opts.check_iters; ++rep) {
          // A fresh seed per round, as nccl-tests does, so stale data cannot pass.
          uint64_t seed = ctx.opts.seed * 1000003u + uint64_t(rep + 1) * 7919u + bytes;
          if (!validate(ctx, comm, d, send, recv, in_place, seed, case_name)) ++wrong;
        }

        PerfRow row;
        row.case_name = case_name;
        row.op = coll_name(kind);
        row.dtype = dtype_name(dt);
        row.redop = kind == CollKind::all_reduce || kind == CollKind::reduce_scatter ? redop_name(g_opt.op) : "";
        row.in_place = in_place ? "1" : "0";
        row.group_size = n;
        row.layout = g_opt.accumulate_fp32 ? "accumulate=fp32" : "";
        row.count = d.count;
        row.bytes = coll_quoted_bytes(kind, d.count, dt, n);
        set_times(row, t);
        set_bandwidths(row, coll_busbw_factor(kind, n));
        row.n_wrong = ctx.opts.check_iters ? wrong : -1;
        ctx.perf(row);
        std::ostringstream line;
        line << coll_name(kind) << (in_place ? " in-place " : " out-of-place ") << row.bytes << " B: "
             << format_double(row.time_med_us, 4) << " us, busbw " << format_double(row.busbw, 4) << " GB/s"
             << (ctx.opts.check_iters ? (wrong ? ", CHECK FAILED" : ", ok") : "");
        eta.step_done(step++, std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count());
        ctx.progress(line.str() + " [" + eta.text() + "]");
        if (deadline && ctx.is_root())
          if (auto warning = eta.deadline_warning(*deadline))
            std::fprintf(stderr, "dtbench-coll: warning: %s\n", warning->c_str());
      }
    }
  }
}

void add_options(CLI::App& app, CommonOptions&) {
  app.add_option("-b,--min-bytes", g_opt.min_b, "smallest message (bytes; K, M, G suffixes)")
      ->default_str("8")
      ->transform(size_bytes())
      ->check(at_least(1));
  app.add_option("-e,--max-bytes", g_opt.max_b, "largest message")->default_str("16M")->transform(size_bytes());
  app.add_option("-f,--step-factor", g_opt.step_factor, "multiply the size by this between steps")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_option("--ops", g_opt.kinds, "comma-separated collectives")
      ->default_str(names_of(kCollNames, g_opt.kinds))
      ->delimiter(',')
      ->transform(one_of(kCollNames));
  app.add_option("-o,--op", g_opt.op, "reduction: sum or avg")->default_str("sum")->transform(one_of(kRedOpNames));
  app.add_option("--placement", g_opt.placement, "out (of place), in (place) or both")
      ->capture_default_str()
      ->check(one_of({"out", "in", "both"}));
  app.add_flag("--accumulate-fp32", g_opt.accumulate_fp32,
               "16-bit reductions: widen to fp32, reduce, round once (default: round after every add)");
  app.add_option("--root", g_opt.root, "broadcast root")->capture_default_str()->check(at_least(0));
}

void validate_options(const RunInfo& run, CommonOptions&) {
  if (g_opt.min_b > g_opt.max_b)
    throw InputError("-b/--min-bytes " + std::to_string(g_opt.min_b) + " is larger than -e/--max-bytes " +
                     std::to_string(g_opt.max_b));
  if (g_opt.root >= run.size)
    throw InputError("--root " + std::to_string(g_opt.root) + ": outside 0.." + std::to_string(run.size - 1));
}

}  // namespace

int main(int argc, char** argv) {
  Suite suite;
  suite.name = "coll";
  suite.summary = "collective sweep (all-reduce, reduce-scatter, all-gather, all-to-all, broadcast), timed and validated";
  suite.examples =
      "Examples:\n"
      "  mpirun -np 8 dtbench-coll -b 8 -e 64M -f 2                # every collective, 8 B .. 64 MiB\n"
      "  mpirun -np 4 dtbench-coll --ops all_reduce -d bf16 -o avg  # bf16 average\n"
      "  srun --mpi=pmix dtbench-coll --backend nccl -b 1M -e 1G -n 50 -c 2\n"
      "Bandwidths follow nccl-tests: algbw = S/time, busbw = algbw x 2(n-1)/n (all-reduce) or (n-1)/n.";
  suite.add_options = add_options;
  suite.validate = validate_options;
  suite.body = run_sweep;
  return suite_main(argc, argv, suite);
}
