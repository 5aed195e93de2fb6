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

constexpr size_t kRun = 1024;  // hashes per pass: one run stays in L1

// One run of [k0, n) counters from `first` (element indices for fp32, pair indices for 16-bit
// types): at most kRun and never across a 2^32 boundary (where the key changes). Sets *key and *lo
// for the run and returns its length.
inline size_t next_run(uint64_t seed, uint32_t stream, uint64_t first, size_t k0, size_t n, uint32_t* key,
                       uint32_t* lo) {
  const uint64_t counter = first + k0;
  const uint64_t to_boundary = (uint64_t(1) << 32) - (counter & 0xffffffffu);
  size_t len = n - k0 < kRun ? n - k0 : kRun;
  if (to_boundary < len) len = size_t(to_boundary);
  *key = pattern_key(seed, stream, counter);
  *lo = uint32_t(counter);
  return len;
}

// bf16 / fp16 bits of an fp32 bit pattern, as dt (f32: unchanged).
template <DType dt>
inline uint32_t narrow_bits(uint32_t u) {
  return dt == DType::f32 ? u : dt == DType::bf16 ? exact_bf16_bits(u) : exact_f16_bits(u);
}

// words[c] = word_of(hash of counter first + c) for c < count, in runs that share a key (`compare`:
// OR of words[c] ^ word_of(...) instead, nothing written). Word: a 32-bit word, maybe 2-aligned.
template <bool compare, class Word, class WordOf>
__attribute__((always_inline)) inline uint32_t run_words(Word* __restrict words, size_t count, uint64_t seed,
                                                         uint32_t stream, uint64_t first, WordOf word_of) {
  alignas(64) uint32_t v[kRun];
  uint32_t diff = 0;
  for (size_t c0 = 0; c0 < count;) {
    uint32_t key, lo;
    const size_t len = next_run(seed, stream, first, c0, count, &key, &lo);
    Word* __restrict w = words + c0;
    if (compare) {
#pragma omp simd reduction(| : diff)
      for (uint32_t j = 0; j < uint32_t(len); ++j) diff |= w[j] ^ word_of(mix32((lo + j) ^ key));
    } else {
#pragma omp simd
      for (uint32_t j = 0; j < uint32_t(len); ++j) v[j] = word_of(mix32((lo + j) ^ key));
#pragma omp simd
      for (size_t j = 0; j < len; ++j) w[j] = v[j];
    }
    c0 += len;
  }
  return diff;
}

// out[k] (as dt) = fp32_bits_of(h) with h the element hash of first + k in `stream`, for every k < n.
// fp32: one hash per element. 16-bit types: one hash w per pair of elements, and pair_of(w) gives
// both elements packed into one 32-bit word (the even element in the low half); a range that
// starts or ends inside a pair takes that element through element_hash and fp32_bits_of.
// `compare`: data is read, not written, and the result is non-zero when any element's bits differ
// (the check's common path, fused so the loads of the data overlap the hashing).
template <DType dt, bool compare, class Fp32BitsOf, class PairOf>
__attribute__((always_inline)) inline uint32_t run_stream(void* data, size_t n, uint64_t seed, uint32_t stream,
                                                          uint64_t first, Fp32BitsOf fp32_bits_of, PairOf pair_of) {
  if (dt == DType::f32)
    return run_words<compare>(static_cast<uint32_t*>(data), n, seed, stream, first, fp32_bits_of);
  uint16_t* o = static_cast<uint16_t*>(data);
  const int code = dtype_code(dt);
  uint32_t diff = 0;
  auto single = [&](size_t k) {  // an element whose pair is not wholly in the range
    const uint16_t want = uint16_t(narrow_bits<dt>(fp32_bits_of(element_hash(seed, stream, code, first + k))));
    if (compare) diff |= uint32_t(o[k] ^ want);
    else o[k] = want;
  };
  size_t k = 0;
  if (n > 0 && (first & 1)) single(k++);  // the odd half of a pair
  const size_t pairs = (n - k) / 2;
  typedef uint32_t __attribute__((may_alias, aligned(2))) u32_pair;  // two elements, maybe 2-aligned
  diff |= run_words<compare>(reinterpret_cast<u32_pair*>(o + k), pairs, seed, stream, (first + k) >> 1, pair_of);
  k += 2 * pairs;
  if (k < n) single(k);
  return diff;
}

// The pair of 16-bit elements of hash w by the element-wise definition: each half spread16, then
// fp32_bits_of, then narrowed.
template <DType dt, class Fp32BitsOf>
__attribute__((always_inline)) inline uint32_t pair_by_elements(uint32_t w, Fp32BitsOf fp32_bits_of) {
  return narrow_bits<dt>(fp32_bits_of(spread16(w & 0xffffu))) | (narrow_bits<dt>(fp32_bits_of(spread16(w >> 16))) << 16);
}

// Runs run_stream with dt known at compile time (so each type's loop vectorises on its own), with
// PairOf<dt> packing the two elements of a pair (unused for fp32).
template <bool compare, template <DType> class PairOf, class Fp32BitsOf>
__attribute__((always_inline)) inline uint32_t run_typed(DType dt, void* data, size_t n, uint64_t seed, uint32_t stream,
                                                         uint64_t first, Fp32BitsOf fp32_bits_of) {
  if (dt == DType::f32) return run_stream<DType::f32, compare>(data, n, seed, stream, first, fp32_bits_of, PairOf<DType::bf16>{});
  if (dt == DType::bf16) return run_stream<DType::bf16, compare>(data, n, seed, stream, first, fp32_bits_of, PairOf<DType::bf16>{});
  return run_stream<DType::f16, compare>(data, n, seed, stream, first, fp32_bits_of, PairOf<DType::f16>{});
}

// Both halves of a 32-bit lane at once: 0xffff in each half whose low six bits are not all zero
// (the pattern's "not a zero" test, per element). (t + 63) reaches bit 6 exactly when t >= 1.
inline uint32_t nonzero_halves(uint32_t w) {
  const uint32_t nz = (((w & 0x003f003fu) + 0x003f003fu) & 0x00400040u) >> 6;  // 1 per nonzero half
  return (nz << 16) - nz;
}

// moved_bits + narrowing for both elements of a pair, on the halves in place (SWAR). For a half h:
// sign = bit 15; exponent 119 + bits 11-14 (bf16 field bits 7-14; fp16: 7 + those bits, field
// bits 10-14); mantissa bf16 bits 4-10, fp16 bits 1-10; a zero (low six bits 0) signed by bit 6.
// Equal to pair_by_elements (tests/unit/test_perf_paths.cpp IdentityFillsMatchTheElementForms).
template <DType dt>
struct MovedPair {
  uint32_t operator()(uint32_t w) const {
    uint32_t value;
    if (dt == DType::bf16)
      value = (w & 0x80008000u) | (((w >> 4) & 0x07800780u) + 0x3b803b80u) | ((w >> 4) & 0x007f007fu);
    else
      value = (w & 0x80008000u) | (((w >> 1) & 0x3c003c00u) + 0x1c001c00u) | ((w >> 1) & 0x03ff03ffu);
    const uint32_t zero = (w & 0x00400040u) << 9, m = nonzero_halves(w);
    return (value & m) | (zero & ~m);
  }
};

// sum_total + narrowing for both elements of a pair: T = 1 + the half's top `bits` bits (0 when its
// low six are), converted through fp32. fp16 of an integer T <= 2048 is the fp32 bits of T * 2^-112
// shifted right by 13 (the exponents' bias difference; T has at most 11 significant bits).
template <DType dt>
struct TotalPair {
  uint32_t operator()(uint32_t w) const {
    const uint32_t bits = exact_sum_bits(dtype_code(dt));
    const float lo = float(((w & 0xffffu) >> (16u - bits)) + 1u), hi = float((w >> (32u - bits)) + 1u);
    uint32_t pair;
    if (dt == DType::bf16) pair = (f32_bits(lo) >> 16) | (f32_bits(hi) & 0xffff0000u);
    else pair = (f32_bits(lo * 0x1p-112f) >> 13) | ((f32_bits(hi * 0x1p-112f) << 3) & 0xffff0000u);
    return pair & nonzero_halves(w);
  }
};

template <bool small>
__attribute__((always_inline)) inline void fill_sum_shares_impl(DType dt, void* out, size_t n, uint64_t seed, int rank,
                                                                int group_size, uint64_t first_index) {
  const uint32_t bits = exact_sum_bits(dtype_code(dt)), r = uint32_t(rank), g = uint32_t(group_size);
  const double inv = 1.0 / double(group_size);
  auto share = [=](uint32_t h) { return f32_bits(float(sum_share_of<small>(h, sum_total(h, bits), r, g, inv))); };
  // The shares' rotation and division are per element: the pairs take the element-wise definition.
  if (dt == DType::f32) run_stream<DType::f32, false>(out, n, seed, 0, first_index, share, share);
  else if (dt == DType::bf16) run_stream<DType::bf16, false>(out, n, seed, 0, first_index, share, [=](uint32_t w) {
    return pair_by_elements<DType::bf16>(w, share);
  });
  else run_stream<DType::f16, false>(out, n, seed, 0, first_index, share, [=](uint32_t w) {
    return pair_by_elements<DType::f16>(w, share);
  });
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
void fill_sum_shares(DType dt, void* out, size_t n, uint64_t seed, int rank, int group_size, uint64_t first_index) {
  if (group_size <= 65536) fill_sum_shares_impl<true>(dt, out, n, seed, rank, group_size, first_index);
  else fill_sum_shares_impl<false>(dt, out, n, seed, rank, group_size, first_index);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void fill_moved_values(DType dt, void* out, size_t n, uint64_t seed, int rank, uint64_t first_index) {
  const uint32_t keep = moved_mantissa_mask(dtype_code(dt));
  run_typed<false, MovedPair>(dt, out, n, seed, 1u + uint32_t(rank), first_index,
                              [=](uint32_t h) { return moved_bits(h, keep); });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
bool moved_values_differ(DType dt, const void* data, size_t n, uint64_t seed, int rank, uint64_t first_index) {
  const uint32_t keep = moved_mantissa_mask(dtype_code(dt));
  return run_typed<true, MovedPair>(dt, const_cast<void*>(data), n, seed, 1u + uint32_t(rank), first_index,
                                    [=](uint32_t h) { return moved_bits(h, keep); }) != 0;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void fill_sum_totals(DType dt, void* out, size_t n, uint64_t seed, uint64_t first_index) {
  const uint32_t bits = exact_sum_bits(dtype_code(dt));
  run_typed<false, TotalPair>(dt, out, n, seed, 0, first_index,
                              [=](uint32_t h) { return f32_bits(float(sum_total(h, bits))); });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
bool sum_totals_differ(DType dt, const void* data, size_t n, uint64_t seed, uint64_t first_index) {
  const uint32_t bits = exact_sum_bits(dtype_code(dt));
  return run_typed<true, TotalPair>(dt, const_cast<void*>(data), n, seed, 0, first_index,
                                    [=](uint32_t h) { return f32_bits(float(sum_total(h, bits))); }) != 0;
}

}  // namespace dtbench
