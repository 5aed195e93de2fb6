#pragma once
// Comparing a buffer with its closed-form expectation. Each rank checks what it holds
// (O(elements it holds), independent of world size); only the per-rank summaries travel.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dtype.h"

namespace dtbench {

// One rank's verdict on one check.
struct LocalVerify {
  uint64_t n_checked = 0, n_wrong = 0;
  int64_t first_index = -1;  // first wrong element (in the check's own index space)
  double expected = 0, observed = 0;
  double max_abs_err = 0, max_rel_err = 0;
  int culprit = -1;  // the rank to blame for the first wrong element when the check can tell, else -1
};

// Unit in the last place of `x` in type `dt` (for tolerances given in ULPs). Inline: it runs per
// element in tolerance checks; the exponent is read from the bits (same result as ilogb/ldexp).
double ulp_of_slow(DType dt, double x);
inline double ulp_of(DType dt, double x) {
  const int mant_bits = dt == DType::f32 ? 23 : dt == DType::bf16 ? 7 : 10;
  const int min_exp = dt == DType::f16 ? -14 : -126;
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  const int field = int((bits >> 52) & 0x7ff);
  if (field == 0x7ff) return ulp_of_slow(dt, x);  // inf / NaN: keep libm's answer
  int e = field - 1023;                           // subnormal doubles and 0 land below min_exp
  if (e < min_exp) e = min_exp;
  const uint64_t out = uint64_t(e - mant_bits + 1023) << 52;  // 2^(e - mant_bits), always a normal double
  double r;
  std::memcpy(&r, &out, 8);
  return r;
}

// A tolerance check (lim: the allowed absolute error). An expected zero keeps its sign even then:
// dtbench's patterns send non-negative values and exact +0s, and round-to-nearest sums, averages
// and cancellations of those give +0, so -0 where +0 belongs is a fabric that flipped a sign bit.
inline bool within_tolerance(double got, double want, double lim) {
  return std::fabs(got - want) <= lim && !(want == 0 && std::signbit(got) != std::signbit(want));
}

namespace detail {
// The rare path of verify_values: a wrong element (kept out of line so the compare loop stays tight).
template <class CulpritFn>
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
void record_wrong(LocalVerify& v, size_t index, double want, double got, CulpritFn& culprit_of) {
  double err = std::fabs(got - want);
  if (std::isnan(err)) err = INFINITY;
  if (v.n_wrong++ == 0) {
    v.first_index = int64_t(index);
    v.expected = want;
    v.observed = got;
    v.culprit = culprit_of(index);
  }
  if (err > v.max_abs_err) v.max_abs_err = err;
  double rel = want != 0 ? err / std::fabs(want) : err;
  if (rel > v.max_rel_err) v.max_rel_err = rel;
}
}  // namespace detail

// Compares observed[i] with expected(index_base + i) for i in [0, n). `tol_ulps` = 0 means exact, sign
// of zero included (a fabric that delivers -0 for +0 is wrong even though -0 == +0); > 0 allows that
// many ULPs of the expected value (averages, bf16 rounding), and an expected zero still keeps its
// sign (within_tolerance).
// `culprit_of(index)` names the rank responsible for an index (-1 when unknown).
template <class ExpectedFn, class CulpritFn>
LocalVerify verify_values(DType dt, const float* observed, size_t n, size_t index_base, ExpectedFn expected,
                          double tol_ulps, CulpritFn culprit_of) {
  LocalVerify v;
  v.n_checked = n;
  if (tol_ulps == 0) {  // the common case, hoisted: one compare per element
    for (size_t i = 0; i < n; ++i) {
      const double want = expected(index_base + i);
      const double got = observed[i];
      if (__builtin_expect(got == want && std::signbit(got) == std::signbit(want), 1)) continue;
      detail::record_wrong(v, index_base + i, want, got, culprit_of);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const double want = expected(index_base + i);
      const double got = observed[i];
      if (__builtin_expect(within_tolerance(got, want, tol_ulps * ulp_of(dt, want)), 1)) continue;
      detail::record_wrong(v, index_base + i, want, got, culprit_of);
    }
  }
  return v;
}

// Folds the verdict of a later range of the same check into `into` (first wrong element stays the
// earliest one).
inline void combine_verify(LocalVerify& into, const LocalVerify& part) {
  into.n_checked += part.n_checked;
  if (part.n_wrong != 0 && into.n_wrong == 0) {
    into.first_index = part.first_index;
    into.expected = part.expected;
    into.observed = part.observed;
    into.culprit = part.culprit;
  }
  into.n_wrong += part.n_wrong;
  if (part.max_abs_err > into.max_abs_err) into.max_abs_err = part.max_abs_err;
  if (part.max_rel_err > into.max_rel_err) into.max_rel_err = part.max_rel_err;
}

// Expected values that repeat with a period in the index over the range being checked (the
// closed forms of kernels/pattern.h do while index * stride does not wrap: see reduce_period,
// gather_period). verify_values then evaluates `fn` for one table of whole periods only and compares
// the observed values against it in a tight (vectorizable) loop; a segment with any difference is
// re-checked element by element, so the verdict (counts, first index, errors, culprit) is identical
// to the per-element path. period = 0 means "not periodic here": the per-element path is used.
template <class Fn>
struct PeriodicExpected {
  uint64_t period = 0;
  Fn fn;
  double operator()(size_t i) const { return fn(i); }
};
template <class T>
struct is_periodic_expected : std::false_type {};
template <class Fn>
struct is_periodic_expected<PeriodicExpected<Fn>> : std::true_type {};
template <class Fn>
PeriodicExpected<Fn> periodic_expected(uint64_t period, Fn fn) {
  return PeriodicExpected<Fn>{period, fn};
}

namespace detail {
constexpr size_t kTableTarget = 4096;  // table length: whole periods, about this many elements
inline size_t table_len(uint64_t period) {
  return period == 0 || period > kTableTarget ? 0 : size_t(period) * ((kTableTarget + period - 1) / period);
}
struct ExpectedTable {
  std::vector<double> want, lim;  // expected value; tolerance in absolute terms (tol_ulps > 0)
  std::vector<float> wantf;       // expected value as float when every entry is exactly a float
  bool float_exact = false;
};
inline ExpectedTable& expected_table() {
  thread_local ExpectedTable t;  // reused: no allocation per check once grown
  return t;
}
// True when any of obs[0..len) differs from the table (NaN counts as different).
// Blocks of a fixed 16 elements so that -O2 (GCC's very-cheap vector cost model) vectorizes them.
inline bool segment_differs(const float* obs, size_t len, const ExpectedTable& t, double tol_ulps) {
  unsigned bad = 0;
  size_t j = 0;
  if (tol_ulps == 0 && t.float_exact) {
    // Bit patterns: equal values with the same sign of zero (NaN never equals a float-exact table).
    typedef uint32_t __attribute__((may_alias)) u32;
    const u32* o = reinterpret_cast<const u32*>(obs);
    const u32* w = reinterpret_cast<const u32*>(t.wantf.data());
    uint32_t diff = 0;
#pragma omp simd reduction(| : diff)
    for (size_t k = 0; k < len; ++k) diff |= o[k] ^ w[k];
    bad = diff != 0;
  } else if (tol_ulps == 0) {
    const double* w = t.want.data();
    for (; j + 16 <= len; j += 16) {
      unsigned b = 0;
      for (size_t k = 0; k < 16; ++k)
        b |= unsigned(!(double(obs[j + k]) == w[j + k])) | unsigned(std::signbit(obs[j + k]) != std::signbit(w[j + k]));
      bad |= b;
    }
    for (; j < len; ++j) bad |= unsigned(!(double(obs[j]) == w[j])) | unsigned(std::signbit(obs[j]) != std::signbit(w[j]));
  } else {
    const double* w = t.want.data();
    const double* l = t.lim.data();
    for (; j < len; ++j) bad |= unsigned(!within_tolerance(double(obs[j]), w[j], l[j]));
  }
  return bad != 0;
}
}  // namespace detail

namespace detail {
// Fills the table with fn(index_base + j), j < B (and the absolute tolerances when tol_ulps > 0).
template <class Fn>
void build_table(ExpectedTable& t, DType dt, const Fn& fn, size_t index_base, size_t B, double tol_ulps) {
  t.want.resize(B);
  t.wantf.resize(B);
  t.float_exact = true;
  for (size_t j = 0; j < B; ++j) {
    t.want[j] = fn(index_base + j);
    t.wantf[j] = float(t.want[j]);
    t.float_exact = t.float_exact && double(t.wantf[j]) == t.want[j];
  }
  if (tol_ulps != 0) {
    t.lim.resize(B);
    for (size_t j = 0; j < B; ++j) t.lim[j] = tol_ulps * ulp_of(dt, t.want[j]);
  }
}

// verify_values for observed[0..n) at index_base, given a table of B = t.want.size() entries built for
// an index congruent to index_base modulo B.
template <class Fn, class CulpritFn>
LocalVerify verify_with_table(DType dt, const float* observed, size_t n, size_t index_base, const ExpectedTable& t,
                              const Fn& fn, double tol_ulps, CulpritFn& culprit_of) {
  const size_t B = t.want.size();
  LocalVerify v;
  v.n_checked = n;
  for (size_t s = 0; s < n; s += B) {
    const size_t len = n - s < B ? n - s : B;
    // Spot-check the caller's period claim once per segment; if it fails, go element by element.
    if (!(fn(index_base + s) == t.want[0])) {
      LocalVerify rest = verify_values(dt, observed + s, n - s, index_base + s, fn, tol_ulps, culprit_of);
      rest.n_checked = 0;
      combine_verify(v, rest);
      break;
    }
    if (!segment_differs(observed + s, len, t, tol_ulps)) continue;
    for (size_t j = 0; j < len; ++j) {
      const double want = t.want[j], got = observed[s + j];
      const bool ok = tol_ulps == 0 ? got == want && std::signbit(got) == std::signbit(want)
                                    : within_tolerance(got, want, tol_ulps * ulp_of(dt, want));
      if (!ok) record_wrong(v, index_base + s + j, want, got, culprit_of);
    }
  }
  return v;
}
}  // namespace detail

template <class Fn, class CulpritFn>
LocalVerify verify_values(DType dt, const float* observed, size_t n, size_t index_base,
                          PeriodicExpected<Fn> expected, double tol_ulps, CulpritFn culprit_of) {
  const size_t B = detail::table_len(expected.period);
  if (B == 0 || n < 2 * B) return verify_values(dt, observed, n, index_base, expected.fn, tol_ulps, culprit_of);
  detail::ExpectedTable& t = detail::expected_table();
  detail::build_table(t, dt, expected.fn, index_base, B, tol_ulps);
  return detail::verify_with_table(dt, observed, n, index_base, t, expected.fn, tol_ulps, culprit_of);
}

// Expected values produced a range at a time, in the buffer's own element type (the identity
// pattern's host loops, src/core/pattern_fill.h): fill(index, n, out) stores expected(index + k) as dt
// elements at out for k < n. A check against it generates the expectation of a chunk and compares
// the raw elements bit for bit (tol_ulps must be 0): a -0 where +0 belongs, or any other change of
// bits, is wrong, and no conversion runs on the common (all equal) path. The optional
// differs(index, n, data) is the fused form (whether any element at data differs, nothing written):
// the check runs it first and fills only a chunk that differs, to find its wrong elements.
struct NoFusedCompare {};
template <class Fill, class Differs = NoFusedCompare>
struct BlockExpected {
  DType dt;
  Fill fill;
  Differs differs;
  static constexpr bool fused = !std::is_same<Differs, NoFusedCompare>::value;
  double operator()(size_t i) const {
    unsigned char e[4];
    fill(i, 1, e);
    return load_elem(dt, e, 0);
  }
};
template <class T>
struct is_block_expected : std::false_type {};
template <class Fill, class Differs>
struct is_block_expected<BlockExpected<Fill, Differs>> : std::true_type {};
template <class Fill>
BlockExpected<Fill> block_expected(DType dt, Fill fill) {
  return BlockExpected<Fill>{dt, fill, NoFusedCompare{}};
}
template <class Fill, class Differs>
BlockExpected<Fill, Differs> block_expected(DType dt, Fill fill, Differs differs) {
  return BlockExpected<Fill, Differs>{dt, fill, differs};
}

namespace detail {
template <class T>
inline bool any_bits_differ(const T* a, const T* b, size_t n) {
  T bad = 0;
#pragma omp simd reduction(| : bad)
  for (size_t j = 0; j < n; ++j) bad |= T(a[j] ^ b[j]);
  return bad != 0;
}
// Verdict on n raw dt elements at obs against those at want; index_base is the check's index of obs[0].
template <class CulpritFn>
LocalVerify verify_bits(DType dt, const void* obs, const void* want, size_t n, size_t index_base,
                        CulpritFn& culprit_of) {
  LocalVerify v;
  v.n_checked = n;
  const size_t es = dtype_size(dt);
  const bool differ = es == 4 ? any_bits_differ(static_cast<const uint32_t*>(obs), static_cast<const uint32_t*>(want), n)
                              : any_bits_differ(static_cast<const uint16_t*>(obs), static_cast<const uint16_t*>(want), n);
  if (!differ) return v;
  const unsigned char* o = static_cast<const unsigned char*>(obs);
  const unsigned char* w = static_cast<const unsigned char*>(want);
  for (size_t j = 0; j < n; ++j)
    if (std::memcmp(o + j * es, w + j * es, es) != 0)
      record_wrong(v, index_base + j, load_elem(dt, w, j), load_elem(dt, o, j), culprit_of);
  return v;
}
}  // namespace detail

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
  int window = -1;    // flip only, with --duration: the burn-in window it acts in (-1: every one)
  bool active() const { return !kind.empty(); }
  bool applies(const std::string& kind_wanted, int world_rank) const {
    return kind == kind_wanted && (rank < 0 || rank == world_rank);
  }
};

// Parses "kind[,rank=R][,op=NAME][,index=I][,window=W]" (e.g. "flip,rank=2,op=all_reduce,index=7");
// throws InputError naming --inject-fault.
FaultSpec parse_fault_spec(const std::string& s);

// Applies a "flip" fault to observed values of type dt if it targets this rank and check.
void apply_flip_fault(const FaultSpec& f, int world_rank, const std::string& check, DType dt,
                      std::vector<float>& observed);
// The same for a check over `total_n` elements verified in chunks: the element the fault targets
// (its index clamped to the range, as above), or -1 when the fault does not apply to this rank/check.
int64_t flip_target(const FaultSpec& f, int world_rank, const std::string& check, size_t total_n);
// Flips the bit apply_flip_fault flips, in one observed value of type dt.
void flip_value(DType dt, float& value);
// Whether the --inject-fault reached any data on this rank: flip_target found its element, or a
// suite applied a flip or one of its Suite::faults_that_can_miss itself. Such a fault that
// corrupted nothing is bad input (exit 2), never a silent PASS.
void note_fault_applied();
// The burn-in window the run is in (--duration repeats a suite's workload in windows 0, 1, ...;
// without it every check is in window 0). A flip with window=W acts only in window W.
void set_burn_in_window(int window);
int burn_in_window();
bool fault_applied();

}  // namespace dtbench
