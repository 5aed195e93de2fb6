#pragma once
// Deterministic closed-form data for collectives, shared by host loops and CUDA kernels.
//
// Two families, both pure functions of (seed, rank, index):
//  * reduce_value: small non-negative integers v(r,i) = (i*P + seed + r) mod m. Every partial sum of
//    a group's values is an integer no larger than the group total, and m is chosen so that the total
//    stays exactly representable in the element type; so any reduction order is bit-exact and the
//    expected sum has an O(1) closed form for any group size (reduce_sum). A missing or duplicated
//    contribution changes the sum for most indices.
//  * gather_value: integers in [-125, 125] that differ between ranks for the same index (up to 251
//    ranks), so a block that lands in the wrong place names the rank it came from.
#include <cstdint>

#include "element_math.h"

namespace dtbench {

constexpr uint64_t kReduceStride = 2654435761u;  // Knuth's multiplicative hash constant
constexpr uint64_t kGatherStride = 40503u;
constexpr int64_t kGatherModulus = 251;          // prime: rank offsets stay distinct mod 251

// Largest integer up to which every integer is exactly representable: 2^(significand bits).
DT_HD int64_t exact_integer_limit(int dtype_code) {  // 0 = fp32, 1 = bf16, 2 = fp16
  return dtype_code == 0 ? (int64_t(1) << 24) : dtype_code == 1 ? 256 : 2048;
}

// Modulus for reduce_value so that a sum over `group_size` ranks stays exact.
DT_HD int64_t reduce_modulus(int dtype_code, int64_t group_size) {
  int64_t m = exact_integer_limit(dtype_code) / (group_size > 0 ? group_size : 1) + 1;
  if (m > 64) m = 64;
  if (m < 2) m = 2;
  return m;
}

DT_HD int64_t reduce_base(uint64_t seed, uint64_t index, int64_t m) {
  const uint64_t x = index * kReduceStride + seed, um = uint64_t(m);
  // Power-of-two moduli (64: every fp32 and fp16 group up to 32 ranks) need no division.
  return int64_t((um & (um - 1)) == 0 ? (x & (um - 1)) : x % um);
}

DT_HD float reduce_value(uint64_t seed, int rank, uint64_t index, int64_t m) {
  return float((reduce_base(seed, index, m) + rank) % m);
}

// Sum of reduce_value over ranks 0..n-1 at `index`, in closed form (O(1) in n).
DT_HD int64_t reduce_sum(uint64_t seed, int64_t n, uint64_t index, int64_t m) {
  int64_t b = reduce_base(seed, index, m);
  int64_t full_cycles = n / m, k = n % m;
  int64_t total = full_cycles * (m * (m - 1) / 2);
  if (b + k <= m) {
    total += k * b + k * (k - 1) / 2;
  } else {
    int64_t head = m - b;               // terms b .. m-1
    int64_t tail = k - head;            // terms 0 .. tail-1 after wrapping
    total += (b + m - 1) * head / 2 + tail * (tail - 1) / 2;
  }
  return total;
}

// The period in the index of reduce_value / reduce_sum over indices [0, last_index]: m while
// index * kReduceStride + seed does not wrap 2^64 (any buffer below ~6.9e9 elements), else 0.
DT_HD uint64_t reduce_period(uint64_t seed, uint64_t last_index, int64_t m) {
  return last_index <= (~uint64_t(0) - seed) / kReduceStride ? uint64_t(m) : 0;
}

DT_HD float gather_value(uint64_t seed, int rank, uint64_t index) {
  uint64_t h = index * kGatherStride + seed * 7u + uint64_t(rank) * 97u;
  return float(int64_t(h % uint64_t(kGatherModulus)) - 125);
}

// The period in the index of gather_value(seed, rank, index) over indices [0, last_index]:
// kGatherModulus while the hash does not wrap 2^64, else 0.
DT_HD uint64_t gather_period(uint64_t seed, int rank, uint64_t last_index) {
  const uint64_t c = seed * 7u + uint64_t(rank) * 97u;
  return last_index <= (~uint64_t(0) - c) / kGatherStride ? uint64_t(kGatherModulus) : 0;
}

}  // namespace dtbench
