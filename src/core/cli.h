#pragma once
// Flags every suite shares (CLI11), and value parsers that name the flag in their errors.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"

namespace dtbench {

struct CommonOptions {
  std::string backend = "auto";  // auto | host | nccl
  std::string out_dir = "results";
  std::string checks_csv, perf_csv;
  std::string dtype_name = "fp32";
  DType dtype = DType::f32;
  uint64_t seed = 1;
  double timeout_s = 300;
  int iters = 20, warmup = 5, check_iters = 1;
  std::string inject_fault;
  double duration_s = 0;  // --duration: burn-in, repeat the workload in windows until this is up (0: once)
  std::string test_skip_collective;  // hidden, test-only: "RANK:CALL"
  std::string test_kill_collective;  // hidden, test-only: "RANK:N"
  std::string test_slow_rank;        // hidden, test-only: "RANK:FACTOR"
  bool quiet = false;
};

// Registers the common flags. Suites may change defaults in `opts` before calling.
void add_common_options(CLI::App& app, CommonOptions& opts);
// Checks and converts the common flags (dtype, backend...); throws InputError naming the flag.
void finish_common_options(CommonOptions& opts);

// Parses a tool's flags (tools have no MPI): returns -1 to go on, otherwise the exit code to return
// (0 after --help, 2 after a bad flag, with CLI11's message printed).
int parse_tool_args(CLI::App& app, int argc, char** argv);

// The --help text of --bucket-size, the same in every suite; `default_text` says what its absence means.
std::string bucket_size_help(const std::string& default_text);

// CLI11 transformers for sizes, so such a flag parses straight into an integer option: the text
// (parse_size's grammar: 8, 64K, 16M, 1G, binary suffixes) becomes its number, or the flag fails with
// one line. size_bytes: 0..1e15 bytes. bucket_elements: a bucket cap as --bucket-size takes it in
// every suite, 1..1e15 ELEMENTS.
// size_span: "MIN:MAX" of sizes with 1 <= MIN <= MAX, rewritten as the two numbers "MIN:MAX";
// read it back with split_span.
CLI::Validator size_bytes();
// A duration: "90", "90s", "30m", "2h" become seconds (> 0, at most 30 days).
CLI::Validator duration_seconds();
CLI::Validator bucket_elements();
CLI::Validator size_span();
std::pair<int64_t, int64_t> split_span(const std::string& checked);

// A CLI11 check that a flag's number is finite and >= min, failing with one line that names the
// bound ("--tp: must be >= 1 (got 0)"); CLI::PositiveNumber and NonNegativeNumber print a range up
// to DBL_MAX and let NaN through.
CLI::Validator at_least(double min);
// The same for a number that must be > min ("--bucket-mb: must be > 0 (got 0)").
CLI::Validator above(double min);

// A CLI11 transformer from names to enum values, so a flag parses straight into its typed option:
// app.add_option("--layout", layout)->transform(one_of<ShardLayoutKind>({{"flat", ...}, ...})).
// A name not in the list fails with one line that lists them ("--layout: \"rows\" is not one of
// flat, per-param"); unlike CLI::CheckedTransformer it accepts no enum numbers. With ->delimiter(',')
// on a std::vector option every item is checked.
template <class Enum>
CLI::Validator one_of(std::vector<std::pair<std::string, Enum>> names) {
  std::string list;
  for (const auto& [name, value] : names) list += (list.empty() ? "" : ", ") + name;
  return CLI::Validator(
      [names, list](std::string& text) -> std::string {
        for (const auto& [name, value] : names)
          if (text == name) {
            text = std::to_string(static_cast<long long>(value));
            return "";
          }
        return "\"" + text + "\" is not one of " + list;
      },
      "{" + list + "}");
}
// The same for a flag that stays a string: the text must be one of `names`.
CLI::Validator one_of(std::vector<std::string> names);
// The names of `values` in `names`, comma-separated (a --help default for a typed list option).
template <class Enum>
std::string names_of(const std::vector<std::pair<std::string, Enum>>& names, const std::vector<Enum>& values) {
  std::string out;
  for (Enum v : values)
    for (const auto& [name, value] : names)
      if (value == v) out += (out.empty() ? "" : ",") + name;
  return out;
}

}  // namespace dtbench
