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
  std::string describe() const;
};
std::vector<Threshold> read_thresholds(const std::string& path);


// Shell-style pattern match ("*", "all_*", "gpu[0-9]*"); "" and "*" match everything.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace dtbench
