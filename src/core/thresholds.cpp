#include "core/thresholds.h"

#include <fnmatch.h>

#include <cstdio>

#include "core/csv_parse.h"
#include "core/units.h"

namespace dtbench {

using namespace csv_parse;

std::string Threshold::describe() const {
  std::string d = suite + " " + (op.empty() ? "*" : op);
  if (!dtype.empty()) d += " " + dtype;
  if (has_size) d += " " + human_bytes(min_bytes) + ".." + (max_bytes == UINT64_MAX ? "" : human_bytes(max_bytes));
  if (ranks > 0) d += " ranks=" + std::to_string(ranks);
  if (!node.empty()) d += " node=" + node;
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof(b), "%g", v);
    return std::string(b);
  };
  if (min_busbw >= 0) d += " busbw>=" + num(min_busbw) + "GB/s";
  if (max_time_us >= 0) d += " time<=" + num(max_time_us) + "us";
  if (!metric.empty()) {
    d += " " + metric;
    if (has_min_value) d += ">=" + num(min_value);
    if (has_max_value) d += (has_min_value ? "," : "") + std::string("<=") + num(max_value);
  }
  if (max_slowdown >= 0) d += " time<=" + num(max_slowdown) + "x baseline";
  if (checks_pass) d += " checks=pass";
  return d;
}

std::vector<Threshold> read_thresholds(const std::string& path) {
  std::vector<Threshold> rules;
  { std::ifstream probe(path); if (!probe) throw InputError(path + ": cannot open: " + std::strerror(errno)); }
  auto in = open_reader<RulesReader<16>>(path);
  with_file_context(path, *in, [&] {
    in->read_header(io::ignore_missing_column, "suite", "op", "dtype", "min_bytes", "max_bytes", "ranks", "node",
                    "min_busbw_GBps", "max_time_us", "metric", "min_value", "max_value", "checks", "max_slowdown",
                    "baseline_busbw_GBps", "baseline_time_us");
    if (!in->has_column("suite")) fail_at(path, in->get_file_line(), "the header has no 'suite' column");
    std::string s[16];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13], s[14],
                        s[15])) {
      Threshold t;
      t.line = in->get_file_line();
      FieldParser p{path, t.line};
      if (s[0].empty()) fail_at(path, t.line, "column 'suite' is empty (use * for every suite)");
      t.suite = s[0];
      t.op = s[1].empty() ? "*" : s[1];
      t.dtype = s[2];
      auto size_into = [](const std::string& text, uint64_t* out) {
        const std::optional<uint64_t> b = parse_size(text);
        if (b) *out = *b;
        return b.has_value();
      };
      if (!s[3].empty() && !size_into(s[3], &t.min_bytes))
        fail_at(path, t.line, "column 'min_bytes': '" + s[3] + "' is not a size (e.g. 8, 64K, 1M, 4G)");
      if (!s[4].empty() && !size_into(s[4], &t.max_bytes))
        fail_at(path, t.line, "column 'max_bytes': '" + s[4] + "' is not a size (e.g. 8, 64K, 1M, 4G)");
      t.has_size = !s[3].empty() || !s[4].empty();
      if (t.min_bytes > t.max_bytes) fail_at(path, t.line, "min_bytes is larger than max_bytes");
      t.ranks = static_cast<int>(p.integer("ranks", s[5], 0));
      t.node = s[6];
      t.min_busbw = p.real("min_busbw_GBps", s[7], -1);
      t.max_time_us = p.real("max_time_us", s[8], -1);
      t.metric = s[9];
      t.has_min_value = !s[10].empty();
      t.min_value = p.real("min_value", s[10], 0);
      t.has_max_value = !s[11].empty();
      t.max_value = p.real("max_value", s[11], 0);
      if (s[12] == "pass") t.checks_pass = true;
      else if (!s[12].empty() && s[12] != "-")
        fail_at(path, t.line, "column 'checks': '" + s[12] + "' must be 'pass' or empty");
      if (t.ranks < 0) fail_at(path, t.line, "column 'ranks' is negative");
      // A blank limit is "no limit"; a written negative one is a typo, never a silent "no limit".
      if (!s[7].empty() && !(t.min_busbw >= 0))
        fail_at(path, t.line, "column 'min_busbw_GBps': '" + s[7] + "' must be >= 0 (leave it empty for no limit)");
      if (!s[8].empty() && !(t.max_time_us > 0))
        fail_at(path, t.line, "column 'max_time_us': '" + s[8] + "' must be > 0 (leave it empty for no limit)");
      t.max_slowdown = p.real("max_slowdown", s[13], -1);
      if (!s[13].empty() && !(t.max_slowdown >= 1))
        fail_at(path, t.line, "column 'max_slowdown': '" + s[13] +
                                  "' must be >= 1 (1.25 = at most 25% slower than the baseline; empty: no limit)");
      t.baseline_busbw = p.real("baseline_busbw_GBps", s[14], -1);
      t.baseline_time_us = p.real("baseline_time_us", s[15], -1);
      if (!s[14].empty() && !(t.baseline_busbw >= 0))
        fail_at(path, t.line, "column 'baseline_busbw_GBps': '" + s[14] + "' must be >= 0");
      if (!s[15].empty() && !(t.baseline_time_us > 0))
        fail_at(path, t.line, "column 'baseline_time_us': '" + s[15] + "' must be > 0");
      if (t.baseline_time_us > 0 && (t.min_bytes != t.max_bytes || t.suite.find_first_of("*?[") != std::string::npos ||
                                     t.op.find_first_of("*?[") != std::string::npos))
        fail_at(path, t.line, "a baseline_time_us rule must name one suite, one op and one size (min_bytes = max_bytes)");
      if ((t.has_min_value || t.has_max_value) && t.metric.empty())
        fail_at(path, t.line, "min_value/max_value need a 'metric'");
      if (!t.metric.empty() && !t.has_min_value && !t.has_max_value)
        fail_at(path, t.line, "metric '" + t.metric + "' has neither min_value nor max_value");
      if (t.max_slowdown >= 0 && !t.metric.empty())
        fail_at(path, t.line, "max_slowdown applies to timed rows, not to a metric");
      if (t.min_busbw < 0 && t.max_time_us < 0 && t.metric.empty() && !t.checks_pass && t.max_slowdown < 0)
        fail_at(path, t.line,
                "the rule sets no limit (min_busbw_GBps, max_time_us, max_slowdown, metric or checks=pass)");
      rules.push_back(std::move(t));
    }
  });
  if (rules.empty()) throw InputError(path + ": no rules (only a header or comments)");
  return rules;
}

Baseline::Baseline(const std::vector<Threshold>& rules) {
  for (auto& t : rules)
    if (t.baseline_time_us > 0) points_.push_back(t);
}

const Threshold* Baseline::find(const std::string& suite, const std::string& op, const std::string& dtype,
                                uint64_t bytes, int ranks) const {
  for (auto& t : points_)
    if (t.suite == suite && t.op == op && t.min_bytes == bytes && (t.dtype.empty() || t.dtype == dtype) &&
        (t.ranks == 0 || t.ranks == ranks))
      return &t;
  return nullptr;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  if (pattern.empty() || pattern == "*") return true;
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

}  // namespace dtbench
