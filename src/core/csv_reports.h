#pragma once
// Reading dtbench's own CSV reports back (for dtbench-compare, -accept, -report). Every error is an
// InputError whose message starts with "FILE:LINE: " so a user can open the offending line.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dtbench {

// `# key=value` lines at the top of a report (run_id, hosts, rank_map, nccl, slurm_job_id...).
using CsvMetadata = std::map<std::string, std::string>;

struct PerfRecord {
  unsigned line = 0;  // line in its file, for messages
  std::string run_id, suite, backend;
  int ranks = 0;
  std::string case_name, op, dtype, redop, in_place;
  int group_size = 0;
  std::string layout;
  uint64_t count = 0, bytes = 0;
  int iters = 0, warmup = 0;
  double time_med_us = -1, time_min_us = -1, time_max_us = -1;  // < 0: not a timed op
  // Per-iteration percentiles and CV (schema_version 3; < 0 in older reports).
  double time_p10_us = -1, time_p90_us = -1, time_p99_us = -1, time_cv = -1;
  double algbw = -1, busbw = -1;                                // < 0: not applicable
  long long n_wrong = -1;                                       // < 0: not validated
  std::string metric, unit;
  double value = 0;
  bool has_value = false;
  bool timed() const { return time_med_us >= 0; }
};

struct CheckRecord {
  unsigned line = 0;
  std::string run_id, suite, backend;
  int ranks = 0;
  std::string check, case_name, dtype;
  bool pass = true;
  unsigned long long n_checked = 0, n_wrong = 0;
  std::string failing_ranks, culprit, detail;
  int first_rank = -1;
};

// Every report of a completed run ends with "# end_of_run=complete rows=N verdict=V" (CsvWriter::
// end_of_run). `incomplete` says why a file is not one: no such line (the run was killed, timed out
// or is still writing), a row count that differs from the rows read, or rows after the line. The
// tools never pass a verdict on an incomplete file.
struct PerfFile {
  std::string path;
  CsvMetadata meta;
  std::vector<PerfRecord> rows;
  std::string incomplete;  // empty: the run completed
  bool complete() const { return incomplete.empty(); }
};

struct ChecksFile {
  std::string path;
  CsvMetadata meta;
  std::vector<CheckRecord> rows;
  std::string incomplete;
  bool complete() const { return incomplete.empty(); }
};

// Throws InputError "PATH:LINE: ..." on a missing file, a missing/unknown column, a wrong field count
// or a value that is not a number.
PerfFile read_perf_csv(const std::string& path);
ChecksFile read_checks_csv(const std::string& path);

}  // namespace dtbench
