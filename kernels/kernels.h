#pragma once
// Host-callable launchers of the CUDA kernels (plain C++ signatures, so g++-compiled code can call
// them). Streams are passed as void* (cudaStream_t). dtype codes: 0 fp32, 1 bf16, 2 fp16.
#include <cstddef>
#include <cstdint>

namespace dtbench {
namespace kernels {

// kind 0: sum_share_at(seed, dtype, rank, group_size, index_base + i);
// kind 1: moved_value_at(seed, dtype, rank, index_base + i) (kernels/pattern.h).
void fill_pattern(void* data, int dtype_code, size_t n, int kind, uint64_t seed, int rank, uint64_t index_base,
                  int group_size, void* stream);
// Converts n elements between types, multiplying by `scale` in fp32 (round to nearest even).
void convert(const void* src, int src_dtype, void* dst, int dst_dtype, size_t n, float scale, void* stream);
// Keeps one SM busy for `seconds` (simulated compute), reading the global nanosecond timer.
void busy_wait(double seconds, void* stream);

}  // namespace kernels
}  // namespace dtbench
