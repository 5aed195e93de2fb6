#pragma once
// Progress of a long sweep: how many steps are done, an estimate of the time left, and one warning
// when that estimate runs past the job's end (a Slurm time limit cuts the run, which then is
// INCOMPLETE). The estimate assumes the rate of work so far holds: every step weighs its bytes
// moved plus a fixed latency share, so the doubling sizes of a sweep are not mistaken for equal
// steps.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace dtbench {

class SweepEta {
 public:
  // One weight per step in run order (e.g. bytes x rounds); `latency_weight` is added to each.
  SweepEta(std::vector<double> weights, double latency_weight);
  // Step `i` (0-based) ended `elapsed_s` after the sweep began: the seconds left, estimated.
  double step_done(size_t i, double elapsed_s);
  size_t steps() const { return weights_.size(); }
  // "12/50, ETA 3m20s" after step_done(11, ...).
  std::string text() const;
  // Once, when the estimate says the sweep ends after `deadline_s` (seconds from the sweep's start):
  // the warning to print. Not before `min_steps` steps and `min_elapsed_s` seconds, so a first slow
  // step does not cry wolf.
  std::optional<std::string> deadline_warning(double deadline_s, size_t min_steps = 3, double min_elapsed_s = 1);

 private:
  std::vector<double> weights_;
  double done_weight_ = 0, total_weight_ = 0, elapsed_s_ = 0, left_s_ = 0;
  size_t done_ = 0;
  bool warned_ = false;
};

// "45s", "3m20s", "2h05m".
std::string format_duration(double seconds);

// The job's end as seconds from now, from DTBENCH_DEADLINE (Unix time; the Slurm scripts set it
// from the job's time limit); nullopt when unset or unreadable.
std::optional<double> seconds_to_deadline();

}  // namespace dtbench
