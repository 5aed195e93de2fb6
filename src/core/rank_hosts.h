#pragma once
// Which node a rank of a report ran on, from its metadata, and rank lists as the checks CSV writes them.
#include <string>
#include <vector>

#include "core/csv_reports.h"

namespace dtbench {

// Nodes of a report (the `hosts` metadata, ';' or ',' separated) and rank -> node from `rank_map`
// ("host:0-3;host2:4-7"). An unknown rank gives "".
std::vector<std::string> meta_hosts(const CsvMetadata& meta);
std::string node_of_rank(const CsvMetadata& meta, int rank);
// Ranks listed in failing_ranks / culprit ("1;3" or "0-3"); non-numbers are ignored.
std::vector<int> parse_rank_list(const std::string& s);

}  // namespace dtbench
