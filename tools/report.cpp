// dtbench-report: one self-contained HTML file (inline SVG, no scripts, no external files) from the
// CSV reports of one or more runs. Sections, each drawn from the rows its suite writes:
//   runs           every report's metadata and check verdicts, then every failed check;
//   coll           busbw vs message size, one plot per collective and dtype, one line per run;
//   ddp            bucket-size sweep: step time and exposed comm vs bucket size, best size marked;
//   fsdp           step time prefetch off/on, overlap efficiency, AG/RS busbw per unit size;
//   ckpt           save timeline: blocking / background write / until commit, one lane per save;
//   ep             all-to-all-v vs all-to-all, two-level grad sync vs one flat all-reduce (bar pairs);
//   other metrics  every row no plot used, in a table.
// Every plot is an <svg class="plot" id="..."> whose data-drawing elements carry data-series.
// Exit 0, or 2 on bad input.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/perf_names.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/perf_csv.h"

using namespace dtbench;

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b"};
const char* color(size_t i) { return kColors[i % 8]; }

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

// Axis and bar labels: 2500 rather than 2.5e+03.
std::string tick(double v) {
  if (std::abs(v) < 1e-12) return "0";
  if (std::abs(v) >= 1000 && std::abs(v) < 1e7) return num(std::round(v), 8);
  return num(v, 3);
}

std::string slug(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '-';
  return o;
}

// 4096 -> "4K" (elements), 1048576 -> "1M".
std::string count_label(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && v >= 1024) v /= 1024, ++u;
  return num(v, 3) + units[u];
}

// A "nice" axis step for about five intervals up to `span`.
double nice_step(double span) {
  if (!(span > 0)) return 1;
  double raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// Plot geometry shared by every plot: the legend lives in the right R pixels (the render test
// counts data pixels left of it).
const int W = 620, L = 72, R = 170, T = 32, B = 50;

// Every plot's SVG ids are unique in the page.
std::set<std::string> g_ids;
std::string unique_id(const std::string& want) {
  std::string id = slug(want);
  for (int i = 2; !g_ids.insert(id).second; ++i) id = slug(want) + "-" + std::to_string(i);
  return id;
}

std::string svg_open(const std::string& id, const std::string& kind, const std::string& title, int h) {
  std::ostringstream o;
  o << "<svg class=\"plot\" id=\"" << id << "\" data-kind=\"" << kind
    << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << h << "\" viewBox=\"0 0 " << W
    << " " << h << "\">\n<title>" << esc(title) << "</title>\n<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\""
    << h << "\" fill=\"#fff\"/>\n<text x=\"" << (W - R + L) / 2 << "\" y=\"19\" text-anchor=\"middle\" font-size=\"13\" "
    << "font-weight=\"bold\">" << esc(title.substr(0, 80)) << "</text>\n";
  return o.str();
}

// One legend entry in the right column; `dash` draws a dashed line sample instead of a block.
std::string legend_entry(int i, const std::string& name, const char* c, bool dash = false) {
  std::ostringstream o;
  double y = T + 6 + 18 * i;
  if (dash)
    o << "<line x1=\"" << W - R + 8 << "\" x2=\"" << W - R + 28 << "\" y1=\"" << y << "\" y2=\"" << y << "\" stroke=\"" << c
      << "\" stroke-width=\"3\" stroke-dasharray=\"5,3\"/>";
  else
    o << "<rect x=\"" << W - R + 8 << "\" y=\"" << y - 5 << "\" width=\"20\" height=\"10\" fill=\"" << c << "\"/>";
  o << "<text x=\"" << W - R + 33 << "\" y=\"" << y + 4 << "\" font-size=\"10\">" << esc(name.substr(0, 24))
    << "</text>\n";
  return o.str();
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;  // (x, y); several y per x (repeats) plot as their median
  size_t color = 0;
  bool dashed = false;
};

// A vertical marker on a line plot (the best bucket size).
struct XMarker {
  double x;
  std::string label;
  size_t color;
};

enum class XAxis { bytes, elements };

// A line plot with x on a log2 axis (message or bucket size) and y from 0.
std::string line_plot(const std::string& id, const std::string& kind, const std::string& title,
                      const std::string& ylabel, const std::string& xlabel, std::vector<Series> series, XAxis axis,
                      const std::vector<XMarker>& markers = {}) {
  const int H = 340;
  double x0 = 1e300, x1 = -1e300, y1 = 0;
  for (auto& s : series) {
    std::map<double, std::vector<double>> by_x;
    for (auto& p : s.pts) by_x[p.first].push_back(p.second);
    s.pts.clear();
    for (auto& kv : by_x) s.pts.push_back({kv.first, median(kv.second)});
    for (auto& p : s.pts) {
      double x = std::log2(std::max(p.first, 1.0));
      x0 = std::min(x0, x), x1 = std::max(x1, x), y1 = std::max(y1, p.second);
    }
  }
  if (x0 > x1) x0 = 0, x1 = 1;
  x0 = std::floor(x0), x1 = std::ceil(x1);
  if (x1 - x0 < 1) x0 -= 1, x1 += 1;  // a single size sits in the middle
  if (y1 <= 0) y1 = 1;
  double ystep = nice_step(y1 * 1.05);
  y1 = ystep * std::ceil(y1 * 1.05 / ystep);
  auto X = [&](double x) { return L + (W - L - R) * (std::log2(std::max(x, 1.0)) - x0) / (x1 - x0); };
  auto Y = [&](double y) { return T + (H - T - B) * (1 - y / y1); };
  std::ostringstream o;
  o << svg_open(id, kind, title, H);
  for (double y = 0; y <= y1 * 1.0001; y += ystep)
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 4 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\" font-size=\"10\">"
      << tick(y) << "</text>\n";
  int step = std::max(1, static_cast<int>(std::ceil((x1 - x0) / 8)));
  for (double e = x0; e <= x1 + 1e-9; e += step) {  // ticks at powers of two
    double v = std::exp2(e), px = X(v);
    std::string lab = axis == XAxis::bytes ? human_bytes(static_cast<uint64_t>(std::llround(v))) : count_label(v);
    o << "<line x1=\"" << px << "\" x2=\"" << px << "\" y1=\"" << H - B << "\" y2=\"" << H - B + 4
      << "\" stroke=\"#333\"/><text x=\"" << px << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"10\">"
      << esc(lab) << "</text>\n";
  }
  o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << H - B << "\" y2=\"" << H - B
    << "\" stroke=\"#333\"/><line x1=\"" << L << "\" x2=\"" << L << "\" y1=\"" << T << "\" y2=\"" << H - B
    << "\" stroke=\"#333\"/>\n<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 10
    << "\" text-anchor=\"middle\" font-size=\"11\">" << esc(xlabel) << "</text>\n<text transform=\"translate(16,"
    << (T + H - B) / 2 << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">" << esc(ylabel) << "</text>\n";
  for (size_t i = 0; i < markers.size(); ++i) {  // labels stacked, right-aligned near the right edge
    const XMarker& m = markers[i];
    bool right = X(m.x) > (L + W - R) / 2;
    o << "<line class=\"marker\" data-series=\"" << esc(m.label) << "\" x1=\"" << X(m.x) << "\" x2=\"" << X(m.x)
      << "\" y1=\"" << T << "\" y2=\"" << H - B << "\" stroke=\"" << color(m.color)
      << "\" stroke-width=\"1.5\" stroke-dasharray=\"2,3\"><title>" << esc(m.label) << "</title></line>\n"
      << "<text data-series=\"" << esc(m.label) << "\" x=\"" << X(m.x) + (right ? -4 : 4) << "\" y=\""
      << T + 10 + 13 * static_cast<double>(i) << "\" text-anchor=\"" << (right ? "end" : "start")
      << "\" font-size=\"10\" font-weight=\"bold\" fill=\"" << color(m.color) << "\">" << esc(m.label) << "</text>\n";
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* c = color(s.color);
    std::string path;
    for (auto& p : s.pts) path += (path.empty() ? "" : " ") + num(X(p.first), 6) + "," + num(Y(p.second), 6);
    o << "<polyline class=\"series\" data-series=\"" << esc(s.name) << "\" fill=\"none\" stroke=\"" << c
      << "\" stroke-width=\"3\"" << (s.dashed ? " stroke-dasharray=\"7,4\"" : "") << " points=\"" << path
      << "\"><title>" << esc(s.name) << "</title></polyline>\n";
    for (auto& p : s.pts)
      o << "<circle data-series=\"" << esc(s.name) << "\" cx=\"" << X(p.first) << "\" cy=\"" << Y(p.second)
        << "\" r=\"4\" fill=\"" << c << "\"><title>" << esc(s.name) << ": "
        << (axis == XAxis::bytes ? human_bytes(static_cast<uint64_t>(p.first)) : count_label(p.first)) << " "
        << num(p.second) << "</title></circle>\n";
    o << legend_entry(static_cast<int>(i), s.name, c, s.dashed);
  }
  o << "</svg>\n";
  return o.str();
}

// Grouped horizontal bars: one group per label, one bar per series inside it (bar pairs when two
// series). Values may be negative (an overlap efficiency below zero); the axis then includes them.
struct Bar {
  std::string series;
  double value;
  std::string tip;
};
struct BarGroup {
  std::string label;
  std::vector<Bar> bars;
};
std::string bar_plot(const std::string& id, const std::string& kind, const std::string& title,
                     const std::string& xlabel, const std::vector<BarGroup>& groups,
                     const std::vector<std::string>& legend) {
  const int left = 200, bar_h = 14, gap = 10;
  int rows = 0;
  for (auto& g : groups) rows += static_cast<int>(g.bars.size());
  int h = std::max(T + B + rows * bar_h + static_cast<int>(groups.size()) * gap + 8,
                   T + B + 18 * static_cast<int>(legend.size()) + 8);
  double v0 = 0, v1 = 0;
  for (auto& g : groups)
    for (auto& b : g.bars) v0 = std::min(v0, b.value), v1 = std::max(v1, b.value);
  if (v1 - v0 <= 0) v1 = 1;
  double step = nice_step((v1 - v0) * 1.05);
  v1 = v1 > 0 ? step * std::ceil(v1 * 1.12 / step) : 0;
  v0 = v0 < 0 ? -step * std::ceil(-v0 * 1.05 / step) : 0;
  auto X = [&](double v) { return left + (W - left - R - 10) * (v - v0) / (v1 - v0); };
  std::ostringstream o;
  o << svg_open(id, kind, title, h);
  for (double v = v0; v <= v1 + 1e-9 * step; v += step)
    o << "<line x1=\"" << X(v) << "\" x2=\"" << X(v) << "\" y1=\"" << T << "\" y2=\"" << h - B
      << "\" stroke=\"#ddd\"/><text x=\"" << X(v) << "\" y=\"" << h - B + 14 << "\" text-anchor=\"middle\" font-size=\"10\">"
      << tick(v) << "</text>\n";
  o << "<line x1=\"" << X(0) << "\" x2=\"" << X(0) << "\" y1=\"" << T << "\" y2=\"" << h - B << "\" stroke=\"#333\"/>\n"
    << "<text x=\"" << (left + W - R) / 2 << "\" y=\"" << h - 14 << "\" text-anchor=\"middle\" font-size=\"11\">"
    << esc(xlabel) << "</text>\n";
  double y = T + 4;
  for (auto& g : groups) {
    double gh = bar_h * static_cast<double>(g.bars.size());
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + gh / 2 + 4 << "\" text-anchor=\"end\" font-size=\"10\">"
      << esc(g.label.substr(0, 34)) << "</text>\n";
    for (auto& b : g.bars) {
      size_t ci = std::find(legend.begin(), legend.end(), b.series) - legend.begin();
      double xa = std::min(X(0), X(b.value)), xb = std::max(X(0), X(b.value));
      std::string tip = g.label + " " + b.series + " = " + num(b.value) + (b.tip.empty() ? "" : " (" + b.tip + ")");
      o << "<rect class=\"bar\" data-series=\"" << esc(b.series) << "\" x=\"" << xa << "\" y=\"" << y + 1 << "\" width=\""
        << xb - xa << "\" height=\"" << bar_h - 2 << "\" fill=\"" << color(ci) << "\"><title>" << esc(tip)
        << "</title></rect>\n";
      // A dot at the value: a zero-length bar (0 % overlap) is still visible.
      o << "<circle data-series=\"" << esc(b.series) << "\" cx=\"" << X(b.value) << "\" cy=\"" << y + bar_h / 2.0
        << "\" r=\"4\" fill=\"" << color(ci) << "\"><title>" << esc(tip) << "</title></circle>\n";
      o << "<text x=\"" << xb + 6 << "\" y=\"" << y + bar_h - 3 << "\" font-size=\"10\" fill=\"#333\">" << tick(b.value)
        << "</text>\n";
      y += bar_h;
    }
    y += gap;
  }
  for (size_t i = 0; i < legend.size(); ++i) o << legend_entry(static_cast<int>(i), legend[i], color(i));
  o << "</svg>\n";
  return o.str();
}

// Checkpoint save timeline: one lane per save, phases as spans on a common time axis from the save
// call, the durable commit as a tick.
struct SaveLane {
  std::string label;
  double blocking_end = 0, write_start = 0, write_end = 0, commit = 0;
};
std::string timeline_plot(const std::string& id, const std::string& title, const std::vector<SaveLane>& lanes) {
  const int left = 200, lane_h = 20;
  const std::vector<std::string> legend = {"blocking (stalled)", "background write", "until commit",
                                           "durable commit"};
  int h = std::max(T + B + lane_h * static_cast<int>(lanes.size()) + 8, T + B + 18 * 4 + 8);
  double vmax = 0;
  for (auto& l : lanes) vmax = std::max({vmax, l.commit, l.write_end, l.blocking_end});
  if (vmax <= 0) vmax = 1;
  double step = nice_step(vmax * 1.05);
  vmax = step * std::ceil(vmax * 1.05 / step);
  auto X = [&](double v) { return left + (W - left - R - 10) * v / vmax; };
  std::ostringstream o;
  o << svg_open(id, "ckpt-timeline", title, h);
  for (double v = 0; v <= vmax + 1e-9 * step; v += step)
    o << "<line x1=\"" << X(v) << "\" x2=\"" << X(v) << "\" y1=\"" << T << "\" y2=\"" << h - B
      << "\" stroke=\"#ddd\"/><text x=\"" << X(v) << "\" y=\"" << h - B + 14 << "\" text-anchor=\"middle\" font-size=\"10\">"
      << tick(v) << "</text>\n";
  o << "<text x=\"" << (left + W - R) / 2 << "\" y=\"" << h - 14 << "\" text-anchor=\"middle\" font-size=\"11\">"
    << "ms from the save call</text>\n";
  auto span = [&](const std::string& phase, size_t ci, double a, double b, double y, double hh, const std::string& lab) {
    if (b < a) b = a;
    o << "<rect class=\"span\" data-series=\"" << phase << "\" x=\"" << X(a) << "\" y=\"" << y << "\" width=\""
      << std::max(2.0, X(b) - X(a)) << "\" height=\"" << hh << "\" fill=\"" << color(ci) << "\"><title>"
      << esc(lab + ": " + phase + " " + num(a) + " .. " + num(b) + " ms") << "</title></rect>\n";
  };
  for (size_t i = 0; i < lanes.size(); ++i) {
    const SaveLane& l = lanes[i];
    double y = T + 4 + lane_h * static_cast<double>(i);
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + 12 << "\" text-anchor=\"end\" font-size=\"10\">"
      << esc(l.label.substr(0, 34)) << "</text>\n";
    span("until commit", 2, l.write_end, l.commit, y + 6, lane_h - 12, l.label);
    span("background write", 1, l.write_start, l.write_end, y + 2, lane_h - 4, l.label);
    span("blocking", 0, 0, l.blocking_end, y + 2, lane_h - 4, l.label);
    o << "<rect class=\"span\" data-series=\"durable commit\" x=\"" << X(l.commit) - 2 << "\" y=\"" << y
      << "\" width=\"4\" height=\"" << lane_h << "\" fill=\"" << color(3) << "\"><title>"
      << esc(l.label + ": durable commit at " + num(l.commit) + " ms") << "</title></rect>\n";
  }
  for (size_t i = 0; i < legend.size(); ++i) o << legend_entry(static_cast<int>(i), legend[i], color(i));
  o << "</svg>\n";
  return o.str();
}

struct Row {
  const RunData* run;
  const PerfRecord* r;
};

std::string section(const std::string& id, const std::string& title, const std::string& intro,
                    const std::vector<std::string>& plots, const std::string& empty_text) {
  std::ostringstream o;
  o << "<section id=\"sec-" << id << "\">\n<h2>" << esc(title) << "</h2>\n<p>" << intro << "</p>\n";
  if (plots.empty()) o << "<p class=\"none\">" << esc(empty_text) << "</p>\n";
  else {
    o << "<div class=\"plots\">\n";
    for (auto& p : plots) o << p;
    o << "</div>\n";
  }
  o << "</section>\n";
  return o.str();
}

// A key -> values map that keeps first-seen order (plots list runs in the order given).
template <typename V>
struct Ordered {
  std::vector<std::string> keys;
  std::map<std::string, V> m;
  V& operator[](const std::string& k) {
    if (!m.count(k)) keys.push_back(k);
    return m[k];
  }
};

// "...buckets=10 D=4..." -> "...D=4...": sweep points of one configuration differ only in their count.
std::string without_bucket_count(const std::string& layout) {
  static const std::regex re(" ?buckets=[0-9]+");
  return std::regex_replace(layout, re, "");
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
      "  dtbench-report -o nccl-ab.html --title 'NCCL 2.21 vs 2.23' results/ab/A results/ab/B\n"};
  std::vector<std::string> runs;
  std::string out = "dtbench-report.html", title = "dtbench report";
  bool force = false;
  app.add_option("runs", runs, "results directories or CSV files (one line per run in each plot)")->required();
  app.add_option("-o,--output", out, "HTML file to write (default dtbench-report.html)");
  app.add_option("--title", title, "page title");
  app.add_flag("--force", force, "overwrite an existing --output file");
  if (int rc = parse_tool_args(app, argc, argv); rc >= 0) return rc;
  try {
    // Never lose an earlier report by accident (the suites never overwrite results either).
    if (!force && ::access(out.c_str(), F_OK) == 0)
      throw InputError("--output " + out + ": file exists (--force overwrites it)");
    std::vector<RunData> data;
    for (auto& r : runs) data.push_back(load_run(r));
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

    // --- summary ---
    html << "<section id=\"sec-runs\">\n<h2>Runs</h2>\n<table><tr><th>run</th><th>suite</th><th>backend</th>"
            "<th>ranks</th><th>nodes</th><th>NCCL</th><th>MPI</th><th>Slurm job</th><th>checks</th></tr>\n";
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
    std::ostringstream failed;
    failed << "<table><tr><th>run</th><th>failed check</th><th>case</th><th>dtype</th><th>failing ranks</th>"
            "<th>culprit</th><th>file:line</th></tr>\n";
    for (auto& d : data)
      for (auto& f : d.checks)
        for (auto& c : f.rows)
          if (!c.pass && ++failed_checks <= 50)
            failed << "<tr class=\"fail\"><td>" << esc(d.label) << "</td><td>" << esc(c.check) << "</td><td>"
                 << esc(c.case_name) << "</td><td>" << esc(c.dtype) << "</td><td>" << esc(c.failing_ranks)
                 << "</td><td>" << esc(c.culprit) << "</td><td>" << esc(f.path) << ":" << c.line << "</td></tr>\n";
    failed << "</table>\n";
    if (failed_checks) html << failed.str();
    html << "<p>" << failed_checks << " failed checks" << (failed_checks > 50 ? " (first 50 listed)" : "")
         << ".</p>\n</section>\n";

    // --- sort every perf row into the plot that shows it ---
    Ordered<Ordered<Series>> bw;            // coll: plot -> series
    Ordered<Ordered<Series>> fsdp_bw;       // fsdp unit AG/RS: plot -> series
    struct SweepLine {
      Series step, exposed, comm;
      std::vector<double> best;
      size_t run = 0;  // colour
    };
    Ordered<Ordered<SweepLine>> sweep;      // ddp: dtype -> run/config -> lines
    Ordered<Ordered<std::vector<double>>> fsdp_step, fsdp_eff, ep_a2a, ep_sync;  // group -> series -> values
    Ordered<std::map<std::string, std::vector<double>>> ckpt_lanes, ckpt_aggr;  // lane -> metric -> values
    std::map<std::string, uint64_t> ckpt_aggr_bytes;
    std::map<std::string, std::vector<double>> ep_flat;  // run|dtype -> flat all-reduce times
    std::vector<Row> others;
    for (size_t run = 0; run < data.size(); ++run)
      for (auto& f : data[run].perf) {
        const RunData& d = data[run];
        std::map<std::string, std::set<std::string>> variants;  // coll plot -> in_place|redop|layout
        for (auto& r : f.rows) variants[r.suite + ": " + r.op + " " + r.dtype].insert(r.in_place + "|" + r.redop + "|" + r.layout);
        for (auto& r : f.rows) {
          const bool metric = !r.metric.empty() && r.has_value;
          const bool timed = r.metric.empty() && r.timed();
          if (r.suite == "coll" && timed && r.busbw >= 0 && r.bytes > 0) {
            std::string plot = r.op + " " + r.dtype;
            std::string name = d.label;
            if (variants[r.suite + ": " + plot].size() > 1) {
              if (!r.in_place.empty()) name += r.in_place == "1" ? " in-place" : " out-of-place";
              if (!r.layout.empty()) name += " " + r.layout;
            }
            Series& s = bw[plot][name];  // a run's colour; in-place dashed
            s.name = name, s.color = run, s.dashed = r.in_place == "1" && variants[r.suite + ": " + plot].size() > 1;
            s.pts.push_back({static_cast<double>(r.bytes), r.busbw});
            continue;
          }
          if (r.suite == "ddp" && r.case_name.rfind("bucket=", 0) == 0) {
            if (const std::optional<uint64_t> bucket = parse_size(r.case_name.substr(7))) {
              const uint64_t size = *bucket;
              std::string cfg = without_bucket_count(r.layout);
              SweepLine& l = sweep[r.dtype][d.label + "\x1f" + cfg];
              l.run = run;
              if (timed && r.op == perf_names::kDdpStep) { l.step.pts.push_back({double(size), r.time_med_us / 1e3}); continue; }
              if (timed && r.op == perf_names::kDdpGradSync) { l.comm.pts.push_back({double(size), r.time_med_us / 1e3}); continue; }
              if (metric && r.metric == perf_names::kExposedComm && r.unit == "us") {
                l.exposed.pts.push_back({double(size), r.value / 1e3});
                continue;
              }
              if (metric && r.metric == perf_names::kBestBucketSize) { l.best.push_back(r.value); continue; }
            }
          }
          if (r.suite == "fsdp") {
            if (timed && r.op == perf_names::kFsdpStep) {
              size_t p = r.case_name.find("/prefetch=");
              if (p != std::string::npos) {
                fsdp_step[d.label + " " + r.case_name.substr(0, p) + " " + r.dtype]["prefetch " + r.case_name.substr(p + 10)]
                    .push_back(r.time_med_us / 1e3);
                continue;
              }
            }
            if (metric && r.metric == perf_names::kOverlapEfficiency) {
              fsdp_eff[d.label + " " + r.case_name + " " + r.dtype]["overlap efficiency"].push_back(r.value);
              continue;
            }
            if (timed && (r.op == "all_gather" || r.op == "reduce_scatter") && r.busbw >= 0 && r.bytes > 0) {
              std::string name = d.label + " " + (r.layout == "coll" ? "plain (coll)" : r.layout);
              Series& s = fsdp_bw[r.op + " " + r.dtype][name];
              s.name = name, s.color = run, s.dashed = r.layout == "coll";
              s.pts.push_back({static_cast<double>(r.bytes), r.busbw});
              continue;
            }
          }
          if (r.suite == "ep" && timed) {
            if (r.op == "all_to_allv" || r.op == "all_to_all") {
              std::string series = r.op == "all_to_allv" ? "all-to-all-v (dispatch)" : "all-to-all (equal bytes)";
              ep_a2a[d.label + " " + r.case_name + " " + r.dtype + " " + human_bytes(r.bytes)][series].push_back(r.time_med_us);
              continue;
            }
            if (r.op == "all_reduce" && r.case_name == "grad sync") {
              ep_flat[d.label + "|" + r.dtype].push_back(r.time_med_us);
              continue;
            }
            if (r.op == perf_names::kTwoLevelSync) {
              std::string mode = r.layout.substr(0, r.layout.find(' '));
              ep_sync[d.label + " " + mode + " " + r.dtype + "\x1f" + d.label + "|" + r.dtype]["two-level sync"].push_back(
                  r.time_med_us);
              continue;
            }
          }
          if (r.suite == "ckpt" && metric && r.op == perf_names::kSaveTimeline) {
            ckpt_lanes[d.label + " " + r.case_name][r.metric].push_back(r.value);
            continue;
          }
          if (r.suite == "ckpt" && metric && r.op == perf_names::kSave &&
              (r.metric == perf_names::kBlockingTime || r.metric == perf_names::kTimeToDurableCommit ||
               r.metric == perf_names::kWriteBwAggregate)) {
            ckpt_aggr[d.label + " " + r.case_name + " (median)"][r.metric].push_back(r.value);
            ckpt_aggr_bytes[d.label + " " + r.case_name + " (median)"] = r.bytes;
          }
          if (metric || r.timed()) others.push_back({&d, &r});
        }
      }
    auto to_vec = [](Ordered<Series>& m) {
      std::vector<Series> v;
      for (auto& k : m.keys) v.push_back(m.m[k]);
      return v;
    };
    int nplots = 0;

    // --- coll ---
    std::vector<std::string> plots;
    for (auto& k : bw.keys)
      plots.push_back(line_plot(unique_id("busbw-coll-" + k), "busbw", "coll: " + k, "busbw (GB/s)",
                                "message size (log scale)", to_vec(bw[k]), XAxis::bytes));
    nplots += int(plots.size());
    const size_t n_bw = plots.size();
    html << section("busbw", "Bus bandwidth vs message size (dtbench-coll)",
                    "busbw in GB/s (1e9 B/s) from the median iteration time (nccl-tests convention); higher is "
                    "better. One plot per collective and dtype, one line per run (and per in-place/out-of-place "
                    "variant); repeats of a run are drawn as their median. Hover a point for its value.",
                    plots, "No dtbench-coll timings.");

    // --- ddp bucket sweep ---
    plots.clear();
    int n_sweeps = 0;
    for (auto& dt : sweep.keys) {
      std::vector<Series> series;
      std::vector<XMarker> markers;
      bool multi_run = sweep[dt].keys.size() > 1;
      for (auto& k : sweep[dt].keys) {
        SweepLine& l = sweep[dt][k];
        std::string label = k.substr(0, k.find('\x1f'));
        if (multi_run && std::count_if(sweep[dt].keys.begin(), sweep[dt].keys.end(), [&](const std::string& o) {
              return o.substr(0, o.find('\x1f')) == label;
            }) > 1)
          label += " " + k.substr(k.find('\x1f') + 1).substr(0, 30);
        std::set<double> sizes;
        for (auto& p : l.step.pts) sizes.insert(p.first);
        for (auto& p : l.comm.pts) sizes.insert(p.first);
        if (sizes.size() < 2) continue;  // one bucket size is no sweep
        Series& main = l.step.pts.empty() ? l.comm : l.step;
        main.name = label + (l.step.pts.empty() ? " grad sync" : " step time");
        const size_t ci = l.run;
        main.color = ci;
        series.push_back(main);
        if (!l.exposed.pts.empty()) {
          l.exposed.name = label + " exposed comm", l.exposed.color = ci, l.exposed.dashed = true;
          series.push_back(l.exposed);
        }
        // The suite's own verdict when it wrote one, else the size with the lowest median time.
        double best = 0;
        if (!l.best.empty()) best = median(l.best);
        else {
          std::map<double, std::vector<double>> by;
          for (auto& p : main.pts) by[p.first].push_back(p.second);
          double bt = 1e300;
          for (auto& kv : by)
            if (median(kv.second) < bt) bt = median(kv.second), best = kv.first;
        }
        if (best > 0) markers.push_back({best, "best " + count_label(best) + (multi_run ? " " + label : ""), ci});
      }
      if (series.empty()) continue;
      ++n_sweeps;
      plots.push_back(line_plot(unique_id("ddp-bucket-sweep-" + dt), "ddp-sweep", "ddp: bucket-size sweep " + dt,
                                "time (ms)", "bucket cap (elements, log scale)", series, XAxis::elements, markers));
    }
    nplots += int(plots.size());
    html << section("ddp", "DDP bucket-size sweep (dtbench-ddp --bucket-sweep)",
                    "Per bucket cap: the median step time (solid; grad sync time when run without a simulated "
                    "backward) and the exposed communication, step minus backward compute (dashed). The dotted "
                    "line marks the best bucket size the suite chose (lowest step time). Small buckets pay latency "
                    "per collective; large ones start communicating late and leave it exposed.",
                    plots, "No bucket sweep (run dtbench-ddp --bucket-sweep MIN:MAX).");

    // --- fsdp ---
    plots.clear();
    auto groups_of = [](Ordered<Ordered<std::vector<double>>>& m, std::vector<std::string>* legend) {
      std::vector<BarGroup> groups;
      for (auto& g : m.keys) {
        BarGroup bg{g.substr(0, g.find('\x1f')), {}};
        for (auto& s : m[g].keys) {
          bg.bars.push_back({s, median(m[g][s]), ""});
          if (std::find(legend->begin(), legend->end(), s) == legend->end()) legend->push_back(s);
        }
        groups.push_back(bg);
      }
      return groups;
    };
    if (!fsdp_step.keys.empty()) {
      std::vector<std::string> legend = {"prefetch off", "prefetch on"};
      plots.push_back(bar_plot(unique_id("fsdp-step-prefetch"), "fsdp-step", "fsdp: step time, prefetch off / on",
                               "median step time (ms); lower is better", groups_of(fsdp_step, &legend), legend));
    }
    if (!fsdp_eff.keys.empty()) {
      std::vector<std::string> legend;
      plots.push_back(bar_plot(unique_id("fsdp-overlap-efficiency"), "overlap", "fsdp: overlap efficiency",
                               "fraction of exposed comm hidden by prefetch; higher is better", groups_of(fsdp_eff, &legend),
                               legend));
    }
    for (auto& k : fsdp_bw.keys)
      plots.push_back(line_plot(unique_id("fsdp-busbw-" + k), "fsdp-busbw", "fsdp: unit " + k + " busbw", "busbw (GB/s)",
                                "unit size (log scale)", to_vec(fsdp_bw[k]), XAxis::bytes));
    nplots += int(plots.size());
    const size_t n_fsdp = plots.size();
    html << section("fsdp", "FSDP overlap (dtbench-fsdp)",
                    "Step time with prefetch off and on per sharding strategy and run; overlap efficiency = the "
                    "fraction of the exposed communication (step - compute) that prefetching hides (1 = all, 0 = "
                    "none, below 0 = prefetch made it worse). Unit plots: busbw of the all-gather / reduce-scatter "
                    "as the step issues them (in place) next to plain collectives of the same size (dashed).",
                    plots, "No dtbench-fsdp timings.");

    // --- ckpt timeline ---
    plots.clear();
    std::vector<SaveLane> lanes;
    std::set<std::string> timeline_runs;
    for (auto& k : ckpt_lanes.keys) {
      auto& m = ckpt_lanes[k];
      auto v = [&](const char* name) { return m.count(name) ? median(m[name]) : 0.0; };
      SaveLane l{k, v(perf_names::kBlockingEnd), v(perf_names::kWriteStart), v(perf_names::kWriteEnd), v(perf_names::kDurableCommit)};
      if (!m.count(perf_names::kWriteStart)) l.write_start = l.blocking_end;
      if (!m.count(perf_names::kWriteEnd)) l.write_end = l.write_start;
      lanes.push_back(l);
      timeline_runs.insert(k.substr(0, k.find(' ')));
    }
    // Older ckpt reports have only the medians over saves: one lane per case from those.
    for (auto& k : ckpt_aggr.keys) {
      if (timeline_runs.count(k.substr(0, k.find(' ')))) continue;
      auto& m = ckpt_aggr[k];
      if (!m.count(perf_names::kBlockingTime) || !m.count(perf_names::kTimeToDurableCommit)) continue;
      SaveLane l{k, median(m[perf_names::kBlockingTime]), median(m[perf_names::kBlockingTime]), 0,
                 median(m[perf_names::kTimeToDurableCommit])};
      double bw_gbps = m.count(perf_names::kWriteBwAggregate) ? median(m[perf_names::kWriteBwAggregate]) : 0;
      l.write_end = bw_gbps > 0 ? std::min(l.commit, l.write_start + double(ckpt_aggr_bytes[k]) / (bw_gbps * 1e9) * 1e3)
                                : l.write_start;
      lanes.push_back(l);
    }
    if (!lanes.empty())
      plots.push_back(timeline_plot(unique_id("ckpt-timeline"), "ckpt: async save timeline", lanes));
    nplots += int(plots.size());
    html << section("ckpt", "Checkpoint save timeline (dtbench-ckpt)",
                    "One lane per asynchronous save (run, layout, training step), in ms from the save call: "
                    "<b>blocking</b> is the time training is stalled (staging the shards into host memory), "
                    "<b>background write</b> runs the writer threads (first writer start to last fsync) while "
                    "training continues, <b>until commit</b> waits for the next step boundary at which every rank's "
                    "writers are done, and the tick is the durable commit (index and COMMIT file fsynced).",
                    plots, "No checkpoint timings.");

    // --- ep ---
    plots.clear();
    if (!ep_a2a.keys.empty()) {
      std::vector<std::string> legend = {"all-to-all-v (dispatch)", "all-to-all (equal bytes)"};
      plots.push_back(bar_plot(unique_id("ep-all-to-all"), "ep-a2a", "ep: dispatch all-to-all-v vs all-to-all",
                               "median time (us); lower is better", groups_of(ep_a2a, &legend), legend));
    }
    if (!ep_sync.keys.empty()) {
      for (auto& g : ep_sync.keys) {
        auto& fl = ep_flat[g.substr(g.find('\x1f') + 1)];
        if (!fl.empty()) ep_sync[g]["flat all-reduce"] = fl;
      }
      std::vector<std::string> legend = {"two-level sync", "flat all-reduce"};
      plots.push_back(bar_plot(unique_id("ep-grad-sync"), "ep-sync", "ep: two-level grad sync vs flat all-reduce",
                               "median time (us); lower is better", groups_of(ep_sync, &legend), legend));
    }
    nplots += int(plots.size());
    const size_t n_ep = plots.size();
    html << section("ep", "Expert parallelism (dtbench-ep)",
                    "Bar pairs from one run each: the MoE token dispatch (all-to-all-v with the routed, uneven "
                    "counts) next to a plain all-to-all of the same bytes per rank, and the two-level gradient "
                    "sync (dense grads over dp_cp, expert grads over expt_dp; all-reduce or distributed optimizer) "
                    "next to one flat all-reduce of the same bytes over the world.",
                    plots, "No dtbench-ep timings.");

    // --- everything else ---
    html << "<section id=\"sec-other\">\n<h2>Other metrics</h2>\n<table><tr><th>run</th><th>suite</th><th>op</th>"
            "<th>case</th><th>metric</th><th>value</th><th>unit</th><th>bytes</th></tr>\n";
    for (auto& o : others) {
      bool m = !o.r->metric.empty();
      html << "<tr><td>" << esc(o.run->label) << "</td><td>" << esc(o.r->suite) << "</td><td>" << esc(o.r->op)
           << "</td><td>" << esc(o.r->case_name) << "</td><td>" << esc(m ? o.r->metric : "median time") << "</td><td>"
           << num(m ? o.r->value : o.r->time_med_us, 6) << "</td><td>" << esc(m ? o.r->unit : "us") << "</td><td>"
           << o.r->bytes << "</td></tr>\n";
    }
    html << "</table>\n</section>\n<p>Sources:";
    for (auto& d : data) html << " " << esc(d.label) << " = " << esc(d.source) << ";";
    html << "</p>\n</body></html>\n";

    std::ofstream f(out);
    if (!f) throw InputError("--output: cannot create " + out);
    f << html.str();
    f.close();
    if (!f) throw InputError("--output: write failed: " + out);
    std::printf(
        "dtbench-report: %s (%d plots: %zu busbw, %d bucket sweeps, %zu fsdp, %zu ckpt timelines, %zu ep; %d failed "
        "checks)\n",
        out.c_str(), nplots, n_bw, n_sweeps, n_fsdp, lanes.empty() ? size_t(0) : size_t(1), n_ep, failed_checks);
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "dtbench-report: %s\n", e.what());
    return kExitBadInput;
  }
}
