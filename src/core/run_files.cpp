#include "core/run_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

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

std::string meta_or(const CsvMetadata& md, const char* key, const std::string& dflt) {
  auto it = md.find(key);
  return it == md.end() || it->second.empty() ? dflt : it->second;
}

// Keeps the reports of one job (or run id); refuses a mix of jobs unless `job` picks one.
void select_job(RunData& run, const std::string& path, const std::string& job) {
  std::map<std::string, int> files_of;  // slurm_job_id -> reports
  for (auto& f : run.perf) ++files_of[meta_or(f.meta, "slurm_job_id", "none")];
  for (auto& f : run.checks) ++files_of[meta_or(f.meta, "slurm_job_id", "none")];
  auto jobs_text = [&] {
    std::string s;
    for (auto& [id, n] : files_of) s += (s.empty() ? "" : ", ") + id + " (" + std::to_string(n) + " files)";
    return s;
  };
  if (job.empty()) {
    if (files_of.size() > 1)
      throw InputError(path + ": reports of " + std::to_string(files_of.size()) + " Slurm jobs: " + jobs_text() +
                       "; a verdict is about one job: select one with --job ID");
    return;
  }
  auto keep = [&](const CsvMetadata& md) {
    return meta_or(md, "slurm_job_id", "none") == job || meta_or(md, "run_id", "") == job;
  };
  auto filter = [&](auto& files) {
    files.erase(std::remove_if(files.begin(), files.end(), [&](const auto& f) { return !keep(f.meta); }), files.end());
  };
  filter(run.perf);
  filter(run.checks);
  if (run.perf.empty() && run.checks.empty())
    throw InputError("--job " + job + ": no report of that Slurm job or run id under " + path + " (jobs: " + jobs_text() + ")");
}

}  // namespace

RunData load_run(const std::string& path, const std::string& job) {
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
  select_job(run, path, job);
  if (run.label.empty()) {
    const CsvMetadata& md = run.perf.empty() ? run.checks[0].meta : run.perf[0].meta;
    auto it = md.find("run_id");
    run.label = it != md.end() ? it->second : base_name(path);
  }
  return run;
}

}  // namespace dtbench
