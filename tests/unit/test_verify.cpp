#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "core/verify.h"

using namespace dtbench;

TEST(Verify, FindsOneWrongElement) {
  std::vector<float> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = float(i % 7);
  data[613] += 1;
  auto v = verify_values(DType::f32, data.data(), data.size(), 0, [](size_t i) { return double(i % 7); }, 0,
                         [](size_t i) { return int(i / 250); });
  EXPECT_EQ(v.n_checked, 1000u);
  EXPECT_EQ(v.n_wrong, 1u);
  EXPECT_EQ(v.first_index, 613);
  EXPECT_EQ(v.expected, 613 % 7);
  EXPECT_EQ(v.observed, 613 % 7 + 1);
  EXPECT_EQ(v.culprit, 2);
  EXPECT_EQ(v.max_abs_err, 1.0);
}

TEST(Verify, IndexBaseShiftsTheReportedIndex) {
  std::vector<float> data = {1, 2, 3};
  auto v = verify_values(DType::f32, data.data(), 3, 100, [](size_t i) { return i == 101 ? 9.0 : double(i - 99); });
  EXPECT_EQ(v.n_wrong, 1u);
  EXPECT_EQ(v.first_index, 101);
}

TEST(Verify, ToleranceInUlps) {
  float exact = 1.0f;
  std::vector<float> data = {exact + std::ldexp(1.0f, -23), exact + 3 * std::ldexp(1.0f, -23)};
  auto strict = verify_values(DType::f32, data.data(), 2, 0, [&](size_t) { return double(exact); });
  EXPECT_EQ(strict.n_wrong, 2u);
  auto two_ulp = verify_values(DType::f32, data.data(), 2, 0, [&](size_t) { return double(exact); }, 2.0);
  EXPECT_EQ(two_ulp.n_wrong, 1u);
  EXPECT_EQ(two_ulp.first_index, 1);
  EXPECT_DOUBLE_EQ(ulp_of(DType::bf16, 1.0), std::ldexp(1.0, -7));
  EXPECT_DOUBLE_EQ(ulp_of(DType::f16, 1024.0), 1.0);
}

TEST(Verify, NanIsAlwaysWrong) {
  std::vector<float> data = {NAN};
  auto v = verify_values(DType::f32, data.data(), 1, 0, [](size_t) { return 0.0; }, 4.0);
  EXPECT_EQ(v.n_wrong, 1u);
}

TEST(FaultSpec, ParsesAndRejects) {
  FaultSpec f = parse_fault_spec("flip,rank=2,op=all_reduce,index=7");
  EXPECT_EQ(f.kind, "flip");
  EXPECT_EQ(f.rank, 2);
  EXPECT_EQ(f.op, "all_reduce");
  EXPECT_EQ(f.index, 7);
  EXPECT_THROW(parse_fault_spec("flip,rank=x"), InputError);
  EXPECT_THROW(parse_fault_spec("flip,colour=red"), InputError);
  EXPECT_THROW(parse_fault_spec("rank=1"), InputError);
  // op= only picks the check of a flip: on a suite fault it would be ignored (a silent PASS).
  EXPECT_THROW(parse_fault_spec("wrong-group,op=all_reduce"), InputError);
  EXPECT_NO_THROW(parse_fault_spec("wrong-group,rank=1"));
  EXPECT_THROW(parse_fault_spec("flip,index=-1"), InputError);
}

TEST(FaultSpec, FlipChangesExactlyTheChosenElementOnTheChosenRank) {
  FaultSpec f = parse_fault_spec("flip,rank=1,op=gather,index=2");
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    std::vector<float> v = {1, 2, 3, 4};
    apply_flip_fault(f, 0, "all_gather", dt, v);
    EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4})) << "other rank untouched";
    apply_flip_fault(f, 1, "all_reduce", dt, v);
    EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4})) << "other check untouched";
    apply_flip_fault(f, 1, "all_gather.in_place", dt, v);
    EXPECT_NE(v[2], 3.0f);
    EXPECT_EQ(v[0], 1.0f);
    EXPECT_EQ(v[3], 4.0f);
  }
}
