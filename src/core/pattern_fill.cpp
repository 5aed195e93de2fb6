#include "core/pattern_fill.h"

#include "../../kernels/pattern.h"

namespace dtbench {
namespace {

// bf16 / fp16 bits of an fp32 value that the type holds exactly (zero, or normal in range: no
// rounding needed): a shift and, for fp16, a rebias; branch-free so the loops vectorise.
inline uint16_t exact_bf16_bits(uint32_t u) { return uint16_t(u >> 16); }
inline uint16_t exact_f16_bits(uint32_t u) {
  const uint32_t sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
  const uint32_t normal = (((mag >> 23) - 112u) << 10) | ((mag >> 13) & 0x3ffu);
  return uint16_t(sign | (mag ? normal : 0u));
}

constexpr size_t kRun = 1024;  // elements per pass: the hashes of one run stay in L1

// One run of [k0, n): at most kRun elements and never across a 2^32-index boundary (where the key
// changes). Sets *key and *lo for the run and returns its length.
inline size_t next_run(uint64_t seed, uint32_t stream, uint64_t first, size_t k0, size_t n, uint32_t* key,
                       uint32_t* lo) {
  const uint64_t index = first + k0;
  const uint64_t to_boundary = (uint64_t(1) << 32) - (index & 0xffffffffu);
  size_t len = n - k0 < kRun ? n - k0 : kRun;
  if (to_boundary < len) len = size_t(to_boundary);
  *key = pattern_key(seed, stream, index);
  *lo = uint32_t(index);
  return len;
}

// Stores fp32 bit patterns bits[0..len) as dt at out + k0 (exact conversions, see above).
inline void store_bits(DType dt, void* out, size_t k0, const uint32_t* __restrict bits, size_t len) {
  if (dt == DType::f32) {
    uint32_t* __restrict o = static_cast<uint32_t*>(out) + k0;
#pragma omp simd
    for (size_t j = 0; j < len; ++j) o[j] = bits[j];
  } else if (dt == DType::bf16) {
    uint16_t* __restrict o = static_cast<uint16_t*>(out) + k0;
#pragma omp simd
    for (size_t j = 0; j < len; ++j) o[j] = exact_bf16_bits(bits[j]);
  } else {
    uint16_t* __restrict o = static_cast<uint16_t*>(out) + k0;
#pragma omp simd
    for (size_t j = 0; j < len; ++j) o[j] = exact_f16_bits(bits[j]);
  }
}

template <bool small>
__attribute__((always_inline)) inline void fill_sum_shares_impl(DType dt, void* out, size_t n, uint64_t seed, int rank, int group_size,
                                 uint64_t first_index) {
  const uint32_t bits = exact_sum_bits(dtype_code(dt)), r = uint32_t(rank), g = uint32_t(group_size);
  const double inv = 1.0 / double(group_size);
  alignas(64) uint32_t v[kRun];
  for (size_t k0 = 0; k0 < n;) {
    uint32_t key, lo;
    const size_t len = next_run(seed, 0, first_index, k0, n, &key, &lo);
#pragma omp simd
    for (uint32_t j = 0; j < uint32_t(len); ++j) {
      const uint32_t h = mix32((lo + j) ^ key);
      v[j] = f32_bits(float(sum_share_of<small>(h, sum_total(h, bits), r, g, inv)));
    }
    store_bits(dt, out, k0, v, len);
    k0 += len;
  }
}

}  // namespace

__attribute__((target_clones("avx2", "default")))
void fill_sum_shares(DType dt, void* out, size_t n, uint64_t seed, int rank, int group_size, uint64_t first_index) {
  if (group_size <= 65536) fill_sum_shares_impl<true>(dt, out, n, seed, rank, group_size, first_index);
  else fill_sum_shares_impl<false>(dt, out, n, seed, rank, group_size, first_index);
}

__attribute__((target_clones("avx2", "default")))
void fill_moved_values(DType dt, void* out, size_t n, uint64_t seed, int rank, uint64_t first_index) {
  const uint32_t keep = moved_mantissa_mask(dtype_code(dt));
  alignas(64) uint32_t v[kRun];
  for (size_t k0 = 0; k0 < n;) {
    uint32_t key, lo;
    const size_t len = next_run(seed, 1u + uint32_t(rank), first_index, k0, n, &key, &lo);
#pragma omp simd
    for (uint32_t j = 0; j < uint32_t(len); ++j) v[j] = moved_bits(mix32((lo + j) ^ key), keep);
    store_bits(dt, out, k0, v, len);
    k0 += len;
  }
}

__attribute__((target_clones("avx2", "default")))
void fill_sum_totals(DType dt, void* out, size_t n, uint64_t seed, uint64_t first_index) {
  const uint32_t bits = exact_sum_bits(dtype_code(dt));
  alignas(64) uint32_t v[kRun];
  for (size_t k0 = 0; k0 < n;) {
    uint32_t key, lo;
    const size_t len = next_run(seed, 0, first_index, k0, n, &key, &lo);
#pragma omp simd
    for (uint32_t j = 0; j < uint32_t(len); ++j) v[j] = f32_bits(float(sum_total(mix32((lo + j) ^ key), bits)));
    store_bits(dt, out, k0, v, len);
    k0 += len;
  }
}

}  // namespace dtbench
