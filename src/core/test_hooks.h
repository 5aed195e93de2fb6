#pragma once
// Test-only switches set from hidden CLI flags, used by the integration tests to prove that the
// watchdog and the validators catch what they exist to catch.
#include <cstdint>

namespace dtbench {

struct TestHooks {
  int skip_world_rank = -1;  // this world rank skips one collective on the world communicator...
  uint64_t skip_call = 0;    // ...its call number `skip_call` (0-based)
  // After skipping, the rank stays out of every collective this long (as a rank stuck in compute
  // would), so the other ranks' watchdogs fire first and name it: set from --timeout.
  double skip_hold_s = 0;
  // --test-kill-collective RANK:N: world rank RANK raises SIGKILL on entering its N-th collective
  // (0-based, counted over every communicator), i.e. it dies mid-collective.
  int kill_world_rank = -1;
  uint64_t kill_call = 0;
  // --test-slow-rank RANK:FACTOR: world rank RANK takes FACTOR times as long for each collective
  // (after the call it sleeps (FACTOR-1) x the call's duration). Results stay correct.
  int slow_world_rank = -1;
  double slow_factor = 1;
};

TestHooks& test_hooks();

}  // namespace dtbench
