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
//
// One verdict is about one job: when the reports under a directory carry more than one
// slurm_job_id (job ids restarted and a new job wrote beside an old one's files), load_run refuses
// with InputError naming the jobs, unless `job` selects the reports of one Slurm job id (or one
// run_id). A `job` that matches no report is refused too.
RunData load_run(const std::string& path, const std::string& job = "");

}  // namespace dtbench
