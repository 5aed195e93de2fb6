// libFuzzer target: read_perf_csv (src/core/csv_reports.cpp), the perf reports read by dtbench-compare,
// -accept and -report, plus the rank-list and node helpers those tools apply to them.
#include "fuzz_util.h"
#include "core/perf_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_temp(data, size, "-perf.csv");
  fuzz::expect_only_input_errors([&] {
    dtbench::PerfFile f = dtbench::read_perf_csv(path);
    for (const auto& h : dtbench::meta_hosts(f.meta)) (void)h;
    for (int r = 0; r < 4; ++r) (void)dtbench::node_of_rank(f.meta, r);
  });
  return 0;
}
