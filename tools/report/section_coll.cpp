// The coll section of dtbench-report (see sections.h).
#include "sections.h"

namespace dtbench::report {

bool CollSection::take(size_t run, const RunData& d, const PerfFile& f, const PerfRecord& r) {
  if (r.suite != "coll" || !r.metric.empty() || !r.timed() || r.busbw < 0 || r.bytes == 0) return false;
  // Rows come file by file: count the file's variants of each plot when its first row comes.
  if (variants_of_ != &f) {
    variants_.clear();
    for (auto& row : f.rows)
      if (row.suite == "coll") variants_[row.op + " " + row.dtype].insert(row.in_place + "|" + row.redop + "|" + row.layout);
    variants_of_ = &f;
  }
  std::string plot = r.op + " " + r.dtype;
  const bool has_variants = variants_[plot].size() > 1;
  std::string name = d.label;
  if (has_variants) {
    if (!r.in_place.empty()) name += r.in_place == "1" ? " in-place" : " out-of-place";
    if (!r.layout.empty()) name += " " + r.layout;
  }
  Series& s = bw_[plot][name];  // a run's colour; in-place dashed
  s.name = name, s.color = run, s.dashed = r.in_place == "1" && has_variants;
  s.pts.push_back({static_cast<double>(r.bytes), r.busbw});
  // busbw is bytes over time: the iterations' p90 time gives the low end, p10 the high end.
  if (r.time_p10_us > 0 && r.time_p90_us > 0)
    s.errors.push_back({static_cast<double>(r.bytes), r.busbw * r.time_med_us / r.time_p90_us,
                        r.busbw * r.time_med_us / r.time_p10_us});
  return true;
}

std::string CollSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  for (auto& k : bw_.keys)
    plots.push_back(line_plot(unique_id("busbw-coll-" + k), "busbw", "coll: " + k, "busbw (GB/s)",
                              "message size (log scale)", series_of(bw_[k]), XAxis::bytes));
  *nplots = plots.size();
  return section("busbw", "Bus bandwidth vs message size (dtbench-coll)",
                 "busbw in GB/s (1e9 B/s) from the median iteration time (nccl-tests convention); higher is "
                 "better. One plot per collective and dtype, one line per run (and per in-place/out-of-place "
                 "variant); repeats of a run are drawn as their median, with a bar from the busbw of the iterations' "
                 "90th-percentile time to that of their 10th (the spread of one run). Hover a point for its value.",
                 plots, "No dtbench-coll timings.");
}

}  // namespace dtbench::report
