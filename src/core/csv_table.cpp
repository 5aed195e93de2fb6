#include "core/csv_table.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/csv_parse.h"

namespace dtbench {

size_t CsvTable::col(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return i;
  throw InputError(path + ": no column " + name + " in the header");
}

namespace {

// Splits one record; `more` says whether a quoted field runs on into the next line.
void split_record(const std::string& line, std::vector<std::string>& fields, bool& in_quotes) {
  if (!in_quotes) fields.emplace_back();
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') in_quotes = false;
      else fields.back() += c;
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  if (in_quotes) fields.back() += '\n';
}

}  // namespace

CsvTable read_csv_table(const std::string& path) {
  CsvTable t;
  t.path = path;
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  t.meta = csv_parse::read_metadata(path);
  std::string line;
  unsigned n = 0, start = 0;
  std::vector<std::string> fields;
  bool in_quotes = false, header = true;
  while (std::getline(in, line)) {
    ++n;
    if (!in_quotes) {
      if (line.empty()) continue;
      if (line[0] == '#') {
        if (line.rfind(std::string("# ") + kEndOfRunKey + "=", 0) == 0) t.complete = true;
        continue;
      }
      fields.clear();
      start = n;
    }
    split_record(line, fields, in_quotes);
    if (in_quotes) continue;
    if (header) {
      t.columns = fields;
      header = false;
    } else if (fields.size() != t.columns.size()) {
      csv_parse::fail_at(path, start, std::to_string(fields.size()) + " fields, the header has " +
                                          std::to_string(t.columns.size()));
    } else {
      t.rows.push_back(fields);
    }
  }
  if (in_quotes) csv_parse::fail_at(path, start, "a quoted field is not closed");
  if (header) throw InputError(path + ": no header line");
  return t;
}

}  // namespace dtbench
