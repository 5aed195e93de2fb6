#pragma once
// Per-rank timing of one timed operation: which rank is slow, not only how slow the slowest was.
// Every timed iteration each rank measures, on its own clock, how long it waited in the barrier
// that starts the iteration and how long the operation took it. No clock is shared across nodes:
// a barrier releases every rank at about the same moment, so the rank that arrived last waited the
// least, and rank r arrived (max wait - wait of r) after the first arrival of its group. That
// lateness, the rank's own time and how often it arrived last make the straggler visible.
#include <string>
#include <vector>

namespace dtbench {

// One rank's measurements over the timed iterations of one operation.
struct RankSamples {
  int group = 0;                  // ranks of one communicator share it (its lowest world rank)
  std::vector<double> wait_s;     // time in the iteration's opening barrier
  std::vector<double> own_s;      // time inside the operation
};

struct RankTiming {
  int rank = 0;
  double own_p50_s = 0, own_p90_s = 0;    // time inside the operation
  double late_p50_s = 0, late_p90_s = 0;  // arrival after the first rank of its group
  int arrived_last = 0;                   // iterations in which it was its group's last arrival
  int iters = 0;
  // (own p50 + lateness p50) over the best rank's: 1 = as quick as the best rank of its group.
  double straggler_score = 1;
};

// `per_rank[r]` for world rank r (all with the same number of iterations).
std::vector<RankTiming> rank_timing(const std::vector<RankSamples>& per_rank);

// The rank that is clearly late, if any: it arrived last in at least 3/4 of the iterations (of at
// least 4), and its median lateness is at least `min_late_s` and a quarter of the median time of
// the operation. Returns its index in `timing`, or -1.
int clear_straggler(const std::vector<RankTiming>& timing, double min_late_s = 50e-6);

}  // namespace dtbench
