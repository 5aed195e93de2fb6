#include "core/units.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace dtbench {

std::optional<uint64_t> parse_size(const std::string& text) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  std::string unit = end;
  for (char& c : unit) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();  // KB, KiB -> k, ki
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();       // Ki -> k
  double mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k") mult = 1024.0;
  else if (unit == "m") mult = 1024.0 * 1024;
  else if (unit == "g") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t") mult = 1024.0 * 1024 * 1024 * 1024;
  else return std::nullopt;
  const double bytes = v * mult;
  if (!(bytes >= 0) || bytes >= 9.2e18 || std::floor(bytes) != bytes) return std::nullopt;
  return uint64_t(bytes);
}

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  uint64_t v = b;
  while (u < 4 && v >= 1024 && v % 1024 == 0) v /= 1024, ++u;
  return std::to_string(v) + units[u];
}

double percentile(std::vector<double> v, double q, double if_empty) {
  if (v.empty()) return if_empty;
  std::sort(v.begin(), v.end());
  const double pos = std::min(std::max(q, 0.0), 1.0) * double(v.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

double coefficient_of_variation(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  if (mean == 0) return 0;
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return std::sqrt(var / double(v.size())) / std::abs(mean);
}

double median(std::vector<double> v, double if_empty) {
  if (v.empty()) return if_empty;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace dtbench
