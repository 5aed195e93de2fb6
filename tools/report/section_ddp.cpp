// The ddp bucket-sweep section of dtbench-report (see sections.h).
#include <algorithm>
#include <optional>
#include <regex>
#include <set>

#include "core/perf_names.h"
#include "sections.h"

namespace dtbench::report {
namespace {

// "...buckets=10 D=4..." -> "...D=4...": sweep points of one configuration differ only in their count.
std::string without_bucket_count(const std::string& layout) {
  static const std::regex re(" ?buckets=[0-9]+");
  return std::regex_replace(layout, re, "");
}

}  // namespace

bool DdpSection::take(size_t run, const RunData& d, const PerfFile&, const PerfRecord& r) {
  if (r.suite != "ddp" || r.case_name.rfind("bucket=", 0) != 0) return false;
  const std::optional<uint64_t> bucket = parse_size(r.case_name.substr(7));
  if (!bucket) return false;
  const double size = double(*bucket);
  const bool metric = !r.metric.empty() && r.has_value;
  const bool timed = r.metric.empty() && r.timed();
  SweepLine& l = sweep_[r.dtype][d.label + "\x1f" + without_bucket_count(r.layout)];
  l.run = run;
  if (timed && r.op == perf_names::kDdpStep) l.step.pts.push_back({size, r.time_med_us / 1e3});
  else if (timed && r.op == perf_names::kDdpGradSync) l.comm.pts.push_back({size, r.time_med_us / 1e3});
  else if (metric && r.metric == perf_names::kExposedComm && r.unit == "us") l.exposed.pts.push_back({size, r.value / 1e3});
  else if (metric && r.metric == perf_names::kBestBucketSize) l.best.push_back(r.value);
  else return false;
  return true;
}

std::string DdpSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  for (auto& dt : sweep_.keys) {
    std::vector<Series> series;
    std::vector<XMarker> markers;
    bool multi_run = sweep_[dt].keys.size() > 1;
    for (auto& k : sweep_[dt].keys) {
      SweepLine& l = sweep_[dt][k];
      std::string label = k.substr(0, k.find('\x1f'));
      if (multi_run && std::count_if(sweep_[dt].keys.begin(), sweep_[dt].keys.end(), [&](const std::string& o) {
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
    plots.push_back(line_plot(unique_id("ddp-bucket-sweep-" + dt), "ddp-sweep", "ddp: bucket-size sweep " + dt,
                              "time (ms)", "bucket cap (elements, log scale)", series, XAxis::elements, markers));
  }
  *nplots = plots.size();
  return section("ddp", "DDP bucket-size sweep (dtbench-ddp --bucket-sweep)",
                 "Per bucket cap: the median step time (solid; grad sync time when run without a simulated "
                 "backward) and the exposed communication, step minus backward compute (dashed). The dotted "
                 "line marks the best bucket size the suite chose (lowest step time). Small buckets pay latency "
                 "per collective; large ones start communicating late and leave it exposed.",
                 plots, "No bucket sweep (run dtbench-ddp --bucket-sweep MIN:MAX).");
}

}  // namespace dtbench::report
