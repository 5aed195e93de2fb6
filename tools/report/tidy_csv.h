#pragma once
// dtbench-report --tidy: one CSV of every check and perf row of the runs given, each row carrying its
// report's metadata as columns (job, nodes, nccl, mpi, git_rev, complete), so that it loads with
// pandas.read_csv(FILE) and no options, and checks join perf rows on (run_id, op, bytes).
#include <string>
#include <vector>

#include "core/perf_csv.h"

namespace dtbench::report {

// The columns, in order (documented in the README's "Reports" section).
extern const std::vector<std::string> kTidyColumns;

// The tidy CSV text of `runs` (labels as the `run` column).
std::string tidy_csv(const std::vector<RunData>& runs);

}  // namespace dtbench::report
