#include "core/element_ops.h"

namespace dtbench {

void scale_elements(Buffer& buf, size_t first, size_t n, float factor) {
  detail::transform_elements(buf, first, n, [factor](size_t, float x) { return x * factor; });
}

void accumulate_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n) {
  if (n == 0) return;
  const DType dd = dst.dtype(), sd = src.dtype();
  if (dst.space() == MemSpace::host && src.space() == MemSpace::host) {
    if (dd == DType::f32 && sd == DType::f32) {  // the common case: no dtype dispatch per element
      float* d = static_cast<float*>(dst.data()) + dst_first;
      const float* a = static_cast<const float*>(src.data()) + src_first;
      for (size_t i = 0; i < n; ++i) d[i] = d[i] + a[i];
      return;
    }
    for (size_t i = 0; i < n; ++i)
      store_elem(dd, dst.data(), dst_first + i,
                 load_elem(dd, dst.data(), dst_first + i) + load_elem(sd, src.data(), src_first + i));
    return;
  }
  std::vector<unsigned char> a = dst.host_bytes(dst_first, n), b = src.host_bytes(src_first, n);
  for (size_t i = 0; i < n; ++i) store_elem(dd, a.data(), i, load_elem(dd, a.data(), i) + load_elem(sd, b.data(), i));
  dst.copy_from_host(a.data(), dst_first, n);
}

void convert_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n) {
  if (n == 0) return;
  const DType dd = dst.dtype(), sd = src.dtype();
  if (dst.space() == MemSpace::host && src.space() == MemSpace::host) {
    for (size_t i = 0; i < n; ++i) store_elem(dd, dst.data(), dst_first + i, load_elem(sd, src.data(), src_first + i));
    return;
  }
  std::vector<unsigned char> b = src.host_bytes(src_first, n), a(n * dtype_size(dd));
  for (size_t i = 0; i < n; ++i) store_elem(dd, a.data(), i, load_elem(sd, b.data(), i));
  dst.copy_from_host(a.data(), dst_first, n);
}

}  // namespace dtbench
