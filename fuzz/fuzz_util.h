#pragma once
// Shared by the libFuzzer targets: the parsers read files, so each input is written to a per-process
// temporary file first. A parser may reject input only with the documented exception types
// (InputError, and CheckpointingError for the index); any other exception is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "core/error.h"

namespace fuzz {

inline std::string temp_path(const char* suffix) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/dtbench-fuzz-" + std::to_string(::getpid()) + suffix;
}

inline const std::string& write_temp(const uint8_t* data, size_t size, const char* suffix) {
  static std::string path = temp_path(suffix);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs fn; InputError is the expected rejection, anything else aborts (a finding).
template <typename Fn>
void expect_only_input_errors(Fn&& fn) {
  try {
    fn();
  } catch (const dtbench::InputError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace fuzz
