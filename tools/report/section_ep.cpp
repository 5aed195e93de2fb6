// The ep section of dtbench-report (see sections.h).
#include "core/perf_names.h"
#include "sections.h"

namespace dtbench::report {

bool EpSection::take(size_t, const RunData& d, const PerfFile&, const PerfRecord& r) {
  if (r.suite != "ep" || !r.metric.empty() || !r.timed()) return false;
  if (r.op == "all_to_allv" || r.op == "all_to_all") {
    std::string series = r.op == "all_to_allv" ? "all-to-all-v (dispatch)" : "all-to-all (equal bytes)";
    a2a_[d.label + " " + r.case_name + " " + r.dtype + " " + human_bytes(r.bytes)][series].push_back(r.time_med_us);
    return true;
  }
  if (r.op == "all_reduce" && r.case_name == "grad sync") {
    flat_[d.label + "|" + r.dtype].push_back(r.time_med_us);
    return true;
  }
  if (r.op == perf_names::kTwoLevelSync) {
    // The group key carries the run|dtype of its flat all-reduce after '\x1f' (not shown).
    std::string mode = r.layout.substr(0, r.layout.find(' '));
    sync_[d.label + " " + mode + " " + r.dtype + "\x1f" + d.label + "|" + r.dtype]["two-level sync"].push_back(
        r.time_med_us);
    return true;
  }
  return false;
}

std::string EpSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  if (!a2a_.keys.empty()) {
    std::vector<std::string> legend = {"all-to-all-v (dispatch)", "all-to-all (equal bytes)"};
    plots.push_back(bar_plot(unique_id("ep-all-to-all"), "ep-a2a", "ep: dispatch all-to-all-v vs all-to-all",
                             "median time (us); lower is better", bar_groups(a2a_, &legend), legend));
  }
  if (!sync_.keys.empty()) {
    for (auto& g : sync_.keys) {
      auto& flat = flat_[g.substr(g.find('\x1f') + 1)];
      if (!flat.empty()) sync_[g]["flat all-reduce"] = flat;
    }
    std::vector<std::string> legend = {"two-level sync", "flat all-reduce"};
    plots.push_back(bar_plot(unique_id("ep-grad-sync"), "ep-sync", "ep: two-level grad sync vs flat all-reduce",
                             "median time (us); lower is better", bar_groups(sync_, &legend), legend));
  }
  *nplots = plots.size();
  return section("ep", "Expert parallelism (dtbench-ep)",
                 "Bar pairs from one run each: the MoE token dispatch (all-to-all-v with the routed, uneven "
                 "counts) next to a plain all-to-all of the same bytes per rank, and the two-level gradient "
                 "sync (dense grads over dp_cp, expert grads over expt_dp; all-reduce or distributed optimizer) "
                 "next to one flat all-reduce of the same bytes over the world.",
                 plots, "No dtbench-ep timings.");
}

}  // namespace dtbench::report
