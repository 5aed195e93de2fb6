#pragma once
// Deterministic closed-form data, shared by host loops and CUDA kernels. Every value is a pure
// function of (seed, rank, index).
//
// The identity pattern (dtbench-coll): every element carries its position and its source.
//  * pattern_hash(key, index): a counter-based 32-bit hash (murmur3's fmix32 finaliser of the low
//    index word xor a key made from the seed, the stream and the high index word). For a fixed key it
//    is a bijection of the low 32 index bits: within 2^32 elements no two indices share a hash and
//    nothing repeats with a period. Streams (the sum totals, each source rank) have their own keys,
//    and two keys differ (so two streams never share a hash at one index) but for a 2^-32 chance.
//    fp32 elements hash their index; 16-bit elements hash their pair index and take one half each
//    (element_hash): within 2^33 elements no two pairs share a hash.
//  * Sums: sum_total(h, bits) is the expected reduction T, an integer in [0, 2^bits] (2^24 fp32, 2048
//    fp16, 256 bf16: every integer up to 2^bits is exact), 0 for 1 in 64 indices (every rank then
//    sends +0, so a sign-flipped zero shows). Rank r of a group of n contributes
//    sum_share = floor((T + k) / n), k = (r + s) mod n with s a per-index rotation. By Hermite's
//    identity the shares add up to exactly T for any n; every partial sum is an integer <= T (exact
//    in any order); and T does not depend on n, so the result carries position information at every
//    world size (no constant at any n, no period).
//  * Data movement: moved_value is a finite value whose bits come from the hash of (seed, source
//    rank, index): 28 bits of identity in fp32, 15 in fp16, 12 in bf16, and +0 or -0 for 1 in 64
//    elements. Checks compare bit patterns, so -0 for +0 is wrong.
//
// The older periodic families (reduce_value, gather_value below) feed the verify-table benchmarks;
// reduce_sum_of_base is the closed form of a rotated sum that ddp and fsdp use with a hashed base.
#include <cstdint>

#include "element_math.h"

namespace dtbench {

// murmur3's 32-bit finaliser: a bijection on 32 bits with full avalanche.
DT_HD uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

// Key of one stream (0: sum totals; 1 + r: rank r's data) over the 2^32-index block holding `index`.
DT_HD uint32_t pattern_key(uint64_t seed, uint32_t stream, uint64_t index) {
  uint32_t k = mix32(uint32_t(seed) ^ 0x9e3779b9u);
  k = mix32(k ^ uint32_t(seed >> 32) ^ (stream * 0x85ebca6bu));
  return mix32(k + uint32_t(index >> 32) * 0xc2b2ae35u + stream);
}

DT_HD uint32_t pattern_hash(uint32_t key, uint64_t index) { return mix32(uint32_t(index) ^ key); }

// A 16-bit element has only 16 bits to show, so 16-bit elements come in pairs (2p, 2p+1) that share
// one hash w of the pair index p: the even element takes w's low half, the odd one its high half
// (one hash per two elements is what keeps the 16-bit check near memcpy speed). The half h16 is
// spread to h16 * 0x10001, both halves of a 32-bit word, so the value functions below read the same
// bit positions for every type: the low six bits pick a zero, the high ones carry the value.
DT_HD uint32_t spread16(uint32_t h16) { return h16 * 0x10001u; }
// The 32-bit hash the value functions take for element `index` of a stream, in type dtype_code.
DT_HD uint32_t element_hash(uint64_t seed, uint32_t stream, int dtype_code, uint64_t index) {
  if (dtype_code == 0) return pattern_hash(pattern_key(seed, stream, index), index);
  const uint64_t pair = index >> 1;
  const uint32_t w = pattern_hash(pattern_key(seed, stream, pair), pair);
  return spread16((index & 1) ? w >> 16 : w & 0xffffu);
}

// log2 of the largest integer up to which every integer is exactly representable (significand bits).
DT_HD uint32_t exact_sum_bits(int dtype_code) {  // 0 = fp32, 1 = bf16, 2 = fp16
  return dtype_code == 0 ? 24u : dtype_code == 1 ? 8u : 11u;
}

// The expected sum at an index with hash h: 0 for 1 in 64 hashes, else an integer in [1, 2^bits]
// from the top `bits` bits of h (disjoint from the low six that pick the zero).
DT_HD int32_t sum_total(uint32_t h, uint32_t bits) {
  const uint32_t nonzero = 0u - uint32_t((h & 63u) != 0);  // branch-free: host loops vectorise
  return int32_t((1u + (h >> (32u - bits))) & nonzero);
}

// Rank r's share (r in [0, n)) of `total`: floor((total + (r + s) mod n) / n), where s in [0, n)
// rotates which ranks get the larger shares from index to index. inv_n = 1.0 / n. The quotient is
// taken in double on (a + 0.5): exact for a < 2^52, since a/n is at least 1/n away from the next
// integer. The rotation uses 32-bit arithmetic up to 2^16 ranks (`small`), so host loops vectorise.
template <bool small>
DT_HD int32_t sum_share_of(uint32_t h, int32_t total, uint32_t r, uint32_t n, double inv_n) {
  const uint32_t g = h * 0x9e3779b1u;
  const uint32_t s = small ? ((g >> 16) * n) >> 16 : uint32_t((uint64_t(g) * n) >> 32);
  uint32_t k = r + s;
  k -= n & (0u - uint32_t(k >= n));
  return int32_t((double(total) + double(int32_t(k)) + 0.5) * inv_n);
}
DT_HD int32_t sum_share(uint32_t h, int32_t total, uint32_t r, uint32_t n, double inv_n) {
  return n <= 65536u ? sum_share_of<true>(h, total, r, n, inv_n) : sum_share_of<false>(h, total, r, n, inv_n);
}

// A finite value of type dtype_code whose bits come from h (returned as the fp32 it converts to
// exactly): bits 0-5 pick a signed zero (1 in 64, its sign from bit 6); otherwise bit 31 is the
// sign, bits 27-30 the exponent (16 binades around 1) and bits 4-26 the mantissa, of which the type
// keeps the top ones: 28 bits of h in fp32, 15 in fp16 (bits 17-31), 12 in bf16 (bits 20-31).
// The mantissa bits dtype_code keeps (fp32 all 23, fp16 the top 10, bf16 the top 7).
DT_HD uint32_t moved_mantissa_mask(int dtype_code) {
  return dtype_code == 0 ? 0x7fffffu : dtype_code == 1 ? 0x7f0000u : 0x7fe000u;
}
DT_HD uint32_t moved_bits(uint32_t h, uint32_t keep) {
  const uint32_t exp = 119u + ((h >> 27) & 15u);  // 2^-8 .. 2^7: normal in fp16, bf16 and fp32
  const uint32_t value = (h & 0x80000000u) | (exp << 23) | ((h >> 4) & keep);
  const uint32_t zero = (h & 64u) << 25;                 // -0 or +0
  const uint32_t is_zero = 0u - uint32_t((h & 63u) == 0);  // branch-free: host loops vectorise
  return (zero & is_zero) | (value & ~is_zero);
}
DT_HD float moved_value(uint32_t h, int dtype_code) { return bits_f32(moved_bits(h, moved_mantissa_mask(dtype_code))); }

// Element-wise forms (the host block loops and the kernels compute the same per element).
DT_HD float sum_share_at(uint64_t seed, int dtype_code, int rank, int n, uint64_t index) {
  const uint32_t h = element_hash(seed, 0, dtype_code, index);
  return float(sum_share(h, sum_total(h, exact_sum_bits(dtype_code)), uint32_t(rank), uint32_t(n), 1.0 / n));
}
DT_HD float sum_total_at(uint64_t seed, int dtype_code, uint64_t index) {
  return float(sum_total(element_hash(seed, 0, dtype_code, index), exact_sum_bits(dtype_code)));
}
DT_HD float moved_value_at(uint64_t seed, int dtype_code, int rank, uint64_t index) {
  return moved_value(element_hash(seed, 1u + uint32_t(rank), dtype_code, index), dtype_code);
}

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

// Sum of (b + r) mod m over ranks r = 0..n-1, in closed form (O(1) in n).
DT_HD int64_t reduce_sum_of_base(int64_t b, int64_t n, int64_t m) {
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
// Sum of reduce_value over ranks 0..n-1 at `index`, in closed form (O(1) in n).
DT_HD int64_t reduce_sum(uint64_t seed, int64_t n, uint64_t index, int64_t m) {
  return reduce_sum_of_base(reduce_base(seed, index, m), n, m);
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
