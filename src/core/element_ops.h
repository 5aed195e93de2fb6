#pragma once
// Local element arithmetic on host and device buffers, in the buffer's dtype: the pre-scale of a
// grad bucket, a grad accumulated into another, a dtype conversion for an fp32 wire. Device buffers
// take a host round trip (these run outside the timed loops), so both backends share one
// implementation and the host tests cover it. Each result is computed in fp32 and rounded once (RNE)
// to the destination dtype.
#include <cstddef>
#include <vector>

#include "core/buffer.h"
#include "core/dtype.h"

namespace dtbench {

// buf[first + i] *= factor.
void scale_elements(Buffer& buf, size_t first, size_t n, float factor);
// dst[dst_first + i] += src[src_first + i] (src may have another dtype; one rounding per add).
void accumulate_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n);
// dst[dst_first + i] = src[src_first + i] converted to dst's dtype.
void convert_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n);

namespace detail {
// buf[first + i] = fn(first + i, buf[first + i]); the dtype dispatch is hoisted out of the element
// loop (fp32 host buffers are updated in place through a float*).
template <DType DT, class Fn>
void transform_typed(void* p, size_t first, size_t n, size_t index_base, const float* in, Fn& fn) {
  for (size_t i = 0; i < n; ++i) {
    const float x = in ? in[i] : load_elem(DT, p, first + i);
    store_elem(DT, p, first + i, fn(index_base + i, x));
  }
}
template <class Fn>
void transform_elements(Buffer& buf, size_t first, size_t n, Fn fn) {
  if (n == 0) return;
  const DType dt = buf.dtype();
  auto run = [&](void* p, size_t at, const float* in) {
    switch (dt) {
      case DType::f32: {
        float* f = static_cast<float*>(p) + at;
        if (in) {
          for (size_t i = 0; i < n; ++i) f[i] = fn(first + i, in[i]);
        } else {
          for (size_t i = 0; i < n; ++i) f[i] = fn(first + i, f[i]);
        }
        break;
      }
      case DType::bf16: transform_typed<DType::bf16>(p, at, n, first, in, fn); break;
      case DType::f16: transform_typed<DType::f16>(p, at, n, first, in, fn); break;
    }
  };
  if (buf.space() == MemSpace::host) {
    run(buf.data(), first, nullptr);
    return;
  }
  std::vector<float> cur = buf.to_host_f32(first, n);
  std::vector<unsigned char> tmp(n * dtype_size(dt));
  run(tmp.data(), 0, cur.data());
  buf.copy_from_host(tmp.data(), first, n);
}
}  // namespace detail

// buf[first + i] += value(first + i) (value as fp32).
template <class ValueFn>
void add_elements(Buffer& buf, size_t first, size_t n, ValueFn value) {
  detail::transform_elements(buf, first, n, [&value](size_t i, float x) { return x + value(i); });
}

}  // namespace dtbench
