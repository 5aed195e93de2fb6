// The SVG plot unit of dtbench-report (see svg_plot.h): plot geometry, palette, axes and legends.
#include "svg_plot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "core/units.h"  // human_bytes, median

namespace dtbench::report {
namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b"};
const char* color(size_t i) { return kColors[i % 8]; }

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

// Every id unique_id() handed out so far in this page.
std::set<std::string> g_ids;

std::string svg_open(const std::string& id, const std::string& kind, const std::string& title, int h) {
  std::ostringstream o;
  o << "<svg class=\"plot\" id=\"" << id << "\" data-kind=\"" << kind
    << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << h << "\" viewBox=\"0 0 " << W
    << " " << h << "\">\n<title>" << esc(title) << "</title>\n<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\""
    << h << "\" fill=\"#fff\"/>\n<text x=\"" << (W - R + L) / 2 << "\" y=\"19\" text-anchor=\"middle\" font-size=\"13\" "
    << "font-weight=\"bold\">" << esc(title.substr(0, 80)) << "</text>\n";
  return o.str();
}

}  // namespace

std::vector<std::string> legend_lines(const std::string& name, size_t width, size_t max_lines) {
  // Break at a space where one falls in the second half of the line, else after '/', '_' or '-',
  // else cut the word.
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < name.size() && lines.size() < max_lines) {
    size_t len = std::min(width, name.size() - pos);
    if (pos + len < name.size()) {
      const size_t last = pos + len;  // the first character that does not fit; a space there is a break too
      size_t brk = name.find_last_of(' ', last);
      if (brk == std::string::npos || brk < pos + width / 2) brk = name.find_last_of("/_-", last - 1);
      if (brk != std::string::npos && brk >= pos + width / 2) len = brk - pos + 1;
    }
    std::string line = name.substr(pos, len);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
    pos += len;
    while (pos < name.size() && name[pos] == ' ') ++pos;
  }
  if (pos < name.size()) {  // more than max_lines: the last line keeps the name's end, which tells runs apart
    std::string tail = name.substr(name.size() - std::min(name.size(), width - 1));
    lines.back() = "\u2026" + tail;
  }
  return lines;
}

namespace {

// The legend column at the right of a plot: entries top to bottom, a long name wrapped over up to
// three lines (the full name in its tooltip), so that labels such as A/B run names fit the column.
class LegendColumn {
 public:
  std::string entry(const std::string& name, const char* c, bool dash = false) {
    std::ostringstream o;
    const double y = y_;
    o << "<g class=\"legend\"><title>" << esc(name) << "</title>";
    if (dash)
      o << "<line x1=\"" << W - R + 8 << "\" x2=\"" << W - R + 28 << "\" y1=\"" << y << "\" y2=\"" << y << "\" stroke=\""
        << c << "\" stroke-width=\"3\" stroke-dasharray=\"5,3\"/>";
    else
      o << "<rect x=\"" << W - R + 8 << "\" y=\"" << y - 5 << "\" width=\"20\" height=\"10\" fill=\"" << c << "\"/>";
    const std::vector<std::string> lines = legend_lines(name, kLegendChars, 3);
    o << "<text x=\"" << W - R + 33 << "\" y=\"" << y + 4 << "\" font-size=\"10\">";
    for (size_t i = 0; i < lines.size(); ++i)
      o << "<tspan x=\"" << W - R + 33 << "\"" << (i ? " dy=\"11\"" : "") << ">" << esc(lines[i]) << "</tspan>";
    o << "</text></g>\n";
    y_ += 18 + 11 * double(lines.size() - 1);
    return o.str();
  }
  // The height the entries for these names take.
  static int height(const std::vector<std::string>& names) {
    int h = 0;
    for (auto& n : names) h += 18 + 11 * int(legend_lines(n, kLegendChars, 3).size() - 1);
    return h;
  }

 private:
  // What fits the column at font-size 10 (137 px from the text's start to the plot's edge).
  static constexpr size_t kLegendChars = 24;
  double y_ = T + 6;
};

}  // namespace

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

std::string num(double v, int prec) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.*g", prec, v);
  return b;
}

std::string count_label(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && v >= 1024) v /= 1024, ++u;
  return num(v, 3) + units[u];
}

std::string unique_id(const std::string& want) {
  std::string id = slug(want);
  for (int i = 2; !g_ids.insert(id).second; ++i) id = slug(want) + "-" + std::to_string(i);
  return id;
}

std::vector<Series> series_of(const Ordered<Series>& m) {
  std::vector<Series> v;
  for (auto& k : m.keys) v.push_back(m.m.at(k));
  return v;
}

std::string line_plot(const std::string& id, const std::string& kind, const std::string& title,
                      const std::string& ylabel, const std::string& xlabel, std::vector<Series> series, XAxis axis,
                      const std::vector<XMarker>& markers) {
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
    std::map<double, std::pair<std::vector<double>, std::vector<double>>> err_x;
    for (auto& e : s.errors) err_x[e.x].first.push_back(e.lo), err_x[e.x].second.push_back(e.hi);
    s.errors.clear();
    for (auto& kv : err_x) {
      s.errors.push_back({kv.first, median(kv.second.first), median(kv.second.second)});
      y1 = std::max(y1, s.errors.back().hi);
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
  LegendColumn legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* c = color(s.color);
    std::string path;
    for (auto& p : s.pts) path += (path.empty() ? "" : " ") + num(X(p.first), 6) + "," + num(Y(p.second), 6);
    o << "<polyline class=\"series\" data-series=\"" << esc(s.name) << "\" fill=\"none\" stroke=\"" << c
      << "\" stroke-width=\"3\"" << (s.dashed ? " stroke-dasharray=\"7,4\"" : "") << " points=\"" << path
      << "\"><title>" << esc(s.name) << "</title></polyline>\n";
    for (auto& e : s.errors)  // a bar with caps from p10 to p90
      o << "<path class=\"errbar\" data-series=\"" << esc(s.name) << "\" stroke=\"" << c
        << "\" stroke-width=\"1.2\" fill=\"none\" d=\"M" << X(e.x) - 3 << "," << Y(e.hi) << "h6M" << X(e.x) << ","
        << Y(e.hi) << "V" << Y(e.lo) << "M" << X(e.x) - 3 << "," << Y(e.lo) << "h6\"><title>" << esc(s.name)
        << ": p10..p90 " << num(e.lo) << " .. " << num(e.hi) << "</title></path>\n";
    for (auto& p : s.pts)
      o << "<circle data-series=\"" << esc(s.name) << "\" cx=\"" << X(p.first) << "\" cy=\"" << Y(p.second)
        << "\" r=\"4\" fill=\"" << c << "\"><title>" << esc(s.name) << ": "
        << (axis == XAxis::bytes ? human_bytes(static_cast<uint64_t>(p.first)) : count_label(p.first)) << " "
        << num(p.second) << "</title></circle>\n";
    o << legend.entry(s.name, c, s.dashed);
  }
  o << "</svg>\n";
  return o.str();
}

std::string bar_plot(const std::string& id, const std::string& kind, const std::string& title,
                     const std::string& xlabel, const std::vector<BarGroup>& groups,
                     const std::vector<std::string>& legend) {
  const int left = 200, bar_h = 14, gap = 10;
  int rows = 0;
  for (auto& g : groups) rows += static_cast<int>(g.bars.size());
  int h = std::max(T + B + rows * bar_h + static_cast<int>(groups.size()) * gap + 8,
                   T + B + LegendColumn::height(legend) + 8);
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
  LegendColumn column;
  for (size_t i = 0; i < legend.size(); ++i) o << column.entry(legend[i], color(i));
  o << "</svg>\n";
  return o.str();
}

std::vector<BarGroup> bar_groups(const Ordered<Ordered<std::vector<double>>>& m, std::vector<std::string>* legend) {
  std::vector<BarGroup> groups;
  for (auto& g : m.keys) {
    const Ordered<std::vector<double>>& bars = m.m.at(g);
    BarGroup bg{g.substr(0, g.find('\x1f')), {}};
    for (auto& s : bars.keys) {
      bg.bars.push_back({s, median(bars.m.at(s)), ""});
      if (std::find(legend->begin(), legend->end(), s) == legend->end()) legend->push_back(s);
    }
    groups.push_back(bg);
  }
  return groups;
}

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
  LegendColumn column;
  for (size_t i = 0; i < legend.size(); ++i) o << column.entry(legend[i], color(i));
  o << "</svg>\n";
  return o.str();
}

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

}  // namespace dtbench::report

namespace dtbench::report {

std::string heat_map(const std::string& id, const std::string& title, const std::vector<std::string>& rows,
                     const std::vector<std::string>& cols, const std::vector<std::vector<HeatCell>>& cells,
                     double reference, const std::string& unit) {
  const int label_w = 110, top = T + 40;
  const int avail = W - label_w - 20;
  const int cell = std::max(8, std::min(40, avail / std::max<int>(1, int(cols.size()))));
  const int h = top + cell * int(rows.size()) + 40;
  std::ostringstream o;
  o << svg_open(id, "heatmap", title, h);
  o << "<text x=\"" << label_w + cell * int(cols.size()) / 2 << "\" y=\"" << T + 8
    << "\" text-anchor=\"middle\" font-size=\"10\">destination</text>\n"
    << "<text x=\"12\" y=\"" << top - 6 << "\" font-size=\"10\">source</text>\n";
  for (size_t j = 0; j < cols.size(); ++j)
    o << "<text x=\"" << label_w + cell * int(j) + cell / 2 << "\" y=\"" << top - 4
      << "\" text-anchor=\"middle\" font-size=\"9\">" << esc(cols[j].substr(0, 6)) << "<title>" << esc(cols[j])
      << "</title></text>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const int y = top + cell * int(i);
    o << "<text x=\"" << label_w - 4 << "\" y=\"" << y + cell / 2 + 3 << "\" text-anchor=\"end\" font-size=\"9\">"
      << esc(rows[i].substr(0, 18)) << "<title>" << esc(rows[i]) << "</title></text>\n";
    for (size_t j = 0; j < cols.size() && j < cells[i].size(); ++j) {
      const HeatCell& c = cells[i][j];
      if (!(c.value == c.value)) continue;  // NaN: no link (the diagonal)
      const double ratio = reference > 0 ? std::max(0.0, std::min(1.0, c.value / reference)) : 1;
      const int x = label_w + cell * int(j);
      o << "<rect data-series=\"link\" x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell - 1 << "\" height=\""
        << cell - 1 << "\" fill=\"hsl(" << int(120 * ratio) << ",70%,55%)\"" << (c.marked ? " stroke=\"#000\" stroke-width=\"2\"" : "")
        << "><title>" << esc(c.tip) << "</title></rect>\n";
      if (cell >= 28 || c.marked)
        o << "<text x=\"" << x + cell / 2 << "\" y=\"" << y + cell / 2 + 3 << "\" text-anchor=\"middle\" font-size=\"8\">"
          << (c.marked ? "!" : tick(c.value)) << "</text>\n";
    }
  }
  o << "<text x=\"" << label_w << "\" y=\"" << h - 14 << "\" font-size=\"10\">colour: " << unit << " / median "
    << num(reference, 3) << " (red 0, yellow 0.5, green 1); ! = wrong data received</text>\n</svg>\n";
  return o.str();
}

}  // namespace dtbench::report
