#pragma once
// CSV reports: one checks file and one perf file per run, each starting with `# key=value`
// metadata lines, then a fixed header (columns documented in README.md "CSV columns"). Rows are
// flushed as they are written so a crash or a watchdog abort leaves the rows so far. An existing
// file is never overwritten.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/runtime.h"

namespace dtbench {

// Quotes a field when it holds a comma, quote, newline or surrounding space (RFC 4180 style).
std::string csv_field(const std::string& s);

class CsvWriter {
 public:
  // Creates `path` exclusively (fails if it exists). Throws InputError naming the path.
  CsvWriter(const std::string& path, const Metadata& metadata, const std::vector<std::string>& columns);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  void row(const std::vector<std::string>& fields);
  // The last line of a report whose run completed: "# end_of_run=complete rows=N verdict=V", N the
  // data rows above it. A file without it is INCOMPLETE to the tools (killed, timed out, still
  // running); kEndOfRunKey names it for the readers.
  void end_of_run(const std::string& verdict);
  const std::string& path() const { return path_; }

 private:
  void write_line(const std::string& line);
  std::string path_;
  std::FILE* file_ = nullptr;
  size_t ncols_ = 0;
  size_t rows_ = 0;  // data rows written (the header is not one)
  bool header_written_ = false;
};
inline constexpr const char* kEndOfRunKey = "end_of_run";

struct CheckRow {
  std::string check;      // what was checked ("all_reduce.out_of_place", "bucket_plan.cover"...)
  std::string case_name;  // size, bucket, unit, step...
  std::string dtype;
  bool pass = true;
  unsigned long long n_checked = 0, n_wrong = 0;
  std::string failing_ranks;  // ranks that observed wrong values, ';'-separated
  int first_rank = -1;        // lowest failing rank, and its first wrong element:
  long long first_index = -1;
  std::string expected, observed;
  double max_abs_err = 0, max_rel_err = 0;
  std::string culprit;  // who is to blame when it can be told (source rank of a block, group...)
  std::string detail;
};

struct PerfRow {
  std::string case_name, op, dtype, redop, in_place, layout;
  int group_size = 0;
  unsigned long long count = 0, bytes = 0;
  int iters = 0, warmup = 0;
  double time_med_us = -1, time_min_us = -1, time_max_us = -1;  // < 0: not a timed op
  double time_p10_us = -1, time_p90_us = -1, time_p99_us = -1, time_cv = -1;
  double algbw = -1, busbw = -1;                                // GB/s (1e9), < 0: not applicable
  long long n_wrong = -1;                                       // < 0: not validated
  std::string metric, unit;  // a scalar metric instead of (or besides) a timing
  double value = 0;
  bool timed() const { return time_med_us >= 0; }
  // The Context::time_op whose timing this row holds (set_times copies it): only such a row gets
  // that measurement's per-rank lines. 0: timed some other way.
  unsigned long long timing_id = 0;
};

extern const std::vector<std::string> kCheckColumns;
extern const std::vector<std::string> kPerfColumns;
extern const std::vector<std::string> kRankColumns;

// One rank's line of a timed perf row in the ranks CSV (core/rank_timing.h measures it).
struct RankRow {
  int rank = 0, local_rank = 0;
  std::string node;
  int iters = 0;
  double own_p50_us = 0, own_p90_us = 0, late_p50_us = 0, late_p90_us = 0;
  int arrived_last = 0;
  double straggler_score = 1;
};

// The report files of a run: checks, perf and, per timed perf row, one line per rank (ranks CSV);
// only rank 0 holds open files (other ranks' calls are no-ops).
class Reports {
 public:
  struct Paths {
    std::string out_dir, checks, perf;  // checks/perf empty: <out_dir>/<suite>-<stamp>-{checks,perf}.csv
  };
  // A suite's own table (dtbench-p2p's links): `name` makes the file X-<name>.csv beside the perf
  // CSV; its columns follow the four identity columns (run_id, suite, backend, ranks).
  struct Table {
    std::string name;
    std::vector<std::string> columns;
  };
  // The ranks CSV beside a perf CSV: X-perf.csv -> X-ranks.csv, else X.csv -> X-ranks.csv.
  static std::string ranks_path_for(const std::string& perf_path);
  // The same for any table name ("ranks", "links").
  static std::string table_path_for(const std::string& perf_path, const std::string& name);
  // Opens every file on rank 0. Throws InputError (naming the path) if a file exists or the
  // directory is not writable; then nothing is left behind. Call only on rank 0.
  Reports(const std::string& suite, const std::string& run_id, int world_size, const std::string& backend,
          const Paths& paths, const Metadata& md, const std::vector<Table>& tables = {});
  void check(const CheckRow& r);
  void perf(const PerfRow& r);
  // The per-rank lines of perf row `r` (its identity columns repeated on each).
  void ranks(const PerfRow& r, const std::vector<RankRow>& rows);
  // A row of the suite's table `name` (its fields after the identity columns). Throws
  // std::logic_error for a table the suite did not declare.
  void table_row(const std::string& name, const std::vector<std::string>& fields);
  std::string table_path(const std::string& name) const;
  int failed_checks() const { return failed_; }
  int total_checks() const { return total_; }
  // Ends every file with its end-of-run line (the run completed with this verdict: PASS or FAIL).
  void end_of_run(const std::string& verdict);
  const std::string& checks_path() const { return checks_->path(); }
  const std::string& perf_path() const { return perf_->path(); }
  const std::string& ranks_path() const { return ranks_->path(); }
  // Removes both files (and the --out directory when this run created it and it is empty): for a
  // run that ends as bad input after it ran (a fault that found nothing to corrupt), which must
  // leave nothing behind.
  void discard();

 private:
  std::vector<std::string> prefix() const;
  std::string suite_, run_id_, backend_;
  int world_size_;
  std::string created_dir_;  // the --out directory, when this run made it
  std::unique_ptr<CsvWriter> checks_, perf_, ranks_;
  std::vector<std::pair<std::string, std::unique_ptr<CsvWriter>>> tables_;
  int failed_ = 0, total_ = 0;
};

// Makes `dir` (and parents) and checks it is writable; throws InputError naming `flag` and dir.
void ensure_writable_dir(const std::string& dir, const std::string& flag);
// A run id: UTC stamp plus Slurm job id or pid (unique enough for file names).
std::string make_run_id();

std::string format_double(double v, int precision = 6);

}  // namespace dtbench
