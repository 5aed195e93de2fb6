#include "core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/device_memory.h"
#include "core/error.h"

namespace dtbench {
namespace {

std::mutex g_stats_mutex;
MemoryStats g_stats[2];

void account(MemSpace s, size_t bytes, bool alloc) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  MemoryStats& st = g_stats[int(s)];
  if (alloc) {
    st.current_bytes += bytes;
    if (st.current_bytes > st.peak_bytes) st.peak_bytes = st.current_bytes;
  } else {
    st.current_bytes -= bytes;
  }
}

}  // namespace

MemoryStats memory_stats(MemSpace space) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_stats[int(space)];
}

void reset_peak_memory(MemSpace space) {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_stats[int(space)].peak_bytes = g_stats[int(space)].current_bytes;
}

Buffer::Buffer(MemSpace space, DType dtype, size_t count) : space_(space), dtype_(dtype), count_(count) {
  size_t nbytes = bytes();
  if (nbytes == 0) return;
  if (space == MemSpace::host) {
    // 4 KiB alignment: page-aligned host buffers behave like pinned/registered ones for copies.
    size_t rounded = (nbytes + 4095) / 4096 * 4096;
    data_ = std::aligned_alloc(4096, rounded);
    if (!data_) throw RuntimeError("out of host memory allocating " + std::to_string(nbytes) + " bytes");
  } else {
    data_ = device_alloc(nbytes);
  }
  account(space, nbytes, true);
}

Buffer::Buffer(Buffer&& o) noexcept { *this = std::move(o); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    space_ = o.space_;
    dtype_ = o.dtype_;
    count_ = o.count_;
    data_ = o.data_;
    o.data_ = nullptr;
    o.count_ = 0;
  }
  return *this;
}

Buffer::~Buffer() { release(); }

void Buffer::release() {
  if (!data_) return;
  if (space_ == MemSpace::host) {
    std::free(data_);
  } else {
    device_free(data_);
  }
  account(space_, bytes(), false);
  data_ = nullptr;
}

void Buffer::copy_to_host(void* dst, size_t first, size_t n) const {
  if (n == 0) return;
  size_t es = dtype_size(dtype_);
  if (space_ == MemSpace::host) {
    std::memcpy(dst, static_cast<const char*>(data_) + first * es, n * es);
    return;
  }
  device_to_host(dst, static_cast<const char*>(data_) + first * es, n * es);
}

void Buffer::copy_from_host(const void* src, size_t first, size_t n) {
  if (n == 0) return;
  size_t es = dtype_size(dtype_);
  if (space_ == MemSpace::host) {
    std::memcpy(static_cast<char*>(data_) + first * es, src, n * es);
    return;
  }
  host_to_device(static_cast<char*>(data_) + first * es, src, n * es);
}

std::vector<unsigned char> Buffer::host_bytes(size_t first, size_t n) const {
  std::vector<unsigned char> v(n * dtype_size(dtype_));
  copy_to_host(v.data(), first, n);
  return v;
}

std::vector<float> Buffer::to_host_f32(size_t first, size_t n) const {
  std::vector<float> out(n);
  if (dtype_ == DType::f32) {
    copy_to_host(out.data(), first, n);
    return out;
  }
  std::vector<uint16_t> raw(n);
  copy_to_host(raw.data(), first, n);
  for (size_t i = 0; i < n; ++i) out[i] = load_elem(dtype_, raw.data(), i);
  return out;
}

void Buffer::fill_zero() {
  if (!data_) return;
  if (space_ == MemSpace::host) {
    std::memset(data_, 0, bytes());
    return;
  }
  device_zero(data_, bytes());
}

void copy_elements(Buffer& dst, size_t dst_first, const Buffer& src, size_t src_first, size_t n) {
  if (n == 0) return;
  if (dst.dtype() != src.dtype() || dst.space() != src.space())
    throw RuntimeError("copy_elements: buffers differ in dtype or memory space");
  size_t es = dtype_size(dst.dtype());
  if (dst.space() == MemSpace::host) {
    std::memmove(dst.at(dst_first), src.at(src_first), n * es);
    return;
  }
  device_to_device(dst.at(dst_first), src.at(src_first), n * es);
}

}  // namespace dtbench
