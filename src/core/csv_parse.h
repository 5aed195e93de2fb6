#pragma once
// What the readers of dtbench's CSV files share: fast-cpp-csv-parser readers for reports and for
// hand-written rules, field converters, the "# key=value" metadata, and errors as
// InputError "FILE:LINE: ..." (tools exit 2 on it). Included by the reader units only.
#include <libfccp/csv.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "core/csv_reports.h"  // CsvMetadata
#include "core/error.h"
#include "core/report.h"  // kEndOfRunKey

namespace dtbench {
namespace csv_parse {


// Reports: no trimming (values round-trip exactly), RFC 4180 quotes, '#' metadata lines skipped.
template <unsigned N>
using ReportReader = io::CSVReader<N, io::trim_chars<>, io::double_quote_escape<',', '"'>,
                                   io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;
// Thresholds are hand-written: blanks around fields are trimmed.
template <unsigned N>
using RulesReader = io::CSVReader<N, io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>,
                                  io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;

[[noreturn]] inline void fail_at(const std::string& path, unsigned line, const std::string& what) {
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

inline CsvMetadata read_metadata(const std::string& path) {
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

// Why a report with `rows` data rows, the last on line `last_row_line`, is not the whole of a
// completed run ("" when it is): its end-of-run line (CsvWriter::end_of_run) is missing, repeated,
// counts other rows, or has rows after it.
inline std::string incomplete_reason(const std::string& path, size_t rows, unsigned last_row_line) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  const std::string prefix = std::string("# ") + kEndOfRunKey + "=";
  std::string line, value;
  unsigned n = 0, at = 0, found = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    ++found, at = n, value = line.substr(prefix.size());
  }
  if (found == 0) return "no end-of-run line: the run did not complete (killed, timed out or still writing)";
  if (found > 1) return std::to_string(found) + " end-of-run lines (reports of several runs joined?)";
  if (value.compare(0, 9, "complete ") != 0) return "end-of-run line '" + value + "' does not say complete";
  const size_t r = value.find("rows=");
  const long long said = r == std::string::npos ? -1 : std::atoll(value.c_str() + r + 5);
  if (said != static_cast<long long>(rows))
    return "its end-of-run line (line " + std::to_string(at) + ") counts " + std::to_string(said) + " rows, the file holds " +
           std::to_string(rows);
  if (rows > 0 && last_row_line > at) return "rows after its end-of-run line (line " + std::to_string(at) + ")";
  return "";
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


}  // namespace csv_parse
}  // namespace dtbench
