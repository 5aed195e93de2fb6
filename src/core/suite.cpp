#include "core/suite.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/rank_hosts.h"
#include "core/sweep_eta.h"
#include "core/units.h"
#include "core/watchdog.h"

namespace dtbench {
namespace {

// Harness traffic (check summaries, timings, agreement on errors) goes over its own duplicate of
// MPI_COMM_WORLD so it never interleaves with a suite's collectives.
MPI_Comm g_control = MPI_COMM_NULL;
std::vector<int> g_control_members;
const std::string g_control_label = "control";
uint64_t g_control_calls = 0;

struct ControlScope {
  explicit ControlScope(const char* op) : scope(op, -1, g_control_calls++, &g_control_members, &g_control_label) {}
  watchdog::Scope scope;
};

// The first error message from the lowest failing rank, on every rank.
std::string agree_error(const std::string& mine_or_empty) {
  int size;
  MPI_Comm_size(g_control, &size);
  int my_len = int(mine_or_empty.size());
  std::vector<int> lens(size_t(size), 0);
  MPI_Allgather(&my_len, 1, MPI_INT, lens.data(), 1, MPI_INT, g_control);
  int src = -1;
  for (int r = 0; r < size; ++r)
    if (lens[size_t(r)] > 0) {
      src = r;
      break;
    }
  if (src < 0) return "";
  std::string msg(size_t(lens[size_t(src)]), '\0');
  int me;
  MPI_Comm_rank(g_control, &me);
  if (me == src) msg = mine_or_empty;
  MPI_Bcast(&msg[0], lens[size_t(src)], MPI_CHAR, src, g_control);
  return msg;
}

}  // namespace

Context::Context(const RunInfo& r, CommonOptions& o, Backend& b, const FaultSpec& f)
    : run(r), opts(o), backend(b), world(b.world()), fault(f), start_(std::chrono::steady_clock::now()) {}

Context::~Context() = default;

void Context::progress(const std::string& line) const {
  if (!is_root() || opts.quiet) return;
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "[%7.2fs] %s\n", t, line.c_str());
  std::fflush(stderr);
}

bool Context::report_check(const CheckInfo& info, const LocalVerify& local, const std::string& condition) {
  // Only rank 0 (which writes the row) needs every rank's summary: a gather, then the verdict is
  // broadcast. Other ranks hold O(1) per check instead of O(world).
  std::vector<LocalVerify> all(is_root() ? size_t(run.size) : 0);
  {
    ControlScope s("check_summary");
    MPI_Gather(&local, sizeof(LocalVerify), MPI_BYTE, all.data(), sizeof(LocalVerify), MPI_BYTE, 0, g_control);
  }
  if (!is_root()) {
    int pass = 0;
    ControlScope s("check_verdict");
    MPI_Bcast(&pass, 1, MPI_INT, 0, g_control);
    return pass != 0;
  }
  CheckRow row;
  row.check = info.check;
  row.case_name = info.case_name;
  row.dtype = info.dtype;
  row.detail = info.detail;
  std::ostringstream failing, culprits;
  std::vector<int> culprit_ranks;
  for (int r = 0; r < run.size; ++r) {
    const LocalVerify& v = all[size_t(r)];
    row.n_checked += v.n_checked;
    row.n_wrong += v.n_wrong;
    row.max_abs_err = std::max(row.max_abs_err, v.max_abs_err);
    row.max_rel_err = std::max(row.max_rel_err, v.max_rel_err);
    if (v.n_wrong == 0) continue;
    failing << (row.first_rank < 0 ? "" : ";") << r;
    if (v.culprit >= 0 && std::find(culprit_ranks.begin(), culprit_ranks.end(), v.culprit) == culprit_ranks.end())
      culprit_ranks.push_back(v.culprit);
    if (row.first_rank < 0) {
      row.first_rank = r;
      row.first_index = v.first_index;
      row.expected = format_double(v.expected, 9);
      row.observed = format_double(v.observed, 9);
    }
  }
  row.pass = row.n_wrong == 0;
  row.failing_ranks = failing.str();
  for (size_t i = 0; i < culprit_ranks.size(); ++i) culprits << (i ? ";" : "") << culprit_ranks[i];
  row.culprit = culprits.str();
  {
    int pass = row.pass ? 1 : 0;
    ControlScope s("check_verdict");
    MPI_Bcast(&pass, 1, MPI_INT, 0, g_control);
  }
  if (is_root()) {
    reports_->check(row);
    if (opts.duration_s > 0) record_window_check(row);
    if (!row.pass) {
      // Ranks with their nodes ("1 (node7);3 (node8)"): the operator's next step is a node.
      auto with_nodes = [&](const std::string& ranks) {
        std::ostringstream out;
        std::stringstream in(ranks);
        std::string r;
        for (bool first = true; std::getline(in, r, ';'); first = false) {
          const size_t k = size_t(std::stoi(r));
          out << (first ? "" : ";") << r << " (" << (k < run.hostnames.size() ? run.hostnames[k] : "?") << ")";
        }
        return out.str();
      };
      const std::string first =
          condition.empty()
              ? "rank " + std::to_string(row.first_rank) + " index " + std::to_string(row.first_index) + " expected " +
                    row.expected + " observed " + row.observed
              : "rank " + std::to_string(row.first_rank) + " (expected: " + condition + ")";
      std::fprintf(stderr, "FAIL %s [%s] %llu wrong of %llu; failing ranks %s; first: %s%s%s\n", row.check.c_str(),
                   row.case_name.c_str(), row.n_wrong, row.n_checked, with_nodes(row.failing_ranks).c_str(),
                   first.c_str(), row.culprit.empty() ? "" : "; culprit ", with_nodes(row.culprit).c_str());
      std::fflush(stderr);
    }
  }
  return row.pass;
}

bool Context::check_condition(const CheckInfo& info, bool ok_here, const std::string& observed_here,
                              const std::string& expected_text) {
  LocalVerify v;
  v.n_checked = 1;
  if (!ok_here) {
    v.n_wrong = 1;
    v.first_index = 0;
    v.culprit = run.rank;
  }
  CheckInfo with_text = info;
  // Textual detail travels only from rank 0's point of view; the failing ranks are in the row.
  if (!ok_here && !observed_here.empty()) std::fprintf(stderr, "rank %d: %s: %s (expected %s)\n", run.rank,
                                                       info.check.c_str(), observed_here.c_str(),
                                                       expected_text.c_str());
  return report_check(with_text, v, expected_text.empty() ? "the condition holds" : expected_text);
}

void Context::perf(const PerfRow& row) {
  if (!is_root()) return;
  reports_->perf(row);
  const auto pending = pending_ranks_.find(row.timing_id);
  if (!row.timed() || pending == pending_ranks_.end()) return;
  const std::vector<RankTiming> timing = std::move(pending->second);
  pending_ranks_.erase(pending);
  // Local rank: the position among the ranks of the same node, in rank order (as
  // MPI_COMM_TYPE_SHARED numbers them).
  std::vector<RankRow> rows;
  std::map<std::string, int> seen_on_node;
  for (const RankTiming& t : timing) {
    RankRow k;
    k.rank = t.rank;
    k.node = size_t(t.rank) < run.hostnames.size() ? run.hostnames[size_t(t.rank)] : "";
    k.local_rank = seen_on_node[k.node]++;
    k.iters = t.iters;
    k.own_p50_us = t.own_p50_s * 1e6, k.own_p90_us = t.own_p90_s * 1e6;
    k.late_p50_us = t.late_p50_s * 1e6, k.late_p90_us = t.late_p90_s * 1e6;
    k.arrived_last = t.arrived_last;
    k.straggler_score = t.straggler_score;
    rows.push_back(k);
  }
  reports_->ranks(row, rows);
  const int s = clear_straggler(timing);
  if (s >= 0 && stragglers_said_.insert(row.op + " " + std::to_string(s)).second) {
    const RankRow& k = rows[size_t(s)];
    std::ostringstream line;
    line << "straggler: rank " << k.rank << " (node " << k.node << ") entered last in " << k.arrived_last << " of "
         << k.iters << " iterations, +" << format_double(k.late_p50_us >= 1000 ? k.late_p50_us / 1000 : k.late_p50_us, 3)
         << (k.late_p50_us >= 1000 ? " ms" : " us") << " (" << row.op << " " << row.case_name
         << "; per-rank lines in " << reports_->ranks_path() << ")";
    progress(line.str());
  }
}

TimingStats Context::time_op(Comm& comm, int warmup, int iters, const std::function<void()>& op) {
  for (int i = 0; i < warmup; ++i) op();
  backend.synchronize();
  // Per iteration: [0, iters) the time in the opening barrier, [iters, 2 iters) the op's own time.
  std::vector<double> mine(2 * static_cast<size_t>(iters)), worst(static_cast<size_t>(iters));
  double* times = mine.data() + iters;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    comm.barrier();
    mine[size_t(i)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    times[i] = backend.measure(op);
  }
  {
    ControlScope s("timing_max");
    MPI_Allreduce(times, worst.data(), iters, MPI_DOUBLE, MPI_MAX, g_control);
  }
  // Rank 0 alone holds everyone's samples (O(world x iters) there, O(iters) elsewhere).
  {
    ControlScope s("timing_ranks");
    int group = comm.members().empty() ? 0 : comm.members()[0];
    std::vector<int> groups(is_root() ? size_t(run.size) : 0);
    MPI_Gather(&group, 1, MPI_INT, groups.data(), 1, MPI_INT, 0, g_control);
    std::vector<double> all(is_root() ? mine.size() * size_t(run.size) : 0);
    MPI_Gather(mine.data(), 2 * iters, MPI_DOUBLE, all.data(), 2 * iters, MPI_DOUBLE, 0, g_control);
    if (is_root()) {
      std::vector<RankSamples> per_rank(size_t(run.size));
      for (size_t r = 0; r < per_rank.size(); ++r) {
        const double* base = all.data() + r * mine.size();
        per_rank[r].group = groups[r];
        per_rank[r].wait_s.assign(base, base + iters);
        per_rank[r].own_s.assign(base + iters, base + 2 * iters);
      }
      pending_ranks_[next_timing_id_] = rank_timing(per_rank);
      last_samples_ = std::move(per_rank);
      while (pending_ranks_.size() > 16) pending_ranks_.erase(pending_ranks_.begin());  // rows never written
    }
  }
  TimingStats stats = timing_stats(worst, warmup);
  stats.id = next_timing_id_++;
  return stats;
}

TimingStats timing_stats(const std::vector<double>& v, int warmup) {
  TimingStats t;
  t.iters = int(v.size()), t.warmup = warmup;
  if (v.empty()) return t;
  t.min_s = *std::min_element(v.begin(), v.end());
  t.max_s = *std::max_element(v.begin(), v.end());
  t.med_s = median(v);
  t.p10_s = percentile(v, 0.10), t.p90_s = percentile(v, 0.90), t.p99_s = percentile(v, 0.99);
  t.cv = coefficient_of_variation(v);
  return t;
}

void set_times(PerfRow& row, const TimingStats& t) {
  row.iters = t.iters, row.warmup = t.warmup;
  row.time_med_us = t.med_s * 1e6, row.time_min_us = t.min_s * 1e6, row.time_max_us = t.max_s * 1e6;
  row.time_p10_us = t.p10_s * 1e6, row.time_p90_us = t.p90_s * 1e6, row.time_p99_us = t.p99_s * 1e6;
  row.time_cv = t.cv;
  row.timing_id = t.id;
}

void set_bandwidths(PerfRow& row, double busbw_factor) {
  const double med_s = row.time_med_us * 1e-6;
  row.algbw = med_s > 0 ? double(row.bytes) / med_s / 1e9 : 0;
  if (busbw_factor >= 0) row.busbw = row.algbw * busbw_factor;
}

PerfRow metric_row(PerfRow row, const std::string& metric, double value, const std::string& unit) {
  row.iters = 0, row.warmup = 0;
  row.time_med_us = row.time_min_us = row.time_max_us = -1;
  row.time_p10_us = row.time_p90_us = row.time_p99_us = row.time_cv = -1;
  row.algbw = row.busbw = -1;
  row.metric = metric, row.value = value, row.unit = unit;
  return row;
}

std::vector<double> Context::gather_on_root(const std::vector<double>& mine) {
  ControlScope s("gather_on_root");
  std::vector<double> all(is_root() ? mine.size() * size_t(run.size) : 0);
  MPI_Gather(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), int(mine.size()), MPI_DOUBLE, 0, g_control);
  return all;
}

void Context::broadcast_from_root(std::vector<double>& values) {
  ControlScope s("broadcast_from_root");
  unsigned long long n = values.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, g_control);
  values.resize(size_t(n));
  MPI_Bcast(values.data(), int(n), MPI_DOUBLE, 0, g_control);
}

double Context::max_over_ranks(double v) {
  double out = 0;
  ControlScope s("max_over_ranks");
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, g_control);
  return out;
}

double Context::sum_over_ranks(double v) {
  double out = 0;
  ControlScope s("sum_over_ranks");
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, g_control);
  return out;
}

const std::vector<std::string> kWindowColumns = {"window", "check", "case", "dtype", "status", "n_checked",
                                                 "n_wrong", "failing_ranks", "failing_nodes", "culprit"};

void Context::record_window_check(const CheckRow& row) {
  std::string nodes;
  std::set<std::string> seen;
  for (int r : parse_rank_list(row.failing_ranks)) {
    const std::string& node = size_t(r) < run.hostnames.size() ? run.hostnames[size_t(r)] : "?";
    if (seen.insert(node).second) nodes += (nodes.empty() ? "" : ";") + node;
    // One per failed check row and node: how often this node saw wrong data at this size.
  }
  for (const std::string& node : seen) ++window_errors_[node][row.case_name];
  reports_->table_row("windows", {std::to_string(burn_in_window()), row.check, row.case_name, row.dtype,
                                  row.pass ? "PASS" : "FAIL", std::to_string(row.n_checked),
                                  std::to_string(row.n_wrong), row.failing_ranks, nodes, row.culprit});
}

std::string Context::window_errors_text() const {
  if (window_errors_.empty()) return "none";
  std::ostringstream out;
  bool first_node = true;
  for (const auto& [node, by_case] : window_errors_) {
    int total = 0;
    for (const auto& c : by_case) total += c.second;
    out << (first_node ? "" : "; ") << "node " << node << ": " << total << " (";
    // Sizes in numeric order ("4096B" before "1048576B").
    std::vector<std::pair<std::string, int>> cases(by_case.begin(), by_case.end());
    auto size_of = [](const std::string& c) { return std::strtoull(c.c_str(), nullptr, 10); };
    std::stable_sort(cases.begin(), cases.end(), [&](const auto& a, const auto& b) { return size_of(a.first) < size_of(b.first); });
    bool first = true;
    for (const auto& [case_name, n] : cases) out << (first ? "" : ", ") << case_name << ": " << n, first = false;
    out << ")";
    first_node = false;
  }
  return out.str();
}

// --duration: the suite's workload again and again, one window each, until the time is up (the
// ranks agree on rank 0's clock, so all stop after the same window). Each window's checks are in
// the windows table with its number; a progress line per window says what is left and the errors
// so far per node and size, so intermittent corruption shows as a count, not one lucky PASS.
void run_burn_in(Context& ctx, const Suite& suite) {
  const double duration = ctx.opts.duration_s;
  if (const std::optional<double> deadline = seconds_to_deadline(); deadline && *deadline < duration && ctx.is_root())
    std::fprintf(stderr, "dtbench-%s: warning: --duration %s but the job ends in %s: the last windows will be cut\n",
                 suite.name.c_str(), format_duration(duration).c_str(), format_duration(*deadline).c_str());

  const auto start = std::chrono::steady_clock::now();
  // Seconds as "4.2s" below a minute (windows are often short), else "3m20s".
  auto said = [](double s) { return s < 60 ? format_double(s, 2) + "s" : format_duration(s); };
  double last_line = -1e9;
  for (int window = 0;; ++window) {
    set_burn_in_window(window);
    const int failed_before = ctx.is_root() ? ctx.reports()->failed_checks() : 0;
    suite.body(ctx);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      ControlScope s("burn_in_clock");
      MPI_Bcast(&elapsed, 1, MPI_DOUBLE, 0, g_control);
    }
    const bool last = elapsed >= duration;
    if (ctx.is_root()) {
      const int failed_now = ctx.reports()->failed_checks() - failed_before;
      // A line per window with errors, else at most one per 10 s (a long burn-in has many windows).
      if (failed_now > 0 || elapsed - last_line >= 10 || window == 0) {
        const double left = std::max(0.0, duration - elapsed), per_window = elapsed / (window + 1);
        ctx.progress("burn-in: window " + std::to_string(window) + " done (" + std::to_string(failed_now) +
                     " failed checks): elapsed " + said(elapsed) + ", remaining " + said(left) + " (about " +
                     std::to_string(int(left / std::max(per_window, 1e-9) + 0.999)) + " more windows); errors so far: " +
                     ctx.window_errors_text());
        last_line = elapsed;
      }
      if (last) {
        std::fprintf(stderr, "burn-in: %d windows in %s; errors per node and size: %s (windows CSV: %s)\n", window + 1,
                     said(elapsed).c_str(), ctx.window_errors_text().c_str(), ctx.reports()->table_path("windows").c_str());
        std::fflush(stderr);
      }
    }
    if (last) break;
  }
}

int suite_main_impl(int argc, char** argv, const Suite& suite) {
  Runtime runtime(&argc, &argv);
  const RunInfo& run = runtime.info();
  bool root = run.rank == 0;
  std::string exe = "dtbench-" + suite.name;
  MPI_Comm_dup(MPI_COMM_WORLD, &g_control);
  // The name marks harness traffic, which the fabric-fault interposer (tests/faults/pmpi_fault.c) leaves
  // alone: it corrupts what the suites measure, never the verdicts about it.
  MPI_Comm_set_name(g_control, "dtbench-control");
  watchdog::install_term_handler(run.rank);
  g_control_members.resize(size_t(run.size));
  for (int r = 0; r < run.size; ++r) g_control_members[size_t(r)] = r;

  auto fail = [&](int code, const std::string& msg) {
    if (root && !msg.empty()) std::fprintf(stderr, "%s: error: %s\n", exe.c_str(), msg.c_str());
    std::fflush(stderr);
    watchdog::stop();
    MPI_Comm_free(&g_control);
    return code;
  };

  // 1. Flags. Every rank parses the same argv, so all reach the same verdict; rank 0 speaks.
  CommonOptions opts;
  CLI::App app{exe + ": " + suite.summary, exe};
  app.footer(suite.examples);
  app.set_help_flag("-h,--help", "print this help and exit");
  app.get_formatter()->column_width(34);
  add_common_options(app, opts);
  if (suite.add_options) suite.add_options(app, opts);
  std::string fault_kinds = "flip";
  for (const std::string& k : suite.faults) fault_kinds += ", " + k;
  app.get_option("--inject-fault")
      ->description("test a check: KIND[,rank=R][,op=NAME][,index=I]; KIND flip corrupts one element of the data a "
                    "check verifies on rank R (op=: a part of the check's name); kinds: " + fault_kinds);
  FaultSpec fault;
  try {
    app.parse(argc, argv);
    finish_common_options(opts);
    if (!opts.inject_fault.empty()) fault = parse_fault_spec(opts.inject_fault);
    if (fault.active() && fault.kind != "flip" &&
        std::find(suite.faults.begin(), suite.faults.end(), fault.kind) == suite.faults.end())
      throw InputError("--inject-fault: unknown kind \"" + fault.kind + "\" for " + exe + " (" + fault_kinds + ")");
    if (fault.rank < -1 || fault.rank >= run.size)
      throw InputError("--inject-fault: rank " + std::to_string(fault.rank) + " is outside 0.." +
                       std::to_string(run.size - 1) + " (" + std::to_string(run.size) + " ranks)");
    if (fault.window >= 0 && opts.duration_s <= 0)
      throw InputError("--inject-fault window=" + std::to_string(fault.window) +
                       ": windows are burn-in windows; it needs --duration");
    if (suite.validate) suite.validate(run, opts);
  } catch (const CLI::CallForHelp&) {
    if (root) std::cout << app.help();
    return fail(kExitOk, "");
  } catch (const CLI::ParseError& e) {
    return fail(kExitBadInput, e.what());
  } catch (const InputError& e) {
    return fail(kExitBadInput, e.what());
  }

  // 2. Backend: every rank must get one, else all stop with the first rank's reason.
  std::unique_ptr<Backend> backend;
  std::string problem;
  int problem_code = kExitOk;
  try {
    bool want_nccl = opts.backend == "nccl" || (opts.backend == "auto" && cuda_device_available());
    backend = want_nccl ? make_nccl_backend(run) : make_host_backend();
  } catch (const NoDeviceError& e) {
    problem = std::string("--backend ") + opts.backend + ": " + e.what(), problem_code = kExitNoDevice;
  } catch (const std::exception& e) {
    problem = e.what(), problem_code = kExitRuntime;
  }
  std::string agreed = agree_error(problem);
  if (!agreed.empty()) return fail(problem_code ? problem_code : kExitNoDevice, agreed);

  watchdog::start(opts.timeout_s, run.thread_multiple);

  // 3. Reports (rank 0). An existing file or an unwritable --out stops every rank before anything runs.
  Context ctx(run, opts, *backend, fault);
  Metadata md = collect_metadata(run, *backend, argc, argv);
  std::string run_id = make_run_id();
  {
    int len = int(run_id.size());
    MPI_Bcast(&len, 1, MPI_INT, 0, g_control);
    run_id.resize(size_t(len));
    MPI_Bcast(&run_id[0], len, MPI_CHAR, 0, g_control);
  }
  problem.clear();
  std::vector<Reports::Table> tables = suite.tables;
  if (opts.duration_s > 0) tables.push_back({"windows", kWindowColumns});
  if (root) {
    try {
      ctx.reports_ = std::make_unique<Reports>(suite.name, run_id, run.size, backend->name(),
                                              Reports::Paths{opts.out_dir, opts.checks_csv, opts.perf_csv}, md,
                                              tables);
    } catch (const InputError& e) {
      problem = e.what();
    } catch (const std::exception& e) {  // e.g. a full disk while writing the header
      problem = e.what();
      problem_code = kExitRuntime;
    }
  }
  agreed = agree_error(problem);
  if (!agreed.empty()) {
    MPI_Bcast(&problem_code, 1, MPI_INT, 0, g_control);
    return fail(problem_code == kExitRuntime ? kExitRuntime : kExitBadInput, agreed);
  }
  ctx.progress(exe + " on " + std::to_string(run.size) + " ranks (" + std::to_string(run.num_nodes) +
               " node(s)), backend " + backend->name() + ", dtype " + dtype_name(opts.dtype));

  // 4. The suite. Bad input found this late still exits 2; anything else is a runtime failure.
  try {
    if (opts.duration_s > 0) run_burn_in(ctx, suite);
    else suite.body(ctx);
  } catch (const InputError& e) {
    std::fprintf(stderr, "%s: error on rank %d: %s\n", exe.c_str(), run.rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, kExitBadInput);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: runtime error on rank %d: %s\n", exe.c_str(), run.rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, kExitRuntime);
  }

  // 5. Verdict. The final barrier is watched: a rank that fell behind is named here.
  ctx.world.barrier();
  // A flip (or a fault that can miss) that reached no data proved nothing: bad input (exit 2), not a PASS.
  const bool can_miss = fault.kind == "flip" || std::find(suite.faults_that_can_miss.begin(),
                                                          suite.faults_that_can_miss.end(),
                                                          fault.kind) != suite.faults_that_can_miss.end();
  if (fault.active() && can_miss && ctx.max_over_ranks(fault_applied() ? 1.0 : 0.0) == 0.0) {
    if (ctx.reports_) ctx.reports_->discard();
    ctx.reports_.reset();
    backend.reset();
    const std::string on = fault.rank < 0 ? std::string("any") : std::to_string(fault.rank);
    return fail(kExitBadInput, "--inject-fault " + opts.inject_fault + ": " +
                                   (fault.kind == "flip" ? "no check on rank " + on +
                                                               " matched, nothing was corrupted (op= names part of a check name)"
                                                         : "nothing was corrupted on rank " + on +
                                                               " (index= is past the last place the fault can act)"));
  }
  int failed = root ? ctx.reports_->failed_checks() : 0;
  MPI_Bcast(&failed, 1, MPI_INT, 0, g_control);
  if (root) {
    std::fprintf(stderr, "%s: %d checks, %d failed -> %s\n  checks: %s\n  perf:   %s\n", exe.c_str(),
                 ctx.reports_->total_checks(), failed, failed ? "FAIL" : "PASS", ctx.reports_->checks_path().c_str(),
                 ctx.reports_->perf_path().c_str());
  }
  int code = failed ? kExitCheckFailed : kExitOk;
  if (root) {
    // The run completed: say so at the end of both files, so that the tools can tell this run
    // from one that was cut short (killed, timed out) and never call the latter a PASS.
    try {
      ctx.reports_->end_of_run(failed ? "FAIL" : "PASS");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", exe.c_str(), e.what());
      code = kExitRuntime;
    }
  }
  ctx.reports_.reset();
  backend.reset();
  return fail(code, "");
}

int suite_main(int argc, char** argv, const Suite& suite) { return suite_main_impl(argc, argv, suite); }

}  // namespace dtbench
