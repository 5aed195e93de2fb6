#include "kernels.h"
#include "pattern.h"

namespace dtbench {
namespace kernels {
namespace {

__device__ __forceinline__ void store(int dt, void* p, size_t i, float v) {
  if (dt == 0) static_cast<float*>(p)[i] = v;
  else if (dt == 1) static_cast<uint16_t*>(p)[i] = f32_to_bf16(v);
  else static_cast<uint16_t*>(p)[i] = f32_to_f16(v);
}

__device__ __forceinline__ float load(int dt, const void* p, size_t i) {
  if (dt == 0) return static_cast<const float*>(p)[i];
  if (dt == 1) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

__global__ void fill_kernel(void* data, int dt, size_t n, int kind, uint64_t seed, int rank, uint64_t base,
                            int group_size) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float v = kind == 0 ? sum_share_at(seed, dt, rank, group_size, base + i) : moved_value_at(seed, dt, rank, base + i);
    store(dt, data, i, v);
  }
}

__global__ void convert_kernel(const void* src, int sdt, void* dst, int ddt, size_t n, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    store(ddt, dst, i, load(sdt, src, i) * scale);
}

__global__ void busy_kernel(unsigned long long ns) {
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

unsigned grid_for(size_t n) {
  size_t blocks = (n + 255) / 256;
  return unsigned(blocks < 4096 ? (blocks ? blocks : 1) : 4096);
}

}  // namespace

void fill_pattern(void* data, int dt, size_t n, int kind, uint64_t seed, int rank, uint64_t base, int group_size,
                  void* stream) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(data, dt, n, kind, seed, rank, base,
                                                                          group_size);
}

void convert(const void* src, int sdt, void* dst, int ddt, size_t n, float scale, void* stream) {
  if (n == 0) return;
  convert_kernel<<<grid_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(src, sdt, dst, ddt, n, scale);
}

void busy_wait(double seconds, void* stream) {
  if (seconds <= 0) return;
  busy_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<unsigned long long>(seconds * 1e9));
}

}  // namespace kernels
}  // namespace dtbench
