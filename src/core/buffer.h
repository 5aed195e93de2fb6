#pragma once
// Typed buffers in host or device memory. Every allocation is counted so suites can report the
// peak bytes a rank held (the brief's memory rule: report peak bytes, never hold more than needed).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"

namespace dtbench {

enum class MemSpace { host, device };

struct MemoryStats {
  size_t current_bytes = 0;
  size_t peak_bytes = 0;
};
// Bytes currently allocated and the high-water mark, per memory space (this process).
MemoryStats memory_stats(MemSpace space);
void reset_peak_memory(MemSpace space);

class Buffer {
 public:
  Buffer() = default;
  Buffer(MemSpace space, DType dtype, size_t count);
  Buffer(Buffer&&) noexcept;
  Buffer& operator=(Buffer&&) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() { return data_; }
  const void* data() const { return data_; }
  // Pointer to element `index` (for views into buckets, shards, blocks).
  void* at(size_t index) { return static_cast<char*>(data_) + index * dtype_size(dtype_); }
  const void* at(size_t index) const { return static_cast<const char*>(data_) + index * dtype_size(dtype_); }
  size_t count() const { return count_; }
  size_t bytes() const { return count_ * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  MemSpace space() const { return space_; }
  bool empty() const { return count_ == 0; }

  // Copies between this buffer and host memory (a memcpy for host buffers, cudaMemcpy for device).
  void copy_to_host(void* dst, size_t first, size_t n) const;
  void copy_from_host(const void* src, size_t first, size_t n);
  // A host copy of the raw bytes of elements [first, first+n).
  std::vector<unsigned char> host_bytes(size_t first, size_t n) const;
  // A host copy of elements [first, first+n) as fp32 values.
  std::vector<float> to_host_f32(size_t first, size_t n) const;
  void fill_zero();

 private:
  void release();
  MemSpace space_ = MemSpace::host;
  DType dtype_ = DType::f32;
  size_t count_ = 0;
  void* data_ = nullptr;
};

// Copies n elements between buffers of the same space and dtype (device-to-device or memcpy).
void copy_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n);

}  // namespace dtbench
