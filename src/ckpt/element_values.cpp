#include "ckpt/element_values.h"

#include <xxhash.h>

#include "../../kernels/ckpt_values.h"

namespace dtbench {

// --- element values ------------------------------------------------------------------------------
uint64_t key_hash(const std::string& key) { return XXH64(key.data(), key.size(), 0); }

float ckpt_value(uint64_t key_hash, int64_t global_linear_index) {
  return ckpt_f32_from_code(ckpt_code(key_hash, uint64_t(global_linear_index), kCkptF32CodeBits));
}

float ckpt_value(DType dtype, uint64_t key_hash, int64_t global_linear_index) {
  if (dtype == DType::f32) return ckpt_value(key_hash, global_linear_index);
  const uint32_t c = ckpt_code(key_hash, uint64_t(global_linear_index), kCkptHalfCodeBits);
  return dtype == DType::bf16 ? bf16_to_f32(ckpt_bf16_from_code(c)) : f16_to_f32(ckpt_f16_from_code(c));
}

namespace {
// One row of a box: elements first_index .. first_index+n-1, stored directly in the dtype's bits.
// The code advances by `odd` per element, an add per element that vectorizes (omp simd: -O2's cost
// model alone does not). It is worth it: the optimizer step of dtbench-ckpt's training loop is this
// fill, and on the host backend it competes with the checkpoint writers for the CPU.
template <class T, class FromCode>
void fill_ckpt_row(uint64_t key_hash, int64_t first_index, int64_t n, int bits, T* out, FromCode from_code) {
  const uint32_t odd = ckpt_code_odd(key_hash), mask = (uint32_t(1) << bits) - 1u;
  uint32_t code = uint32_t(first_index) * odd + uint32_t(key_hash);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    out[j] = from_code(code & mask);
    code += odd;
  }
}
}  // namespace

void fill_ckpt_values(DType dtype, uint64_t key_hash, const TensorShape& global_shape,
                      const TensorShape& offset, const TensorShape& shape, void* out) {
  if (!box_inside(offset, shape, TensorShape(global_shape.size(), 0), global_shape))
    throw RuntimeError("fill_ckpt_values: box at " + shape_str(offset) + " of shape " +
                       shape_str(shape) + " leaves global shape " + shape_str(global_shape));
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const size_t ndim = shape.size();
  const TensorShape stride = strides_of(global_shape);
  const int64_t row = ndim ? shape[ndim - 1] : 1;
  TensorShape idx(ndim, 0);
  for (int64_t done = 0; done < total; done += row) {
    int64_t base = 0;
    for (size_t a = 0; a < ndim; ++a) base += (offset[a] + idx[a]) * stride[a];
    switch (dtype) {
      case DType::f32:
        fill_ckpt_row(key_hash, base, row, kCkptF32CodeBits, static_cast<float*>(out) + done, ckpt_f32_from_code);
        break;
      case DType::bf16:
        fill_ckpt_row(key_hash, base, row, kCkptHalfCodeBits, static_cast<uint16_t*>(out) + done, ckpt_bf16_from_code);
        break;
      case DType::f16:
        fill_ckpt_row(key_hash, base, row, kCkptHalfCodeBits, static_cast<uint16_t*>(out) + done, ckpt_f16_from_code);
        break;
    }
    for (size_t a = ndim ? ndim - 1 : 0; a-- > 0;) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

}  // namespace dtbench
