#pragma once
// The SVG plots of dtbench-report, as strings of inline SVG for one self-contained HTML page: line
// plots over a log2 size axis (one polyline per series, a dot per point, optional vertical markers),
// grouped horizontal bars, and the checkpoint save timeline. Every plot is an <svg class="plot"
// id="..." data-kind="..."> of a fixed width with its legend in a right-hand column, and every element
// that draws data carries data-series="<series name>" (the integration test finds plots and series by
// these, and blanks the data by deleting the lines that hold data-series).
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dtbench::report {

// Text for HTML content and attribute values.
std::string esc(const std::string& s);
// %g with `prec` significant digits.
std::string num(double v, int prec = 4);
// 4096 -> "4K", 1048576 -> "1M" (element counts).
std::string count_label(double v);

// `want` made into an id that no earlier call returned (a numbered suffix when taken): ids are unique
// across the page, so the page's sections must render in a fixed order for the ids to be stable.
std::string unique_id(const std::string& want);

// A key -> value map that keeps first-seen order (plots list runs in the order given).
template <typename V>
struct Ordered {
  std::vector<std::string> keys;
  std::map<std::string, V> m;
  V& operator[](const std::string& k) {
    if (!m.count(k)) keys.push_back(k);
    return m[k];
  }
};

// The spread of a point (its iterations' p10..p90, in the plot's unit), drawn as a vertical bar.
struct ErrorBar {
  double x, lo, hi;
};
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;  // (x, y); several y per x (repeats) plot as their median
  std::vector<ErrorBar> errors;                // optional; several per x plot as their medians' bar
  size_t color = 0;                            // index into the palette: a run's colour
  bool dashed = false;
};
// The values of `m` in first-seen order.
std::vector<Series> series_of(const Ordered<Series>& m);

// A vertical marker on a line plot (the best bucket size).
struct XMarker {
  double x;
  std::string label;
  size_t color;
};

enum class XAxis { bytes, elements };

// A line plot with x on a log2 axis (message or bucket size, labelled per `axis`) and y from 0.
std::string line_plot(const std::string& id, const std::string& kind, const std::string& title,
                      const std::string& ylabel, const std::string& xlabel, std::vector<Series> series, XAxis axis,
                      const std::vector<XMarker>& markers = {});

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
// A legend name as the lines of the legend column: at most `width` characters each, broken after a
// space, '/', '_' or '-' where one is near, at most `max_lines` (the last then shows the name's end
// after an ellipsis, since run labels differ at their ends).
std::vector<std::string> legend_lines(const std::string& name, size_t width, size_t max_lines);

// A bar's colour is its series' position in `legend`.
std::string bar_plot(const std::string& id, const std::string& kind, const std::string& title,
                     const std::string& xlabel, const std::vector<BarGroup>& groups,
                     const std::vector<std::string>& legend);
// One group per key of `m`, one bar per series with the median of its values. A key may carry a
// lookup suffix after '\x1f' that is not shown. Series not yet in `legend` are appended to it.
std::vector<BarGroup> bar_groups(const Ordered<Ordered<std::vector<double>>>& m, std::vector<std::string>* legend);

// Checkpoint save timeline: one lane per save, phases as spans on a common time axis from the save
// call (ms), the durable commit as a tick.
struct SaveLane {
  std::string label;
  double blocking_end = 0, write_start = 0, write_end = 0, commit = 0;
};
std::string timeline_plot(const std::string& id, const std::string& title, const std::vector<SaveLane>& lanes);

// A source x destination matrix (dtbench-p2p's links): cell (i, j) is the value from rows[i] to
// cols[j] (NaN: no such link, drawn blank), coloured by its ratio to `reference` (red at 0, yellow at
// 0.5, green at 1 and above), with the value written in cells that are large enough; `marked`
// cells (wrong data) get a black frame and a "!". Every cell carries data-series="link".
struct HeatCell {
  double value;
  bool marked;
  std::string tip;
};
std::string heat_map(const std::string& id, const std::string& title, const std::vector<std::string>& rows,
                     const std::vector<std::string>& cols, const std::vector<std::vector<HeatCell>>& cells,
                     double reference, const std::string& unit);

// A page section <section id="sec-ID">: title, intro (HTML, not escaped), then the plots in a grid,
// or `empty_text` when there are none.
std::string section(const std::string& id, const std::string& title, const std::string& intro,
                    const std::vector<std::string>& plots, const std::string& empty_text);

}  // namespace dtbench::report
