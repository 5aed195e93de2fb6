#pragma once
// Test-only switches set from hidden CLI flags, used by the integration tests to prove that the
// watchdog and the validators catch what they exist to catch.
#include <cstdint>

namespace dtbench {

struct TestHooks {
  int skip_world_rank = -1;  // this world rank skips one collective on the world communicator...
  uint64_t skip_call = 0;    // ...its call number `skip_call` (0-based)
};

TestHooks& test_hooks();

}  // namespace dtbench
