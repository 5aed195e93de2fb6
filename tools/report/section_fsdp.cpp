// The fsdp section of dtbench-report (see sections.h).
#include "core/perf_names.h"
#include "sections.h"

namespace dtbench::report {

bool FsdpSection::take(size_t run, const RunData& d, const PerfFile&, const PerfRecord& r) {
  if (r.suite != "fsdp") return false;
  const bool metric = !r.metric.empty() && r.has_value;
  const bool timed = r.metric.empty() && r.timed();
  if (timed && r.op == perf_names::kFsdpStep) {
    size_t p = r.case_name.find("/prefetch=");
    if (p != std::string::npos) {
      step_[d.label + " " + r.case_name.substr(0, p) + " " + r.dtype]["prefetch " + r.case_name.substr(p + 10)]
          .push_back(r.time_med_us / 1e3);
      return true;
    }
  }
  if (metric && r.metric == perf_names::kOverlapEfficiency) {
    efficiency_[d.label + " " + r.case_name + " " + r.dtype]["overlap efficiency"].push_back(r.value);
    return true;
  }
  if (timed && (r.op == "all_gather" || r.op == "reduce_scatter") && r.busbw >= 0 && r.bytes > 0) {
    std::string name = d.label + " " + (r.layout == "coll" ? "plain (coll)" : r.layout);
    Series& s = busbw_[r.op + " " + r.dtype][name];
    s.name = name, s.color = run, s.dashed = r.layout == "coll";
    s.pts.push_back({static_cast<double>(r.bytes), r.busbw});
    return true;
  }
  return false;
}

std::string FsdpSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  if (!step_.keys.empty()) {
    std::vector<std::string> legend = {"prefetch off", "prefetch on"};
    plots.push_back(bar_plot(unique_id("fsdp-step-prefetch"), "fsdp-step", "fsdp: step time, prefetch off / on",
                             "median step time (ms); lower is better", bar_groups(step_, &legend), legend));
  }
  if (!efficiency_.keys.empty()) {
    std::vector<std::string> legend;
    plots.push_back(bar_plot(unique_id("fsdp-overlap-efficiency"), "overlap", "fsdp: overlap efficiency",
                             "fraction of exposed comm hidden by prefetch; higher is better",
                             bar_groups(efficiency_, &legend), legend));
  }
  for (auto& k : busbw_.keys)
    plots.push_back(line_plot(unique_id("fsdp-busbw-" + k), "fsdp-busbw", "fsdp: unit " + k + " busbw", "busbw (GB/s)",
                              "unit size (log scale)", series_of(busbw_[k]), XAxis::bytes));
  *nplots = plots.size();
  return section("fsdp", "FSDP overlap (dtbench-fsdp)",
                 "Step time with prefetch off and on per sharding strategy and run; overlap efficiency = the "
                 "fraction of the exposed communication (step - compute) that prefetching hides (1 = all, 0 = "
                 "none, below 0 = prefetch made it worse). Unit plots: busbw of the all-gather / reduce-scatter "
                 "as the step issues them (in place) next to plain collectives of the same size (dashed).",
                 plots, "No dtbench-fsdp timings.");
}

}  // namespace dtbench::report
