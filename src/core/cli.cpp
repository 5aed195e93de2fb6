#include "core/cli.h"

#include <cmath>

#include "core/error.h"
#include "core/test_hooks.h"
#include "core/units.h"

namespace dtbench {

TestHooks& test_hooks() {
  static TestHooks hooks;
  return hooks;
}

void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("--backend", o.backend, "auto (NCCL when a GPU is present, else host), host or nccl")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "host", "nccl"}));
  app.add_option("--out", o.out_dir, "directory for the CSV reports (created if missing)")->capture_default_str();
  app.add_option("--checks-csv", o.checks_csv, "path of the checks CSV (default <out>/<suite>-<run>-checks.csv)");
  app.add_option("--perf-csv", o.perf_csv, "path of the perf CSV (default <out>/<suite>-<run>-perf.csv; its per-rank "
                                             "timing goes beside it, X-perf.csv -> X-ranks.csv)");
  app.add_option("-d,--dtype", o.dtype_name, "element type: fp32, bf16 or fp16")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the deterministic data")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "watchdog: abort (exit 3) when a collective takes longer (s; 0 = off)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("-n,--iters", o.iters, "timed iterations")->capture_default_str()->check(CLI::Range(1, 1000000000));
  app.add_option("-w,--warmup", o.warmup, "untimed warm-up iterations")->capture_default_str()->check(at_least(0));
  app.add_option("-c,--check", o.check_iters, "validation rounds (0 = measure only)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--inject-fault", o.inject_fault,
                 "test a check: KIND[,rank=R][,op=NAME][,index=I]; KIND flip corrupts one element of the "
                 "data a check verifies on rank R");
  app.add_option("--duration", o.duration_s,
                 "burn-in: repeat the validated workload in windows until this much time is up (e.g. 20s, "
                 "30m, 2h; nccl-tests' -N 0 with a bound); per window progress and rows, errors per node")
      ->transform(duration_seconds());
  app.add_option("--test-skip-collective", o.test_skip_collective, "")->group("");  // hidden, tests only
  app.add_option("--test-kill-collective", o.test_kill_collective, "")->group("");  // hidden, tests only
  app.add_option("--test-slow-rank", o.test_slow_rank, "")->group("");              // hidden, tests only
  app.add_flag("-q,--quiet", o.quiet, "no progress lines");
}

// The number at the start of `text` and how many characters it took (0: none).
static double leading_number(const std::string& text, size_t* used) {
  *used = 0;
  try {
    return std::stod(text, used);
  } catch (const std::exception&) {
    *used = 0;
    return 0;
  }
}

// "90", "90s", "30m", "2h", "1.5h" -> seconds (> 0), else one line saying what is expected.
CLI::Validator duration_seconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        size_t used = 0;
        const double v = leading_number(text, &used);
        double scale = 1;
        const std::string unit = used ? text.substr(used) : "";
        if (unit == "" || unit == "s") scale = 1;
        else if (unit == "m" || unit == "min") scale = 60;
        else if (unit == "h") scale = 3600;
        else used = 0;
        if (used == 0 || !std::isfinite(v) || v <= 0 || v * scale > 30 * 86400.0)
          return "expected a time such as 20s, 30m or 2h (more than 0, at most 30 days), got \"" + text + "\"";
        text = std::to_string(v * scale);
        return "";
      },
      "TIME");
}

namespace {

// A finite number >= min (or > min when strict), else one line naming the bound.
CLI::Validator number_bound(double min, bool strict) {
  const std::string bound = (strict ? "> " : ">= ") +
                            (min == std::floor(min) ? std::to_string((long long)min) : std::to_string(min));
  return CLI::Validator(
      [min, strict, bound](std::string& text) -> std::string {
        size_t used = 0;
        const double v = leading_number(text, &used);
        if (used == 0 || used != text.size()) return "expected a number, got \"" + text + "\"";
        if (!std::isfinite(v) || v < min || (strict && v == min)) return "must be " + bound + " (got " + text + ")";
        return "";
      },
      bound);
}

// One size for a transformer: the number, or why the text is not one.
std::string checked_size(const std::string& text, uint64_t min, const char* what, uint64_t* out) {
  const std::optional<uint64_t> n = parse_size(text);
  if (!n) return std::string("not a ") + what + ": \"" + text + "\" (e.g. 8, 64K, 16M, 1G)";
  if (*n > uint64_t(1e15)) return std::string(what) + " out of range: \"" + text + "\"";
  if (*n < min) return "must be at least " + std::to_string(min) + " (got \"" + text + "\")";
  *out = *n;
  return "";
}

CLI::Validator size_transformer(uint64_t min, const char* what) {
  return CLI::Validator(
      [min, what](std::string& text) -> std::string {
        uint64_t n = 0;
        std::string err = checked_size(text, min, what, &n);
        if (err.empty()) text = std::to_string(n);
        return err;
      },
      "SIZE");
}

}  // namespace

CLI::Validator one_of(std::vector<std::string> names) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  return CLI::Validator(
      [names, list](std::string& text) -> std::string {
        for (const std::string& name : names)
          if (text == name) return "";
        return "\"" + text + "\" is not one of " + list;
      },
      "{" + list + "}");
}

CLI::Validator size_bytes() { return size_transformer(0, "size"); }
CLI::Validator bucket_elements() { return size_transformer(1, "number of elements"); }

CLI::Validator size_span() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const size_t colon = text.find(':');
        if (colon == std::string::npos) return "expected MIN:MAX, got \"" + text + "\"";
        uint64_t lo = 0, hi = 0;
        std::string err = checked_size(text.substr(0, colon), 1, "size", &lo);
        if (err.empty()) err = checked_size(text.substr(colon + 1), 1, "size", &hi);
        if (!err.empty()) return err;
        if (lo > hi) return "need MIN <= MAX, got \"" + text + "\"";
        text = std::to_string(lo) + ":" + std::to_string(hi);
        return "";
      },
      "MIN:MAX");
}

std::pair<int64_t, int64_t> split_span(const std::string& checked) {
  const size_t colon = checked.find(':');
  return {std::stoll(checked.substr(0, colon)), std::stoll(checked.substr(colon + 1))};
}

CLI::Validator at_least(double min) { return number_bound(min, false); }
CLI::Validator above(double min) { return number_bound(min, true); }

void finish_common_options(CommonOptions& o) {
  // A NaN timeout would switch the watchdog off: refused here whatever the flag check let through.
  if (!std::isfinite(o.timeout_s))
    throw InputError("--timeout: expected a finite number of seconds (0 = off), got " + std::to_string(o.timeout_s));
  if (!o.checks_csv.empty() && o.checks_csv == o.perf_csv)
    throw InputError("--checks-csv and --perf-csv name the same file " + o.checks_csv);
  if (!parse_dtype(o.dtype_name, &o.dtype))
    throw InputError("--dtype: unknown type \"" + o.dtype_name + "\" (fp32, bf16, fp16)");
  if (!o.test_skip_collective.empty()) {
    auto colon = o.test_skip_collective.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("");
      test_hooks().skip_world_rank = std::stoi(o.test_skip_collective.substr(0, colon));
      test_hooks().skip_call = std::stoull(o.test_skip_collective.substr(colon + 1));
      test_hooks().skip_hold_s = o.timeout_s > 0 ? 2 * o.timeout_s + 5 : 0;
    } catch (const std::logic_error&) {
      throw InputError("--test-skip-collective: expected RANK:CALL, got \"" + o.test_skip_collective + "\"");
    }
  }
  if (!o.test_kill_collective.empty()) {
    auto colon = o.test_kill_collective.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("");
      test_hooks().kill_world_rank = std::stoi(o.test_kill_collective.substr(0, colon));
      test_hooks().kill_call = std::stoull(o.test_kill_collective.substr(colon + 1));
    } catch (const std::logic_error&) {
      throw InputError("--test-kill-collective: expected RANK:N, got \"" + o.test_kill_collective + "\"");
    }
  }
  if (!o.test_slow_rank.empty()) {
    auto colon = o.test_slow_rank.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("");
      test_hooks().slow_world_rank = std::stoi(o.test_slow_rank.substr(0, colon));
      test_hooks().slow_factor = std::stod(o.test_slow_rank.substr(colon + 1));
      if (!(test_hooks().slow_factor >= 1 && test_hooks().slow_factor <= 1000)) throw std::invalid_argument("");
    } catch (const std::logic_error&) {
      throw InputError("--test-slow-rank: expected RANK:FACTOR (FACTOR 1-1000), got \"" + o.test_slow_rank + "\"");
    }
  }
}

int parse_tool_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  return -1;
}

std::string bucket_size_help(const std::string& default_text) {
  return "Megatron bucket cap in ELEMENTS (K/M/G binary suffixes, >= 1); " + default_text;
}

}  // namespace dtbench
