#include "core/rank_hosts.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace dtbench {

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

}  // namespace dtbench
