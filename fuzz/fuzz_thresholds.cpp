// libFuzzer target: read_thresholds (src/core/thresholds.cpp), the rules file of dtbench-accept.
#include "fuzz_util.h"
#include "core/perf_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_temp(data, size, "-thresholds.csv");
  fuzz::expect_only_input_errors([&] {
    for (const auto& t : dtbench::read_thresholds(path)) {
      (void)t.describe();
      (void)dtbench::glob_match(t.suite, "coll");
      (void)dtbench::glob_match(t.node, "node17");
    }
  });
  return 0;
}
