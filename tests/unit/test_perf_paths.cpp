// The optimised host hot paths give exactly what the plain closed forms give: fill_pattern_host
// (vectorised block loops) vs per-element sum_share_at/moved_value_at, the inline ulp_of vs libm, the
// periodic-table verify vs the per-element verify, and Context::verify_buffer (chunks, in-place fp32,
// flip fault on the chunk holding the element) vs a whole-range copy + apply_flip_fault.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "../kernels/pattern.h"
#include "core/backend.h"
#include "core/pattern_fill.h"
#include "core/suite.h"
#include "core/verify.h"

namespace dtbench {
namespace {

void expect_same(const LocalVerify& a, const LocalVerify& b) {
  EXPECT_EQ(a.n_checked, b.n_checked);
  EXPECT_EQ(a.n_wrong, b.n_wrong);
  EXPECT_EQ(a.first_index, b.first_index);
  EXPECT_EQ(a.culprit, b.culprit);
  if (a.n_wrong) {
    EXPECT_TRUE(a.expected == b.expected || (std::isnan(a.expected) && std::isnan(b.expected)));
    EXPECT_TRUE(a.observed == b.observed || (std::isnan(a.observed) && std::isnan(b.observed)));
  }
  EXPECT_EQ(a.max_abs_err, b.max_abs_err);
  EXPECT_EQ(a.max_rel_err, b.max_rel_err);
}

TEST(PerfPaths, ReduceBasePowerOfTwoMatchesModulo) {
  for (int64_t m : {2, 4, 32, 64, 33, 52, 63})
    for (uint64_t seed : {0ull, 7ull, ~0ull - 5})
      for (uint64_t i : {0ull, 1ull, 12345ull, (1ull << 40) + 3, ~0ull})
        EXPECT_EQ(reduce_base(seed, i, m), int64_t((i * kReduceStride + seed) % uint64_t(m)));
}

TEST(PerfPaths, FillPatternHostMatchesClosedForm) {
  struct Case {
    PatternSpec::Kind kind;
    uint64_t seed, base;
    int rank, group;
    size_t n;
  };
  const uint64_t near_block = (1ull << 32) - 5000;  // the range crosses a 2^32-index key boundary
  std::vector<Case> cases = {
      {PatternSpec::reduce, 7, 0, 3, 8, 100000},       {PatternSpec::reduce, 7, 123, 5, 6, 50000},
      {PatternSpec::reduce, 1, 999, 0, 1, 9000},       {PatternSpec::reduce, 3, near_block, 1, 2048, 20000},
      {PatternSpec::reduce, ~0ull - 2, 10, 1, 3, 30000}, {PatternSpec::gather, 7, 0, 3, 0, 100000},
      {PatternSpec::gather, 11, 4567, 250, 0, 30001},  {PatternSpec::gather, 5, near_block, 2, 0, 20000},
      {PatternSpec::reduce, 7, 5, 3, 4, 10},           {PatternSpec::gather, 7, 5, 3, 0, 1}};
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    for (const Case& c : cases) {
      PatternSpec s;
      s.kind = c.kind;
      s.seed = c.seed;
      s.rank = c.rank;
      s.index_base = c.base;
      s.group_size = c.group;
      std::vector<unsigned char> got(c.n * dtype_size(dt) + 4, 0xab), want(got);
      fill_pattern_host(dt, got.data(), c.n, s);
      for (size_t k = 0; k < c.n; ++k) {
        float v = c.kind == PatternSpec::reduce ? sum_share_at(c.seed, dtype_code(dt), c.rank, c.group, c.base + k)
                                                : moved_value_at(c.seed, dtype_code(dt), c.rank, c.base + k);
        store_elem(dt, want.data(), k, v);
      }
      ASSERT_EQ(got, want) << dtype_name(dt) << " kind " << int(c.kind) << " base " << c.base << " n " << c.n;
    }
  }
}

TEST(PerfPaths, FillWithMatchesStoreElem) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    Buffer b(MemSpace::host, dt, 1000);
    fill_with(b, 10, 900, [](size_t i) { return float(i) * 0.37f - 100.0f; });
    for (size_t i = 10; i < 910; ++i) EXPECT_EQ(load_elem(dt, b.data(), i), round_to(dt, float(i) * 0.37f - 100.0f));
  }
}

TEST(PerfPaths, InlineUlpMatchesLibm) {
  std::vector<double> xs = {0.0, -0.0, 1.0, -1.0, 3.5, 1e-40, 1e-310, 5e-324, 1e30, -7e37, 65504.0, 1e300,
                            std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                            std::nan(""), 0.1, 255.0, 256.0, 257.0, 1.0 / 3};
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (double x : xs) {
      double a = ulp_of(dt, x), b = ulp_of_slow(dt, x);
      EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << x;
    }
}

// Observed values with wrong elements at chosen places (incl. NaN, and a -0 where +0 belongs: wrong
// for an exact check, which compares the sign of zero too, right within a tolerance).
std::vector<float> observed_with_errors(size_t n, int64_t group, int64_t m, double scale) {
  std::vector<float> obs(n);
  for (size_t i = 0; i < n; ++i) obs[i] = float(double(reduce_sum(7, group, i, m)) * scale);
  for (size_t i : {size_t(5000), size_t(5001), size_t(9000), n - 1}) obs[i] += 1.0f;
  obs[12000] = std::nanf("");
  for (size_t i = 0; i < n; ++i)
    if (obs[i] == 0 && i > 13000) {
      obs[i] = -0.0f;  // equal to 0 as a value
      break;
    }
  return obs;
}

TEST(PerfPaths, PeriodicVerifyMatchesPerElement) {
  const size_t n = 70001;
  for (int64_t group : {1, 3, 8}) {
    const int64_t m = reduce_modulus(0, group) == 64 ? 33 : reduce_modulus(0, group);
    for (double tol : {0.0, 3.0}) {
      const double scale = tol == 0 ? 1.0 : 1.0 / 3;
      std::vector<float> obs = observed_with_errors(n, group, m, scale);
      auto expected = [=](size_t i) { return double(float(double(reduce_sum(7, group, i, m)) * scale)); };
      auto culprit = [](size_t i) { return int(i % 5); };
      LocalVerify plain = verify_values(DType::f32, obs.data(), n, 0, expected, tol, culprit);
      LocalVerify table =
          verify_values(DType::f32, obs.data(), n, 0, periodic_expected(reduce_period(7, n - 1, m), expected), tol, culprit);
      size_t negative_zeros = 0;
      for (float x : obs) negative_zeros += x == 0 && std::signbit(x);
      // -0 where +0 is expected is wrong with a tolerance too (within_tolerance); group 1 has zeros.
      if (group == 1) {
        EXPECT_EQ(negative_zeros, 1u);
      }
      EXPECT_EQ(plain.n_wrong, 5u + negative_zeros);
      expect_same(plain, table);
      // Starting at an index that is not a multiple of the period.
      LocalVerify plain2 = verify_values(DType::f32, obs.data() + 17, n - 17, 17, expected, tol, culprit);
      LocalVerify table2 = verify_values(DType::f32, obs.data() + 17, n - 17, 17,
                                         periodic_expected(uint64_t(m), expected), tol, culprit);
      expect_same(plain2, table2);
    }
  }
}

TEST(PerfPaths, WrongPeriodClaimFallsBackToPerElement) {
  const size_t n = 50000;
  std::vector<float> obs(n);
  for (size_t i = 0; i < n; ++i) obs[i] = float(i % 1000);  // period 1000, claimed 7
  auto expected = [](size_t i) { return double(i % 1000); };
  LocalVerify v = verify_values(DType::f32, obs.data(), n, 0, periodic_expected(7, expected));
  EXPECT_EQ(v.n_wrong, 0u);
  EXPECT_EQ(v.n_checked, n);
  obs[40000] = 3;
  v = verify_values(DType::f32, obs.data(), n, 0, periodic_expected(7, expected));
  EXPECT_EQ(v.n_wrong, 1u);
  EXPECT_EQ(v.first_index, 40000);
}

TEST(PerfPaths, VerifyBufferMatchesWholeCopyWithFlip) {
  const size_t n = 3 * Context::kVerifyChunk * 4 + 123;  // several chunks of either kind
  const int64_t group = 8;
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const int64_t m = reduce_modulus(dt == DType::f32 ? 0 : dt == DType::bf16 ? 1 : 2, group);
    Buffer buf(MemSpace::host, dt, n + 10);
    fill_with(buf, 0, n + 10, [=](size_t i) { return float(reduce_sum(3, group, i + 5, m)); });
    store_elem(dt, buf.data(), 7 + 70000, 1.0f + float(reduce_sum(3, group, 70000 + 12, m)));  // a wrong element
    auto expected = [=](size_t i) { return double(round_to(dt, float(reduce_sum(3, group, i, m)))); };
    auto culprit = [](size_t i) { return int(i % 3); };
    for (int64_t flip : {int64_t(-1), int64_t(0), int64_t(Context::kVerifyChunk * 4 + 1), int64_t(n - 1)}) {
      std::vector<float> copy = buf.to_host_f32(7, n);
      if (flip >= 0) flip_value(dt, copy[size_t(flip)]);
      LocalVerify want = verify_values(dt, copy.data(), n, 12, expected, 0.0, culprit);
      LocalVerify got = Context::verify_buffer(buf, 7, n, 12, expected, 0.0, culprit, flip);
      LocalVerify got_table = Context::verify_buffer(
          buf, 7, n, 12, periodic_expected(reduce_period(3, n + 12, m), expected), 0.0, culprit, flip);
      SCOPED_TRACE(std::string(dtype_name(dt)) + " flip " + std::to_string(flip));
      EXPECT_GE(want.n_wrong, 1u);
      expect_same(want, got);
      expect_same(want, got_table);
    }
  }
}

TEST(PerfPaths, FlipTargetClampsLikeApplyFlipFault) {
  FaultSpec f = parse_fault_spec("flip,rank=1,op=all_reduce,index=99");
  EXPECT_EQ(flip_target(f, 1, "all_reduce.in_place", 1000), 99);
  EXPECT_EQ(flip_target(f, 1, "all_reduce.in_place", 50), 49);
  EXPECT_EQ(flip_target(f, 0, "all_reduce.in_place", 1000), -1);
  EXPECT_EQ(flip_target(f, 1, "all_gather", 1000), -1);
  EXPECT_EQ(flip_target(f, 1, "all_reduce", 0), -1);
}

}  // namespace
}  // namespace dtbench

namespace dtbench {
namespace {
// The bit-exact block path of Context::verify_buffer: a correct buffer passes in every type, and one
// element turned from +0 into -0 (equal as values) is found, with its index and the block's source.
template <class Expected>
void block_verify_finds_a_sign_flipped_zero(DType dt, Expected expected) {
  {
    const size_t n = 50000;
    Buffer buf(MemSpace::host, dt, n);
    expected.fill(0, n, buf.data());
    auto culprit = [](size_t) { return 2; };
    EXPECT_EQ(Context::verify_buffer(buf, 0, n, 0, expected, 0.0, culprit).n_wrong, 0u);
    size_t zero = n;
    for (size_t i = 30000; i < n && zero == n; ++i)
      if (f32_bits(load_elem(dt, buf.data(), i)) == 0u) zero = i;
    ASSERT_LT(zero, n) << "no +0 in the pattern";
    store_elem(dt, buf.data(), zero, -0.0f);
    const LocalVerify v = Context::verify_buffer(buf, 0, n, 0, expected, 0.0, culprit);
    EXPECT_EQ(v.n_wrong, 1u) << dtype_name(dt);
    EXPECT_EQ(v.first_index, int64_t(zero));
    EXPECT_EQ(v.culprit, 2);
    // The flip fault reaches the block path too.
    store_elem(dt, buf.data(), zero, 0.0f);
    EXPECT_EQ(Context::verify_buffer(buf, 0, n, 0, expected, 0.0, culprit, 17).first_index, 17);
    // An odd element range (a pair split at both ends) with one wrong element in its last pair.
    store_elem(dt, buf.data(), n - 2, load_elem(dt, buf.data(), n - 2) == 1.0f ? 2.0f : 1.0f);
    const LocalVerify odd = Context::verify_buffer(buf, 3, n - 4, 3, expected, 0.0, culprit);
    EXPECT_EQ(odd.n_checked, n - 4);
    EXPECT_EQ(odd.n_wrong, 1u) << dtype_name(dt);
    EXPECT_EQ(odd.first_index, int64_t(n - 2));
  }
}
// The bit-exact block path, with the expectation filled per chunk and with the fused compare
// (sum_totals_differ / moved_values_differ: nothing written unless a chunk differs).
TEST(PerfPaths, BlockVerifyComparesBitsAndFindsASignFlippedZero) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    block_verify_finds_a_sign_flipped_zero(
        dt, block_expected(dt, [=](size_t i, size_t len, void* out) { fill_moved_values(dt, out, len, 6, 2, i); }));
    block_verify_finds_a_sign_flipped_zero(
        dt, block_expected(
                dt, [=](size_t i, size_t len, void* out) { fill_moved_values(dt, out, len, 6, 2, i); },
                [=](size_t i, size_t len, const void* data) { return moved_values_differ(dt, data, len, 6, 2, i); }));
  }
}
// The fused compares agree with fill + compare on every element range, for one changed bit anywhere.
TEST(PerfPaths, FusedComparesSeeEveryChangedElement) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const size_t es = dtype_size(dt);
    for (uint64_t base : {0ull, 1ull, (1ull << 33) - 3}) {
      for (size_t n : {size_t(1), size_t(2), size_t(5), size_t(2051)}) {
        std::vector<unsigned char> totals(n * es), moved(n * es);
        fill_sum_totals(dt, totals.data(), n, 4, base);
        fill_moved_values(dt, moved.data(), n, 4, 9, base);
        ASSERT_FALSE(sum_totals_differ(dt, totals.data(), n, 4, base));
        ASSERT_FALSE(moved_values_differ(dt, moved.data(), n, 4, 9, base));
        ASSERT_TRUE(moved_values_differ(dt, moved.data(), n, 4, 8, base)) << "another source passed";
        for (size_t k = 0; k < n; k += (k < 40 || k + 40 > n) ? 1 : 97) {
          for (size_t bit : {size_t(0), es * 8 - 1}) {
            totals[k * es + bit / 8] ^= uint8_t(1u << (bit % 8));
            moved[k * es + bit / 8] ^= uint8_t(1u << (bit % 8));
            ASSERT_TRUE(sum_totals_differ(dt, totals.data(), n, 4, base)) << dtype_name(dt) << " k " << k;
            ASSERT_TRUE(moved_values_differ(dt, moved.data(), n, 4, 9, base)) << dtype_name(dt) << " k " << k;
            totals[k * es + bit / 8] ^= uint8_t(1u << (bit % 8));
            moved[k * es + bit / 8] ^= uint8_t(1u << (bit % 8));
          }
        }
      }
    }
  }
}
}  // namespace
}  // namespace dtbench

namespace dtbench {
namespace {
// The host loops of the identity pattern (pairs of 16-bit elements per hash, key changes at 2^32
// hashes) against its element-wise forms, for ranges that start and end inside a pair and cross a
// key boundary: fp32 at index 2^32, 16-bit types at 2^33 (pair 2^32).
TEST(PerfPaths, IdentityFillsMatchTheElementForms) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const int code = dtype_code(dt);
    for (uint64_t base : {0ull, 1ull, 2ull, 7ull, (1ull << 32) - 3, (1ull << 33) - 5}) {
      for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(2049), size_t(5000)}) {
        const size_t es = dtype_size(dt);
        std::vector<unsigned char> got(n * es + 4, 0xab), want(got);
        fill_sum_totals(dt, got.data(), n, 13, base);
        for (size_t k = 0; k < n; ++k) store_elem(dt, want.data(), k, sum_total_at(13, code, base + k));
        ASSERT_EQ(got, want) << "totals " << dtype_name(dt) << " base " << base << " n " << n;
        fill_moved_values(dt, got.data(), n, 13, 6, base);
        for (size_t k = 0; k < n; ++k) store_elem(dt, want.data(), k, moved_value_at(13, code, 6, base + k));
        ASSERT_EQ(got, want) << "moved " << dtype_name(dt) << " base " << base << " n " << n;
        fill_sum_shares(dt, got.data(), n, 13, 2, 5, base);
        for (size_t k = 0; k < n; ++k) store_elem(dt, want.data(), k, sum_share_at(13, code, 2, 5, base + k));
        ASSERT_EQ(got, want) << "shares " << dtype_name(dt) << " base " << base << " n " << n;
      }
    }
  }
}
}  // namespace
}  // namespace dtbench
