#include <cstdio>
#include "core/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio_ext.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>
#include <stdexcept>

#include "core/error.h"

namespace dtbench {

const std::vector<std::string> kCheckColumns = {
    "run_id", "suite", "backend", "ranks", "check", "case", "dtype", "status", "n_checked", "n_wrong",
    "failing_ranks", "first_rank", "first_index", "expected", "observed", "max_abs_err", "max_rel_err",
    "culprit", "detail"};

const std::vector<std::string> kPerfColumns = {
    "run_id", "suite", "backend", "ranks", "case", "op", "dtype", "redop", "in_place", "group_size", "layout",
    "count", "bytes", "iters", "warmup", "time_med_us", "time_min_us", "time_max_us",
    "time_p10_us", "time_p90_us", "time_p99_us", "time_cv", "algbw_GBps",
    "busbw_GBps", "n_wrong", "metric", "value", "unit"};

const std::vector<std::string> kRankColumns = {
    "run_id", "suite", "backend", "ranks", "case", "op", "dtype", "in_place", "layout", "bytes",
    "rank", "node", "local_rank", "iters", "own_p50_us", "own_p90_us", "late_p50_us", "late_p90_us",
    "arrived_last", "straggler_score"};

std::string csv_field(const std::string& s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
               (!s.empty() && (s.front() == ' ' || s.back() == ' ' || s.front() == '#'));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string format_double(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}

CsvWriter::CsvWriter(const std::string& path, const Metadata& md, const std::vector<std::string>& columns)
    : path_(path), ncols_(columns.size()) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) throw InputError(path + ": file exists; dtbench never overwrites results");
    throw InputError(path + ": cannot create: " + std::strerror(errno));
  }
  file_ = ::fdopen(fd, "w");
  for (auto& kv : md) {
    std::string v = kv.second;
    for (char& c : v)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(file_, "# %s=%s\n", kv.first.c_str(), v.c_str());
  }
  row(columns);
}

CsvWriter::~CsvWriter() {
  if (file_) std::fclose(file_);
}

void CsvWriter::row(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + csv_field(fields[i]);
  write_line(line + '\n');
  if (header_written_) ++rows_;
  header_written_ = true;
  (void)ncols_;
}

void CsvWriter::end_of_run(const std::string& verdict) {
  write_line("# " + std::string(kEndOfRunKey) + "=complete rows=" + std::to_string(rows_) + " verdict=" + verdict + "\n");
}

void CsvWriter::write_line(const std::string& line) {
  long good = std::ftell(file_);  // everything before this is on disk (flushed per line)
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    int err = errno;
    // A full disk can leave half a line behind: cut the file back to its last complete line and
    // drop what stdio still buffers, so the rows already written stay readable.
    __fpurge(file_);
    if (good >= 0 && ::ftruncate(::fileno(file_), off_t(good)) == 0) std::fseek(file_, good, SEEK_SET);
    throw RuntimeError(path_ + ": write failed: " + std::strerror(err));
  }
}

void ensure_writable_dir(const std::string& dir, const std::string& flag) {
  if (dir.empty()) throw InputError(flag + ": empty directory name");
  std::string partial;
  std::stringstream ss(dir);
  std::string part;
  if (dir[0] == '/') partial = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    partial += part;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
      throw InputError(flag + " " + dir + ": cannot create " + partial + ": " + std::strerror(errno));
    partial += "/";
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw InputError(flag + " " + dir + ": not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw InputError(flag + " " + dir + ": not writable: " + std::strerror(errno));
}

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", std::gmtime(&t));
  const char* job = std::getenv("SLURM_JOB_ID");
  std::string id = stamp;
  if (job && *job) id += std::string("-j") + job;
  id += "-p" + std::to_string(::getpid());
  return id;
}

Reports::Reports(const std::string& suite, const std::string& run_id, int world_size, const std::string& backend,
                 const Paths& paths, const Metadata& md, const std::vector<Table>& tables)
    : suite_(suite), run_id_(run_id), backend_(backend), world_size_(world_size) {
  std::string base = paths.out_dir + "/" + suite + "-" + run_id;
  std::string checks = paths.checks.empty() ? base + "-checks.csv" : paths.checks;
  std::string perf = paths.perf.empty() ? base + "-perf.csv" : paths.perf;
  std::string ranks = ranks_path_for(perf);
  if (paths.checks.empty() || paths.perf.empty()) {
    if (::access(paths.out_dir.c_str(), F_OK) != 0) created_dir_ = paths.out_dir;
    ensure_writable_dir(paths.out_dir, "--out");
  }
  std::vector<std::string> all = {checks, perf, ranks};
  for (const Table& t : tables) all.push_back(table_path_for(perf, t.name));
  // Refuse before creating anything, so a refused run writes nothing.
  for (const std::string& p : all)
    if (::access(p.c_str(), F_OK) == 0) throw InputError(p + ": file exists; dtbench never overwrites results");
  Metadata full = md;
  full.insert(full.begin(), {"run_id", run_id});
  full.insert(full.begin() + 1, {"suite", suite});
  std::vector<std::string> created;
  try {
    checks_ = std::make_unique<CsvWriter>(checks, full, kCheckColumns);
    created.push_back(checks);
    perf_ = std::make_unique<CsvWriter>(perf, full, kPerfColumns);
    created.push_back(perf);
    ranks_ = std::make_unique<CsvWriter>(ranks, full, kRankColumns);
    created.push_back(ranks);
    for (const Table& t : tables) {
      std::vector<std::string> columns = {"run_id", "suite", "backend", "ranks"};
      columns.insert(columns.end(), t.columns.begin(), t.columns.end());
      const std::string path = table_path_for(perf, t.name);
      tables_.emplace_back(t.name, std::make_unique<CsvWriter>(path, full, columns));
      created.push_back(path);
    }
  } catch (...) {
    // Nothing written means nothing: the files just created go too (they held only a header).
    checks_.reset(), perf_.reset(), ranks_.reset();
    tables_.clear();
    for (const std::string& p : created) std::remove(p.c_str());
    throw;
  }
}

std::string Reports::ranks_path_for(const std::string& perf_path) { return table_path_for(perf_path, "ranks"); }

std::string Reports::table_path_for(const std::string& perf_path, const std::string& name) {
  const std::string perf_suffix = "-perf.csv";
  if (perf_path.size() > perf_suffix.size() &&
      perf_path.compare(perf_path.size() - perf_suffix.size(), perf_suffix.size(), perf_suffix) == 0)
    return perf_path.substr(0, perf_path.size() - perf_suffix.size()) + "-" + name + ".csv";
  if (perf_path.size() > 4 && perf_path.compare(perf_path.size() - 4, 4, ".csv") == 0)
    return perf_path.substr(0, perf_path.size() - 4) + "-" + name + ".csv";
  return perf_path + "-" + name + ".csv";
}

void Reports::table_row(const std::string& name, const std::vector<std::string>& fields) {
  for (auto& t : tables_)
    if (t.first == name) {
      auto f = prefix();
      f.insert(f.end(), fields.begin(), fields.end());
      t.second->row(f);
      return;
    }
  throw std::logic_error("Reports::table_row: no table " + name);
}

std::string Reports::table_path(const std::string& name) const {
  for (auto& t : tables_)
    if (t.first == name) return t.second->path();
  return "";
}

void Reports::discard() {
  std::vector<std::string> paths = {checks_->path(), perf_->path(), ranks_->path()};
  for (auto& t : tables_) paths.push_back(t.second->path());
  checks_.reset();
  perf_.reset();
  ranks_.reset();
  tables_.clear();
  for (const std::string& p : paths) std::remove(p.c_str());
  if (!created_dir_.empty()) ::rmdir(created_dir_.c_str());  // fails, harmlessly, unless empty
}

void Reports::end_of_run(const std::string& verdict) {
  checks_->end_of_run(verdict);
  perf_->end_of_run(verdict);
  ranks_->end_of_run(verdict);
  for (auto& t : tables_) t.second->end_of_run(verdict);
}

std::vector<std::string> Reports::prefix() const {
  return {run_id_, suite_, backend_, std::to_string(world_size_)};
}

void Reports::check(const CheckRow& r) {
  ++total_;
  if (!r.pass) ++failed_;
  auto f = prefix();
  std::vector<std::string> rest = {r.check, r.case_name, r.dtype, r.pass ? "PASS" : "FAIL",
                                   std::to_string(r.n_checked), std::to_string(r.n_wrong), r.failing_ranks,
                                   r.first_rank < 0 ? "" : std::to_string(r.first_rank),
                                   r.first_index < 0 ? "" : std::to_string(r.first_index), r.expected, r.observed,
                                   format_double(r.max_abs_err), format_double(r.max_rel_err), r.culprit, r.detail};
  f.insert(f.end(), rest.begin(), rest.end());
  checks_->row(f);
}

void Reports::perf(const PerfRow& r) {
  auto opt = [](double v, int prec = 6) { return v < 0 ? std::string() : format_double(v, prec); };
  auto f = prefix();
  std::vector<std::string> rest = {r.case_name, r.op, r.dtype, r.redop, r.in_place,
                                   r.group_size ? std::to_string(r.group_size) : "", r.layout,
                                   std::to_string(r.count), std::to_string(r.bytes), std::to_string(r.iters),
                                   std::to_string(r.warmup), opt(r.time_med_us), opt(r.time_min_us),
                                   opt(r.time_max_us), opt(r.time_p10_us), opt(r.time_p90_us),
                                   opt(r.time_p99_us), opt(r.time_cv), opt(r.algbw), opt(r.busbw),
                                   r.n_wrong < 0 ? "" : std::to_string(r.n_wrong), r.metric,
                                   r.metric.empty() ? "" : format_double(r.value, 9), r.unit};
  f.insert(f.end(), rest.begin(), rest.end());
  perf_->row(f);
}

void Reports::ranks(const PerfRow& r, const std::vector<RankRow>& rows) {
  for (const RankRow& k : rows) {
    auto f = prefix();
    std::vector<std::string> rest = {r.case_name, r.op, r.dtype, r.in_place, r.layout, std::to_string(r.bytes),
                                     std::to_string(k.rank), k.node, std::to_string(k.local_rank),
                                     std::to_string(k.iters), format_double(k.own_p50_us), format_double(k.own_p90_us),
                                     format_double(k.late_p50_us), format_double(k.late_p90_us),
                                     std::to_string(k.arrived_last), format_double(k.straggler_score, 4)};
    f.insert(f.end(), rest.begin(), rest.end());
    ranks_->row(f);
  }
}

}  // namespace dtbench
