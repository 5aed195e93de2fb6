#include "core/rank_timing.h"

#include <algorithm>
#include <limits>
#include <map>

#include "core/units.h"

namespace dtbench {

std::vector<RankTiming> rank_timing(const std::vector<RankSamples>& per_rank) {
  std::vector<RankTiming> out(per_rank.size());
  std::map<int, std::vector<size_t>> groups;
  for (size_t r = 0; r < per_rank.size(); ++r) groups[per_rank[r].group].push_back(r);
  for (auto& [group, members] : groups) {
    const size_t iters = per_rank[members[0]].wait_s.size();
    std::vector<std::vector<double>> late(members.size());
    std::vector<int> last(members.size(), 0);
    for (size_t i = 0; i < iters; ++i) {
      double max_wait = 0, min_wait = std::numeric_limits<double>::max();
      size_t latest = 0;
      for (size_t m = 0; m < members.size(); ++m) {
        const double w = per_rank[members[m]].wait_s[i];
        max_wait = std::max(max_wait, w);
        if (w < min_wait) min_wait = w, latest = m;
      }
      if (members.size() > 1) ++last[latest];
      for (size_t m = 0; m < members.size(); ++m) late[m].push_back(max_wait - per_rank[members[m]].wait_s[i]);
    }
    double best = std::numeric_limits<double>::max();
    for (size_t m = 0; m < members.size(); ++m) {
      const RankSamples& s = per_rank[members[m]];
      RankTiming& t = out[members[m]];
      t.rank = int(members[m]);
      t.iters = int(iters);
      t.own_p50_s = percentile(s.own_s, 0.5), t.own_p90_s = percentile(s.own_s, 0.9);
      t.late_p50_s = percentile(late[m], 0.5), t.late_p90_s = percentile(late[m], 0.9);
      t.arrived_last = last[m];
      best = std::min(best, t.own_p50_s + t.late_p50_s);
    }
    for (size_t m : members) {
      RankTiming& t = out[m];
      t.straggler_score = best > 0 ? (t.own_p50_s + t.late_p50_s) / best : 1;
    }
  }
  return out;
}

int clear_straggler(const std::vector<RankTiming>& timing, double min_late_s) {
  if (timing.size() < 2) return -1;
  std::vector<double> own;
  for (auto& t : timing) own.push_back(t.own_p50_s);
  const double typical_op = median(own);
  int found = -1;
  for (size_t r = 0; r < timing.size(); ++r) {
    const RankTiming& t = timing[r];
    if (t.iters < 4 || 4 * t.arrived_last < 3 * t.iters) continue;
    if (t.late_p50_s < min_late_s || t.late_p50_s < 0.25 * typical_op) continue;
    if (found < 0 || t.late_p50_s > timing[size_t(found)].late_p50_s) found = int(r);
  }
  return found;
}

}  // namespace dtbench
