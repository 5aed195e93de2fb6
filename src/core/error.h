#pragma once
// Error types that map onto dtbench's exit codes (see README "Exit codes").
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

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

// A planner's complaint about its inputs, named by the planner's own field names ("tp", "experts";
// several joined by '/'), not by a flag: suites spell their flags differently, so the suite that
// parsed the flags turns the fields into its flags (with_flag_names). Uncaught, it is still bad input:
// what() reads "tp: must be >= 1 (got 0)".
struct ValueError : InputError {
  ValueError(std::string fields_, std::string detail_)
      : InputError(fields_ + ": " + detail_), fields(std::move(fields_)), detail(std::move(detail_)) {}
  std::string fields;  // "tp", or "tp/cp/pp"
  std::string detail;  // "must be >= 1 (got 0)"
};

// Runs fn(); a ValueError from it becomes an InputError that starts with the suite's flags for the
// fields at fault ("--tp/--cp/--pp: world size 6 is not divisible by TP*CP*PP = 4"). A field the map
// does not know keeps its name.
template <class Fn>
auto with_flag_names(const std::map<std::string, std::string>& flag_of, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ValueError& e) {
    std::string flags, rest = e.fields;
    for (size_t start = 0; start <= rest.size();) {
      const size_t end = std::min(rest.find('/', start), rest.size());
      const std::string field = rest.substr(start, end - start);
      const auto it = flag_of.find(field);
      flags += (flags.empty() ? "" : "/") + (it != flag_of.end() ? it->second : field);
      start = end + 1;
    }
    throw InputError(flags + ": " + e.detail);
  }
}

// The requested backend cannot run here (no GPU, built without CUDA).
struct NoDeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A runtime failure that is not the user's input (I/O error, CUDA error...).
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace dtbench
