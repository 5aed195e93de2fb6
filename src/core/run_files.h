#pragma once
// One run's reports: the files a tool is pointed at (a directory, searched recursively, or one file).
#include <string>
#include <vector>

#include "core/csv_reports.h"

namespace dtbench {

// One run: every *-perf.csv and *-checks.csv under a directory (recursively), or the single file given.
// `label` names the run in tables (the directory name, or the run_id when one file is given).
struct RunData {
  std::string label, source;
  std::vector<PerfFile> perf;
  std::vector<ChecksFile> checks;
};
RunData load_run(const std::string& path);

}  // namespace dtbench
