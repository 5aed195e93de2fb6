// libFuzzer target: the CLI value parsers every suite shares: parse_bytes (sizes such as -b/-e 64K),
// parse_size (sizes in reports and thresholds) and parse_fault_spec (--inject-fault).
#include "core/cli.h"
#include "fuzz_util.h"
#include "core/units.h"
#include "core/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_only_input_errors([&] { (void)dtbench::parse_bytes(text, "--min-bytes"); });
  (void)dtbench::parse_size(text);
  fuzz::expect_only_input_errors([&] {
    dtbench::FaultSpec f = dtbench::parse_fault_spec(text);
    if (f.kind.empty() || f.index < 0) std::abort();  // parse_fault_spec promises both
  });
  return 0;
}
