#pragma once
// A backend decides where memory lives and who moves it (shared/DESIGN.md, "one algorithm, two
// backends"). Suites talk to Backend for memory, fills, simulated compute and device metadata, and
// to Comm for collectives; they never know which backend they run on.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/comm.h"

namespace dtbench {

struct RunInfo;

// The identity pattern of kernels/pattern.h for a range of a buffer: a rank's shares of exact sums
// (reduce) or its moved values (gather: data-movement collectives).
struct PatternSpec {
  enum Kind { reduce, gather } kind = reduce;
  uint64_t seed = 0;
  int rank = 0;             // the contributing rank the values belong to (its rank in the group)
  uint64_t index_base = 0;  // pattern index of the first element filled
  int group_size = 1;       // reduce only: the number of ranks whose shares are summed
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;  // "host" or "nccl"
  virtual MemSpace mem_space() const = 0;
  virtual Comm& world() = 0;
  Buffer alloc(DType dt, size_t count) const { return Buffer(mem_space(), dt, count); }

  // Fills elements [first, first+n) of `buf` with a pattern (a kernel on the GPU, a loop on the host).
  virtual void fill_pattern(Buffer& buf, size_t first, size_t n, const PatternSpec& spec) = 0;
  // Simulated compute of the given duration: a spin on the host, a busy kernel queued on the stream.
  virtual void busy_compute(double seconds) = 0;
  // Waits for all queued device work (no-op on the host).
  virtual void synchronize() = 0;
  // Runs `work` and returns its duration in seconds once it has completed: wall clock on the host,
  // a cudaEvent pair around it on the NCCL stream.
  virtual double measure(const std::function<void()>& work) = 0;
  // Host memory for staging device data to the host (checkpoints): pinned on GPU backends so the
  // copies run asynchronously at full speed; aligned, pre-faulted memory on the host backend.
  virtual void* alloc_host_staging(size_t bytes) = 0;
  virtual void free_host_staging(void* p) = 0;
  // Staging a snapshot: begin_staging() marks the snapshot point on the training thread (GPU: the
  // side stream waits for the work queued so far). stage_to_host() then queues a copy of elements
  // [first, first+n) of `buf` into host memory `dst` on the side stream (a plain memcpy on the host
  // backend) and wait_staging() blocks until every queued copy landed; both may run on another
  // thread, and the data must not change before wait_staging() returns.
  virtual void begin_staging() = 0;
  virtual void stage_to_host(const Buffer& buf, size_t first, size_t n, void* dst) = 0;
  virtual void wait_staging() = 0;
  // Device facts for the report metadata (GPU name, CUDA versions, NCCL library...).
  virtual std::vector<std::pair<std::string, std::string>> metadata() const = 0;
};

// Fills [first, first+n) of `buf` with value(i) for i in [first, first+n), rounded to the buffer's
// dtype; generated on the host and copied for device buffers (for suite-specific closed forms).
namespace detail {
template <class T, class ValueFn, class Conv>
void fill_typed(void* p, size_t first, size_t n, ValueFn& value, Conv conv) {
  T* out = static_cast<T*>(p);
  for (size_t i = 0; i < n; ++i) out[i] = conv(value(first + i));
}
// Stores value(first + i) into p[i] as dtype dt (dispatch on the dtype once, not per element).
template <class ValueFn>
void fill_values(DType dt, void* p, size_t first, size_t n, ValueFn& value) {
  switch (dt) {
    case DType::f32: fill_typed<float>(p, first, n, value, [](float v) { return v; }); break;
    case DType::bf16: fill_typed<uint16_t>(p, first, n, value, [](float v) { return f32_to_bf16(v); }); break;
    case DType::f16: fill_typed<uint16_t>(p, first, n, value, [](float v) { return f32_to_f16(v); }); break;
  }
}
}  // namespace detail

// Fills elements [first, first+n) of `buf` with write_values(dst), which stores n elements of buf's
// dtype at dst: in place for host buffers, through a host copy for device buffers. The one place
// that decides how host-generated values reach a buffer; fills that produce whole rows at a time
// (faster than an element function) call it directly.
template <class WriteValues>
void fill_range_with(Buffer& buf, size_t first, size_t n, WriteValues write_values) {
  if (n == 0) return;
  if (buf.space() == MemSpace::host) {
    write_values(buf.at(first));
    return;
  }
  std::vector<unsigned char> tmp(n * dtype_size(buf.dtype()));
  write_values(static_cast<void*>(tmp.data()));
  buf.copy_from_host(tmp.data(), first, n);
}

// Fills [first, first+n) of `buf` with value(i) for i in [first, first+n), rounded to the buffer's
// dtype (for suite-specific closed forms).
template <class ValueFn>
void fill_with(Buffer& buf, size_t first, size_t n, ValueFn value) {
  const DType dt = buf.dtype();
  fill_range_with(buf, first, n, [&](void* dst) { detail::fill_values(dt, dst, first, n, value); });
}

// The host loop behind HostBackend::fill_pattern on raw memory: element k of `p` (k in [0, n)) gets
// the pattern value at index spec.index_base + k, stored as dt (src/core/pattern_fill.h).
void fill_pattern_host(DType dt, void* p, size_t n, const PatternSpec& spec);

// "host": MPI on host memory. Never fails.
std::unique_ptr<Backend> make_host_backend();
// "nccl": NCCL on device memory, one device per rank (the local rank). Throws NoDeviceError when
// there is no usable CUDA device or dtbench was built without CUDA.
std::unique_ptr<Backend> make_nccl_backend(const RunInfo& info);
// True when this build has CUDA and at least one device is visible.
bool cuda_device_available();

}  // namespace dtbench
