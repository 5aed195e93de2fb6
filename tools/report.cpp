// dtbench-report: one self-contained HTML file (inline SVG, no scripts, no external files) from the
// CSV reports of one or more runs: a run summary, busbw vs message size per collective (one line per
// run), metric-vs-size sweeps (DDP bucket-size sweep), overlap metrics (FSDP/DDP), a checkpoint save
// timeline, and a table of every other scalar metric. Exit 0, or 2 on bad input.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "perf_csv.h"

using namespace dtbench;

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v, int prec = 4) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.*g", prec, v);
  return b;
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;  // (x, y), sorted by x
};

const int W = 560, H = 300, L = 64, R = 150, T = 28, B = 44;

// A line plot; x on a log2 axis labelled with byte sizes when `log_bytes`.
std::string line_plot(const std::string& kind, const std::string& title, const std::string& ylabel,
                      std::vector<Series> series, bool log_bytes) {
  double x0 = 1e300, x1 = -1e300, y1 = 0;
  for (auto& s : series) {  // repeated runs give several points per x: plot their median
    std::map<double, std::vector<double>> by_x;
    for (auto& p : s.pts) by_x[p.first].push_back(p.second);
    s.pts.clear();
    for (auto& kv : by_x) {
      std::sort(kv.second.begin(), kv.second.end());
      size_t n = kv.second.size();
      s.pts.push_back({kv.first, n % 2 ? kv.second[n / 2] : 0.5 * (kv.second[n / 2 - 1] + kv.second[n / 2])});
    }
    for (auto& p : s.pts) {
      double x = log_bytes ? std::log2(std::max(p.first, 1.0)) : p.first;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y1 = std::max(y1, p.second);
    }
  }
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= 0) y1 = 1;
  y1 *= 1.08;
  auto X = [&](double x) { return L + (W - L - R) * ((log_bytes ? std::log2(std::max(x, 1.0)) : x) - x0) / (x1 - x0); };
  auto Y = [&](double y) { return T + (H - T - B) * (1 - y / y1); };
  std::ostringstream o;
  o << "<svg class=\"plot\" data-kind=\"" << kind << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H << "\">\n<title>" << esc(title) << "</title>\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"#fff\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"17\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
    << esc(title) << "</text>\n";
  for (int i = 0; i <= 4; ++i) {  // y grid
    double y = y1 * i / 4;
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 4 << "\" y=\"" << Y(y) + 4
      << "\" text-anchor=\"end\" font-size=\"10\">" << num(y, 3) << "</text>\n";
  }
  int nt = 6;
  for (int i = 0; i <= nt; ++i) {  // x ticks
    double xv = x0 + (x1 - x0) * i / nt;
    double px = L + (W - L - R) * (xv - x0) / (x1 - x0);
    std::string lab = log_bytes ? human_bytes(static_cast<uint64_t>(std::llround(std::exp2(std::round(xv)))))
                                : num(xv, 3);
    o << "<line x1=\"" << px << "\" x2=\"" << px << "\" y1=\"" << H - B << "\" y2=\"" << H - B + 4
      << "\" stroke=\"#333\"/><text x=\"" << px << "\" y=\"" << H - B + 16
      << "\" text-anchor=\"middle\" font-size=\"10\">" << esc(lab) << "</text>\n";
  }
  o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << H - B << "\" y2=\"" << H - B
    << "\" stroke=\"#333\"/><line x1=\"" << L << "\" x2=\"" << L << "\" y1=\"" << T << "\" y2=\"" << H - B
    << "\" stroke=\"#333\"/>\n<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8
    << "\" text-anchor=\"middle\" font-size=\"11\">" << (log_bytes ? "message size (bytes, log scale)" : "x")
    << "</text>\n<text transform=\"translate(14," << (T + H - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">" << esc(ylabel) << "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const char* c = kColors[i % 8];
    std::string path;
    for (auto& p : series[i].pts) path += (path.empty() ? "" : " ") + num(X(p.first), 6) + "," + num(Y(p.second), 6);
    o << "<polyline class=\"series\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2.5\" points=\"" << path
      << "\"><title>" << esc(series[i].name) << "</title></polyline>\n";
    for (auto& p : series[i].pts)
      o << "<circle cx=\"" << X(p.first) << "\" cy=\"" << Y(p.second) << "\" r=\"3\" fill=\"" << c << "\"><title>"
        << esc(series[i].name) << ": " << human_bytes(static_cast<uint64_t>(p.first)) << " " << num(p.second)
        << "</title></circle>\n";
    double ly = T + 14 + 16 * i;
    o << "<rect x=\"" << W - R + 10 << "\" y=\"" << ly - 8 << "\" width=\"14\" height=\"4\" fill=\"" << c
      << "\"/><text x=\"" << W - R + 28 << "\" y=\"" << ly - 3 << "\" font-size=\"10\">"
      << esc(series[i].name.substr(0, 24)) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// Horizontal bars: one lane per label; each lane holds bars (name, value) starting at 0, drawn
// overlapping from longest to shortest so that phases nest (a save's blocking part inside its
// time to durable commit).
std::string bar_plot(const std::string& kind, const std::string& title, const std::string& xlabel,
                     const std::vector<std::pair<std::string, std::vector<std::pair<std::string, double>>>>& lanes,
                     const std::vector<std::string>& legend) {
  double vmax = 0;
  for (auto& l : lanes)
    for (auto& b : l.second) vmax = std::max(vmax, b.second);
  if (vmax <= 0) vmax = 1;
  vmax *= 1.05;
  int lane_h = 22, left = 170, h = T + B + lane_h * static_cast<int>(lanes.size());
  auto X = [&](double v) { return left + (W - left - R) * v / vmax; };
  std::ostringstream o;
  o << "<svg class=\"plot\" data-kind=\"" << kind << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W
    << "\" height=\"" << h << "\" viewBox=\"0 0 " << W << " " << h << "\">\n<title>" << esc(title) << "</title>\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << h << "\" fill=\"#fff\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"17\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
    << esc(title) << "</text>\n";
  for (int i = 0; i <= 4; ++i) {
    double v = vmax * i / 4;
    o << "<line x1=\"" << X(v) << "\" x2=\"" << X(v) << "\" y1=\"" << T << "\" y2=\"" << h - B
      << "\" stroke=\"#ddd\"/><text x=\"" << X(v) << "\" y=\"" << h - B + 14
      << "\" text-anchor=\"middle\" font-size=\"10\">" << num(v, 3) << "</text>\n";
  }
  o << "<text x=\"" << (left + W - R) / 2 << "\" y=\"" << h - 10 << "\" text-anchor=\"middle\" font-size=\"11\">"
    << esc(xlabel) << "</text>\n";
  for (size_t i = 0; i < lanes.size(); ++i) {
    double y = T + lane_h * i;
    o << "<text x=\"" << left - 4 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\" font-size=\"10\">"
      << esc(lanes[i].first.substr(0, 30)) << "</text>\n";
    auto bars = lanes[i].second;
    std::stable_sort(bars.begin(), bars.end(), [](auto& a, auto& b) { return a.second > b.second; });
    for (auto& b : bars) {
      size_t ci = std::find(legend.begin(), legend.end(), b.first) - legend.begin();
      o << "<rect class=\"bar\" x=\"" << left << "\" y=\"" << y + 3 << "\" width=\"" << std::max(1.0, X(b.second) - left)
        << "\" height=\"" << lane_h - 6 << "\" fill=\"" << kColors[ci % 8] << "\" fill-opacity=\"0.85\"><title>"
        << esc(lanes[i].first + " " + b.first + " = " + num(b.second)) << "</title></rect>\n";
    }
  }
  for (size_t i = 0; i < legend.size(); ++i)
    o << "<rect x=\"" << W - R + 10 << "\" y=\"" << T + 16 * i << "\" width=\"10\" height=\"10\" fill=\""
      << kColors[i % 8] << "\"/><text x=\"" << W - R + 24 << "\" y=\"" << T + 9 + 16 * i << "\" font-size=\"10\">"
      << esc(legend[i].substr(0, 24)) << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

bool is_time_unit(const std::string& u) { return u == "s" || u == "ms" || u == "us" || u == "ns"; }

struct Row {
  const RunData* run;
  const PerfRecord* r;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtbench-report: one self-contained HTML file with SVG plots from the CSV reports of one or more runs.\n"
      "A RUN is a results directory (every *-perf.csv and *-checks.csv below it) or one CSV file.\n\n"
      "Examples:\n"
      "  dtbench-report -o report.html results/12345\n"
      "  dtbench-report -o nccl-ab.html --title 'NCCL 2.21 vs 2.23' results/ab/A results/ab/B\n"};
  std::vector<std::string> runs;
  std::string out = "dtbench-report.html", title = "dtbench report";
  app.add_option("runs", runs, "results directories or CSV files (one line per run in each plot)")->required();
  app.add_option("-o,--output", out, "HTML file to write (default dtbench-report.html)");
  app.add_option("--title", title, "page title");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  try {
    std::vector<RunData> data;
    for (auto& r : runs) data.push_back(load_run(r));
    // Labels must tell runs apart: add a number when two runs have the same name.
    for (size_t i = 0; i < data.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (data[j].label == data[i].label) data[i].label += "#" + std::to_string(i + 1);

    std::ostringstream html;
    html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << esc(title) << "</title>\n<style>"
         << "body{font-family:sans-serif;margin:16px;color:#222}table{border-collapse:collapse;font-size:12px;"
            "margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.plot{margin:4px;"
            "border:1px solid #eee}.fail{color:#b00;font-weight:bold}.pass{color:#070}h2{margin-top:24px}"
         << "</style></head><body>\n<h1>" << esc(title) << "</h1>\n";

    // --- summary ---
    html << "<h2>Runs</h2>\n<table><tr><th>run</th><th>suite</th><th>backend</th><th>ranks</th><th>nodes</th>"
            "<th>NCCL</th><th>MPI</th><th>Slurm job</th><th>checks</th></tr>\n";
    for (auto& d : data) {
      std::map<std::string, std::pair<int, int>> checks;  // suite -> pass, fail
      for (auto& f : d.checks)
        for (auto& c : f.rows) (c.pass ? checks[c.suite].first : checks[c.suite].second)++;
      std::set<std::string> seen;
      auto add = [&](const CsvMetadata& md) {
        std::string suite = md.count("suite") ? md.at("suite") : "?";
        std::string key = suite + "|" + (md.count("run_id") ? md.at("run_id") : "");
        if (!seen.insert(key).second) return;
        auto g = [&](const char* k) { return md.count(k) ? md.at(k) : std::string("-"); };
        auto ck = checks[suite];
        html << "<tr><td>" << esc(d.label) << "</td><td>" << esc(suite) << "</td><td>" << esc(g("backend"))
             << "</td><td>" << esc(g("world_size")) << "</td><td>" << esc(g("hosts")) << "</td><td>"
             << esc(g("nccl")) << "</td><td>" << esc(g("mpi").substr(0, 40)) << "</td><td>" << esc(g("slurm_job_id"))
             << "</td><td class=\"" << (ck.second ? "fail" : "pass") << "\">" << ck.first << " pass, " << ck.second
             << " fail</td></tr>\n";
      };
      for (auto& f : d.perf) add(f.meta);
      for (auto& f : d.checks) add(f.meta);
    }
    html << "</table>\n";
    int failed_checks = 0;
    html << "<table><tr><th>run</th><th>failed check</th><th>case</th><th>dtype</th><th>failing ranks</th>"
            "<th>culprit</th><th>file:line</th></tr>\n";
    for (auto& d : data)
      for (auto& f : d.checks)
        for (auto& c : f.rows)
          if (!c.pass && ++failed_checks <= 50)
            html << "<tr class=\"fail\"><td>" << esc(d.label) << "</td><td>" << esc(c.check) << "</td><td>"
                 << esc(c.case_name) << "</td><td>" << esc(c.dtype) << "</td><td>" << esc(c.failing_ranks)
                 << "</td><td>" << esc(c.culprit) << "</td><td>" << esc(f.path) << ":" << c.line << "</td></tr>\n";
    html << "</table>\n<p>" << failed_checks << " failed checks.</p>\n";

    // --- busbw vs size: one plot per (suite, op, dtype), one series per run and variant ---
    std::map<std::string, std::map<std::string, Series>> bw;  // plot -> series name -> series
    std::map<std::string, std::map<std::string, Series>> sweeps;
    std::map<std::string, std::vector<std::pair<std::string, double>>> overlap;  // metric -> (run/case, value)
    std::map<std::string, std::vector<std::pair<std::string, std::vector<std::pair<std::string, double>>>>> timeline;
    std::vector<std::string> timeline_legend;
    std::vector<Row> others;
    for (auto& d : data)
      for (auto& f : d.perf) {
        // Variants inside one plot: in_place, redop, layout, when they differ within the file.
        std::map<std::string, std::set<std::string>> variants;
        for (auto& r : f.rows) {
          std::string plot = r.suite + ": " + r.op + " " + r.dtype;
          variants[plot].insert(r.in_place + "|" + r.redop + "|" + r.layout);
        }
        for (auto& r : f.rows) {
          std::string plot = r.suite + ": " + r.op + " " + r.dtype;
          if (r.timed() && r.busbw >= 0 && r.bytes > 0 && r.metric.empty()) {
            std::string name = d.label;
            if (variants[plot].size() > 1) {
              if (!r.in_place.empty()) name += r.in_place == "1" ? " in-place" : " out-of-place";
              if (!r.layout.empty()) name += " " + r.layout;
            }
            Series& s = bw[plot][name];
            s.name = name;
            s.pts.push_back({static_cast<double>(r.bytes), r.busbw});
            continue;
          }
          if (r.metric.empty() || !r.has_value) continue;
          std::string lower = r.metric;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (lower.find("overlap") != std::string::npos) {
            overlap[r.suite + ": " + r.metric + (r.unit.empty() ? "" : " (" + r.unit + ")")].push_back(
                {d.label + (r.case_name.empty() ? "" : " " + r.case_name), r.value});
          } else if (r.suite == "ckpt" && is_time_unit(r.unit)) {
            std::string plot = "ckpt save timeline (" + r.unit + ")";
            std::string lane = d.label + " " + (r.case_name.empty() ? r.op : r.case_name);
            auto& lanes = timeline[plot];
            auto it = std::find_if(lanes.begin(), lanes.end(), [&](auto& l) { return l.first == lane; });
            if (it == lanes.end()) lanes.push_back({lane, {}}), it = lanes.end() - 1;
            it->second.push_back({r.metric, r.value});
            if (std::find(timeline_legend.begin(), timeline_legend.end(), r.metric) == timeline_legend.end())
              timeline_legend.push_back(r.metric);
          } else if (r.bytes > 0) {
            std::string plot = r.suite + ": " + r.metric + (r.unit.empty() ? "" : " (" + r.unit + ")") + " vs size";
            Series& s = sweeps[plot][d.label + (r.op.empty() ? "" : " " + r.op)];
            s.name = d.label + (r.op.empty() ? "" : " " + r.op);
            s.pts.push_back({static_cast<double>(r.bytes), r.value});
            others.push_back({&d, &r});
          } else {
            others.push_back({&d, &r});
          }
        }
      }
    auto to_vec = [](std::map<std::string, Series>& m) {
      std::vector<Series> v;
      for (auto& kv : m) v.push_back(kv.second);
      return v;
    };
    html << "<h2>Bus bandwidth vs message size</h2>\n<p>busbw in GB/s (1e9 B/s) from the median iteration time "
            "(nccl-tests convention); higher is better. One line per run; hover a point for its value.</p>\n";
    if (bw.empty()) html << "<p>No timed collective rows.</p>\n";
    for (auto& kv : bw) html << line_plot("busbw", kv.first, "busbw (GB/s)", to_vec(kv.second), true);

    html << "<h2>Sweeps (metric vs size, e.g. DDP bucket size)</h2>\n";
    int nsweeps = 0;
    for (auto& kv : sweeps) {
      bool multi = false;
      for (auto& s : kv.second) multi |= s.second.pts.size() > 1;
      if (!multi) continue;
      ++nsweeps;
      html << line_plot("sweep", kv.first, kv.first.substr(kv.first.find(':') + 2), to_vec(kv.second), true);
    }
    if (!nsweeps) html << "<p>No metric measured at more than one size.</p>\n";

    html << "<h2>Overlap (FSDP / DDP)</h2>\n";
    if (overlap.empty()) html << "<p>No overlap metrics.</p>\n";
    for (auto& kv : overlap) {
      std::vector<std::pair<std::string, std::vector<std::pair<std::string, double>>>> lanes;
      for (auto& p : kv.second) lanes.push_back({p.first, {{kv.first, p.second}}});
      html << bar_plot("overlap", kv.first, kv.first, lanes, {kv.first});
    }

    html << "<h2>Checkpoint save timeline</h2>\n<p>One lane per save; each bar is a phase measured from the "
            "save call (blocking time inside time to durable commit).</p>\n";
    if (timeline.empty()) html << "<p>No checkpoint timings.</p>\n";
    for (auto& kv : timeline) html << bar_plot("ckpt-timeline", kv.first, kv.first, kv.second, timeline_legend);

    html << "<h2>Other metrics</h2>\n<table><tr><th>run</th><th>suite</th><th>op</th><th>case</th><th>metric</th>"
            "<th>value</th><th>unit</th><th>bytes</th></tr>\n";
    for (auto& o : others)
      html << "<tr><td>" << esc(o.run->label) << "</td><td>" << esc(o.r->suite) << "</td><td>" << esc(o.r->op)
           << "</td><td>" << esc(o.r->case_name) << "</td><td>" << esc(o.r->metric) << "</td><td>"
           << num(o.r->value, 6) << "</td><td>" << esc(o.r->unit) << "</td><td>" << o.r->bytes << "</td></tr>\n";
    html << "</table>\n<p>Sources:";
    for (auto& d : data) html << " " << esc(d.label) << " = " << esc(d.source) << ";";
    html << "</p>\n</body></html>\n";

    std::ofstream f(out);
    if (!f) throw InputError("--output: cannot create " + out);
    f << html.str();
    f.close();
    if (!f) throw InputError("--output: write failed: " + out);
    std::printf("dtbench-report: %s (%zu busbw plots, %d sweeps, %zu overlap, %zu timelines, %d failed checks)\n",
                out.c_str(), bw.size(), nsweeps, overlap.size(), timeline.size(), failed_checks);
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-report: %s\n", e.what());
    return kExitBadInput;
  }
}
