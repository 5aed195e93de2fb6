// The dtbench-vs-peers section of dtbench-report (see sections.h).
#include "sections.h"

namespace dtbench::report {

bool PeersSection::take(size_t, const RunData& d, const PerfFile&, const PerfRecord& r) {
  if (r.suite != "peers") return false;
  if (r.metric == "speed_ratio" && r.has_value) ratio_[r.op][r.case_name][d.label].push_back(r.value);
  return true;  // the dtbench and peer values are in the bars' tooltips' source, the CSV
}

std::string PeersSection::html(size_t* nplots) {
  std::vector<std::string> plots;
  for (const auto& suite : ratio_.keys) {
    std::vector<std::string> legend;
    plots.push_back(bar_plot(unique_id("peers-" + suite), "peers", "dtbench-" + suite + " vs its peer",
                             "speed ratio: peer time / dtbench time (> 1: dtbench faster)",
                             bar_groups(ratio_.m.at(suite), &legend), legend));
  }
  *nplots = plots.size();
  return section("peers", "dtbench vs peers (make bench-peers)",
                 "Each bar is one comparison of bench/peers.sh (PEERS_CSV): the peer's time over dtbench's for the "
                 "same work, the median over the benchmark's interleaved rounds; 1 is parity, above 1 dtbench is "
                 "faster. The peers: plain MPI loops (coll, p2p), PyTorch DDP (ddp), fio (ckpt).",
                 plots, "No bench-peers rows.");
}

}  // namespace dtbench::report
