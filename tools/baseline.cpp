// dtbench-baseline: a dtbench-accept thresholds file built from the runs of known-good nodes, as a
// fleet baseline (SuperBench builds its rules from good machines the same way). For every timed shape
// the runs measured (suite, op, dtype, size, ranks) it writes one rule whose limit is a robust floor
// below the fleet's median:
//   busbw floor  = min(median - k * 1.4826 * MAD, fraction * median)      (never below 0)
//   time ceiling = max(median + k * 1.4826 * MAD, median / fraction)      (rows without a busbw)
// where median and MAD (median absolute deviation; 1.4826 * MAD estimates the standard deviation of
// normal noise) are taken over the runs, each run contributing one value per shape: the median of its
// repeated files, and the worst of its variants (in place or not, layouts) since the rule applies to
// all of them. The MAD term follows the fleet's own spread; the fraction keeps a margin when a few
// runs happen to agree closely. Each rule also carries the medians (baseline_busbw_GBps,
// baseline_time_us), which `dtbench-accept --baseline FILE` holds max_slowdown rules against.
// Only complete runs whose checks all passed are accepted as known-good (anything else: exit 2).
// Exit 0: written, 2: bad input (nothing written).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "core/perf_csv.h"
#include "core/perf_names.h"

using namespace dtbench;

namespace {

// What a thresholds rule can tell apart: one rule per shape.
struct Shape {
  std::string suite, op, dtype;
  uint64_t bytes;
  int ranks;
  auto tie() const { return std::tie(suite, op, dtype, bytes, ranks); }
  bool operator<(const Shape& o) const { return tie() < o.tie(); }
};

// What a run measures more than once per shape: variants (in place, redop, layout, group size,
// case) and, within one variant, repeated files.
struct Variant {
  std::string in_place, redop, layout, case_name;
  int group_size;
  auto tie() const { return std::tie(in_place, redop, layout, case_name, group_size); }
  bool operator<(const Variant& o) const { return tie() < o.tie(); }
};

struct Samples {
  std::vector<double> busbw, time_us;
};

// One run's value per shape: the worst variant of the medians over its repeated files.
struct RunValue {
  double busbw = -1;  // < 0: some variant has no busbw (the shape is judged on time)
  double time_us = 0;
};

std::map<Shape, RunValue> run_values(const RunData& run, const std::string& suite_filter) {
  std::map<Shape, std::map<Variant, Samples>> by_shape;
  for (auto& f : run.perf) {
    if (!f.complete()) throw InputError(f.path + ": INCOMPLETE (" + f.incomplete + "): not a known-good run");
    for (auto& r : f.rows) {
      if (r.n_wrong > 0)
        throw InputError(f.path + ":" + std::to_string(r.line) + ": " + r.op + " failed validation: not a known-good run");
      if (!r.timed() || !glob_match(suite_filter, r.suite) || r.op == perf_names::kSaveTimeline) continue;
      Samples& s = by_shape[{r.suite, r.op, r.dtype, r.bytes, r.ranks}][{r.in_place, r.redop, r.layout, r.case_name,
                                                                          r.group_size}];
      s.busbw.push_back(r.busbw);
      s.time_us.push_back(r.time_med_us);
    }
  }
  for (auto& f : run.checks) {
    if (!f.complete()) throw InputError(f.path + ": INCOMPLETE (" + f.incomplete + "): not a known-good run");
    for (auto& c : f.rows)
      if (!c.pass)
        throw InputError(f.path + ":" + std::to_string(c.line) + ": check " + c.check + " FAILED: not a known-good run");
  }
  std::map<Shape, RunValue> out;
  for (auto& [shape, variants] : by_shape) {
    RunValue v;
    bool all_busbw = true, first = true;
    for (auto& [variant, s] : variants) {
      all_busbw = all_busbw && *std::min_element(s.busbw.begin(), s.busbw.end()) >= 0;
      const double b = median(s.busbw), t = median(s.time_us);
      v.busbw = first ? b : std::min(v.busbw, b);
      v.time_us = first ? t : std::max(v.time_us, t);
      first = false;
    }
    if (!all_busbw) v.busbw = -1;
    out[shape] = v;
  }
  return out;
}

// 1.4826 * MAD: a standard-deviation estimate that one outlying node cannot inflate.
double robust_sigma(const std::vector<double>& v, double med) {
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::fabs(x - med));
  return 1.4826 * median(dev);
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.6g", v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtbench-baseline: build a dtbench-accept thresholds file from the runs of known-good nodes.\n"
      "Each RUN is a results directory (one job) or one CSV file; each must be complete with every check PASS.\n"
      "Per shape (suite, op, dtype, size, ranks) over the runs: busbw floor = min(median - k*1.4826*MAD,\n"
      "fraction*median); rows without a busbw get a time ceiling = max(median + k*1.4826*MAD, median/fraction).\n"
      "Exit 0: written, 2: bad input (nothing written).\n\n"
      "Examples:\n"
      "  dtbench-baseline -o fleet-h100.csv results/good1 results/good2 results/good3\n"
      "  dtbench-accept -t fleet-h100.csv results/node17\n"
      "  dtbench-baseline -o coll.csv --suite coll --fraction 0.9 --k 4 results/good*\n"};
  std::string output, suite = "*";
  std::vector<std::string> runs;
  double k = 3, fraction = 0.8;
  int min_runs = 3;
  bool force = false;
  app.add_option("-o,--output", output, "thresholds file to write")->required();
  app.add_option("runs", runs, "results directories or CSV files of known-good nodes")->required();
  app.add_option("--k", k, "MAD multiplier of the floor (default 3)")->check(at_least(0.0));
  app.add_option("--fraction", fraction, "the floor is at most this fraction of the median (default 0.8)")
      ->check(CLI::Range(0.01, 1.0));
  app.add_option("--min-runs", min_runs, "runs needed, and runs a shape must appear in to get a rule (default 3)")
      ->check(at_least(1));
  app.add_option("--suite", suite, "only this suite (pattern; default every suite)");
  app.add_flag("--force", force, "overwrite an existing --output");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    if (!force && ::access(output.c_str(), F_OK) == 0)
      throw InputError("--output " + output + ": file exists (--force overwrites it)");
    if (static_cast<int>(runs.size()) < min_runs)
      throw InputError("need at least " + std::to_string(min_runs) + " runs of good nodes, got " +
                       std::to_string(runs.size()) + " (--min-runs lowers it)");
    std::map<Shape, std::vector<RunValue>> fleet;
    std::set<std::string> hosts;
    for (auto& path : runs) {
      RunData run = load_run(path);
      if (run.perf.empty()) throw InputError(path + ": no perf CSV");
      for (auto& f : run.perf)
        for (auto& h : meta_hosts(f.meta)) hosts.insert(h);
      for (auto& [shape, v] : run_values(run, suite)) fleet[shape].push_back(v);
    }
    std::ostringstream rules;
    int written = 0, dropped = 0, wide = 0;
    for (auto& [shape, values] : fleet) {
      if (static_cast<int>(values.size()) < min_runs) {
        ++dropped;
        continue;
      }
      std::vector<double> busbw, time_us;
      bool has_busbw = true;
      for (auto& v : values) {
        has_busbw = has_busbw && v.busbw >= 0;
        busbw.push_back(v.busbw), time_us.push_back(v.time_us);
      }
      const double t_med = median(time_us);
      std::string floor_busbw, ceiling_time, ref_busbw;
      if (has_busbw) {
        const double med = median(busbw);
        const double floor = std::max(0.0, std::min(med - k * robust_sigma(busbw, med), fraction * med));
        wide += floor < 0.5 * med;
        floor_busbw = num(floor);
        ref_busbw = num(med);
      } else {
        ceiling_time = num(std::max(t_med + k * robust_sigma(time_us, t_med), t_med / fraction));
      }
      // suite,op,dtype,min_bytes,max_bytes,ranks,min_busbw_GBps,max_time_us,baseline_busbw_GBps,baseline_time_us
      rules << shape.suite << ',' << shape.op << ',' << shape.dtype << ',' << shape.bytes << ',' << shape.bytes << ','
            << shape.ranks << ',' << floor_busbw << ',' << ceiling_time << ',' << ref_busbw << ',' << num(t_med)
            << '\n';
      ++written;
    }
    if (written == 0)
      throw InputError("no timed shape appears in " + std::to_string(min_runs) + " runs: nothing to build a baseline from");
    std::string host_list;
    for (auto& h : hosts) host_list += (host_list.empty() ? "" : " ") + h;
    const std::string tmp = output + ".tmp";
    {
      std::ofstream f(tmp);
      if (!f) throw InputError("--output " + output + ": cannot create");
      f << "# dtbench-baseline: dtbench-accept thresholds from " << runs.size() << " known-good runs (nodes: "
        << host_list << ")\n"
        << "# Per shape over the runs: min_busbw_GBps = min(median - " << num(k) << "*1.4826*MAD, " << num(fraction)
        << "*median); rows without busbw: max_time_us = max(median + " << num(k) << "*1.4826*MAD, median/"
        << num(fraction) << ").\n"
        << "# baseline_busbw_GBps / baseline_time_us: the medians (dtbench-accept --baseline holds max_slowdown "
           "rules against them).\n"
        << "# Runs:";
      for (auto& r : runs) f << ' ' << r;
      f << "\nsuite,op,dtype,min_bytes,max_bytes,ranks,min_busbw_GBps,max_time_us,baseline_busbw_GBps,baseline_time_us,"
           "checks\n"
        << "*,*,,,,,,,,,pass\n";
      // Every rule row leaves 'checks' empty: the first rule already demands every check PASS.
      std::istringstream in(rules.str());
      for (std::string line; std::getline(in, line);) f << line << ",\n";
      f.close();
      if (!f) {
        std::remove(tmp.c_str());
        throw InputError("--output " + output + ": write failed");
      }
    }
    if (std::rename(tmp.c_str(), output.c_str()) != 0) throw InputError("--output " + output + ": cannot rename");
    std::printf("dtbench-baseline: %d rules from %zu runs written to %s%s\n", written, runs.size(), output.c_str(),
                dropped ? (" (" + std::to_string(dropped) + " shapes seen in fewer than " + std::to_string(min_runs) +
                           " runs left out)").c_str()
                        : "");
    // A floor far below the median catches little: the runs disagree (a noisy or mixed fleet).
    if (wide)
      std::printf("dtbench-baseline: note: %d rule(s) have a floor below half their median (the runs vary widely "
                  "there; more runs or a quieter machine give tighter floors)\n",
                  wide);
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-baseline: %s\n", e.what());
    return kExitBadInput;
  }
}
