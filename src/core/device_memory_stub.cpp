// Builds without CUDA: no device buffer can be made, so only device_alloc is ever reached.
#include "core/device_memory.h"
#include "core/error.h"

namespace dtbench {
namespace {

[[noreturn]] void no_device() {
  throw NoDeviceError("device buffer requested but dtbench was built without CUDA");
}

}  // namespace

void* device_alloc(size_t) { no_device(); }
void device_free(void*) {}
void device_to_host(void*, const void*, size_t) { no_device(); }
void host_to_device(void*, const void*, size_t) { no_device(); }
void device_to_device(void*, const void*, size_t) { no_device(); }
void device_zero(void*, size_t) { no_device(); }

}  // namespace dtbench
