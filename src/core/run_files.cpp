#include "core/run_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dtbench {

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

}  // namespace dtbench
