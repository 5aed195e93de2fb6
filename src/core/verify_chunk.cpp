// Context::verify_local's helpers: the reused scratch and the hoisted fp32 conversion of a chunk.
#include <vector>

#include "core/suite.h"

namespace dtbench {
namespace {

// bf16 bits -> fp32 in blocks of 16 (a shift; vectorized at -O2).
void bf16_block_to_f32(const uint16_t* p, size_t n, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t k = 0; k < 16; ++k) out[i + k] = bf16_to_f32(p[i + k]);
  for (; i < n; ++i) out[i] = bf16_to_f32(p[i]);
}

}  // namespace

float* Context::verify_scratch(size_t n) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < n) scratch.resize(n);
  return scratch.data();
}

unsigned char* Context::byte_scratch(int slot, size_t bytes) {
  thread_local std::vector<unsigned char> scratch[2];
  std::vector<unsigned char>& s = scratch[slot];
  if (s.size() < bytes) s.resize(bytes);
  return s.data();
}

void Context::load_f32(const Buffer& buf, size_t first, size_t n, float* out) {
  if (n == 0) return;
  const DType dt = buf.dtype();
  if (buf.space() == MemSpace::host) {
    if (dt == DType::f32) {
      const float* p = static_cast<const float*>(buf.at(first));
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      return;
    }
    const uint16_t* p = static_cast<const uint16_t*>(buf.at(first));
    if (dt == DType::bf16) {
      bf16_block_to_f32(p, n, out);
    } else {
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
    }
    return;
  }
  if (dt == DType::f32) {
    buf.copy_to_host(out, first, n);
    return;
  }
  thread_local std::vector<uint16_t> raw;
  if (raw.size() < n) raw.resize(n);
  buf.copy_to_host(raw.data(), first, n);
  if (dt == DType::bf16) {
    bf16_block_to_f32(raw.data(), n, out);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(raw[i]);
  }
}

}  // namespace dtbench
