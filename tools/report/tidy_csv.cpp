// dtbench-report --tidy (see tidy_csv.h).
#include "tidy_csv.h"

#include <map>
#include <optional>
#include <sstream>

#include "core/report.h"  // csv_field, format_double
#include "core/units.h"   // parse_size

namespace dtbench::report {

const std::vector<std::string> kTidyColumns = {
    "kind",     "run",         "job",        "run_id",      "suite",       "backend",     "ranks",
    "nodes",    "nccl",        "mpi",        "git_rev",     "complete",    "check",       "case",
    "dtype",    "status",      "n_checked",  "n_wrong",     "failing_ranks", "culprit",   "op",
    "redop",    "in_place",    "group_size", "layout",      "count",       "bytes",       "iters",
    "warmup",   "time_med_us", "time_min_us", "time_max_us", "time_p10_us", "time_p90_us", "time_p99_us",
    "time_cv",  "algbw_GBps", "busbw_GBps", "validation_failures",
    "metric",   "value",       "unit",       "file",        "line"};

namespace {

std::string meta(const CsvMetadata& md, const char* key) {
  auto it = md.find(key);
  return it == md.end() ? "" : it->second;
}

// A rank list as one text value in every row ("[1;3]", "[]"): pandas would read "1" as a number and
// "1;3" as text, so a bare list loads as float in some files and as object in others.
std::string rank_list(const std::string& ranks) { return "[" + ranks + "]"; }

std::string number(double v, bool present) { return present ? format_double(v, 9) : ""; }

class Rows {
 public:
  // One row: the report's columns first, then the row's own values by column name.
  void add(const std::string& kind, const std::string& run, const std::string& path, const CsvMetadata& md,
           bool complete, unsigned line, std::map<std::string, std::string> own) {
    own["kind"] = kind, own["run"] = run, own["job"] = meta(md, "slurm_job_id"), own["run_id"] = meta(md, "run_id");
    own["nodes"] = meta(md, "hosts"), own["nccl"] = meta(md, "nccl"), own["mpi"] = meta(md, "mpi");
    own["git_rev"] = meta(md, "git_rev"), own["complete"] = complete ? "yes" : "no";
    own["file"] = path, own["line"] = std::to_string(line);
    for (size_t i = 0; i < kTidyColumns.size(); ++i) out_ << (i ? "," : "") << csv_field(own[kTidyColumns[i]]);
    out_ << "\n";
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string tidy_csv(const std::vector<RunData>& runs) {
  Rows rows;
  for (const RunData& run : runs) {
    for (const ChecksFile& f : run.checks)
      for (const CheckRecord& c : f.rows) {
        const std::optional<uint64_t> bytes = parse_size(c.case_name);
        const size_t dot = c.check.find('.');
        rows.add("check", run.label, f.path, f.meta, f.complete(), c.line,
                 {{"suite", c.suite}, {"backend", c.backend}, {"ranks", std::to_string(c.ranks)}, {"check", c.check},
                  {"case", c.case_name}, {"dtype", c.dtype}, {"status", c.pass ? "PASS" : "FAIL"},
                  {"n_checked", std::to_string(c.n_checked)}, {"n_wrong", std::to_string(c.n_wrong)},
                  {"failing_ranks", rank_list(c.failing_ranks)}, {"culprit", rank_list(c.culprit)},
                  {"op", c.check.substr(0, dot)}, {"bytes", bytes ? std::to_string(*bytes) : ""}});
      }
    for (const PerfFile& f : run.perf)
      for (const PerfRecord& r : f.rows)
        rows.add("perf", run.label, f.path, f.meta, f.complete(), r.line,
                 {{"suite", r.suite}, {"backend", r.backend}, {"ranks", std::to_string(r.ranks)},
                  {"case", r.case_name}, {"dtype", r.dtype}, {"op", r.op}, {"redop", r.redop}, {"in_place", r.in_place},
                  {"group_size", r.group_size ? std::to_string(r.group_size) : ""}, {"layout", r.layout},
                  {"count", std::to_string(r.count)}, {"bytes", std::to_string(r.bytes)},
                  {"iters", std::to_string(r.iters)}, {"warmup", std::to_string(r.warmup)},
                  {"time_med_us", number(r.time_med_us, r.timed())}, {"time_min_us", number(r.time_min_us, r.timed())},
                  {"time_max_us", number(r.time_max_us, r.timed())},
                  {"time_p10_us", number(r.time_p10_us, r.time_p10_us >= 0)},
                  {"time_p90_us", number(r.time_p90_us, r.time_p90_us >= 0)},
                  {"time_p99_us", number(r.time_p99_us, r.time_p99_us >= 0)},
                  {"time_cv", number(r.time_cv, r.time_cv >= 0)}, {"algbw_GBps", number(r.algbw, r.algbw >= 0)},
                  {"busbw_GBps", number(r.busbw, r.busbw >= 0)},
                  {"validation_failures", r.n_wrong < 0 ? "" : std::to_string(r.n_wrong)}, {"metric", r.metric},
                  {"value", number(r.value, r.has_value)}, {"unit", r.unit}});
  }
  std::string header;
  for (size_t i = 0; i < kTidyColumns.size(); ++i) header += (i ? "," : "") + kTidyColumns[i];
  return header + "\n" + rows.text();
}

}  // namespace dtbench::report
