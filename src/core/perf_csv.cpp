#include "core/perf_csv.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <libfccp/csv.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/error.h"

namespace dtbench {

namespace {

// Reports: no trimming (values round-trip exactly), RFC 4180 quotes, '#' metadata lines skipped.
template <unsigned N>
using ReportReader = io::CSVReader<N, io::trim_chars<>, io::double_quote_escape<',', '"'>,
                                   io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;
// Thresholds are hand-written: blanks around fields are trimmed.
template <unsigned N>
using RulesReader = io::CSVReader<N, io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>,
                                  io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;

[[noreturn]] void fail_at(const std::string& path, unsigned line, const std::string& what) {
  throw InputError(path + ":" + std::to_string(line) + ": " + what);
}

// Field converters: an empty field gives `dflt`; anything else must be a number in full.
struct FieldParser {
  const std::string& path;
  unsigned line;
  double real(const std::string& col, const std::string& s, double dflt) const {
    if (s.empty()) return dflt;
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || errno == ERANGE || std::isnan(v))
      fail_at(path, line, "column '" + col + "': '" + s + "' is not a number");
    return v;
  }
  long long integer(const std::string& col, const std::string& s, long long dflt) const {
    if (s.empty()) return dflt;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || errno == ERANGE)
      fail_at(path, line, "column '" + col + "': '" + s + "' is not an integer");
    return v;
  }
  unsigned long long count(const std::string& col, const std::string& s) const {
    long long v = integer(col, s, 0);
    if (v < 0) fail_at(path, line, "column '" + col + "': '" + s + "' is negative");
    return static_cast<unsigned long long>(v);
  }
};

CsvMetadata read_metadata(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  CsvMetadata md;
  std::string line;
  while (std::getline(in, line) && !line.empty() && line[0] == '#') {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    size_t k = line.find_first_not_of("# ");
    if (k == std::string::npos || k >= eq) continue;
    md[line.substr(k, eq - k)] = line.substr(eq + 1);
  }
  return md;
}

// Runs `body` and turns a parser exception into "path:line: message".
template <class Reader, class Body>
void with_file_context(const std::string& path, Reader& reader, Body body) {
  try {
    body();
  } catch (const io::error::base& e) {
    fail_at(path, reader.get_file_line(), e.what());
  }
}

template <class Reader>
std::unique_ptr<Reader> open_reader(const std::string& path) {
  try {
    return std::make_unique<Reader>(path);
  } catch (const io::error::base& e) {
    throw InputError(path + ": " + e.what());
  }
}

}  // namespace

PerfFile read_perf_csv(const std::string& path) {
  PerfFile f;
  f.path = path;
  f.meta = read_metadata(path);
  auto in = open_reader<ReportReader<24>>(path);
  with_file_context(path, *in, [&] {
    in->read_header(io::ignore_no_column, "run_id", "suite", "backend", "ranks", "case", "op", "dtype", "redop",
                    "in_place", "group_size", "layout", "count", "bytes", "iters", "warmup", "time_med_us",
                    "time_min_us", "time_max_us", "algbw_GBps", "busbw_GBps", "n_wrong", "metric", "value", "unit");
    std::string s[24];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13],
                        s[14], s[15], s[16], s[17], s[18], s[19], s[20], s[21], s[22], s[23])) {
      PerfRecord r;
      r.line = in->get_file_line();
      FieldParser p{path, r.line};
      r.run_id = s[0], r.suite = s[1], r.backend = s[2];
      r.ranks = static_cast<int>(p.integer("ranks", s[3], 0));
      r.case_name = s[4], r.op = s[5], r.dtype = s[6], r.redop = s[7], r.in_place = s[8];
      r.group_size = static_cast<int>(p.integer("group_size", s[9], 0));
      r.layout = s[10];
      r.count = p.count("count", s[11]);
      r.bytes = p.count("bytes", s[12]);
      r.iters = static_cast<int>(p.integer("iters", s[13], 0));
      r.warmup = static_cast<int>(p.integer("warmup", s[14], 0));
      r.time_med_us = p.real("time_med_us", s[15], -1);
      r.time_min_us = p.real("time_min_us", s[16], -1);
      r.time_max_us = p.real("time_max_us", s[17], -1);
      r.algbw = p.real("algbw_GBps", s[18], -1);
      r.busbw = p.real("busbw_GBps", s[19], -1);
      r.n_wrong = p.integer("n_wrong", s[20], -1);
      r.metric = s[21];
      r.has_value = !s[22].empty();
      r.value = p.real("value", s[22], 0);
      r.unit = s[23];
      if (r.suite.empty()) fail_at(path, r.line, "column 'suite' is empty");
      if (r.timed() && (r.time_min_us > r.time_med_us || r.time_med_us > r.time_max_us))
        fail_at(path, r.line, "time_min_us <= time_med_us <= time_max_us does not hold");
      f.rows.push_back(std::move(r));
    }
  });
  return f;
}

ChecksFile read_checks_csv(const std::string& path) {
  ChecksFile f;
  f.path = path;
  f.meta = read_metadata(path);
  auto in = open_reader<ReportReader<19>>(path);
  with_file_context(path, *in, [&] {
    in->read_header(io::ignore_no_column, "run_id", "suite", "backend", "ranks", "check", "case", "dtype", "status",
                    "n_checked", "n_wrong", "failing_ranks", "first_rank", "first_index", "expected", "observed",
                    "max_abs_err", "max_rel_err", "culprit", "detail");
    std::string s[19];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13],
                        s[14], s[15], s[16], s[17], s[18])) {
      CheckRecord r;
      r.line = in->get_file_line();
      FieldParser p{path, r.line};
      r.run_id = s[0], r.suite = s[1], r.backend = s[2];
      r.ranks = static_cast<int>(p.integer("ranks", s[3], 0));
      r.check = s[4], r.case_name = s[5], r.dtype = s[6];
      if (s[7] != "PASS" && s[7] != "FAIL") fail_at(path, r.line, "column 'status': '" + s[7] + "' is not PASS or FAIL");
      r.pass = s[7] == "PASS";
      r.n_checked = p.count("n_checked", s[8]);
      r.n_wrong = p.count("n_wrong", s[9]);
      r.failing_ranks = s[10];
      r.first_rank = static_cast<int>(p.integer("first_rank", s[11], -1));
      r.culprit = s[17];
      r.detail = s[18];
      f.rows.push_back(std::move(r));
    }
  });
  return f;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void walk(const std::string& dir, std::vector<std::string>* files) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw InputError(dir + ": cannot open directory: " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    std::string p = dir + "/" + n;
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) walk(p, files);
    else if (ends_with(n, "-perf.csv") || ends_with(n, "-checks.csv")) files->push_back(p);
  }
}

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

RunData load_run(const std::string& path) {
  RunData run;
  run.source = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": no such file or directory");
  std::vector<std::string> files;
  if (S_ISDIR(st.st_mode)) {
    walk(path, &files);
    if (files.empty()) throw InputError(path + ": no *-perf.csv or *-checks.csv files in this directory");
    run.label = base_name(path);
  } else {
    if (!ends_with(path, "-perf.csv") && !ends_with(path, "-checks.csv"))
      throw InputError(path + ": not a dtbench report (name must end in -perf.csv or -checks.csv)");
    files.push_back(path);
  }
  for (auto& f : files) {
    if (ends_with(f, "-perf.csv")) run.perf.push_back(read_perf_csv(f));
    else run.checks.push_back(read_checks_csv(f));
  }
  if (run.label.empty()) {
    const CsvMetadata& md = run.perf.empty() ? run.checks[0].meta : run.perf[0].meta;
    auto it = md.find("run_id");
    run.label = it != md.end() ? it->second : base_name(path);
  }
  return run;
}

std::vector<std::string> meta_hosts(const CsvMetadata& meta) {
  std::vector<std::string> out;
  auto it = meta.find("hosts");
  if (it == meta.end()) return out;
  std::string cur;
  for (char c : it->second + ";") {
    if (c == ';' || c == ',' || c == ' ') {
      if (!cur.empty() && std::find(out.begin(), out.end(), cur) == out.end()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::string node_of_rank(const CsvMetadata& meta, int rank) {
  auto it = meta.find("rank_map");
  if (it == meta.end()) return "";
  std::stringstream ss(it->second);
  std::string item;
  while (std::getline(ss, item, ';')) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos) continue;
    std::string host = item.substr(0, colon), range = item.substr(colon + 1);
    int lo = 0, hi = 0;
    if (std::sscanf(range.c_str(), "%d-%d", &lo, &hi) == 2) {
      if (rank >= lo && rank <= hi) return host;
    } else if (std::sscanf(range.c_str(), "%d", &lo) == 1 && rank == lo) {
      return host;
    }
  }
  return "";
}

std::vector<int> parse_rank_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ';')) {
    int lo = 0, hi = 0;
    if (std::sscanf(item.c_str(), "%d-%d", &lo, &hi) == 2 && hi >= lo && hi - lo < 1000000) {
      for (int r = lo; r <= hi; ++r) out.push_back(r);
    } else if (std::sscanf(item.c_str(), "%d", &lo) == 1) {
      out.push_back(lo);
    }
  }
  return out;
}

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
  if (checks_pass) d += " checks=pass";
  return d;
}

std::vector<Threshold> read_thresholds(const std::string& path) {
  std::vector<Threshold> rules;
  { std::ifstream probe(path); if (!probe) throw InputError(path + ": cannot open: " + std::strerror(errno)); }
  auto in = open_reader<RulesReader<13>>(path);
  with_file_context(path, *in, [&] {
    in->read_header(io::ignore_missing_column, "suite", "op", "dtype", "min_bytes", "max_bytes", "ranks", "node",
                    "min_busbw_GBps", "max_time_us", "metric", "min_value", "max_value", "checks");
    if (!in->has_column("suite")) fail_at(path, in->get_file_line(), "the header has no 'suite' column");
    std::string s[13];
    while (in->read_row(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12])) {
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
      if ((t.has_min_value || t.has_max_value) && t.metric.empty())
        fail_at(path, t.line, "min_value/max_value need a 'metric'");
      if (!t.metric.empty() && !t.has_min_value && !t.has_max_value)
        fail_at(path, t.line, "metric '" + t.metric + "' has neither min_value nor max_value");
      if (t.min_busbw < 0 && t.max_time_us < 0 && t.metric.empty() && !t.checks_pass)
        fail_at(path, t.line, "the rule sets no limit (min_busbw_GBps, max_time_us, metric or checks=pass)");
      rules.push_back(std::move(t));
    }
  });
  if (rules.empty()) throw InputError(path + ": no rules (only a header or comments)");
  return rules;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  if (pattern.empty() || pattern == "*") return true;
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

}  // namespace dtbench
