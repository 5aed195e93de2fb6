// The runs section of dtbench-report (see sections.h).
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "sections.h"

namespace dtbench::report {

namespace {

// "2;5" -> "2 (node17); 5 (node18)": a rank list with each rank's node from the report's rank_map.
std::string with_nodes(const CsvMetadata& md, const std::string& ranks) {
  std::string out;
  for (int r : parse_rank_list(ranks)) {
    const std::string n = node_of_rank(md, r);
    out += (out.empty() ? "" : "; ") + std::to_string(r) + (n.empty() ? "" : " (" + n + ")");
  }
  return out;
}

}  // namespace

std::string runs_section(const std::vector<RunData>& data, int* failed_checks, int* incomplete_reports) {
  std::ostringstream html;
  html << "<section id=\"sec-runs\">\n<h2>Runs</h2>\n<table><tr><th>run</th><th>suite</th><th>backend</th>"
          "<th>ranks</th><th>nodes</th><th>NCCL</th><th>MPI</th><th>Slurm job</th><th>checks</th>"
          "<th>completed</th></tr>\n";
  int incomplete = 0;
  for (auto& d : data) {
    std::map<std::string, std::pair<int, int>> checks;  // suite -> pass, fail
    for (auto& f : d.checks)
      for (auto& c : f.rows) (c.pass ? checks[c.suite].first : checks[c.suite].second)++;
    // A row per report (suite and run id) with the metadata of whichever of its two files comes
    // first; it is INCOMPLETE when either file is (the run did not complete).
    struct Report {
      const CsvMetadata* md = nullptr;
      std::string incomplete;
    };
    std::vector<std::string> order;
    std::map<std::string, Report> reports;
    auto add = [&](const CsvMetadata& md, const std::string& path, const std::string& why) {
      const std::string key = (md.count("suite") ? md.at("suite") : "?") + "|" + (md.count("run_id") ? md.at("run_id") : "");
      auto [it, fresh] = reports.try_emplace(key);
      if (fresh) order.push_back(key), it->second.md = &md;
      if (!why.empty()) ++incomplete, it->second.incomplete += (it->second.incomplete.empty() ? "" : "; ") + path + ": " + why;
    };
    for (auto& f : d.perf) add(f.meta, f.path, f.incomplete);
    for (auto& f : d.checks) add(f.meta, f.path, f.incomplete);
    for (const std::string& key : order) {
      const CsvMetadata& md = *reports[key].md;
      const std::string& why = reports[key].incomplete;
      std::string suite = md.count("suite") ? md.at("suite") : "?";
      auto g = [&](const char* k) { return md.count(k) ? md.at(k) : std::string("-"); };
      auto ck = checks[suite];
      html << "<tr><td>" << esc(d.label) << "</td><td>" << esc(suite) << "</td><td>" << esc(g("backend"))
           << "</td><td>" << esc(g("world_size")) << "</td><td>" << esc(g("hosts")) << "</td><td>"
           << esc(g("nccl")) << "</td><td>" << esc(g("mpi").substr(0, 40)) << "</td><td>" << esc(g("slurm_job_id"))
           << "</td><td class=\"" << (ck.second ? "fail" : "pass") << "\">" << ck.first << " pass, " << ck.second
           << " fail</td>"
           << (why.empty() ? "<td class=\"pass\">yes</td>"
                           : "<td class=\"fail incomplete\" title=\"" + esc(why) + "\">INCOMPLETE</td>")
           << "</tr>\n";
    }
  }
  html << "</table>\n";
  int nfailed = 0;
  std::ostringstream failed;
  failed << "<table><tr><th>run</th><th>failed check</th><th>case</th><th>dtype</th><th>failing ranks</th>"
            "<th>culprit</th><th>file:line</th></tr>\n";
  for (auto& d : data)
    for (auto& f : d.checks)
      for (auto& c : f.rows)
        if (!c.pass && ++nfailed <= 50)
          failed << "<tr class=\"fail\"><td>" << esc(d.label) << "</td><td>" << esc(c.check) << "</td><td>"
                 << esc(c.case_name) << "</td><td>" << esc(c.dtype) << "</td><td>" << esc(with_nodes(f.meta, c.failing_ranks))
                 << "</td><td>" << esc(with_nodes(f.meta, c.culprit)) << "</td><td>" << esc(f.path) << ":" << c.line
                 << "</td></tr>\n";
  failed << "</table>\n";
  if (nfailed) html << failed.str();
  html << "<p>" << nfailed << " failed checks" << (nfailed > 50 ? " (first 50 listed)" : "") << ".</p>\n</section>\n";
  if (incomplete)
    html << "<p class=\"fail\" id=\"incomplete\">INCOMPLETE: " << incomplete
         << " report(s) without their end-of-run line: those runs did not complete (killed, timed out or still "
            "writing), so their rows are partial and they have no verdict.</p>\n";
  *failed_checks = nfailed;
  *incomplete_reports = incomplete;
  return html.str();
}

}  // namespace dtbench::report
