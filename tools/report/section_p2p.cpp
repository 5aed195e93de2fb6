// The p2p and per-rank sections of dtbench-report (see sections.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unistd.h>

#include "core/csv_table.h"
#include "core/report.h"
#include "core/units.h"
#include "p2p/link_schedule.h"
#include "sections.h"

namespace dtbench::report {

bool P2pSection::take(size_t, const RunData& d, const PerfFile& f, const PerfRecord& r) {
  if (r.suite != "p2p") return false;
  if (files_.empty() || files_.back().second != &f) files_.push_back({&d, &f});
  return true;
}

namespace {

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

}  // namespace

std::string P2pSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  std::vector<std::string> notes;
  for (auto [run, file] : files_) {
    const std::string path = Reports::table_path_for(file->path, "links");
    if (!readable(path)) {
      notes.push_back(esc(path) + ": no links CSV");
      continue;
    }
    const CsvTable t = read_csv_table(path);
    const size_t c_pat = t.col("pattern"), c_lvl = t.col("level"), c_dir = t.col("direction"), c_b = t.col("bytes"),
                 c_sr = t.col("src_rank"), c_sn = t.col("src_node"), c_dr = t.col("dst_rank"), c_dn = t.col("dst_node"),
                 c_bw = t.col("GBps"), c_wr = t.col("n_wrong");
    // Per schedule, its largest size (where the verdicts are judged).
    using Schedule = std::tuple<std::string, std::string, std::string>;
    std::map<Schedule, uint64_t> largest;
    std::vector<Schedule> order;
    for (const auto& row : t.rows) {
      Schedule s{row[c_pat], row[c_lvl], row[c_dir]};
      const uint64_t b = std::strtoull(row[c_b].c_str(), nullptr, 10);
      if (!largest.count(s)) order.push_back(s), largest[s] = b;
      largest[s] = std::max(largest[s], b);
    }
    for (const Schedule& s : order) {
      const bool node_level = std::get<1>(s) == "node";
      // Entities: ranks, or nodes (a node pair's rails as one cell: the slowest rail).
      std::map<std::string, int> index;
      std::vector<std::string> labels;
      auto entity = [&](const std::string& rank, const std::string& node) {
        const std::string key = node_level ? node : rank;
        auto it = index.find(key);
        if (it != index.end()) return it->second;
        labels.push_back(node_level ? node : rank + " (" + node + ")");
        return index[key] = int(labels.size()) - 1;
      };
      struct Cell {
        double gbps = NAN;
        bool wrong = false;
      };
      std::map<std::pair<int, int>, Cell> cells;
      for (const auto& row : t.rows) {
        if (Schedule{row[c_pat], row[c_lvl], row[c_dir]} != s || std::strtoull(row[c_b].c_str(), nullptr, 10) != largest[s])
          continue;
        const int a = entity(row[c_sr], row[c_sn]), b = entity(row[c_dr], row[c_dn]);
        Cell& c = cells[{a, b}];
        const double g = std::strtod(row[c_bw].c_str(), nullptr);
        c.gbps = std::isnan(c.gbps) ? g : std::min(c.gbps, g);
        c.wrong = c.wrong || std::strtod(row[c_wr].c_str(), nullptr) > 0;
      }
      // Rank labels in rank order (the links CSV lists them in schedule order).
      std::vector<int> by_label(labels.size());
      for (size_t i = 0; i < labels.size(); ++i) by_label[i] = int(i);
      if (!node_level)
        std::sort(by_label.begin(), by_label.end(),
                  [&](int x, int y) { return std::atoi(labels[size_t(x)].c_str()) < std::atoi(labels[size_t(y)].c_str()); });
      std::vector<std::pair<int, int>> ends;
      std::vector<double> gbps;
      for (auto& [e, c] : cells) ends.push_back(e), gbps.push_back(c.gbps);
      const double reference = judge_links(ends, gbps, 0.5).median_gbps;
      std::vector<std::string> names;
      for (int k : by_label) names.push_back(labels[size_t(k)]);
      std::vector<std::vector<HeatCell>> grid(labels.size(), std::vector<HeatCell>(labels.size(), HeatCell{NAN, false, ""}));
      for (size_t i = 0; i < by_label.size(); ++i)
        for (size_t j = 0; j < by_label.size(); ++j) {
          auto it = cells.find({by_label[i], by_label[j]});
          if (it == cells.end()) continue;
          grid[i][j] = HeatCell{it->second.gbps, it->second.wrong,
                                names[i] + " -> " + names[j] + ": " + num(it->second.gbps, 4) + " GB/s" +
                                    (it->second.wrong ? ", WRONG DATA" : "")};
        }
      const std::string title = run->label + ": " + std::get<0>(s) + " " + std::get<2>(s) + (node_level ? " (nodes) " : " ") +
                                human_bytes(largest[s]) + ", GB/s";
      plots.push_back(heat_map(unique_id("p2p-" + std::get<0>(s) + "-" + std::get<2>(s)), title, names, names, grid,
                               reference, "GB/s"));
    }
  }
  *nplots = plots.size();
  std::string intro =
      "Each map is one schedule of one run at its largest message size: row = source, column = destination "
      "(rank with its node, or node at --level node, where a cell is the slowest rail of the node pair). Colour: "
      "the link's GB/s over the matrix's median (the median over ranks of each one's median link), as dtbench-p2p "
      "judges slow ranks, nodes and links; a row and column that are red together are a slow rank or node, one red "
      "cell between fine rows is the link.";
  for (const auto& n : notes) intro += "<br>" + n;
  return section("p2p", "Point-to-point links (dtbench-p2p)", intro, plots, "No dtbench-p2p links.");
}

void RanksSection::take(const RunData& d, const PerfFile& f) { files_.push_back({&d, &f}); }

std::string RanksSection::html(size_t* nplots) {
  // Per run and suite, the report (and in it the timed row) whose slowest rank stands out most.
  struct Pick {
    double score = -1;
    std::string title;
    std::vector<BarGroup> groups;
  };
  Ordered<Pick> picks;
  for (auto [run, file] : files_) {
    const std::string path = Reports::ranks_path_for(file->path);
    if (!readable(path)) continue;
    const CsvTable t = read_csv_table(path);
    if (t.rows.empty()) continue;
    const size_t c_op = t.col("op"), c_case = t.col("case"), c_ip = t.col("in_place"), c_lay = t.col("layout"),
                 c_dt = t.col("dtype"), c_rank = t.col("rank"), c_node = t.col("node"), c_own = t.col("own_p50_us"),
                 c_score = t.col("straggler_score");
    auto key_of = [&](const std::vector<std::string>& row) {
      return row[c_op] + " " + row[c_case] + " " + row[c_dt] + (row[c_ip] == "1" ? " in-place" : "") +
             (row[c_lay].empty() ? "" : " " + row[c_lay]);
    };
    std::string worst;
    double worst_score = -1;
    for (const auto& row : t.rows) {
      const double score = std::strtod(row[c_score].c_str(), nullptr);
      if (score > worst_score) worst_score = score, worst = key_of(row);
    }
    const std::string suite = file->meta.count("suite") ? file->meta.at("suite") : "";
    Pick& pick = picks[run->label + "\x1f" + suite];
    if (worst_score <= pick.score) continue;
    std::vector<BarGroup> groups;
    std::string straggler;
    for (const auto& row : t.rows) {
      if (key_of(row) != worst) continue;
      const double score = std::strtod(row[c_score].c_str(), nullptr);
      const bool is_worst = score == worst_score && worst_score >= 1.5;
      const std::string label = "rank " + row[c_rank] + " (" + row[c_node] + ")";
      if (is_worst && straggler.empty()) straggler = label;
      groups.push_back({label, {{is_worst ? "straggler" : "rank", std::strtod(row[c_own].c_str(), nullptr),
                                 "straggler score " + row[c_score]}}});
    }
    if (groups.size() < 2) continue;
    pick.score = worst_score;
    pick.groups = std::move(groups);
    pick.title = run->label + " " + suite + ": " + worst + (straggler.empty() ? "" : ", straggler " + straggler);
  }
  std::vector<std::string> plots;
  for (const auto& key : picks.keys) {
    const Pick& p = picks.m.at(key);
    if (p.groups.empty()) continue;
    plots.push_back(bar_plot(unique_id("ranks"), "ranks", p.title, "own median time (us) per rank", p.groups,
                             {"rank", "straggler"}));
  }
  *nplots = plots.size();
  return section("ranks", "Per-rank times (ranks CSV)",
                 "Per run and suite, the timed row whose slowest rank stands out most: every rank's own median "
                 "time inside the operation (from its release from the iteration's barrier). A rank whose "
                 "straggler score (own time plus lateness over the best rank's) is at least 1.5 is drawn as the "
                 "straggler.",
                 plots, "No per-rank timing.");
}

}  // namespace dtbench::report
