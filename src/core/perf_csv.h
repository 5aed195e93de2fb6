#pragma once
// Reading dtbench's own CSV reports back (for dtbench-compare, -accept, -report) and the thresholds
// file of dtbench-accept. Parsing uses fast-cpp-csv-parser; every error is an InputError whose message
// starts with "FILE:LINE: " so a user can open the offending line (tools exit 2 on it).
#include <cstdint>
#include <map>
#include <string>
#include <vector>
#include "core/units.h"  // parse_size, human_bytes: sizes in thresholds and case names

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

struct PerfFile {
  std::string path;
  CsvMetadata meta;
  std::vector<PerfRecord> rows;
};

struct ChecksFile {
  std::string path;
  CsvMetadata meta;
  std::vector<CheckRecord> rows;
};

// Throws InputError "PATH:LINE: ..." on a missing file, a missing/unknown column, a wrong field count
// or a value that is not a number.
PerfFile read_perf_csv(const std::string& path);
ChecksFile read_checks_csv(const std::string& path);

// One run: every *-perf.csv and *-checks.csv under a directory (recursively), or the single file given.
// `label` names the run in tables (the directory name, or the run_id when one file is given).
struct RunData {
  std::string label, source;
  std::vector<PerfFile> perf;
  std::vector<ChecksFile> checks;
};
RunData load_run(const std::string& path);

// Nodes of a report (the `hosts` metadata, ';' or ',' separated) and rank -> node from `rank_map`
// ("host:0-3;host2:4-7"). An unknown rank gives "".
std::vector<std::string> meta_hosts(const CsvMetadata& meta);
std::string node_of_rank(const CsvMetadata& meta, int rank);
// Ranks listed in failing_ranks / culprit ("1;3" or "0-3"); non-numbers are ignored.
std::vector<int> parse_rank_list(const std::string& s);


// One rule of a dtbench-accept thresholds file (columns documented in tools/thresholds-host.csv).
struct Threshold {
  unsigned line = 0;
  std::string suite = "*", op = "*", dtype, node, metric;
  uint64_t min_bytes = 0, max_bytes = UINT64_MAX;
  bool has_size = false;
  int ranks = 0;  // 0: any
  double min_busbw = -1, max_time_us = -1, min_value = -1, max_value = -1;  // < 0: no limit
  bool has_min_value = false, has_max_value = false;
  bool checks_pass = false;  // every matching check row must PASS
  std::string describe() const;
};
std::vector<Threshold> read_thresholds(const std::string& path);

// Shell-style pattern match ("*", "all_*", "gpu[0-9]*"); "" and "*" match everything.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace dtbench
