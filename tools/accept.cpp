// dtbench-accept: holds a run's CSV reports against a thresholds file and says whether the node(s)
// pass. Prints PASS/FAIL per rule (with each failing row, file:line, and the node to blame), then per
// node, then one verdict line. A report of a run that did not complete (no end-of-run line) is
// INCOMPLETE and fails its nodes. Exit 0: PASS, 1: FAIL (a Slurm epilog or a drain script can act on
// it), 2: bad input (a malformed report or thresholds file, named with its line).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "core/perf_csv.h"

using namespace dtbench;

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.4g", v);
  return b;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (auto& x : s) out += (out.empty() ? "" : ",") + x;
  return out.empty() ? "?" : out;
}

std::string file_base(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool node_applies(const Threshold& t, const CsvMetadata& md) {
  if (t.node.empty()) return true;
  for (auto& h : meta_hosts(md))
    if (glob_match(t.node, h)) return true;
  return false;
}

// op patterns match a perf row's op, or a check's name or its first component ("all_reduce" matches
// the check "all_reduce.in_place").
bool op_matches(const std::string& pattern, const std::string& name) {
  if (glob_match(pattern, name)) return true;
  size_t dot = name.find('.');
  return dot != std::string::npos && glob_match(pattern, name.substr(0, dot));
}

bool common_matches(const Threshold& t, const std::string& suite, const std::string& dtype, int ranks) {
  return glob_match(t.suite, suite) && (t.dtype.empty() || glob_match(t.dtype, dtype)) &&
         (t.ranks == 0 || t.ranks == ranks);
}

struct RuleResult {
  int matched = 0, failed = 0;
  std::vector<std::string> failures;
  std::string worst;  // summary of the closest-to-limit value
};

struct Nodes {
  std::set<std::string> all;
  std::map<std::string, int> failures;  // node -> failing rows attributed to it
};

void blame(Nodes* nodes, const std::set<std::string>& who) {
  for (auto& n : who) nodes->failures[n]++;
}

std::set<std::string> hosts_of(const CsvMetadata& md) {
  auto v = meta_hosts(md);
  std::set<std::string> s(v.begin(), v.end());
  if (s.empty()) s.insert("?");
  return s;
}

// The nodes named by a check row's failing ranks and culprit (through the report's rank_map).
std::set<std::string> nodes_named(const CsvMetadata& md, const CheckRecord& c) {
  std::set<std::string> who;
  for (int rank : parse_rank_list(c.failing_ranks + ";" + c.culprit)) {
    std::string n = node_of_rank(md, rank);
    if (!n.empty()) who.insert(n);
  }
  return who;
}

// A perf row whose validation failed (n_wrong > 0) has no rank of its own: its run's failing check
// rows of the same op (and size, when the case is one) say which ranks saw wrong data. Only without
// such a row is every node of the report blamed.
std::set<std::string> validation_blame(const RunData& run, const PerfFile& f, const PerfRecord& r) {
  std::set<std::string> who;
  const auto run_id = f.meta.find("run_id");
  for (auto& cf : run.checks) {
    const auto id = cf.meta.find("run_id");
    if (run_id == f.meta.end() || id == cf.meta.end() || id->second != run_id->second) continue;
    for (auto& c : cf.rows) {
      if (c.pass || !op_matches(r.op, c.check)) continue;
      const std::optional<uint64_t> b = parse_size(c.case_name);
      if (b && *b != r.bytes) continue;
      for (auto& n : nodes_named(cf.meta, c)) who.insert(n);
    }
  }
  return who.empty() ? hosts_of(f.meta) : who;
}

RuleResult evaluate(const Threshold& t, const std::vector<RunData>& runs, Nodes* nodes) {
  RuleResult res;
  double worst_margin = 1e300;
  auto fail = [&](const std::string& path, unsigned line, const std::string& what, const std::set<std::string>& who) {
    ++res.failed;
    res.failures.push_back(file_base(path) + ":" + std::to_string(line) + " " + what + " [node " + join(who) + "]");
    blame(nodes, who);
  };
  bool perf_limits = t.min_busbw >= 0 || t.max_time_us >= 0 || !t.metric.empty();
  for (auto& run : runs) {
    for (auto& f : run.perf) {
      if (!node_applies(t, f.meta)) continue;
      for (auto& r : f.rows) {
        if (!common_matches(t, r.suite, r.dtype, r.ranks) || !glob_match(t.op, r.op)) continue;
        if (t.has_size && (r.bytes < t.min_bytes || r.bytes > t.max_bytes)) continue;
        std::string what = r.op + " " + r.dtype + " " + human_bytes(r.bytes) +
                           (r.in_place.empty() ? "" : " in_place=" + r.in_place);
        if (t.checks_pass && r.n_wrong > 0) {
          fail(f.path, r.line, what + ": " + std::to_string(r.n_wrong) + " validation rounds failed",
               validation_blame(run, f, r));
          ++res.matched;
          continue;
        }
        if (!perf_limits) continue;
        if (!t.metric.empty()) {
          if (r.metric.empty() || !glob_match(t.metric, r.metric) || !r.has_value) continue;
          ++res.matched;
          what = r.op + " " + r.metric + (r.case_name.empty() ? "" : " (" + r.case_name + ")");
          if (t.has_min_value && r.value < t.min_value)
            fail(f.path, r.line, what + ": " + num(r.value) + " " + r.unit + " < " + num(t.min_value), hosts_of(f.meta));
          else if (t.has_max_value && r.value > t.max_value)
            fail(f.path, r.line, what + ": " + num(r.value) + " " + r.unit + " > " + num(t.max_value), hosts_of(f.meta));
          continue;
        }
        if (!r.timed() || (t.min_busbw >= 0 && r.busbw < 0)) continue;
        ++res.matched;
        if (t.min_busbw >= 0) {
          if (r.busbw < t.min_busbw) {
            fail(f.path, r.line, what + ": busbw " + num(r.busbw) + " GB/s < " + num(t.min_busbw), hosts_of(f.meta));
          } else if (r.busbw / t.min_busbw < worst_margin) {
            worst_margin = r.busbw / t.min_busbw;
            res.worst = "lowest busbw " + num(r.busbw) + " GB/s at " + human_bytes(r.bytes);
          }
        }
        if (t.max_time_us >= 0) {
          if (r.time_med_us > t.max_time_us) {
            fail(f.path, r.line, what + ": time " + num(r.time_med_us) + " us > " + num(t.max_time_us),
                 hosts_of(f.meta));
          } else if (t.min_busbw < 0 && t.max_time_us / r.time_med_us < worst_margin) {
            worst_margin = t.max_time_us / r.time_med_us;
            res.worst = "highest time " + num(r.time_med_us) + " us at " + human_bytes(r.bytes);
          }
        }
      }
    }
    if (!t.checks_pass) continue;
    for (auto& f : run.checks) {
      if (!node_applies(t, f.meta)) continue;
      for (auto& c : f.rows) {
        if (!common_matches(t, c.suite, c.dtype, c.ranks) || !op_matches(t.op, c.check)) continue;
        if (t.has_size) {
          const std::optional<uint64_t> b = parse_size(c.case_name);
          if (!b || *b < t.min_bytes || *b > t.max_bytes) continue;
        }
        ++res.matched;
        if (c.pass) continue;
        std::set<std::string> who = nodes_named(f.meta, c);
        if (who.empty()) who = hosts_of(f.meta);
        fail(f.path, c.line,
             c.check + " " + c.case_name + " " + c.dtype + ": FAIL, " + std::to_string(c.n_wrong) + " wrong" +
                 (c.failing_ranks.empty() ? "" : ", ranks " + c.failing_ranks) +
                 (c.culprit.empty() ? "" : ", culprit " + c.culprit),
             who);
      }
    }
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtbench-accept: hold a run's CSV reports against a thresholds file; PASS/FAIL per rule and per node.\n"
      "A RUN is a results directory (every *-perf.csv and *-checks.csv below it) or one CSV file.\n"
      "Exit 0: PASS, 1: FAIL, 2: bad input. Thresholds format: see tools/thresholds-host.csv.\n\n"
      "Examples:\n"
      "  dtbench-accept -t tools/thresholds-host.csv results/12345\n"
      "  dtbench-accept -t site-h100.csv --allow-missing results/node17 || scontrol update nodename=node17 "
      "state=drain reason=dtbench\n"};
  std::string thresholds;
  std::vector<std::string> runs;
  bool allow_missing = false, quiet = false;
  int max_list = 20;
  app.add_option("-t,--thresholds", thresholds, "thresholds CSV (rules)")->required();
  app.add_option("runs", runs, "results directories or CSV files")->required();
  app.add_flag("--allow-missing", allow_missing, "a rule that matches no row is SKIP instead of FAIL");
  app.add_option("--max-list", max_list, "failing rows listed per rule (default 20)");
  app.add_flag("-q,--quiet", quiet, "only FAIL lines, node lines and the verdict");
  std::string job;
  app.add_option("--job", job, "only the reports of this Slurm job id (or run id): a folder that mixes jobs is "
                               "refused without it");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    if (max_list < 0) throw InputError("--max-list: must be >= 0");
    auto rules = read_thresholds(thresholds);
    std::vector<RunData> data;
    Nodes nodes;
    for (auto& r : runs) {
      data.push_back(load_run(r, job));
      for (auto& f : data.back().perf)
        for (auto& h : hosts_of(f.meta)) nodes.all.insert(h);
      for (auto& f : data.back().checks)
        for (auto& h : hosts_of(f.meta)) nodes.all.insert(h);
    }
    // A report without its end-of-run line belongs to a run that was cut short: whatever its rows
    // say, its nodes cannot pass.
    int incomplete = 0;
    auto mark_incomplete = [&](const std::string& path, const std::string& why, const CsvMetadata& meta) {
      ++incomplete;
      std::printf("INCOMPLETE  %s: %s\n", path.c_str(), why.c_str());
      for (auto& h : hosts_of(meta)) ++nodes.failures[h];
    };
    for (auto& run : data) {
      for (auto& f : run.perf)
        if (!f.complete()) mark_incomplete(f.path, f.incomplete, f.meta);
      for (auto& f : run.checks)
        if (!f.complete()) mark_incomplete(f.path, f.incomplete, f.meta);
    }
    int pass = 0, failed = 0, skipped = 0;
    for (auto& t : rules) {
      RuleResult r = evaluate(t, data, &nodes);
      std::string head = "rule " + file_base(thresholds) + ":" + std::to_string(t.line) + " " + t.describe();
      if (r.matched == 0) {
        if (allow_missing) {
          ++skipped;
          if (!quiet) std::printf("SKIP  %s: no matching rows\n", head.c_str());
        } else {
          ++failed;
          std::printf("FAIL  %s: no matching rows (suite not run, or sizes/ranks outside the rule)\n", head.c_str());
        }
        continue;
      }
      if (r.failed == 0) {
        ++pass;
        if (!quiet)
          std::printf("PASS  %s: %d rows%s\n", head.c_str(), r.matched, r.worst.empty() ? "" : ("; " + r.worst).c_str());
      } else {
        ++failed;
        std::printf("FAIL  %s: %d of %d rows fail\n", head.c_str(), r.failed, r.matched);
        for (int i = 0; i < static_cast<int>(r.failures.size()) && i < max_list; ++i)
          std::printf("        %s\n", r.failures[i].c_str());
        if (static_cast<int>(r.failures.size()) > max_list)
          std::printf("        ... %zu more\n", r.failures.size() - max_list);
      }
    }
    int nodes_failed = 0;
    for (auto& n : nodes.all) {
      int f = nodes.failures.count(n) ? nodes.failures[n] : 0;
      nodes_failed += f > 0;
      std::printf("node %s: %s", n.c_str(), f ? "FAIL" : "PASS");
      if (f) std::printf(" (%d failing rows)", f);
      std::printf("\n");
    }
    bool ok = failed == 0 && incomplete == 0;
    std::printf("dtbench-accept: %s (%zu rules: %d pass, %d fail, %d skipped; %zu nodes, %d failing%s)\n",
                ok ? "PASS" : "FAIL", rules.size(), pass, failed, skipped, nodes.all.size(), nodes_failed,
                incomplete ? ("; " + std::to_string(incomplete) + " INCOMPLETE report(s)").c_str() : "");
    return ok ? 0 : 1;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-accept: %s\n", e.what());
    return kExitBadInput;
  }
}
