// Stands in for backend_nccl.cpp in builds without CUDA (make CUDA=0, or no nvcc/nccl.h found).
#include "core/backend.h"
#include "core/error.h"

namespace dtbench {

std::unique_ptr<Backend> make_nccl_backend(const RunInfo&) {
  throw NoDeviceError("no CUDA device: this dtbench was built without CUDA/NCCL (rebuild where nvcc and nccl.h "
                      "are found)");
}

bool cuda_device_available() { return false; }

}  // namespace dtbench
