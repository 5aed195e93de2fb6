// dtbench-accept: holds a run's CSV reports against a thresholds file and says whether the node(s)
// pass. Prints PASS/FAIL per rule (with each failing row, file:line, and the node to blame), then per
// node, then one verdict line. A report of a run that did not complete (no end-of-run line) is
// INCOMPLETE and fails its nodes. The same verdict also goes, on request, to JSON (--json), JUnit XML
// (--junit) and a list of the nodes to drain (--drain-list). Exit 0: PASS, 1: FAIL (a Slurm epilog or
// a drain script can act on it), 2: bad input (a malformed report or thresholds file, named with its
// line).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
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

// One failing row of a rule: where, what, the value against the limit, and the nodes blamed.
struct Failure {
  std::string file;
  unsigned line = 0;
  std::string what, quantity;  // quantity: busbw_GBps, time_us, a metric name, wrong_elements...
  double value = 0, limit = 0;
  std::set<std::string> nodes;
  std::string text() const;
};

struct RuleResult {
  int matched = 0, failed = 0;
  std::vector<Failure> failures;
  std::string worst;  // summary of the closest-to-limit value
};

struct Nodes {
  std::set<std::string> all;
  std::map<std::string, int> failures;  // node -> failing rows attributed to it
};

void blame(Nodes* nodes, const std::set<std::string>& who) {
  for (auto& n : who) nodes->failures[n]++;
}

std::string Failure::text() const {
  return file_base(file) + ":" + std::to_string(line) + " " + what + " [node " + join(nodes) + "]";
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

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A perf row whose validation failed (n_wrong > 0) has no rank of its own: its run's failing check
// rows of the same op (and size, dtype and placement, where they say) name the ranks that saw
// wrong data. Only without such a row is every node of the report blamed.
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
      if (!c.dtype.empty() && !r.dtype.empty() && c.dtype != r.dtype) continue;
      // dtbench-coll names a check OP.in_place or OP.out_of_place: only the row's own placement.
      const bool check_in_place = ends_with(c.check, ".in_place"), check_out = ends_with(c.check, ".out_of_place");
      if ((r.in_place == "1" && check_out) || (r.in_place == "0" && check_in_place)) continue;
      for (auto& n : nodes_named(cf.meta, c)) who.insert(n);
    }
  }
  return who.empty() ? hosts_of(f.meta) : who;
}

RuleResult evaluate(const Threshold& t, const std::vector<RunData>& runs, const Baseline& baseline, Nodes* nodes) {
  RuleResult res;
  double worst_margin = 1e300;
  auto fail = [&](const std::string& path, unsigned line, const std::string& what, const std::set<std::string>& who,
                  const std::string& quantity, double value, double limit) {
    ++res.failed;
    res.failures.push_back(Failure{path, line, what, quantity, value, limit, who});
    blame(nodes, who);
  };
  bool perf_limits = t.min_busbw >= 0 || t.max_time_us >= 0 || t.max_slowdown >= 0 || !t.metric.empty();
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
               validation_blame(run, f, r), "validation_rounds_failed", double(r.n_wrong), 0);
          ++res.matched;
          continue;
        }
        if (!perf_limits) continue;
        if (!t.metric.empty()) {
          if (r.metric.empty() || !glob_match(t.metric, r.metric) || !r.has_value) continue;
          ++res.matched;
          what = r.op + " " + r.metric + (r.case_name.empty() ? "" : " (" + r.case_name + ")");
          if (t.has_min_value && r.value < t.min_value)
            fail(f.path, r.line, what + ": " + num(r.value) + " " + r.unit + " < " + num(t.min_value), hosts_of(f.meta),
                 r.metric, r.value, t.min_value);
          else if (t.has_max_value && r.value > t.max_value)
            fail(f.path, r.line, what + ": " + num(r.value) + " " + r.unit + " > " + num(t.max_value), hosts_of(f.meta),
                 r.metric, r.value, t.max_value);
          continue;
        }
        if (!r.timed() || (t.min_busbw >= 0 && r.busbw < 0)) continue;
        // A relative rule holds the row against the baseline's point of the same shape; a row the
        // baseline never measured is not matched by it (a rule that matches nothing still FAILs).
        const Threshold* ref =
            t.max_slowdown >= 0 ? baseline.find(r.suite, r.op, r.dtype, r.bytes, r.ranks) : nullptr;
        if (t.max_slowdown >= 0 && !ref && t.min_busbw < 0 && t.max_time_us < 0) continue;
        ++res.matched;
        if (ref) {
          const double limit = ref->baseline_time_us * t.max_slowdown;
          if (r.time_med_us > limit)
            fail(f.path, r.line,
                 what + ": time " + num(r.time_med_us) + " us > " + num(t.max_slowdown) + "x baseline " +
                     num(ref->baseline_time_us) + " us",
                 hosts_of(f.meta), "time_us", r.time_med_us, limit);
          else if (t.min_busbw < 0 && t.max_time_us < 0 && limit / r.time_med_us < worst_margin) {
            worst_margin = limit / r.time_med_us;
            res.worst = "slowest " + num(r.time_med_us / ref->baseline_time_us) + "x baseline at " +
                        human_bytes(r.bytes) + " " + r.op;
          }
        }
        if (t.min_busbw >= 0) {
          if (r.busbw < t.min_busbw) {
            fail(f.path, r.line, what + ": busbw " + num(r.busbw) + " GB/s < " + num(t.min_busbw), hosts_of(f.meta),
                 "busbw_GBps", r.busbw, t.min_busbw);
          } else if (r.busbw / t.min_busbw < worst_margin) {
            worst_margin = r.busbw / t.min_busbw;
            res.worst = "lowest busbw " + num(r.busbw) + " GB/s at " + human_bytes(r.bytes);
          }
        }
        if (t.max_time_us >= 0) {
          if (r.time_med_us > t.max_time_us) {
            fail(f.path, r.line, what + ": time " + num(r.time_med_us) + " us > " + num(t.max_time_us),
                 hosts_of(f.meta), "time_us", r.time_med_us, t.max_time_us);
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
             who, "wrong_elements", double(c.n_wrong), 0);
      }
    }
  }
  return res;
}

// A rule's outcome, kept for the machine-readable outputs.
struct RuleOutcome {
  std::string id, description;  // "thresholds-host.csv:21", "coll all_reduce 256KiB.. busbw>=..."
  std::string verdict;          // PASS, FAIL, SKIP
  std::string why;              // for a FAIL without rows: "no matching rows"
  RuleResult result;
};
struct Incomplete {
  std::string file, why;
  std::set<std::string> nodes;
};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') ? ' ' : c;
    }
  }
  return out;
}

// The failing rows of a rule that blame a node. A rule that matched nothing (the suite did not run)
// fails the run, not a node: it is reported once, beside the nodes.
std::vector<const Failure*> failures_on(const RuleOutcome& r, const std::string& node) {
  std::vector<const Failure*> out;
  for (auto& f : r.result.failures)
    if (f.nodes.count(node)) out.push_back(&f);
  return out;
}

// --json: per node its verdict (as the "node NAME:" line says), the rules whose rows blame it with
// each row's file, line, value and limit, and its INCOMPLETE reports; then every rule's outcome
// (a rule that matched nothing is FAIL there, with why).
nlohmann::json json_verdict(bool ok, const std::string& thresholds, const std::vector<std::string>& runs,
                            const std::vector<RuleOutcome>& rules, const std::vector<Incomplete>& incomplete,
                            const Nodes& nodes) {
  nlohmann::json j;
  j["tool"] = "dtbench-accept";
  j["verdict"] = ok ? "PASS" : "FAIL";
  j["thresholds"] = thresholds;
  j["runs"] = runs;
  j["nodes"] = nlohmann::json::array();
  for (auto& n : nodes.all) {
    nlohmann::json jn;
    jn["node"] = n;
    nlohmann::json failing = nlohmann::json::array();
    for (auto& r : rules) {
      auto rows = failures_on(r, n);
      if (rows.empty()) continue;
      nlohmann::json jr;
      jr["rule"] = r.id, jr["description"] = r.description;
      jr["rows"] = nlohmann::json::array();
      for (const Failure* f : rows)
        jr["rows"].push_back({{"file", f->file}, {"line", f->line}, {"what", f->what}, {"quantity", f->quantity},
                              {"value", f->value}, {"limit", f->limit}});
      failing.push_back(jr);
    }
    nlohmann::json inc = nlohmann::json::array();
    for (auto& i : incomplete)
      if (i.nodes.count(n)) inc.push_back({{"file", i.file}, {"why", i.why}});
    jn["verdict"] = failing.empty() && inc.empty() ? "PASS" : "FAIL";
    jn["failing_rules"] = failing;
    jn["incomplete"] = inc;
    j["nodes"].push_back(jn);
  }
  j["rules"] = nlohmann::json::array();
  for (auto& r : rules)
    j["rules"].push_back({{"rule", r.id}, {"description", r.description}, {"verdict", r.verdict},
                          {"matched", r.result.matched}, {"failed", r.result.failed}, {"why", r.why}});
  return j;
}

// --junit: one testcase per rule and node (classname = the node), plus one per node for its
// INCOMPLETE reports; a rule that matched nothing is one testcase of classname "run" (a failure, or
// skipped with --allow-missing).
std::string junit_verdict(const std::vector<RuleOutcome>& rules, const std::vector<Incomplete>& incomplete,
                          const Nodes& nodes) {
  std::ostringstream cases;
  int tests = 0, failures = 0, skipped = 0;
  auto testcase = [&](const std::string& classname, const RuleOutcome& r) {
    ++tests;
    cases << "    <testcase classname=\"" << xml_escape(classname) << "\" name=\"" << xml_escape(r.id + " " + r.description)
          << "\">";
  };
  for (auto& r : rules) {
    if (r.result.matched > 0) continue;
    testcase("run", r);
    if (r.verdict == "SKIP") ++skipped, cases << "<skipped message=\"no matching rows\"/>";
    else ++failures, cases << "<failure message=\"" << xml_escape(r.why) << "\"/>";
    cases << "</testcase>\n";
  }
  for (auto& n : nodes.all) {
    for (auto& r : rules) {
      if (r.result.matched == 0) continue;
      testcase(n, r);
      auto rows = failures_on(r, n);
      if (!rows.empty()) {
        ++failures;
        std::string text;
        for (const Failure* f : rows) text += f->text() + "\n";
        cases << "<failure message=\"" << xml_escape(std::to_string(rows.size()) + " failing rows") << "\">"
              << xml_escape(text) << "</failure>";
      }
      cases << "</testcase>\n";
    }
    ++tests;
    cases << "    <testcase classname=\"" << xml_escape(n) << "\" name=\"reports complete\">";
    std::string text;
    for (auto& i : incomplete)
      if (i.nodes.count(n)) text += i.file + ": " + i.why + "\n";
    if (!text.empty()) ++failures, cases << "<failure message=\"INCOMPLETE\">" << xml_escape(text) << "</failure>";
    cases << "</testcase>\n";
  }
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"dtbench-accept\" tests=\""
      << tests << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\">\n"
      << cases.str() << "  </testsuite>\n</testsuites>\n";
  return out.str();
}

// Writes an output file; an existing one is refused before anything is judged unless --force.
void write_output(const std::string& path, const std::string& flag, const std::string& text) {
  std::ofstream f(path);
  if (!f) throw InputError(flag + " " + path + ": cannot create");
  f << text;
  f.close();
  if (!f) throw InputError(flag + " " + path + ": write failed");
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
      "state=drain reason=dtbench\n"
      "  dtbench-accept -t site.csv --json verdict.json --junit accept.xml --drain-list drain.txt results/12345\n"
      "  dtbench-baseline -o fleet.csv results/good1 results/good2 results/good3   # floors from good nodes\n"
      "  dtbench-accept -t fleet.csv results/node17\n"
      "  dtbench-accept -t relative.csv --baseline fleet.csv results/node17   # rules with max_slowdown\n"};
  std::string thresholds;
  std::vector<std::string> runs;
  bool allow_missing = false, quiet = false;
  int max_list = 20;
  app.add_option("-t,--thresholds", thresholds, "thresholds CSV (rules)")->required();
  app.add_option("runs", runs, "results directories or CSV files")->required();
  std::string baseline_path;
  app.add_option("--baseline", baseline_path, "baseline file (from dtbench-baseline) that max_slowdown rules are held "
                                              "against");
  app.add_flag("--allow-missing", allow_missing, "a rule that matches no row is SKIP instead of FAIL");
  app.add_option("--max-list", max_list, "failing rows listed per rule (default 20)");
  app.add_flag("-q,--quiet", quiet, "only FAIL lines, node lines and the verdict");
  std::string job;
  app.add_option("--job", job, "only the reports of this Slurm job id (or run id): a folder that mixes jobs is "
                               "refused without it");
  std::string json_path, junit_path, drain_path;
  bool force = false;
  app.add_option("--json", json_path, "also write the verdict as JSON: per node its verdict, failing rules with "
                                      "file, line, value and limit, INCOMPLETE reports");
  app.add_option("--junit", junit_path, "also write JUnit XML: one testcase per rule and node (CI dashboards)");
  app.add_option("--drain-list", drain_path, "also write the failing nodes, one name per line (empty: none fail)");
  app.add_flag("--force", force, "overwrite existing --json/--junit/--drain-list files");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    if (max_list < 0) throw InputError("--max-list: must be >= 0");
    // Never lose an earlier verdict by accident: refuse existing outputs before judging anything.
    for (auto [path, flag] : {std::pair{json_path, "--json"}, {junit_path, "--junit"}, {drain_path, "--drain-list"}})
      if (!path.empty() && !force && ::access(path.c_str(), F_OK) == 0)
        throw InputError(std::string(flag) + " " + path + ": file exists (--force overwrites it)");
    auto rules = read_thresholds(thresholds);
    Baseline baseline;
    if (!baseline_path.empty()) {
      baseline = Baseline(read_thresholds(baseline_path));
      if (baseline.empty())
        throw InputError("--baseline " + baseline_path + ": no rule carries baseline_time_us (write it with "
                         "dtbench-baseline)");
    }
    for (auto& t : rules)
      if (t.max_slowdown >= 0 && baseline_path.empty())
        throw InputError(thresholds + ":" + std::to_string(t.line) + ": max_slowdown needs --baseline FILE");
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
    std::vector<Incomplete> incomplete_reports;
    auto mark_incomplete = [&](const std::string& path, const std::string& why, const CsvMetadata& meta) {
      std::printf("INCOMPLETE  %s: %s\n", path.c_str(), why.c_str());
      incomplete_reports.push_back({path, why, hosts_of(meta)});
      for (auto& h : hosts_of(meta)) ++nodes.failures[h];
    };
    for (auto& run : data) {
      for (auto& f : run.perf)
        if (!f.complete()) mark_incomplete(f.path, f.incomplete, f.meta);
      for (auto& f : run.checks)
        if (!f.complete()) mark_incomplete(f.path, f.incomplete, f.meta);
    }
    const int incomplete = int(incomplete_reports.size());
    int pass = 0, failed = 0, skipped = 0;
    std::vector<RuleOutcome> outcomes;
    for (auto& t : rules) {
      RuleOutcome o{file_base(thresholds) + ":" + std::to_string(t.line), t.describe(), "", "", evaluate(t, data, baseline, &nodes)};
      const RuleResult& r = o.result;
      std::string head = "rule " + o.id + " " + o.description;
      if (r.matched == 0) {
        if (allow_missing) {
          ++skipped, o.verdict = "SKIP";
          if (!quiet) std::printf("SKIP  %s: no matching rows\n", head.c_str());
        } else {
          ++failed, o.verdict = "FAIL", o.why = "no matching rows (suite not run, or sizes/ranks outside the rule)";
          std::printf("FAIL  %s: %s\n", head.c_str(), o.why.c_str());
        }
      } else if (r.failed == 0) {
        ++pass, o.verdict = "PASS";
        if (!quiet)
          std::printf("PASS  %s: %d rows%s\n", head.c_str(), r.matched, r.worst.empty() ? "" : ("; " + r.worst).c_str());
      } else {
        ++failed, o.verdict = "FAIL";
        std::printf("FAIL  %s: %d of %d rows fail\n", head.c_str(), r.failed, r.matched);
        for (int i = 0; i < static_cast<int>(r.failures.size()) && i < max_list; ++i)
          std::printf("        %s\n", r.failures[size_t(i)].text().c_str());
        if (static_cast<int>(r.failures.size()) > max_list)
          std::printf("        ... %zu more\n", r.failures.size() - max_list);
      }
      outcomes.push_back(std::move(o));
    }
    int nodes_failed = 0;
    std::string drain;
    for (auto& n : nodes.all) {
      int f = nodes.failures.count(n) ? nodes.failures[n] : 0;
      nodes_failed += f > 0;
      if (f > 0) drain += n + "\n";
      std::printf("node %s: %s", n.c_str(), f ? "FAIL" : "PASS");
      if (f) std::printf(" (%d failing rows)", f);
      std::printf("\n");
    }
    bool ok = failed == 0 && incomplete == 0;
    if (!json_path.empty())
      write_output(json_path, "--json", json_verdict(ok, thresholds, runs, outcomes, incomplete_reports, nodes)
                                                   .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
                                               "\n");
    if (!junit_path.empty()) write_output(junit_path, "--junit", junit_verdict(outcomes, incomplete_reports, nodes));
    if (!drain_path.empty()) write_output(drain_path, "--drain-list", drain);
    std::printf("dtbench-accept: %s (%zu rules: %d pass, %d fail, %d skipped; %zu nodes, %d failing%s)\n",
                ok ? "PASS" : "FAIL", rules.size(), pass, failed, skipped, nodes.all.size(), nodes_failed,
                incomplete ? ("; " + std::to_string(incomplete) + " INCOMPLETE report(s)").c_str() : "");
    return ok ? 0 : 1;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-accept: %s\n", e.what());
    return kExitBadInput;
  }
}
