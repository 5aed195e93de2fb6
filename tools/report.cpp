// dtbench-report: one self-contained HTML file (inline SVG, no scripts, no external files) from the
// CSV reports of one or more runs. The page's sections are in report/sections.h, the plots in
// report/svg_plot.h. Exit 0, or 2 on bad input.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "core/perf_csv.h"
#include "report/sections.h"
#include "report/svg_plot.h"
#include "report/tidy_csv.h"

using namespace dtbench;
using namespace dtbench::report;

namespace {

// The last non-empty line of a tool's saved output ("" when no file was given); an empty file is a
// tool that reached no verdict.
std::string last_line(const std::string& path, const std::string& flag) {
  if (path.empty()) return "";
  std::ifstream in(path);
  if (!in) throw InputError(flag + " " + path + ": cannot open");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last.empty() ? path + " is empty: no verdict" : last;
}

// The page's first line: one verdict over the suites' checks, complete reports, and (when given)
// the acceptance and the comparison, each part named, so a reader sees at once what failed.
std::string verdict_banner(const std::vector<RunData>& data, int failed_checks, int incomplete,
                           const std::string& accept_line, const std::string& compare_line) {
  size_t reports = 0, checks = 0;
  for (auto& d : data) {
    reports += d.perf.size() + d.checks.size();
    for (auto& f : d.checks) checks += f.rows.size();
  }
  // The tools' verdict lines start with their names; anything else as the last line (a node line,
  // an error) means the tool did not reach its verdict.
  const bool accept_ok = accept_line.empty() || accept_line.rfind("dtbench-accept: PASS", 0) == 0;
  const bool compare_ok = compare_line.empty() || compare_line.rfind("dtbench-compare: OK", 0) == 0;
  const bool ok = failed_checks == 0 && incomplete == 0 && accept_ok && compare_ok;
  std::ostringstream b;
  b << "<p id=\"verdict\" class=\"" << (ok ? "pass" : "fail") << "\" style=\"font-size:16px\">Verdict: "
    << (ok ? "PASS" : "FAIL") << " &mdash; checks: " << failed_checks << " of " << checks << " failed; reports: "
    << reports << (incomplete ? " (" + std::to_string(incomplete) + " INCOMPLETE)" : std::string(" (all complete)"));
  if (!accept_line.empty()) b << "; acceptance: " << esc(accept_line);
  if (!compare_line.empty()) b << "; comparison: " << esc(compare_line);
  b << "</p>\n";
  return b.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtbench-report: one self-contained HTML file with SVG plots from the CSV reports of one or more runs.\n"
      "A RUN is a results directory (every *-perf.csv and *-checks.csv below it) or one CSV file.\n"
      "Sections: runs and failed checks; coll busbw vs size; DDP bucket-size sweep; FSDP prefetch/overlap and\n"
      "unit AG/RS busbw; checkpoint save timeline; EP all-to-all-v and two-level sync bar pairs; other metrics.\n\n"
      "Examples:\n"
      "  dtbench-report -o report.html results/12345\n"
      "  dtbench-report -o report.html --tidy job.csv results/12345   # plus one CSV for pandas\n"
      "  dtbench-report -o nccl-ab.html --title 'NCCL 2.21 vs 2.23' results/ab/A results/ab/B\n"};
  std::vector<std::string> runs;
  std::string out = "dtbench-report.html", title = "dtbench report";
  bool force = false;
  app.add_option("runs", runs, "results directories or CSV files (one line per run in each plot)")->required();
  app.add_option("-o,--output", out, "HTML file to write (default dtbench-report.html)");
  app.add_option("--title", title, "page title");
  app.add_flag("--force", force, "overwrite an existing --output file");
  std::string accept_result, compare_result;
  app.add_option("--accept-result", accept_result,
                 "dtbench-accept's output (its last line is its verdict) for the page's verdict banner");
  app.add_option("--compare-result", compare_result,
                 "dtbench-compare's output (its last line is its verdict) for the page's verdict banner");
  std::string tidy;
  app.add_option("--tidy", tidy, "also write one tidy CSV of every check and perf row with the run's metadata as "
                                 "columns (loads with pandas.read_csv(FILE), no options)");
  std::string job;
  app.add_option("--job", job, "only the reports of this Slurm job id (or run id): a folder that mixes jobs is "
                               "refused without it");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    // Never lose an earlier report by accident (the suites never overwrite results either).
    if (!force && ::access(out.c_str(), F_OK) == 0)
      throw InputError("--output " + out + ": file exists (--force overwrites it)");
    if (!tidy.empty() && !force && ::access(tidy.c_str(), F_OK) == 0)
      throw InputError("--tidy " + tidy + ": file exists (--force overwrites it)");
    std::vector<RunData> data;
    for (auto& r : runs) data.push_back(load_run(r, job));
    // Labels must tell runs apart: add a number when two runs have the same name.
    for (size_t i = 0; i < data.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (data[j].label == data[i].label) data[i].label += "#" + std::to_string(i + 1);

    std::ostringstream html;
    html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << esc(title) << "</title>\n<style>"
         << "body{font-family:sans-serif;margin:16px;color:#222;background:#fff}table{border-collapse:collapse;"
            "font-size:12px;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
            ".plots{display:grid;grid-template-columns:repeat(2,max-content);gap:10px;align-items:start}"
            ".plot{display:block;border:1px solid #8a8a8b}.fail{color:#b00;font-weight:bold}.pass{color:#070}"
            "h2{margin:22px 0 4px}p{margin:4px 0 8px;font-size:13px;max-width:1260px}"
         << "</style></head><body>\n<h1>" << esc(title) << "</h1>\n";

    int failed_checks = 0, incomplete = 0;
    const std::string runs_html = runs_section(data, &failed_checks, &incomplete);
    html << verdict_banner(data, failed_checks, incomplete, last_line(accept_result, "--accept-result"),
                           last_line(compare_result, "--compare-result"));
    html << runs_html;

    // Every perf row to the section that draws it; a row no section draws is listed under other metrics.
    CollSection coll;
    DdpSection ddp;
    FsdpSection fsdp;
    CkptSection ckpt;
    EpSection ep;
    P2pSection p2p;
    PeersSection peers;
    RanksSection ranks;
    OtherSection other;
    for (size_t run = 0; run < data.size(); ++run)
      for (auto& f : data[run].perf) {
        ranks.take(data[run], f);
        for (auto& r : f.rows) {
          const RunData& d = data[run];
          const bool drawn = coll.take(run, d, f, r) || ddp.take(run, d, f, r) || fsdp.take(run, d, f, r) ||
                             ep.take(run, d, f, r) || ckpt.take(run, d, f, r) || p2p.take(run, d, f, r) ||
                             peers.take(run, d, f, r);
          if (!drawn) other.take(d, r);
        }
      }

    // A section only for a suite that ran (a report of it exists, even one whose rows it cannot plot,
    // which the section then says); one statement per section, in page order, which keeps the plot
    // ids' order.
    std::set<std::string> ran;
    for (auto& d : data) {
      for (auto& f : d.perf) {
        if (f.meta.count("suite")) ran.insert(f.meta.at("suite"));
        for (auto& r : f.rows) ran.insert(r.suite);
      }
      for (auto& f : d.checks) {
        if (f.meta.count("suite")) ran.insert(f.meta.at("suite"));
        for (auto& c : f.rows) ran.insert(c.suite);
      }
    }
    size_t n_bw = 0, n_sweeps = 0, n_fsdp = 0, n_ckpt = 0, n_ep = 0, n_p2p = 0, n_ranks = 0;
    if (ran.count("coll")) html << coll.html(&n_bw);
    if (ran.count("ddp")) html << ddp.html(&n_sweeps);
    if (ran.count("fsdp")) html << fsdp.html(&n_fsdp);
    if (ran.count("ckpt")) html << ckpt.html(&n_ckpt);
    if (ran.count("ep")) html << ep.html(&n_ep);
    if (ran.count("p2p")) html << p2p.html(&n_p2p);
    size_t n_peers = 0;
    if (ran.count("peers")) html << peers.html(&n_peers);
    html << ranks.html(&n_ranks);
    html << other.html();
    html << "<p>Sources:";
    for (auto& d : data) html << " " << esc(d.label) << " = " << esc(d.source) << ";";
    html << "</p>\n</body></html>\n";

    std::ofstream f(out);
    if (!f) throw InputError("--output: cannot create " + out);
    f << html.str();
    f.close();
    if (!f) throw InputError("--output: write failed: " + out);
    if (!tidy.empty()) {
      std::ofstream t(tidy);
      if (!t) throw InputError("--tidy: cannot create " + tidy);
      t << tidy_csv(data);
      t.close();
      if (!t) throw InputError("--tidy: write failed: " + tidy);
    }
    const int nplots = int(n_bw + n_sweeps + n_fsdp + n_ckpt + n_ep + n_p2p + n_peers + n_ranks);
    std::printf(
        "dtbench-report: %s (%d plots: %zu busbw, %d bucket sweeps, %zu fsdp, %zu ckpt timelines, %zu ep, %zu p2p "
        "heat maps, %zu per-rank; %d failed checks%s)\n",
        out.c_str(), nplots, n_bw, int(n_sweeps), n_fsdp, n_ckpt, n_ep, n_p2p, n_ranks, failed_checks,
        incomplete ? ("; " + std::to_string(incomplete) + " INCOMPLETE reports").c_str() : "");
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-report: %s\n", e.what());
    return kExitBadInput;
  }
}
