#pragma once
// The closed-form element values of dtbench-ckpt's sharded state, shared by host loops and CUDA
// kernels. Element `index` (global, row-major) of a tensor whose values are drawn from `key_hash`
// (a hash of the key and the training step) is a function of the two alone, so any rank can check
// any element it loads in O(1), and the optimizer step that moves the state on is a pure fill.
//
//  * fp32: an integer in [-2^24, 2^24), so exact; within a key, injective over any 2^25 consecutive
//    indices.
//  * bf16 / fp16: any finite normal bit pattern from a 15-bit code (sign, an exponent window, the
//    full mantissa): no arithmetic happens on checkpoint data, so they need not be small integers.
#include <cstdint>

#include "element_math.h"

namespace dtbench {

// (index * odd + key_hash) mod 2^bits, odd taken from the hash's high half: a bijection on any 2^bits
// consecutive indices, keyed per tensor. bits <= 31, so 32-bit arithmetic gives the same low bits as
// 64-bit, and consecutive codes differ by `odd`, so a row is generated with one add per element.
DT_HD uint32_t ckpt_code_odd(uint64_t key_hash) { return uint32_t(key_hash >> 32) | 1u; }
DT_HD uint32_t ckpt_code(uint64_t key_hash, uint64_t index, int bits) {
  return (uint32_t(index) * ckpt_code_odd(key_hash) + uint32_t(key_hash)) & ((uint32_t(1) << bits) - 1u);
}

constexpr int kCkptF32CodeBits = 25, kCkptHalfCodeBits = 15;

DT_HD float ckpt_f32_from_code(uint32_t code) { return float(int32_t(code) - (int32_t(1) << 24)); }
// Exponent 64..191 of 0..255: normal and finite.
DT_HD uint16_t ckpt_bf16_from_code(uint32_t c) {
  return uint16_t(((c >> 14) << 15) | ((64 + ((c >> 7) & 127u)) << 7) | (c & 127u));
}
// Exponent 8..23 of 0..31.
DT_HD uint16_t ckpt_f16_from_code(uint32_t c) {
  return uint16_t(((c >> 14) << 15) | ((8 + ((c >> 10) & 15u)) << 10) | (c & 1023u));
}

}  // namespace dtbench
