// dtbench-isolate: one verdict line per node from one isolation job (slurm/dtbench-isolate.sbatch),
// and a drain list. The job ran, in one allocation:
//   <results>/intra/<node>/  each node's own collectives (one job step per node, all at once)
//   <results>/pairs/         dtbench-p2p over node pairs (--level node --fail-slow)
//   <results>/world/         the whole job's all-reduce
// A node is
//   MISSING  when its intra-node run left no complete report (or it is absent from a whole-job run),
//   CORRUPT  when a data check failed on its own run, or a whole-job check names one of its ranks
//            as the culprit (the sender of a wrong block) or, without a culprit, as the receiver,
//   SLOW     when its own collectives reach less than --slow-factor of the nodes' median busbw at
//            the same shape (or of the --baseline fleet median), or the node-pair matrix names it,
//   PASS     otherwise.
// The rules are relative (to this job's own median, and to a baseline when given), so no absolute
// number is needed to find the odd node out. Exit 0: every node PASS; 1: some node is not; 2: bad input.
#include <CLI/CLI.hpp>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
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
#include "core/rank_hosts.h"
#include "core/report.h"
#include "core/run_files.h"
#include "core/thresholds.h"
#include "core/units.h"

using namespace dtbench;

namespace {

struct Verdict {
  std::string state = "PASS";  // PASS, SLOW, CORRUPT, MISSING (worst wins: MISSING > CORRUPT > SLOW)
  std::vector<std::string> evidence;
  void add(const std::string& s, const std::string& why) {
    static const std::vector<std::string> order = {"PASS", "SLOW", "CORRUPT", "MISSING"};
    auto rank = [&](const std::string& x) { return std::find(order.begin(), order.end(), x) - order.begin(); };
    if (rank(s) > rank(state)) state = s;
    evidence.push_back(s + ": " + why);
  }
};

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A run directory's reports, or why it has none a verdict can use.
bool load(const std::string& dir, RunData& run, std::string& why) {
  if (!is_dir(dir)) return why = dir + ": no such directory (the step never wrote)", false;
  try {
    run = load_run(dir);
  } catch (const InputError& e) {
    why = e.what();
    return false;
  }
  if (run.checks.empty() || run.perf.empty()) return why = dir + ": no checks and perf reports", false;
  for (const auto& f : run.checks)
    if (!f.complete()) return why = f.path + ": INCOMPLETE (" + f.incomplete + ")", false;
  for (const auto& f : run.perf)
    if (!f.complete()) return why = f.path + ": INCOMPLETE (" + f.incomplete + ")", false;
  return true;
}

bool is_bandwidth_check(const std::string& check) {
  const std::string tail = ".bandwidth";
  return check.size() > tail.size() && check.compare(check.size() - tail.size(), tail.size(), tail) == 0;
}

// The failed checks of a run, attributed to nodes: CORRUPT for data checks (the culprit when the
// check names one, else the receivers), SLOW for the node-pair matrix's bandwidth checks.
void attribute_failures(const RunData& run, const std::string& what, std::map<std::string, Verdict>& verdicts) {
  for (const ChecksFile& f : run.checks)
    for (const CheckRecord& r : f.rows) {
      if (r.pass) continue;
      const bool slow = is_bandwidth_check(r.check);
      std::vector<int> ranks = parse_rank_list(slow || r.culprit.empty() ? r.failing_ranks : r.culprit);
      std::set<std::string> nodes;
      for (int rank : ranks) nodes.insert(node_of_rank(f.meta, rank));
      for (const std::string& node : nodes) {
        if (node.empty() || !verdicts.count(node)) continue;
        std::ostringstream why;
        why << what << " " << r.check << " [" << r.case_name << "]: ";
        if (slow) why << "links below the matrix's median (" << r.detail << ")";
        else if (!r.culprit.empty()) why << r.n_wrong << " wrong, culprit rank " << r.culprit << " (sender)";
        else why << r.n_wrong << " wrong on ranks " << r.failing_ranks;
        verdicts[node].add(slow ? "SLOW" : "CORRUPT", why.str());
      }
    }
}

// What one node's collectives reached: the median busbw of each timed shape over its files.
using ShapeKey = std::tuple<std::string, std::string, std::string, std::string, uint64_t, int>;  // suite op dtype in_place bytes ranks
std::map<ShapeKey, double> busbw_by_shape(const RunData& run) {
  std::map<ShapeKey, std::vector<double>> all;
  for (const PerfFile& f : run.perf)
    for (const PerfRecord& r : f.rows)
      if (r.timed() && r.busbw > 0) all[{r.suite, r.op, r.dtype, r.in_place, r.bytes, r.ranks}].push_back(r.busbw);
  std::map<ShapeKey, double> out;
  for (auto& [k, v] : all) out[k] = median(v);
  return out;
}

std::string shape_text(const ShapeKey& k) {
  return std::get<1>(k) + (std::get<3>(k) == "1" ? " in-place " : " ") + std::to_string(std::get<4>(k)) + "B " +
         std::get<2>(k);
}

std::vector<std::string> read_nodes(const std::string& list, const std::string& file) {
  std::vector<std::string> nodes;
  auto add = [&](std::string n) {
    n.erase(0, n.find_first_not_of(" \t\r"));
    n.erase(n.find_last_not_of(" \t\r") + 1);
    if (!n.empty() && std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  };
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw InputError("--nodes-file " + file + ": cannot open");
    for (std::string line; std::getline(in, line);) add(line);
  }
  std::stringstream ss(list);
  for (std::string n; std::getline(ss, n, ',');) add(n);
  if (nodes.empty()) throw InputError("--nodes/--nodes-file: no node names given");
  return nodes;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dtbench-isolate: one verdict per node (PASS, SLOW, CORRUPT, MISSING) from one isolation job"};
  std::string results, nodes_list, nodes_file, baseline_path, drain_path;
  double slow_factor = 0.5;
  app.add_option("results", results, "the job's results directory (intra/<node>/, pairs/, world/)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--nodes", nodes_list, "the job's nodes, comma-separated");
  app.add_option("--nodes-file", nodes_file, "the job's nodes, one per line (scontrol show hostnames)");
  app.add_option("--baseline", baseline_path, "a dtbench-baseline file: also SLOW below --slow-factor of its medians")
      ->check(CLI::ExistingFile);
  app.add_option("--slow-factor", slow_factor, "SLOW below this fraction of the median")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  app.add_option("--drain", drain_path, "write the nodes that are not PASS here, one per line");
  app.footer(
      "Example (what slurm/dtbench-isolate.sbatch runs):\n"
      "  dtbench-isolate results/isolate-1234 --nodes-file results/isolate-1234/nodes.txt --drain drain.txt\n"
      "Exit 0: every node PASS; 1: a node is SLOW, CORRUPT or MISSING; 2: bad input.");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    const std::vector<std::string> nodes = read_nodes(nodes_list, nodes_file);
    Baseline baseline;
    if (!baseline_path.empty()) {
      baseline = Baseline(read_thresholds(baseline_path));
      if (baseline.empty()) throw InputError("--baseline " + baseline_path + ": no baseline rules (make it with dtbench-baseline)");
    }
    std::map<std::string, Verdict> verdicts;
    for (const auto& n : nodes) verdicts[n];

    // 1. Each node's own collectives: missing, corrupt, or slower than the other nodes (or the baseline).
    std::map<std::string, std::map<ShapeKey, double>> per_node;
    for (const auto& n : nodes) {
      RunData run;
      std::string why;
      if (!load(results + "/intra/" + n, run, why)) {
        verdicts[n].add("MISSING", "intra-node run: " + why);
        continue;
      }
      attribute_failures(run, "intra-node", verdicts);
      per_node[n] = busbw_by_shape(run);
      if (baseline.empty()) continue;
      for (const auto& [k, bw] : per_node[n]) {
        const Threshold* t = baseline.find(std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<4>(k), std::get<5>(k));
        if (t && t->baseline_busbw > 0 && bw < slow_factor * t->baseline_busbw)
          verdicts[n].add("SLOW", "intra-node " + shape_text(k) + ": busbw " + format_double(bw, 4) + " GB/s vs baseline " +
                                      format_double(t->baseline_busbw, 4));
      }
    }
    // Against the job's own median: per shape, over the nodes that measured it (at least 3).
    std::map<ShapeKey, std::vector<std::pair<std::string, double>>> by_shape;
    for (const auto& [n, shapes] : per_node)
      for (const auto& [k, bw] : shapes) by_shape[k].push_back({n, bw});
    uint64_t largest = 0;
    for (const auto& [k, v] : by_shape) largest = std::max(largest, std::get<4>(k));
    for (const auto& [k, v] : by_shape) {
      if (v.size() < 3 || std::get<4>(k) != largest) continue;  // bandwidth-bound sizes only
      std::vector<double> bws;
      for (const auto& p : v) bws.push_back(p.second);
      const double med = median(bws);
      for (const auto& [n, bw] : v)
        if (bw < slow_factor * med)
          verdicts[n].add("SLOW", "intra-node " + shape_text(k) + ": busbw " + format_double(bw, 4) + " GB/s vs " +
                                      format_double(med, 4) + " median of " + std::to_string(v.size()) + " nodes");
    }

    // 2. The whole-job runs: the node-pair matrix and the all-reduce across every node.
    for (const std::string what : {"pairs", "world"}) {
      RunData run;
      std::string why;
      const std::string label = what == std::string("pairs") ? "node pairs" : "whole-job all-reduce";
      // The job script leaves not-run.txt where a step cannot run (one node has no node pairs).
      std::ifstream not_run(results + "/" + what + "/not-run.txt");
      if (not_run) {
        std::string reason;
        std::getline(not_run, reason);
        std::printf("dtbench-isolate: %s not run: %s\n", label.c_str(), reason.c_str());
        continue;
      }
      if (!load(results + "/" + what, run, why)) {
        for (const auto& n : nodes) verdicts[n].add("MISSING", label + ": " + why);
        continue;
      }
      const std::vector<std::string> hosts = meta_hosts(run.checks.front().meta);
      for (const auto& n : nodes)
        if (std::find(hosts.begin(), hosts.end(), n) == hosts.end())
          verdicts[n].add("MISSING", label + ": the node is not among its hosts");
      attribute_failures(run, label, verdicts);
    }

    std::ofstream drain;
    if (!drain_path.empty()) {
      drain.open(drain_path + ".tmp", std::ios::trunc);
      if (!drain) throw InputError("--drain " + drain_path + ": cannot write");
    }
    int bad = 0;
    for (const auto& n : nodes) {
      const Verdict& v = verdicts[n];
      std::string line = "node " + n + ": " + v.state;
      for (size_t i = 0; i < v.evidence.size(); ++i) line += (i ? "; " : " (") + v.evidence[i];
      if (!v.evidence.empty()) line += ")";
      std::printf("%s\n", line.c_str());
      if (v.state != "PASS") {
        ++bad;
        if (drain) drain << n << "\n";
      }
    }
    if (drain) {
      drain.close();
      if (std::rename((drain_path + ".tmp").c_str(), drain_path.c_str()) != 0)
        throw InputError("--drain " + drain_path + ": cannot write");
    }
    std::printf("dtbench-isolate: %zu nodes, %d to drain -> %s\n", nodes.size(), bad, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-isolate: %s\n", e.what());
    return 2;
  }
}
