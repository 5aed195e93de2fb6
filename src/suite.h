#pragma once
// The small common driver every executable shares (the nccl-tests shape): a suite supplies its
// flags, an input check and a body; suite_main does MPI, CLI, backend choice, watchdog, reports,
// error handling and exit codes. A suite file then reads as the pattern it tests.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cli.h"
#include "comm.h"
#include "report.h"
#include "runtime.h"
#include "verify.h"

namespace dtbench {

struct CheckInfo {
  std::string check, case_name, dtype, detail;
};

struct TimingStats {
  double med_s = 0, min_s = 0, max_s = 0;
  int iters = 0;
};

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
    std::vector<float> observed = buf.to_host_f32(first, n);
    apply_flip_fault(fault, run.rank, info.check, buf.dtype(), observed);
    return report_check(info, verify_values(buf.dtype(), observed.data(), n, index_base, expected, tol_ulps,
                                            culprit_of));
  }
  template <class ExpectedFn>
  bool check(const CheckInfo& info, const Buffer& buf, size_t first, size_t n, size_t index_base,
             ExpectedFn expected, double tol_ulps = 0) {
    return check(info, buf, first, n, index_base, expected, tol_ulps, [](size_t) { return -1; });
  }
  // A check whose local verdict the suite computed itself (collective over the world).
  bool report_check(const CheckInfo& info, const LocalVerify& local);
  // A yes/no check of something other than element values (an order, a count, a cover).
  bool check_condition(const CheckInfo& info, bool ok_here, const std::string& observed_here = "",
                       const std::string& expected_text = "");

  // Rank 0 writes; other ranks ignore.
  void perf(const PerfRow& row);

  // Times `op` OSU-style: `warmup` untimed calls, then per iteration a barrier on `comm` and one
  // timed call (Backend::measure: wall clock on the host, cudaEvents on the GPU). An iteration's
  // time is the maximum over all ranks of the world (collective).
  TimingStats time_op(Comm& comm, int warmup, int iters, const std::function<void()>& op);

  // Maximum / sum over the world of a per-rank value (collective, host side).
  double max_over_ranks(double v);
  double sum_over_ranks(double v);

  Reports* reports() { return reports_.get(); }

 private:
  friend int suite_main_impl(int, char**, const struct Suite&);
  std::unique_ptr<Reports> reports_;
  std::chrono::steady_clock::time_point start_;
};

struct Suite {
  std::string name;      // "coll" -> executable dtbench-coll, files results/coll-...
  std::string summary;   // one line for --help
  std::string examples;  // --help footer
  std::function<void(CLI::App&, CommonOptions&)> add_options;
  std::function<void(const RunInfo&, CommonOptions&)> validate;  // throw InputError; nothing written yet
  std::function<void(Context&)> body;
};

// Runs a suite; returns the process exit code (0 ok, 1 a check failed, 2 bad input, 4 no device...).
int suite_main(int argc, char** argv, const Suite& suite);

}  // namespace dtbench
