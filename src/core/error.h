#pragma once
// Error types that map onto dtbench's exit codes (see README "Exit codes").
#include <stdexcept>
#include <string>

namespace dtbench {

enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,   // a validation check failed
  kExitBadInput = 2,      // bad flag, file or value; nothing written
  kExitHang = 3,          // watchdog fired: a collective did not complete in --timeout
  kExitNoDevice = 4,      // --backend nccl without a usable CUDA device / NCCL
  kExitRuntime = 5,       // any other runtime failure (I/O, MPI, CUDA error)
};

// Bad user input: a flag, a value or an input file. The message names it.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The requested backend cannot run here (no GPU, built without CUDA).
struct NoDeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A runtime failure that is not the user's input (I/O error, CUDA error...).
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace dtbench
