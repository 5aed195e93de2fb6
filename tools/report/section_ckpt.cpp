// The ckpt save-timeline section of dtbench-report (see sections.h).
#include <algorithm>
#include <set>

#include "core/perf_names.h"
#include "sections.h"

namespace dtbench::report {

bool CkptSection::take(size_t, const RunData& d, const PerfFile&, const PerfRecord& r) {
  if (r.suite != "ckpt" || r.metric.empty() || !r.has_value) return false;
  if (r.op == perf_names::kSaveTimeline) {
    lanes_[d.label + " " + r.case_name][r.metric].push_back(r.value);
    return true;
  }
  // The medians over saves are drawn only for a run without per-save rows, which html() decides:
  // they are kept here and still listed under other metrics.
  if (r.op == perf_names::kSave && (r.metric == perf_names::kBlockingTime || r.metric == perf_names::kTimeToDurableCommit ||
                                    r.metric == perf_names::kWriteBwAggregate)) {
    medians_[d.label + " " + r.case_name + " (median)"][r.metric].push_back(r.value);
    median_bytes_[d.label + " " + r.case_name + " (median)"] = r.bytes;
  }
  return false;
}

std::string CkptSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  std::vector<SaveLane> lanes;
  std::set<std::string> timeline_runs;
  for (auto& k : lanes_.keys) {
    auto& m = lanes_[k];
    auto v = [&](const char* name) { return m.count(name) ? median(m[name]) : 0.0; };
    SaveLane l{k, v(perf_names::kBlockingEnd), v(perf_names::kWriteStart), v(perf_names::kWriteEnd),
               v(perf_names::kDurableCommit)};
    if (!m.count(perf_names::kWriteStart)) l.write_start = l.blocking_end;
    if (!m.count(perf_names::kWriteEnd)) l.write_end = l.write_start;
    lanes.push_back(l);
    timeline_runs.insert(k.substr(0, k.find(' ')));
  }
  // Older ckpt reports have only the medians over saves: one lane per case from those.
  for (auto& k : medians_.keys) {
    if (timeline_runs.count(k.substr(0, k.find(' ')))) continue;
    auto& m = medians_[k];
    if (!m.count(perf_names::kBlockingTime) || !m.count(perf_names::kTimeToDurableCommit)) continue;
    SaveLane l{k, median(m[perf_names::kBlockingTime]), median(m[perf_names::kBlockingTime]), 0,
               median(m[perf_names::kTimeToDurableCommit])};
    double bw_gbps = m.count(perf_names::kWriteBwAggregate) ? median(m[perf_names::kWriteBwAggregate]) : 0;
    l.write_end = bw_gbps > 0 ? std::min(l.commit, l.write_start + double(median_bytes_[k]) / (bw_gbps * 1e9) * 1e3)
                              : l.write_start;
    lanes.push_back(l);
  }
  if (!lanes.empty()) plots.push_back(timeline_plot(unique_id("ckpt-timeline"), "ckpt: async save timeline", lanes));
  *nplots = plots.size();
  return section("ckpt", "Checkpoint save timeline (dtbench-ckpt)",
                 "One lane per asynchronous save (run, layout, training step), in ms from the save call: "
                 "<b>blocking</b> is the time training is stalled (staging the shards into host memory), "
                 "<b>background write</b> runs the writer threads (first writer start to last fsync) while "
                 "training continues, <b>until commit</b> waits for the next step boundary at which every rank's "
                 "writers are done, and the tick is the durable commit (index and COMMIT file fsynced).",
                 plots, "No checkpoint timings.");
}

}  // namespace dtbench::report
