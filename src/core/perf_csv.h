#pragma once
// The tools' side of dtbench's CSV files, one unit per concept: csv_reports (read perf and checks
// reports), run_files (a run's files under a directory), rank_hosts (rank -> node from the metadata,
// rank lists), thresholds (dtbench-accept's rules, glob_match) and units (sizes).
#include "core/csv_reports.h"
#include "core/rank_hosts.h"
#include "core/run_files.h"
#include "core/thresholds.h"
#include "core/units.h"
