#pragma once
// The thresholds file of dtbench-accept: one rule per line (columns documented in
// tools/thresholds-host.csv). Errors are InputError "FILE:LINE: ...".
#include <cstdint>
#include <string>
#include <vector>

namespace dtbench {

// One rule of a dtbench-accept thresholds file (columns documented in tools/thresholds-host.csv).
struct Threshold {
  unsigned line = 0;
  std::string suite = "*", op = "*", dtype, node, metric;
  uint64_t min_bytes = 0, max_bytes = UINT64_MAX;
  bool has_size = false;
  int ranks = 0;  // 0: any
  double min_busbw = -1, max_time_us = -1, min_value = -1, max_value = -1;  // < 0: no limit
  bool has_min_value = false, has_max_value = false;
  bool checks_pass = false;  // every matching check row must PASS
  // Relative limit: a matching timed row's median time may be at most max_slowdown times the
  // baseline's time for the same suite/op/dtype/size/ranks (dtbench-accept --baseline FILE).
  double max_slowdown = -1;
  // Written by dtbench-baseline on each of its rules (one exact size): the fleet's median busbw and
  // median time there, the reference that max_slowdown rules are held against. < 0: not a baseline rule.
  double baseline_busbw = -1, baseline_time_us = -1;
  std::string describe() const;
};
std::vector<Threshold> read_thresholds(const std::string& path);

// The reference points of a baseline file (the rules that carry baseline_time_us, one exact size
// each), looked up by what a perf row is: suite, op, dtype, bytes, ranks.
class Baseline {
 public:
  Baseline() = default;
  explicit Baseline(const std::vector<Threshold>& rules);
  // The baseline rule for this row, or nullptr when the baseline has none.
  const Threshold* find(const std::string& suite, const std::string& op, const std::string& dtype,
                        uint64_t bytes, int ranks) const;
  bool empty() const { return points_.empty(); }

 private:
  std::vector<Threshold> points_;
};


// Shell-style pattern match ("*", "all_*", "gpu[0-9]*"); "" and "*" match everything.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace dtbench
