#include "core/csv_reports.h"

#include "core/csv_parse.h"

namespace dtbench {

using namespace csv_parse;

PerfFile read_perf_csv(const std::string& path) {
  PerfFile f;
  f.path = path;
  f.meta = read_metadata(path);
  auto in = open_reader<ReportReader<28>>(path);
  with_file_context(path, *in, [&] {
    // The percentile columns came with schema_version 3: older reports lack them (read as empty);
    // every other column is required.
    in->read_header(io::ignore_missing_column, "run_id", "suite", "backend", "ranks", "case", "op", "dtype", "redop",
                    "in_place", "group_size", "layout", "count", "bytes", "iters", "warmup", "time_med_us",
                    "time_min_us", "time_max_us", "algbw_GBps", "busbw_GBps", "n_wrong", "metric", "value", "unit",
                    "time_p10_us", "time_p90_us", "time_p99_us", "time_cv");
    for (const char* required : {"run_id", "suite", "backend", "ranks", "case", "op", "dtype", "redop", "in_place",
                                 "group_size", "layout", "count", "bytes", "iters", "warmup", "time_med_us",
                                 "time_min_us", "time_max_us", "algbw_GBps", "busbw_GBps", "n_wrong", "metric",
                                 "value", "unit"})
      if (!in->has_column(required))
        fail_at(path, in->get_file_line(), std::string("Missing column \"") + required + "\" in the header");
    std::string s[28];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13],
                        s[14], s[15], s[16], s[17], s[18], s[19], s[20], s[21], s[22], s[23], s[24], s[25], s[26],
                        s[27])) {
      PerfRecord r;
      r.line = in->get_file_line();
      FieldParser p{path, r.line};
      r.run_id = s[0], r.suite = s[1], r.backend = s[2];
      r.ranks = static_cast<int>(p.integer("ranks", s[3], 0));
      r.case_name = s[4], r.op = s[5], r.dtype = s[6], r.redop = s[7], r.in_place = s[8];
      r.group_size = static_cast<int>(p.integer("group_size", s[9], 0));
      r.layout = s[10];
      r.count = p.count("count", s[11]);
      r.bytes = p.count("bytes", s[12]);
      r.iters = static_cast<int>(p.integer("iters", s[13], 0));
      r.warmup = static_cast<int>(p.integer("warmup", s[14], 0));
      r.time_med_us = p.real("time_med_us", s[15], -1);
      r.time_min_us = p.real("time_min_us", s[16], -1);
      r.time_max_us = p.real("time_max_us", s[17], -1);
      r.algbw = p.real("algbw_GBps", s[18], -1);
      r.busbw = p.real("busbw_GBps", s[19], -1);
      r.n_wrong = p.integer("n_wrong", s[20], -1);
      r.metric = s[21];
      r.has_value = !s[22].empty();
      r.value = p.real("value", s[22], 0);
      r.unit = s[23];
      r.time_p10_us = p.real("time_p10_us", s[24], -1);
      r.time_p90_us = p.real("time_p90_us", s[25], -1);
      r.time_p99_us = p.real("time_p99_us", s[26], -1);
      r.time_cv = p.real("time_cv", s[27], -1);
      if (r.suite.empty()) fail_at(path, r.line, "column 'suite' is empty");
      if (r.timed() && (r.time_min_us > r.time_med_us || r.time_med_us > r.time_max_us))
        fail_at(path, r.line, "time_min_us <= time_med_us <= time_max_us does not hold");
      if (r.timed() && r.time_p10_us >= 0 &&
          !(r.time_min_us <= r.time_p10_us && r.time_p10_us <= r.time_med_us && r.time_med_us <= r.time_p90_us &&
            r.time_p90_us <= r.time_p99_us && r.time_p99_us <= r.time_max_us))
        fail_at(path, r.line, "time_min_us <= p10 <= med <= p90 <= p99 <= time_max_us does not hold");
      f.rows.push_back(std::move(r));
    }
  });
  f.incomplete = incomplete_reason(path, f.rows.size(), f.rows.empty() ? 0 : f.rows.back().line);
  return f;
}

ChecksFile read_checks_csv(const std::string& path) {
  ChecksFile f;
  f.path = path;
  f.meta = read_metadata(path);
  auto in = open_reader<ReportReader<19>>(path);
  with_file_context(path, *in, [&] {
    in->read_header(io::ignore_no_column, "run_id", "suite", "backend", "ranks", "check", "case", "dtype", "status",
                    "n_checked", "n_wrong", "failing_ranks", "first_rank", "first_index", "expected", "observed",
                    "max_abs_err", "max_rel_err", "culprit", "detail");
    std::string s[19];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13],
                        s[14], s[15], s[16], s[17], s[18])) {
      CheckRecord r;
      r.line = in->get_file_line();
      FieldParser p{path, r.line};
      r.run_id = s[0], r.suite = s[1], r.backend = s[2];
      r.ranks = static_cast<int>(p.integer("ranks", s[3], 0));
      r.check = s[4], r.case_name = s[5], r.dtype = s[6];
      if (s[7] != "PASS" && s[7] != "FAIL") fail_at(path, r.line, "column 'status': '" + s[7] + "' is not PASS or FAIL");
      r.pass = s[7] == "PASS";
      r.n_checked = p.count("n_checked", s[8]);
      r.n_wrong = p.count("n_wrong", s[9]);
      r.failing_ranks = s[10];
      r.first_rank = static_cast<int>(p.integer("first_rank", s[11], -1));
      r.culprit = s[17];
      r.detail = s[18];
      f.rows.push_back(std::move(r));
    }
  });
  f.incomplete = incomplete_reason(path, f.rows.size(), f.rows.empty() ? 0 : f.rows.back().line);
  return f;
}

}  // namespace dtbench
