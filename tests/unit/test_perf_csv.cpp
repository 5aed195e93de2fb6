// perf_csv: reading dtbench's reports and dtbench-accept thresholds back; every error names file:line.
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "core/perf_csv.h"
#include "core/report.h"
#include "core/suite.h"

using namespace dtbench;

namespace {
std::string write_file(const std::string& name, const std::string& text) {
  std::string path = "/tmp/dtbench-unit-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
const char* kPerfHeader =
    "# run_id=r1\n# hosts=nodeA;nodeB\n# rank_map=nodeA:0-3;nodeB:4-7\n"
    "run_id,suite,backend,ranks,case,op,dtype,redop,in_place,group_size,layout,count,bytes,iters,warmup,"
    "time_med_us,time_min_us,time_max_us,algbw_GBps,busbw_GBps,n_wrong,metric,value,unit\n";
}  // namespace

TEST(PerfCsv, ReadsWhatTheWriterWrites) {
  std::string path = "/tmp/dtbench-unit-" + std::to_string(::getpid()) + "-w-perf.csv";
  ::unlink(path.c_str());
  {
    Reports::Paths paths{"/tmp", "/tmp/dtbench-unit-" + std::to_string(::getpid()) + "-w-checks.csv", path};
    ::unlink(paths.checks.c_str());
    Reports rep("coll", "run7", 8, "host", paths, {{"hosts", "h1"}, {"rank_map", "h1:0-7"}});
    PerfRow r;
    r.case_name = "1MiB", r.op = "all_reduce", r.dtype = "bf16", r.redop = "sum", r.in_place = "1";
    r.layout = "accumulate=fp32, bucket";  // quoted by the writer
    r.group_size = 8, r.count = 524288, r.bytes = 1048576, r.iters = 20, r.warmup = 5;
    r.time_med_us = 100, r.time_min_us = 90, r.time_max_us = 120, r.algbw = 10.4, r.busbw = 18.2, r.n_wrong = 0;
    rep.perf(r);
    PerfRow m;
    m.op = "step", m.metric = "overlap_efficiency", m.value = 0.75, m.unit = "fraction";
    rep.perf(m);
    ::unlink(paths.checks.c_str());
  }
  PerfFile f = read_perf_csv(path);
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.meta["rank_map"], "h1:0-7");
  const PerfRecord& r = f.rows[0];
  EXPECT_EQ(r.suite, "coll");
  EXPECT_EQ(r.ranks, 8);
  EXPECT_EQ(r.layout, "accumulate=fp32, bucket");
  EXPECT_EQ(r.bytes, 1048576u);
  EXPECT_DOUBLE_EQ(r.busbw, 18.2);
  EXPECT_TRUE(r.timed());
  EXPECT_FALSE(f.rows[1].timed());
  EXPECT_TRUE(f.rows[1].has_value);
  EXPECT_DOUBLE_EQ(f.rows[1].value, 0.75);
  EXPECT_EQ(f.rows[1].line, r.line + 1);
  ::unlink(path.c_str());
}

TEST(PerfCsv, BadNumberNamesFileLineAndColumn) {
  std::string p = write_file("bad-perf.csv", std::string(kPerfHeader) +
                                                 "r1,coll,host,8,8B,all_reduce,fp32,sum,0,8,,2,8,5,1,1,1,1,1,1,0,,,\n"
                                                 "r1,coll,host,8,8B,all_reduce,fp32,sum,1,8,,2,8,5,1,x1,1,1,1,1,0,,,\n");
  EXPECT_EQ(error_of([&] { read_perf_csv(p); }), p + ":6: column 'time_med_us': 'x1' is not a number");
}

TEST(PerfCsv, ShortRowAndMissingColumnNameFileAndLine) {
  std::string p = write_file("short-perf.csv", std::string(kPerfHeader) + "r1,coll,host\n");
  EXPECT_NE(error_of([&] { read_perf_csv(p); }).find(p + ":5: Too few columns"), std::string::npos);
  std::string q = write_file("nohdr-perf.csv", "# x=1\nrun_id,suite\n");
  std::string e = error_of([&] { read_perf_csv(q); });
  EXPECT_EQ(e.rfind(q + ":2: Missing column", 0), 0u) << e;
}

TEST(PerfCsv, TimesMustBeOrdered) {
  std::string p = write_file("order-perf.csv", std::string(kPerfHeader) +
                                                   "r1,coll,host,8,8B,all_reduce,fp32,sum,0,8,,2,8,5,1,5,6,7,1,1,0,,,\n");
  EXPECT_NE(error_of([&] { read_perf_csv(p); }).find(":5: time_min_us <= time_med_us"), std::string::npos);
}

TEST(PerfCsv, NodesFromMetadata) {
  CsvMetadata md{{"hosts", "nodeA;nodeB"}, {"rank_map", "nodeA:0-3;nodeB:4-7"}};
  EXPECT_EQ(meta_hosts(md), (std::vector<std::string>{"nodeA", "nodeB"}));
  EXPECT_EQ(node_of_rank(md, 0), "nodeA");
  EXPECT_EQ(node_of_rank(md, 5), "nodeB");
  EXPECT_EQ(node_of_rank(md, 8), "");
  EXPECT_EQ(parse_rank_list("1;3-5;x"), (std::vector<int>{1, 3, 4, 5}));
}

TEST(Units, Sizes) {
  // One parser for flags (-b 64K), thresholds and case names ("4096B", "bucket=25MB").
  EXPECT_EQ(parse_size("4096B"), 4096u);
  EXPECT_EQ(parse_size("64K"), 65536u);
  EXPECT_EQ(parse_size("64k"), 65536u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("25MB"), 25u << 20);
  EXPECT_EQ(parse_size("25mb"), 25u << 20);
  EXPECT_EQ(parse_size("1.5M"), 1572864u);
  EXPECT_EQ(parse_size("2T"), uint64_t(2) << 40);
  EXPECT_EQ(parse_size("0"), 0u);
  for (const char* bad : {"step3", "12Q", "", "-1K", "K", "1.5", "0.1K", "1e30", "nan", "1KK", "64 K"})
    EXPECT_EQ(parse_size(bad), std::nullopt) << bad;
  EXPECT_EQ(human_bytes(1048576), "1MiB");
  EXPECT_EQ(human_bytes(1000), "1000B");
  EXPECT_EQ(human_bytes(0), "0B");
}

TEST(Units, Median) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({}), 0);
  EXPECT_TRUE(std::isnan(median({}, NAN)));
}

TEST(Units, PercentilesInterpolateBetweenClosestRanks) {
  const std::vector<double> v = {5, 1, 4, 2, 3};  // sorted 1..5: position q*4
  EXPECT_EQ(percentile(v, 0), 1);
  EXPECT_EQ(percentile(v, 0.5), 3);
  EXPECT_EQ(percentile(v, 1), 5);
  EXPECT_DOUBLE_EQ(percentile(v, 0.1), 1.4);
  EXPECT_DOUBLE_EQ(percentile(v, 0.9), 4.6);
  EXPECT_EQ(percentile({7}, 0.99), 7);
  EXPECT_EQ(percentile({}, 0.5, -1), -1);
  EXPECT_DOUBLE_EQ(coefficient_of_variation({2, 4, 4, 4, 5, 5, 7, 9}), 2.0 / 5.0);  // std 2, mean 5
  EXPECT_EQ(coefficient_of_variation({3, 3, 3}), 0);
  EXPECT_EQ(coefficient_of_variation({}), 0);
}

// One stalled iteration moves max and p99 but not p10, the median or p90 (of 20 iterations).
TEST(Timing, OneOutlierIterationLeavesTheMedianAndP90) {
  std::vector<double> t(20, 1e-3);
  for (size_t i = 0; i < t.size(); ++i) t[i] += double(i) * 1e-6;
  const TimingStats clean = timing_stats(t, 3);
  t[7] = 0.4;  // 400x
  const TimingStats stalled = timing_stats(t, 3);
  EXPECT_EQ(stalled.iters, 20);
  EXPECT_EQ(stalled.warmup, 3);
  EXPECT_EQ(stalled.max_s, 0.4);
  EXPECT_GT(stalled.p99_s, 10 * clean.p99_s);
  EXPECT_NEAR(stalled.med_s, clean.med_s, 2e-6);
  EXPECT_NEAR(stalled.p90_s, clean.p90_s, 2e-6);
  EXPECT_NEAR(stalled.p10_s, clean.p10_s, 2e-6);
  EXPECT_LE(stalled.min_s, stalled.p10_s);
  EXPECT_GT(stalled.cv, 1);
  PerfRow row;
  set_times(row, stalled);
  EXPECT_DOUBLE_EQ(row.time_p90_us, stalled.p90_s * 1e6);
  EXPECT_DOUBLE_EQ(row.time_cv, stalled.cv);
  const PerfRow metric = metric_row(row, "x", 1, "ratio");
  EXPECT_EQ(metric.time_p90_us, -1);
  EXPECT_EQ(metric.time_cv, -1);
}

TEST(Thresholds, ParsesRulesWithOptionalColumns) {
  std::string p = write_file("th.csv",
                             "# comment\n"
                             "suite, op, min_bytes, max_bytes, min_busbw_GBps, checks, node\n"
                             "coll, all_reduce, 1M, 1G, 300, , gpu*\n"
                             "\n"
                             "*, *, , , , pass,\n");
  auto rules = read_thresholds(p);
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].line, 3u);
  EXPECT_EQ(rules[0].min_bytes, 1048576u);
  EXPECT_EQ(rules[0].max_bytes, 1073741824u);
  EXPECT_DOUBLE_EQ(rules[0].min_busbw, 300);
  EXPECT_EQ(rules[0].node, "gpu*");
  EXPECT_FALSE(rules[0].checks_pass);
  EXPECT_EQ(rules[1].line, 5u);
  EXPECT_TRUE(rules[1].checks_pass);
  EXPECT_FALSE(rules[1].has_size);
}

TEST(Thresholds, ErrorsNameFileAndLine) {
  auto err = [](const std::string& name, const std::string& text) {
    std::string p = write_file(name, text);
    return error_of([&] { read_thresholds(p); }).substr(p.size());
  };
  EXPECT_EQ(err("t1.csv", "suite,min_busbw_GBps\ncoll,1\ncoll,fast\n"),
            ":3: column 'min_busbw_GBps': 'fast' is not a number");
  EXPECT_EQ(err("t2.csv", "suite,min_bytes,min_busbw_GBps\ncoll,2M,1\ncoll,12Q,1\n").substr(0, 20),
            ":3: column 'min_byte");
  EXPECT_EQ(err("t3.csv", "suite,op\ncoll,all_reduce\n"),
            ":2: the rule sets no limit (min_busbw_GBps, max_time_us, max_slowdown, metric or checks=pass)");
  EXPECT_EQ(err("t4.csv", "suite,checks\ncoll,yes\n"), ":2: column 'checks': 'yes' must be 'pass' or empty");
  EXPECT_EQ(err("t5.csv", "suite,min_bytes,max_bytes,checks\ncoll,1M,1K,pass\n"),
            ":2: min_bytes is larger than max_bytes");
  EXPECT_NE(err("t6.csv", "suite,bogus\ncoll,1\n").find(":1: Extra column \"bogus\""), std::string::npos);
  EXPECT_EQ(err("t7.csv", "suite,metric,checks\ncoll,step_time,\n"),
            ":2: metric 'step_time' has neither min_value nor max_value");
  // A negative limit is a typo, not "no limit" (which is a blank field).
  EXPECT_EQ(err("t8.csv", "suite,min_busbw_GBps\ncoll,-5\n"),
            ":2: column 'min_busbw_GBps': '-5' must be >= 0 (leave it empty for no limit)");
  EXPECT_EQ(err("t9.csv", "suite,max_time_us,checks\ncoll,0,pass\n"),
            ":2: column 'max_time_us': '0' must be > 0 (leave it empty for no limit)");
  EXPECT_EQ(err("t10.csv", "suite,max_time_us\ncoll,-1\n"),
            ":2: column 'max_time_us': '-1' must be > 0 (leave it empty for no limit)");
  EXPECT_EQ(err("t11.csv", "suite,max_slowdown\ncoll,0.9\n"),
            ":2: column 'max_slowdown': '0.9' must be >= 1 (1.25 = at most 25% slower than the baseline; empty: no "
            "limit)");
  EXPECT_EQ(err("t12.csv", "suite,op,min_bytes,max_bytes,min_busbw_GBps,baseline_time_us\ncoll,all_*,8,8,1,5\n"),
            ":2: a baseline_time_us rule must name one suite, one op and one size (min_bytes = max_bytes)");
  EXPECT_EQ(err("t13.csv", "suite,metric,min_value,max_slowdown\nddp,overlap,0.5,2\n"),
            ":2: max_slowdown applies to timed rows, not to a metric");
}

// A baseline file's points are found by a perf row's exact shape; max_slowdown rules need them.
TEST(Thresholds, BaselinePointsByShape) {
  std::string p;
  p = write_file("fleet.csv",
                 "suite,op,dtype,min_bytes,max_bytes,ranks,min_busbw_GBps,baseline_busbw_GBps,baseline_time_us,checks\n"
                 "*,*,,,,,,,,pass\n"
                 "coll,all_reduce,fp32,4096,4096,8,1.5,2.0,40.5,\n"
                 "coll,all_reduce,fp32,8192,8192,8,2.5,3.0,50,\n");
  const auto rules = read_thresholds(p);
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_DOUBLE_EQ(rules[1].baseline_time_us, 40.5);
  EXPECT_DOUBLE_EQ(rules[1].baseline_busbw, 2.0);
  EXPECT_LT(rules[0].baseline_time_us, 0);
  const Baseline baseline(rules);
  ASSERT_FALSE(baseline.empty());
  const Threshold* hit = baseline.find("coll", "all_reduce", "fp32", 8192, 8);
  ASSERT_NE(hit, nullptr);
  EXPECT_DOUBLE_EQ(hit->baseline_time_us, 50);
  EXPECT_EQ(baseline.find("coll", "all_reduce", "fp32", 8192, 16), nullptr);    // other world size
  EXPECT_EQ(baseline.find("coll", "all_reduce", "bf16", 4096, 8), nullptr);     // other dtype
  EXPECT_EQ(baseline.find("coll", "all_gather", "fp32", 4096, 8), nullptr);     // other op
  EXPECT_EQ(baseline.find("coll", "all_reduce", "fp32", 2048, 8), nullptr);     // size never measured
  EXPECT_TRUE(Baseline(read_thresholds(write_file("abs.csv", "suite,checks\n*,pass\n"))).empty());
}

TEST(Glob, Patterns) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("", "anything"));
  EXPECT_TRUE(glob_match("all_*", "all_gather"));
  EXPECT_FALSE(glob_match("all_*", "broadcast"));
  EXPECT_TRUE(glob_match("gpu[0-9]*", "gpu17"));
}

// A completed run ends each report with its end-of-run line; without it (or with rows after it, or
// another count) the file is INCOMPLETE, and says why.
TEST(PerfCsv, EndOfRunLineMarksACompletedRun) {
  const std::string pid = std::to_string(::getpid());
  const std::string perf = "/tmp/dtbench-unit-" + pid + "-end-perf.csv", checks = "/tmp/dtbench-unit-" + pid + "-end-checks.csv";
  ::unlink(perf.c_str());
  ::unlink(checks.c_str());
  {
    Reports rep("coll", "run8", 2, "host", Reports::Paths{"/tmp", checks, perf}, {{"hosts", "h1"}});
    PerfRow m;
    m.op = "step", m.metric = "x", m.value = 1, m.unit = "us";
    rep.perf(m);
    rep.perf(m);
    PerfFile cut = read_perf_csv(perf);  // the run has not ended yet
    EXPECT_FALSE(cut.complete());
    EXPECT_NE(cut.incomplete.find("no end-of-run line"), std::string::npos) << cut.incomplete;
    rep.end_of_run("PASS");
  }
  PerfFile done = read_perf_csv(perf);
  EXPECT_TRUE(done.complete()) << done.incomplete;
  EXPECT_EQ(done.rows.size(), 2u);
  ChecksFile no_rows = read_checks_csv(checks);  // no check rows, but the run completed
  EXPECT_TRUE(no_rows.complete()) << no_rows.incomplete;
  std::ofstream(perf, std::ios::app) << "run8,coll,host,2,,step,,,,,,0,0,0,0,,,,,,,,,,,x,1,us\n";
  PerfFile extra = read_perf_csv(perf);
  EXPECT_FALSE(extra.complete());
  EXPECT_NE(extra.incomplete.find("counts 2 rows, the file holds 3"), std::string::npos) << extra.incomplete;
  ::unlink(perf.c_str());
  ::unlink(checks.c_str());
}
