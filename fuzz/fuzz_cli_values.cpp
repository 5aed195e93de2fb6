// libFuzzer target: the CLI value parsers every suite shares: the size validators (-b/-e 64K,
// --bucket-size 16M, --bucket-sweep MIN:MAX; core/cli size_bytes, bucket_elements, size_span),
// parse_size (sizes in reports and thresholds) and parse_fault_spec (--inject-fault).
#include "core/cli.h"
#include "fuzz_util.h"
#include "core/units.h"
#include "core/verify.h"

namespace {

// A validator either refuses the text with a message or rewrites it into what the option then
// reads: a plain number (or MIN:MAX of plain numbers) that parses back.
void check_validator(const CLI::Validator& v, const std::string& text, bool span) {
  std::string value = text;
  std::string err;
  try {
    err = v(value);
  } catch (const CLI::ValidationError& e) {
    err = e.what();
  }
  if (!err.empty()) return;
  if (span) {
    const auto [lo, hi] = dtbench::split_span(value);
    if (lo > hi) std::abort();
  } else if (!dtbench::parse_size(value)) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  check_validator(dtbench::size_bytes(), text, false);
  check_validator(dtbench::bucket_elements(), text, false);
  check_validator(dtbench::size_span(), text, true);
  (void)dtbench::parse_size(text);
  fuzz::expect_only_input_errors([&] {
    dtbench::FaultSpec f = dtbench::parse_fault_spec(text);
    if (f.kind.empty() || f.index < 0) std::abort();  // parse_fault_spec promises both
  });
  return 0;
}
