#include <gtest/gtest.h>

#include <vector>

#include "core/element_ops.h"

namespace dtbench {
namespace {

TEST(ElementOps, AccumulateScaleConvertOnHostBuffers) {
  Buffer a(MemSpace::host, DType::bf16, 4), b(MemSpace::host, DType::bf16, 4), w(MemSpace::host, DType::f32, 4);
  for (size_t i = 0; i < 4; ++i) store_elem(DType::bf16, a.data(), i, float(i)), store_elem(DType::bf16, b.data(), i, 2.0f);
  accumulate_elements(a, 1, b, 0, 3);
  EXPECT_EQ(a.to_host_f32(0, 4), (std::vector<float>{0, 3, 4, 5}));
  scale_elements(a, 0, 4, 0.5f);
  EXPECT_EQ(a.to_host_f32(0, 4), (std::vector<float>{0, 1.5f, 2, 2.5f}));
  convert_elements(w, 0, a, 0, 4);
  EXPECT_EQ(w.to_host_f32(0, 4), (std::vector<float>{0, 1.5f, 2, 2.5f}));
}

// One rounding per result, from the fp32 product: 1 * (1 + 2^-8) is a tie between two bf16 values
// and goes to the even one (1).
TEST(ElementOps, ScaleRoundsOnceToTheBufferDtype) {
  Buffer a(MemSpace::host, DType::bf16, 2);
  store_elem(DType::bf16, a.data(), 0, 1.0f);
  store_elem(DType::bf16, a.data(), 1, 1.0f + 1.0f / 128);
  scale_elements(a, 0, 2, 1.0f + 1.0f / 256);
  const std::vector<float> got = a.to_host_f32(0, 2);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], round_to(DType::bf16, (1.0f + 1.0f / 128) * (1.0f + 1.0f / 256)));
}

TEST(ElementOps, AddElementsUsesTheBufferIndex) {
  Buffer a(MemSpace::host, DType::f32, 6);
  a.fill_zero();
  add_elements(a, 2, 3, [](size_t i) { return float(i) * 10; });
  EXPECT_EQ(a.to_host_f32(0, 6), (std::vector<float>{0, 0, 20, 30, 40, 0}));
}

}  // namespace
}  // namespace dtbench
