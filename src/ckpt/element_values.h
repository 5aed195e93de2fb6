#pragma once
// Closed-form checkpoint element values, exact in each dtype: what a save writes and a load must read.
#include <cstdint>
#include <string>

#include "ckpt/shapes.h"
#include "core/dtype.h"

namespace dtbench {

uint64_t key_hash(const std::string& key);  // XXH64, seed 0
// fp32: an integer in [-2^24, 2^24), so exact. Within a key, injective over any 2^25 consecutive
// indices; two keys agree at an index with probability 2^-25, so a misplaced read shows.
float ckpt_value(uint64_t key_hash, int64_t global_linear_index);
// Exactly representable in `dtype`. No arithmetic happens on checkpoint data, so 16-bit types use
// any finite normal bit pattern (15-bit code: sign, 7-bit (bf16) / 4-bit (fp16) exponent window,
// full mantissa) instead of the few exact small integers: injective over 2^15 consecutive indices.
float ckpt_value(DType dtype, uint64_t key_hash, int64_t global_linear_index);
// Writes the values of box [offset, offset+shape) of a tensor of global_shape into `out`, row-major.
void fill_ckpt_values(DType dtype, uint64_t key_hash, const TensorShape& global_shape,
                      const TensorShape& offset, const TensorShape& shape, void* out);

}  // namespace dtbench
