#pragma once
// The small common driver every executable shares (the nccl-tests shape): a suite supplies its
// flags, an input check and a body; suite_main does MPI, CLI, backend choice, watchdog, reports,
// error handling and exit codes. A suite file then reads as the pattern it tests.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/cli.h"
#include "core/comm.h"
#include "core/rank_timing.h"
#include "core/report.h"
#include "core/runtime.h"
#include "core/verify.h"

namespace dtbench {

struct CheckInfo {
  std::string check, case_name, dtype, detail;
};

// One Context::time_op: per iteration the slowest rank's time, summarised as median, min, max, the
// 10/90/99th percentiles (core/units.h percentile) and the coefficient of variation.
struct TimingStats {
  double med_s = 0, min_s = 0, max_s = 0;
  double p10_s = 0, p90_s = 0, p99_s = 0, cv = 0;
  int iters = 0, warmup = 0;
  uint64_t id = 0;  // which time_op measured it (0: none); set_times passes it to the row
};
TimingStats timing_stats(const std::vector<double>& per_iteration_s, int warmup);

// The perf-row builder every suite uses for a timed operation, so that the columns mean the same in
// every CSV. set_times fills iters, warmup, the median/min/max and p10/p90/p99 times (us) and the CV
// from `t`;
// set_bandwidths fills algbw = bytes / median time (GB/s, 1e9 B) from the row's bytes, and
// busbw = algbw x busbw_factor (nccl-tests' factor for the collective, coll_busbw_factor) unless
// busbw_factor < 0 (no bus bandwidth: busbw stays empty). Call set_times first.
void set_times(PerfRow& row, const TimingStats& t);
void set_bandwidths(PerfRow& row, double busbw_factor);
// A scalar metric row: `base`'s identity columns (case, op, dtype, layout, sizes) with metric =
// value in unit, and no timing or bandwidth (those columns empty).
PerfRow metric_row(PerfRow base, const std::string& metric, double value, const std::string& unit);

class Context {
 public:
  Context(const RunInfo& run, CommonOptions& opts, Backend& backend, const FaultSpec& fault);
  ~Context();

  const RunInfo& run;
  CommonOptions& opts;
  Backend& backend;
  Comm& world;
  const FaultSpec& fault;

  bool is_root() const { return run.rank == 0; }
  // A progress line on rank 0 (stderr), unless --quiet.
  void progress(const std::string& line) const;

  // Verifies elements [first, first+n) of `buf` against expected(index_base + k). Collective over
  // the world: every rank calls it, with n = 0 when it holds nothing to check. Applies a "flip"
  // --inject-fault to the copy it verifies. Returns the global verdict (same on every rank).
  template <class ExpectedFn, class CulpritFn>
  bool check(const CheckInfo& info, const Buffer& buf, size_t first, size_t n, size_t index_base,
             ExpectedFn expected, double tol_ulps, CulpritFn culprit_of) {
    return report_check(info, verify_local(info.check, buf, first, n, index_base, expected, tol_ulps, culprit_of));
  }
  // This rank's verdict on [first, first+n) of `buf` (not collective; what check() reports). Works in
  // cache-sized chunks with a reused scratch buffer: no allocation or whole-range copy per call, and
  // host fp32 buffers are read in place. The "flip" fault is applied to the chunk holding its element.
  template <class ExpectedFn, class CulpritFn>
  LocalVerify verify_local(const std::string& check_name, const Buffer& buf, size_t first, size_t n,
                           size_t index_base, ExpectedFn expected, double tol_ulps, CulpritFn culprit_of) {
    return verify_buffer(buf, first, n, index_base, expected, tol_ulps, culprit_of,
                         flip_target(fault, run.rank, check_name, n));
  }
  // The same without a Context: `flip_at` (< 0: none) is the element whose bit flip_value flips.
  template <class ExpectedFn, class CulpritFn>
  static LocalVerify verify_buffer(const Buffer& buf, size_t first, size_t n, size_t index_base, ExpectedFn expected,
                                   double tol_ulps, CulpritFn culprit_of, int64_t flip_at = -1) {
    const DType dt = buf.dtype();
    const bool in_place = buf.space() == MemSpace::host && dt == DType::f32;
    // fp32 on the host is read in place: one range unless a fault must be applied to a copy.
    size_t chunk = in_place && flip_at < 0 ? n : buf.space() == MemSpace::device ? kVerifyChunkDevice : kVerifyChunk;
    LocalVerify total;
    auto for_chunks = [&](auto&& verify_chunk) {
      for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const size_t len = n - c0 < chunk ? n - c0 : chunk;
        const bool flip_here = flip_at >= 0 && size_t(flip_at) >= c0 && size_t(flip_at) < c0 + len;
        const float* obs;
        if (in_place && !flip_here) {
          obs = static_cast<const float*>(buf.at(first + c0));
        } else {
          float* s = verify_scratch(len);
          load_f32(buf, first + c0, len, s);
          if (flip_here) flip_value(dt, s[size_t(flip_at) - c0]);
          obs = s;
        }
        combine_verify(total, verify_chunk(obs, len, index_base + c0));
      }
    };
    if constexpr (is_block_expected<ExpectedFn>::value) {
      // Raw elements, compared bit for bit: host buffers in place, device ones through a raw copy.
      const size_t es = dtype_size(dt);
      const size_t step = buf.space() == MemSpace::device ? kVerifyChunkDevice : kVerifyChunk;
      unsigned char* want = byte_scratch(0, step * es);
      for (size_t c0 = 0; c0 < n; c0 += step) {
        const size_t len = n - c0 < step ? n - c0 : step;
        const bool flip_here = flip_at >= 0 && size_t(flip_at) >= c0 && size_t(flip_at) < c0 + len;
        const void* obs = buf.space() == MemSpace::host ? buf.at(first + c0) : nullptr;
        if (!obs || flip_here) {
          unsigned char* raw = byte_scratch(1, step * es);
          buf.copy_to_host(raw, first + c0, len);
          if (flip_here) {
            float x = load_elem(dt, raw, size_t(flip_at) - c0);
            flip_value(dt, x);
            store_elem(dt, raw, size_t(flip_at) - c0, x);
          }
          obs = raw;
        }
        if constexpr (ExpectedFn::fused) {
          if (!expected.differs(index_base + c0, len, obs)) {  // the common case: nothing written
            total.n_checked += len;
            continue;
          }
        }
        expected.fill(index_base + c0, len, want);
        combine_verify(total, detail::verify_bits(dt, obs, want, len, index_base + c0, culprit_of));
      }
      (void)tol_ulps;  // bit-exact by definition (see BlockExpected)
      return total;
    }
    if constexpr (is_periodic_expected<ExpectedFn>::value) {
      // One table of whole periods for all chunks; chunks are whole tables long.
      const size_t B = detail::table_len(expected.period);
      if (B != 0 && n >= 2 * B) {
        detail::ExpectedTable& t = detail::expected_table();
        detail::build_table(t, dt, expected.fn, index_base, B, tol_ulps);
        if (chunk != n) chunk = B * ((4 * kVerifyChunk + B - 1) / B);
        for_chunks([&](const float* obs, size_t len, size_t base) {
          return detail::verify_with_table(dt, obs, len, base, t, expected.fn, tol_ulps, culprit_of);
        });
        return total;
      }
    }
    for_chunks([&](const float* obs, size_t len, size_t base) {
      return verify_values(dt, obs, len, base, expected, tol_ulps, culprit_of);
    });
    return total;
  }
  template <class ExpectedFn>
  bool check(const CheckInfo& info, const Buffer& buf, size_t first, size_t n, size_t index_base,
             ExpectedFn expected, double tol_ulps = 0) {
    return check(info, buf, first, n, index_base, expected, tol_ulps, [](size_t) { return -1; });
  }
  // A check whose local verdict the suite computed itself (collective over the world).
  // `condition` (check_condition's expectation in words) replaces the element values in a FAIL line.
  bool report_check(const CheckInfo& info, const LocalVerify& local, const std::string& condition = "");
  // A yes/no check of something other than element values (an order, a count, a cover).
  bool check_condition(const CheckInfo& info, bool ok_here, const std::string& observed_here = "",
                       const std::string& expected_text = "");

  // Rank 0 writes; other ranks ignore. A timed row also gets the per-rank lines of the time_op
  // before it in the ranks CSV, and a progress line when one rank is clearly late (straggler).
  void perf(const PerfRow& row);

  // Times `op` OSU-style: `warmup` untimed calls, then per iteration a barrier on `comm` and one
  // timed call (Backend::measure: wall clock on the host, cudaEvents on the GPU). An iteration's
  // time is the maximum over all ranks of the world (collective). Each rank's own times and barrier
  // waits go to rank 0 for the per-rank lines of the next perf row (core/rank_timing.h).
  TimingStats time_op(Comm& comm, int warmup, int iters, const std::function<void()>& op);

  // Rank 0: every world rank's own times and barrier waits of the last time_op (empty elsewhere),
  // for suites that time several concurrent operations at once (dtbench-p2p's pairs of a round).
  const std::vector<RankSamples>& last_rank_samples() const { return last_samples_; }
  // Every rank's `mine` (all of the same length) concatenated in rank order on rank 0, empty
  // elsewhere (collective, over the harness's control communicator, not the one under test).
  std::vector<double> gather_on_root(const std::vector<double>& mine);
  // Rank 0's `values` on every rank (collective, control communicator; the length travels too).
  void broadcast_from_root(std::vector<double>& values);

  // Maximum / sum over the world of a per-rank value (collective, host side).
  double max_over_ranks(double v);
  double sum_over_ranks(double v);

  Reports* reports() { return reports_.get(); }

  // Elements per verify chunk (host: stays in L2 next to the data; device: one cudaMemcpy each).
  static constexpr size_t kVerifyChunk = 16384, kVerifyChunkDevice = size_t(1) << 20;
  // A reused per-thread scratch of at least n floats (grows once, never shrinks).
  static float* verify_scratch(size_t n);
  // Reused per-thread byte scratches (slot 0: a chunk's expected elements, slot 1: its raw copy).
  static unsigned char* byte_scratch(int slot, size_t bytes);
  // Elements [first, first+n) of buf as fp32 into out (dtype dispatch hoisted out of the loop).
  static void load_f32(const Buffer& buf, size_t first, size_t n, float* out);

 private:
  friend int suite_main_impl(int, char**, const struct Suite&);
  std::unique_ptr<Reports> reports_;
  std::chrono::steady_clock::time_point start_;
  // Rank 0: the per-rank timing of the last few time_op calls by TimingStats::id, until their row
  // is written (a suite may time several operations before it writes their rows).
  std::map<uint64_t, std::vector<RankTiming>> pending_ranks_;
  uint64_t next_timing_id_ = 1;
  std::set<std::string> stragglers_said_;  // "op rank": one straggler line per op and rank
  std::vector<RankSamples> last_samples_;  // rank 0: the last time_op's per-rank samples
  // Burn-in (--duration), rank 0: each check row also goes to the windows table with its window,
  // and failed ones are counted per node and case (size) for the progress lines.
  friend void run_burn_in(Context& ctx, const struct Suite& suite);
  void record_window_check(const CheckRow& row);
  std::string window_errors_text() const;
  std::map<std::string, std::map<std::string, int>> window_errors_;
};
// The columns of the windows table (<suite>-<run>-windows.csv) a burn-in writes.
extern const std::vector<std::string> kWindowColumns;

struct Suite {
  std::string name;      // "coll" -> executable dtbench-coll, files results/coll-...
  std::string summary;   // one line for --help
  std::string examples;  // --help footer
  // The suite's own --inject-fault kinds (flip is every suite's); any other kind is refused (exit 2)
  // rather than run as a fault that nothing applies.
  std::vector<std::string> faults;
  // Those of them that may find nothing to act on (an index past the run's last exchange): the suite
  // calls note_fault_applied() where one acts, and a run where none did ends with exit 2.
  std::vector<std::string> faults_that_can_miss;
  // The suite's own CSV tables beside its perf CSV (dtbench-p2p: "links").
  std::vector<Reports::Table> tables;
  std::function<void(CLI::App&, CommonOptions&)> add_options;
  std::function<void(const RunInfo&, CommonOptions&)> validate;  // throw InputError; nothing written yet
  std::function<void(Context&)> body;
};

// Runs a suite; returns the process exit code (0 ok, 1 a check failed, 2 bad input, 4 no device...).
int suite_main(int argc, char** argv, const Suite& suite);

}  // namespace dtbench
