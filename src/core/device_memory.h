#pragma once
// The device side of Buffer: cudaMalloc / cudaMemcpy / cudaMemset in device_memory_cuda.cpp, and a
// stub (device_memory_stub.cpp) in builds without CUDA whose allocation throws NoDeviceError (so no
// device buffer, and no other call, can exist there). The Makefile links one of the two, as it does
// for the NCCL backend and its stub; buffer.cpp itself has no CUDA in it.
#include <cstddef>

namespace dtbench {

void* device_alloc(size_t bytes);
void device_free(void* p);
void device_to_host(void* dst, const void* src, size_t bytes);
void host_to_device(void* dst, const void* src, size_t bytes);
void device_to_device(void* dst, const void* src, size_t bytes);
void device_zero(void* p, size_t bytes);

}  // namespace dtbench
