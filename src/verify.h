#pragma once
// Comparing a buffer with its closed-form expectation. Each rank checks what it holds
// (O(elements it holds), independent of world size); only the per-rank summaries travel.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"

namespace dtbench {

// One rank's verdict on one check.
struct LocalVerify {
  uint64_t n_checked = 0, n_wrong = 0;
  int64_t first_index = -1;  // first wrong element (in the check's own index space)
  double expected = 0, observed = 0;
  double max_abs_err = 0, max_rel_err = 0;
  int culprit = -1;  // the rank to blame for the first wrong element when the check can tell, else -1
};

// Unit in the last place of `x` in type `dt` (for tolerances given in ULPs).
double ulp_of(DType dt, double x);

// Compares observed[i] with expected(index_base + i) for i in [0, n). `tol_ulps` = 0 means bit-exact
// (as nccl-tests for sums); > 0 allows that many ULPs of the expected value (averages, bf16 rounding).
// `culprit_of(index)` names the rank responsible for an index (-1 when unknown).
template <class ExpectedFn, class CulpritFn>
LocalVerify verify_values(DType dt, const float* observed, size_t n, size_t index_base, ExpectedFn expected,
                          double tol_ulps, CulpritFn culprit_of) {
  LocalVerify v;
  v.n_checked = n;
  for (size_t i = 0; i < n; ++i) {
    double want = expected(index_base + i);
    double got = observed[i];
    double err = std::fabs(got - want);
    bool ok = tol_ulps == 0 ? (got == want) : (err <= tol_ulps * ulp_of(dt, want));
    if (ok) continue;
    if (std::isnan(err)) err = INFINITY;
    if (v.n_wrong++ == 0) {
      v.first_index = int64_t(index_base + i);
      v.expected = want;
      v.observed = got;
      v.culprit = culprit_of(index_base + i);
    }
    if (err > v.max_abs_err) v.max_abs_err = err;
    double rel = want != 0 ? err / std::fabs(want) : err;
    if (rel > v.max_rel_err) v.max_rel_err = rel;
  }
  return v;
}

template <class ExpectedFn>
LocalVerify verify_values(DType dt, const float* observed, size_t n, size_t index_base, ExpectedFn expected,
                          double tol_ulps = 0) {
  return verify_values(dt, observed, n, index_base, expected, tol_ulps, [](size_t) { return -1; });
}

// Fault injection (--inject-fault): flips one bit of one element on one rank in the copy a check
// is about to verify, so tests can prove the check catches it.
struct FaultSpec {
  std::string kind;   // "flip" (any check) or a suite-specific fault ("wrong-group", "early-dispatch"...)
  int rank = -1;      // world rank that misbehaves (-1: every rank)
  std::string op;     // checks whose name contains this (empty: every check)
  int64_t index = 0;  // element within the checked range (clamped to the range)
  bool active() const { return !kind.empty(); }
  bool applies(const std::string& kind_wanted, int world_rank) const {
    return kind == kind_wanted && (rank < 0 || rank == world_rank);
  }
};

// Parses "kind[,rank=R][,op=NAME][,index=I]" (e.g. "flip,rank=2,op=all_reduce,index=7"); throws
// InputError naming --inject-fault.
FaultSpec parse_fault_spec(const std::string& s);

// Applies a "flip" fault to observed values of type dt if it targets this rank and check.
void apply_flip_fault(const FaultSpec& f, int world_rank, const std::string& check, DType dt,
                      std::vector<float>& observed);

}  // namespace dtbench
