// libFuzzer target: read_checks_csv (src/core/csv_reports.cpp), the checks reports read by dtbench-accept and
// -report; the failing_ranks/culprit lists go through parse_rank_list.
#include "fuzz_util.h"
#include "core/perf_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_temp(data, size, "-checks.csv");
  fuzz::expect_only_input_errors([&] {
    dtbench::ChecksFile f = dtbench::read_checks_csv(path);
    for (const auto& r : f.rows) {
      (void)dtbench::parse_rank_list(r.failing_ranks);
      (void)dtbench::parse_rank_list(r.culprit);
    }
  });
  return 0;
}
