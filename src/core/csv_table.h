#pragma once
// Reading a dtbench table whose columns a tool takes by name (dtbench-p2p's links CSV, the ranks CSV):
// the `# key=value` metadata, the header and every row as text, RFC 4180 quotes honoured.
#include <string>
#include <vector>

#include "core/csv_reports.h"

namespace dtbench {

struct CsvTable {
  std::string path;
  CsvMetadata meta;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each as long as `columns`
  bool complete = false;  // ends with the end-of-run line (the run that wrote it completed)
  // The index of `name`; throws InputError "PATH: no column NAME" when the header lacks it.
  size_t col(const std::string& name) const;
};

// Throws InputError "PATH:LINE: ..." for an unreadable file, a missing header or a row whose field
// count differs from the header's.
CsvTable read_csv_table(const std::string& path);

}  // namespace dtbench
