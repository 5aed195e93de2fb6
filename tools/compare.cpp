// dtbench-compare: the perf CSVs of two or more runs side by side (NCCL versions, nodes, commits).
// Rows are matched by (suite, op, bytes, dtype, ranks, layout) plus in_place, redop, group size and
// metric; each candidate run is compared with the first (baseline) run. Timed rows are judged on
// medians and percentiles, never on min/max, so that one outlier iteration neither hides nor fakes a
// regression (timed_verdict). Exit 0: no regression, 1: regression, 2: bad input.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/perf_names.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/perf_csv.h"
#include "core/report.h"  // csv_field

using namespace dtbench;

namespace {

struct Key {
  std::string suite, op, dtype, in_place, redop, layout, metric;
  int ranks, group_size;
  uint64_t bytes;
  auto tie() const { return std::tie(suite, op, dtype, in_place, redop, layout, metric, ranks, group_size, bytes); }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

// Every sample of one key in one run (several when a run holds repeated files of the same suite).
struct Samples {
  // Per file: the median time and its 10th/90th percentiles over iterations (files older than
  // schema_version 3 have no percentiles: the median stands in for them).
  std::vector<double> med, p10, p90, busbw, value;
  std::string unit;
  bool timed = false;
};

// No sample reads as NaN here (printed as "-"), not as 0.
double median_or_nan(const std::vector<double>& v) { return dtbench::median(v, NAN); }
double vmin(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double vmax(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

std::map<Key, Samples> collect(const RunData& run, const std::string& suite_filter) {
  std::map<Key, Samples> out;
  for (auto& f : run.perf)
    for (auto& r : f.rows) {
      if (!glob_match(suite_filter, r.suite)) continue;
      // Per-save timeline points are single samples of one save (for dtbench-report), not measurements
      // with a spread: their medians over saves are compared instead.
      if (r.op == perf_names::kSaveTimeline) continue;
      Key k{r.suite, r.op, r.dtype, r.in_place, r.redop, r.layout, r.metric, r.ranks, r.group_size, r.bytes};
      Samples& s = out[k];
      if (r.timed()) {
        s.timed = true;
        s.med.push_back(r.time_med_us);
        s.p10.push_back(r.time_p10_us >= 0 ? r.time_p10_us : r.time_med_us);
        s.p90.push_back(r.time_p90_us >= 0 ? r.time_p90_us : r.time_med_us);
        if (r.busbw >= 0) s.busbw.push_back(r.busbw);
      } else if (r.has_value) {
        s.value.push_back(r.value);
        s.unit = r.unit;
      }
    }
  return out;
}

// +1: larger values are better, -1: smaller are better, 0: unknown (ratio shown, never flagged).
int unit_direction(const std::string& unit, const std::string& metric) {
  static const std::set<std::string> lower = {"ns", "us", "ms", "s", "B", "bytes", "KiB", "MiB", "GiB"};
  static const std::set<std::string> higher = {"GB/s", "GBps", "MB/s", "%", "x", "ratio", "fraction"};
  if (lower.count(unit)) return -1;
  if (higher.count(unit)) return +1;
  if (metric.find("efficiency") != std::string::npos || metric.find("bw") != std::string::npos) return +1;
  return 0;
}

enum class Verdict { Same, Regression, Faster, Unknown, Missing };
const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Same: return "ok";
    case Verdict::Regression: return "REGRESSION";
    case Verdict::Faster: return "faster";
    case Verdict::Unknown: return "-";
    case Verdict::Missing: return "missing";
  }
  return "?";
}

// Timed rows, judged on each file's median iteration and its 10th/90th percentiles. The candidate B
// regressed against the baseline A when its whole distribution moved:
//   every B file's median is slower than every A file's median by more than the threshold, and
//   every B file's 10th-percentile iteration is slower than every A file's median.
// Faster is the mirror (B's medians faster by the threshold, B's 90th percentiles faster than A's
// medians). Stalled iterations (preemption, a page fault storm) only stretch the upper tail: they
// move neither medians nor p10, so one outlier in either run neither hides a slowdown nor fakes one,
// while a real slowdown moves every iteration. Repeats widen the band by the spread of their medians.
Verdict timed_verdict(const Samples& a, const Samples& b, double thr) {
  if (vmin(b.med) > vmax(a.med) * (1 + thr) && vmin(b.p10) > vmax(a.med)) return Verdict::Regression;
  if (vmax(b.med) * (1 + thr) < vmin(a.med) && vmax(b.p90) < vmin(a.med)) return Verdict::Faster;
  return Verdict::Same;
}

// Scalar metrics: worse by more than the threshold beyond the spread of the repeats.
Verdict metric_verdict(const Samples& a, const Samples& b, int dir, double thr) {
  if (dir == 0 || a.value.empty() || b.value.empty()) return Verdict::Unknown;
  double a_lo = vmin(a.value), a_hi = vmax(a.value), b_lo = vmin(b.value), b_hi = vmax(b.value);
  if (dir < 0) {
    if (b_lo > a_hi * (1 + thr) + 1e-12) return Verdict::Regression;
    if (a_lo > b_hi * (1 + thr) + 1e-12) return Verdict::Faster;
  } else {
    if (b_hi < a_lo / (1 + thr) - 1e-12) return Verdict::Regression;
    if (a_hi < b_lo / (1 + thr) - 1e-12) return Verdict::Faster;
  }
  return Verdict::Same;
}

std::string num(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), "%.4g", v);
  return b;
}

// The spread shown next to a time: p10..p90 of the iterations (widest over the files) relative to
// the median.
std::string spread(const Samples& s) {
  double m = median_or_nan(s.med);
  if (!(m > 0)) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), "%.0f%%", 100.0 * (vmax(s.p90) - vmin(s.p10)) / m);
  return b;
}

// A run's label cut to fit a table column.
std::string column_label(const std::string& label, size_t width) {
  return label.size() <= width ? label : label.substr(0, width - 1) + "~";
}

struct Totals {
  int compared = 0, regressions = 0, faster = 0, only_a = 0, only_b = 0;
  std::set<std::string> regressed_suites;
};

void compare_pair(const RunData& A, const RunData& B, const std::string& suite_filter, double thr, bool all_rows,
                  FILE* csv, Totals* t) {
  auto a = collect(A, suite_filter), b = collect(B, suite_filter);
  std::set<std::string> suites;
  for (auto& kv : a) suites.insert(kv.first.suite);
  for (auto& kv : b) suites.insert(kv.first.suite);
  std::printf("\n### %s (candidate) vs %s (baseline), threshold %.0f%%; times: median us +- p10..p90 spread\n",
              B.label.c_str(), A.label.c_str(), 100 * thr);
  const std::string la = column_label(A.label, 10), lb = column_label(B.label, 10);
  for (auto& suite : suites) {
    std::printf("\n== %s\n%-16s %-5s %-3s %-5s %-18s %10s %5s | %10s %10s | %10s %10s | %7s  %s\n", suite.c_str(),
                "op", "dtype", "ip", "ranks", "layout/metric", "bytes", "", la.c_str(), lb.c_str(),
                (la.substr(0, 4) + " busbw").c_str(), (lb.substr(0, 4) + " busbw").c_str(), "speed", "verdict");
    int shown = 0, hidden = 0;
    for (auto& kv : a) {
      const Key& k = kv.first;
      if (k.suite != suite) continue;
      auto it = b.find(k);
      if (it == b.end()) {
        ++t->only_a;
        continue;
      }
      const Samples &sa = kv.second, &sb = it->second;
      Verdict v;
      double ratio;  // > 1: candidate better
      std::string ta, tb, ba, bb;
      if (sa.timed && sb.timed) {
        v = timed_verdict(sa, sb, thr);
        ratio = median_or_nan(sa.med) / median_or_nan(sb.med);
        ta = num(median_or_nan(sa.med)) + "±" + spread(sa);
        tb = num(median_or_nan(sb.med)) + "±" + spread(sb);
        ba = sa.busbw.empty() ? "-" : num(median_or_nan(sa.busbw));
        bb = sb.busbw.empty() ? "-" : num(median_or_nan(sb.busbw));
      } else {
        int dir = unit_direction(sa.unit, k.metric);
        v = metric_verdict(sa, sb, dir, thr);
        double ma = median_or_nan(sa.value), mb = median_or_nan(sb.value);
        ratio = dir < 0 ? ma / mb : mb / ma;
        ta = num(ma) + " " + sa.unit;
        tb = num(mb) + " " + sb.unit;
        ba = bb = "";
      }
      ++t->compared;
      if (v == Verdict::Regression) ++t->regressions, t->regressed_suites.insert(suite);
      if (v == Verdict::Faster) ++t->faster;
      std::string what = k.metric.empty() ? k.layout : k.metric + (k.layout.empty() ? "" : "/" + k.layout);
      if (what.empty()) what = k.redop;
      if (all_rows || v == Verdict::Regression || v == Verdict::Faster || shown < 400) {
        std::printf("%-16s %-5s %-3s %-5d %-18s %10s %5s | %10s %10s | %10s %10s | %7s  %s\n", k.op.c_str(),
                    k.dtype.c_str(), k.in_place.c_str(), k.ranks, what.c_str(), human_bytes(k.bytes).c_str(), "",
                    ta.c_str(), tb.c_str(), ba.c_str(), bb.c_str(), num(ratio).c_str(), verdict_name(v));
        ++shown;
      } else {
        ++hidden;
      }
      if (csv)
        // Labels are paths and layouts hold commas: every text field goes through csv_field.
        std::fprintf(csv, "%s,%s,%s,%s,%s,%s,%d,%s,%s,%s,%llu,%s,%s,%s,%s,%s,%s\n", csv_field(A.label).c_str(),
                     csv_field(B.label).c_str(), csv_field(suite).c_str(), csv_field(k.op).c_str(),
                     csv_field(k.dtype).c_str(), csv_field(k.in_place).c_str(), k.ranks, csv_field(k.redop).c_str(),
                     csv_field(k.metric.empty() ? k.layout : k.metric).c_str(),
                     k.metric.empty() ? "" : "metric", static_cast<unsigned long long>(k.bytes),
                     num(sa.timed ? median_or_nan(sa.med) : median_or_nan(sa.value)).c_str(),
                     num(sb.timed ? median_or_nan(sb.med) : median_or_nan(sb.value)).c_str(),
                     sa.busbw.empty() ? "" : num(median_or_nan(sa.busbw)).c_str(),
                     sb.busbw.empty() ? "" : num(median_or_nan(sb.busbw)).c_str(), num(ratio).c_str(), verdict_name(v));
    }
    for (auto& kv : b)
      if (kv.first.suite == suite && !a.count(kv.first)) ++t->only_b;
    if (hidden) std::printf("(%d unflagged rows not shown; --all shows them)\n", hidden);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtbench-compare: compare the perf CSVs of two or more runs (baseline first).\n"
      "A RUN is a results directory (every *-perf.csv below it) or one perf CSV file.\n\n"
      "Examples:\n"
      "  dtbench-compare results/nccl-A results/nccl-B\n"
      "  dtbench-compare --threshold 0.1 --suite coll results/node17 results/node18 results/node19\n"
      "  dtbench-compare --csv ratios.csv old/coll-...-perf.csv new/coll-...-perf.csv\n"};
  std::vector<std::string> runs, labels;
  double thr = 0.05;
  std::string suite = "*", csv_path;
  bool all_rows = false, force = false;
  app.add_option("runs", runs, "two or more runs: baseline first, then candidates")->required()->expected(2, -1);
  app.add_option("-t,--threshold", thr, "relative slowdown that counts as a regression (default 0.05 = 5%)");
  app.add_option("-s,--suite", suite, "only suites matching this pattern (default *)");
  app.add_option("-l,--labels", labels, "names of the runs in the tables, comma-separated, in the order of the runs "
                                        "(default: the directory names)")
      ->delimiter(',');
  app.add_option("--csv", csv_path, "also write the matched rows with ratios and verdicts to this CSV");
  app.add_flag("-a,--all", all_rows, "print every matched row (default: all rows up to 400 per suite)");
  app.add_flag("--force", force, "overwrite an existing --csv file");
  std::string job;
  app.add_option("--job", job, "in every run, only the reports of this Slurm job id (or run id): a run folder that "
                               "mixes jobs is refused without it");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    if (!(thr >= 0 && thr < 10)) throw InputError("--threshold: must be in [0, 10), got " + std::to_string(thr));
    // Never lose an earlier comparison by accident (the suites never overwrite results either).
    if (!csv_path.empty() && !force && ::access(csv_path.c_str(), F_OK) == 0)
      throw InputError("--csv " + csv_path + ": file exists (--force overwrites it)");
    if (!labels.empty() && labels.size() != runs.size())
      throw InputError("--labels: " + std::to_string(labels.size()) + " labels for " + std::to_string(runs.size()) +
                       " runs");
    std::vector<RunData> data;
    for (auto& r : runs) {
      data.push_back(load_run(r, job));
      if (data.back().perf.empty()) throw InputError(r + ": no perf CSV (*-perf.csv) in this run");
      if (!labels.empty()) data.back().label = labels[data.size() - 1];
    }
    // A run cut short (no end-of-run line) is compared, but gets no OK: its slow tail may be missing.
    int incomplete = 0;
    for (auto& run : data)
      for (auto& f : run.perf)
        if (!f.complete()) ++incomplete, std::printf("INCOMPLETE  %s: %s\n", f.path.c_str(), f.incomplete.c_str());
    FILE* csv = nullptr;
    if (!csv_path.empty()) {
      csv = std::fopen(csv_path.c_str(), "w");
      if (!csv) throw InputError("--csv: cannot create " + csv_path);
      std::fprintf(csv, "baseline,candidate,suite,op,dtype,in_place,ranks,redop,layout,kind,bytes,a,b,a_busbw_GBps,"
                        "b_busbw_GBps,speed,verdict\n");
    }
    Totals t;
    for (size_t i = 1; i < data.size(); ++i) compare_pair(data[0], data[i], suite, thr, all_rows, csv, &t);
    if (csv) std::fclose(csv);
    std::printf("\nmatched %d rows; %d only in the baseline, %d only in a candidate; %d faster\n", t.compared,
                t.only_a, t.only_b, t.faster);
    if (t.compared == 0) {
      std::printf("dtbench-compare: NO MATCHING ROWS (different suites, sizes or rank counts?)\n");
      return kExitBadInput;
    }
    if (incomplete) {
      std::printf("dtbench-compare: INCOMPLETE: %d report(s) of runs that did not complete; no verdict\n", incomplete);
      return 1;
    }
    if (t.regressions) {
      std::string s;
      for (auto& x : t.regressed_suites) s += (s.empty() ? "" : ",") + x;
      std::printf("dtbench-compare: REGRESSION: %d rows slower beyond %.0f%%, p10 above the baseline's median (suites: %s)\n",
                  t.regressions, 100 * thr, s.c_str());
      return 1;
    }
    std::printf("dtbench-compare: OK: no regression beyond %.0f%% and the runs' spread\n", 100 * thr);
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-compare: %s\n", e.what());
    return kExitBadInput;
  }
}
