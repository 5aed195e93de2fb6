#include "ckpt/ckpt_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "ckpt/ckpt_state.h"
#include "core/watchdog.h"

namespace dtbench {

const char* const kIndexName = "index";
const char* const kCommitName = "COMMIT";
const char* const kLatestName = "latest";

namespace {

constexpr size_t kAlign = 4096;
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

[[noreturn]] void io_fail(const std::string& what, const std::string& path, int err) {
  throw CkptIOError(what + " " + path + ": " + std::strerror(err));
}

void write_all(int fd, const char* p, size_t n, const std::string& path, int64_t file_offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, p + done, n - done, off_t(file_offset + int64_t(done)));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      throw CkptIOError("write " + path + " at byte offset " + std::to_string(file_offset + int64_t(done)) + ": " +
                        std::strerror(errno));
    if (w == 0) throw CkptIOError("write " + path + ": wrote nothing at byte offset " +
                                  std::to_string(file_offset + int64_t(done)));
    done += size_t(w);
  }
}

}  // namespace

// --- durable files -------------------------------------------------------------------------------
void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) io_fail("open directory", dir, errno);
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    io_fail("fsync directory", dir, e);
  }
  ::close(fd);
}

void write_file_durable(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string tmp = dir + "/" + name + ".tmp", final_path = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) io_fail("create", tmp, errno);
  try {
    write_all(fd, content.data(), content.size(), tmp, 0);
    if (::fsync(fd) != 0) io_fail("fsync", tmp, errno);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) io_fail("close", tmp, errno);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) io_fail("rename to " + final_path + ":", tmp, errno);
  fsync_dir(dir);
}

std::string read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_fail("open", path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      io_fail("read", path, e);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) io_fail("mkdir", cur, errno);
    cur += "/";
  }
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") remove_tree(path + "/" + n);
      }
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

std::string step_dir_name(int64_t step) { return "step_" + std::to_string(step); }

std::string commit_text(int64_t step, const std::string& index_text) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(xxh64_checksum(index_text.data(), index_text.size())));
  return "dtbench-ckpt-commit 1 step " + std::to_string(step) + " index " + hex + "\n";
}

std::string overwrite_build_dir(const std::string& root, int64_t step) {
  return root + "/." + step_dir_name(step) + ".overwrite";
}

void commit_checkpoint(const std::string& root, int64_t step, const CheckpointIndex& index,
                       const std::string& built_in) {
  const std::string dir = root + "/" + step_dir_name(step);
  const std::string text = index.serialize();
  const std::string& written = built_in.empty() ? dir : built_in;
  fsync_dir(root);                                                 // the step directory's entry
  write_file_durable(written, kIndexName, text);                  // global metadata first...
  write_file_durable(written, kCommitName, commit_text(step, text));  // ...then the commit marker...
  if (!built_in.empty()) {
    // ...then the complete new step takes the old one's place. After the exchange the old step sits
    // at built_in; "latest" names the step either way, so it is loadable at every instant.
    if (::renameat2(AT_FDCWD, built_in.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
      if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) io_fail("renameat2 RENAME_EXCHANGE", dir, errno);
      // No atomic exchange on this filesystem: the old step steps aside first, so a crash between
      // the two renames leaves no step_<N> but the old step whole under <built_in>.old, never a
      // step_<N> mixing both saves.
      const std::string aside = built_in + ".old";
      remove_tree(aside);
      if (::rename(dir.c_str(), aside.c_str()) != 0) io_fail("rename", dir, errno);
      if (::rename(built_in.c_str(), dir.c_str()) != 0) io_fail("rename", built_in, errno);
      fsync_dir(root);
      remove_tree(aside);
    } else {
      fsync_dir(root);
      remove_tree(built_in);  // the old step
    }
  }
  write_file_durable(root, kLatestName, step_dir_name(step) + "\n");  // ...then "latest"
}

std::string resolve_checkpoint_dir(const std::string& root, int64_t step) {
  if (step >= 0) {
    std::string dir = root + "/" + step_dir_name(step);
    if (!path_exists(dir)) throw CheckpointingError("no checkpoint " + dir);
    return dir;
  }
  const std::string latest = root + "/" + kLatestName;
  if (!path_exists(latest))
    throw CheckpointingError("no committed checkpoint under " + root + " (no '" + kLatestName + "' pointer)");
  std::string name = read_text_file(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (name.empty() || name.find('/') != std::string::npos)
    throw CheckpointingError(latest + ": malformed pointer '" + name + "'");
  return root + "/" + name;
}

CheckpointIndex open_committed(const std::string& dir) {
  const std::string commit = dir + "/" + kCommitName;
  if (!path_exists(dir)) throw CheckpointingError("no checkpoint directory " + dir);
  if (!path_exists(commit))
    throw CheckpointingError(dir + " is not a committed checkpoint (no " + kCommitName +
                             " marker): the save did not finish; refusing to load it");
  const std::string index_path = dir + "/" + kIndexName;
  if (!path_exists(index_path)) throw CheckpointingError(dir + " has a COMMIT marker but no index file");
  std::string text = read_text_file(index_path);
  std::string marker = read_text_file(commit);
  CheckpointIndex index = CheckpointIndex::parse(text, index_path);
  if (marker != commit_text(index.step(), text))
    throw CheckpointingError(commit + " does not match " + index_path +
                             " (the index was changed or torn after the commit): refusing to load");
  return index;
}

// --- staging -------------------------------------------------------------------------------------
StagingBuffer::~StagingBuffer() { release(); }

void StagingBuffer::release() {
  if (!data_) return;
  if (free_) free_(data_);
  else std::free(data_);
  data_ = nullptr;
}

void StagingBuffer::use_allocator(std::function<void*(size_t)> alloc, std::function<void(void*)> release_fn) {
  release();
  capacity_ = 0;
  alloc_ = std::move(alloc);
  free_ = std::move(release_fn);
}

void StagingBuffer::reserve(size_t bytes) {
  if (bytes <= capacity_ && data_) return;
  release();
  size_t cap = round_up(std::max<size_t>(bytes, 1), kAlign);
  void* p = nullptr;
  if (alloc_) p = alloc_(cap);
  else if (posix_memalign(&p, kAlign, cap) != 0) p = nullptr;
  if (!p) throw RuntimeError("staging: cannot allocate " + std::to_string(cap) + " bytes");
  data_ = static_cast<char*>(p);
  std::memset(data_, 0, cap);  // pre-fault now, not during the blocking copy
  capacity_ = cap;
  ++allocations_;
}

// --- rank writer ---------------------------------------------------------------------------------
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

RankWriter::~RankWriter() {
  release_staging();
  if (thread_.joinable()) thread_.join();
}

int64_t RankWriter::plan(int rank, const std::vector<ShardedPiece>& pieces, int writers) {
  if (thread_.joinable()) thread_.join();  // the staging buffer is about to be reused
  rank_ = rank;
  pieces_ = pieces;
  std::vector<WriteItem> items;
  for (const ShardedPiece& p : pieces) items.push_back({p.bytes(), false});
  std::vector<WriterFile> plan = plan_writer_files(rank, items, writers);
  files_.clear();
  piece_offset_in_file_.assign(pieces.size(), 0);
  piece_file_.assign(pieces.size(), 0);
  size_t at = 0;
  int64_t total = 0;
  for (const WriterFile& wf : plan) {
    File f;
    f.name = wf.name;
    f.staging_offset = at;
    f.pieces = wf.items;
    for (size_t i : wf.items) {
      piece_offset_in_file_[i] = f.bytes;
      piece_file_[i] = files_.size();
      f.bytes += pieces[i].bytes();
    }
    at += round_up(size_t(f.bytes), kAlign);
    total += f.bytes;
    files_.push_back(std::move(f));
  }
  // Pieces of zero bytes that landed in no file (plan_writer_files drops empty bins) still get an
  // index entry; they live at offset 0 of this rank's first file name.
  staging_.reserve(at);
  return total;
}

char* RankWriter::staged_piece(size_t i) {
  return staging_.data() + files_[piece_file_[i]].staging_offset + size_t(piece_offset_in_file_[i]);
}

void RankWriter::copy_pieces(const std::function<void(size_t, void*)>& copy_out) {
  for (const File& f : files_)
    for (size_t i : f.pieces)
      if (pieces_[i].bytes() > 0) copy_out(i, staged_piece(i));
}

int64_t RankWriter::stage(int rank, const std::vector<ShardedPiece>& pieces, int writers,
                          const std::function<void(size_t, void*)>& copy_out) {
  int64_t total = plan(rank, pieces, writers);
  const double t0 = wall_seconds();
  copy_pieces(copy_out);
  stage_s_ = wall_seconds() - t0;
  return total;
}

void RankWriter::mark_staged() {
  std::lock_guard<std::mutex> lock(mu_);
  staged_ = true;
  cv_.notify_all();
}

void RankWriter::wait_staged() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return staged_.load(); });
}

void RankWriter::release_staging() {
  std::lock_guard<std::mutex> lock(mu_);
  released_ = true;
  cv_.notify_all();
}

void RankWriter::write_file(const File& f, const WriterConfig& cfg, std::string* error) {
  const std::string path = dir_ + "/" + f.name;
  int flags = O_WRONLY | O_CREAT | O_EXCL;
#ifdef O_DIRECT
  if (cfg.direct) flags |= O_DIRECT;
#endif
  int fd = ::open(path.c_str(), flags, 0644);
  bool direct = cfg.direct;
  if (fd < 0 && direct && errno == EINVAL && cfg.direct_fallback) {  // tmpfs and others: buffered
    direct = false;
    fd = ::open(path.c_str(), flags & ~O_DIRECT, 0644);
  }
  try {
    if (fd < 0) {
      if (direct && errno == EINVAL)
        throw CkptIOError("create " + path + " with O_DIRECT (--io direct): the filesystem does not support it");
      io_fail("create", path, errno);
    }
    const char* src = staging_.data() + f.staging_offset;
    // O_DIRECT: whole 4 KiB blocks (the staging area is padded), then cut to the real size.
    const size_t len = direct ? round_up(size_t(f.bytes), kAlign) : size_t(f.bytes);
    size_t first = len;
    if (cfg.kill_mid_write || cfg.fail_writer) first = direct ? round_up(len / 2, kAlign) : len / 2;
    const size_t chunk = size_t(8) << 20;
    const size_t k = size_t(&f - files_.data());
    // Each chunk is written as soon as the save thread has staged it (pipelined staging).
    auto write_range = [&](size_t from, size_t to) {
      for (size_t off = from; off < to; off += chunk) {
        const size_t n = std::min(chunk, to - off);
        if (!wait_file_staged(k, int64_t(std::min(off + n, size_t(f.bytes)))))
          throw CkptIOError("write " + path + ": the staging copy failed, nothing more is written");
        write_all(fd, src + off, n, path, int64_t(off));
      }
    };
    write_range(0, first);
    if (cfg.kill_mid_write) {
      ::fsync(fd);
      ::raise(SIGKILL);  // the test's crash: half a file on disk, no results, no commit
    }
    if (cfg.fail_writer) throw CkptIOError("write " + path + " at byte offset " + std::to_string(first) +
                                           ": injected writer failure (--inject-fault writer-fail)");
    write_range(first, len);
    if (direct && len != size_t(f.bytes) && ::ftruncate(fd, off_t(f.bytes)) != 0) io_fail("ftruncate", path, errno);
    if (::fsync(fd) != 0) io_fail("fsync", path, errno);
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) io_fail("close", path, errno);
  } catch (const std::exception& e) {
    if (fd >= 0) ::close(fd);
    *error = "rank " + std::to_string(rank_) + ": " + e.what();
  }
}

void RankWriter::start(const std::string& dir, const WriterConfig& cfg) { start(dir, cfg, nullptr, nullptr); }

void RankWriter::start(const std::string& dir, const WriterConfig& cfg, std::function<void(size_t, void*)> copy_out,
                       std::function<void()> wait_copies) {
  if (thread_.joinable()) thread_.join();
  dir_ = dir;
  done_ = false;
  staged_ = !copy_out;
  released_ = false;
  result_ = RankWriteResult{};
  file_staged_.assign(files_.size(), copy_out ? 0 : INT64_MAX);
  stage_failed_ = false;
  thread_ = watchdog::start_helper_thread([this, cfg, copy_out = std::move(copy_out), wait_copies = std::move(wait_copies)] {
    if (copy_out && cfg.hold_staging) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return released_; });
    }
    result_.start_s = wall_seconds();
    try {
      make_dirs(dir_);  // every rank (mkdir -p); rank 0 fsyncs the root before it commits
    } catch (const std::exception& e) {
      result_.error = "rank " + std::to_string(rank_) + ": " + e.what();
    }
    std::vector<std::string> errors(files_.size());
    std::vector<std::thread> writers;
    if (result_.error.empty())
      for (size_t k = 0; k < files_.size(); ++k) {
        WriterConfig c = cfg;
        c.kill_mid_write = cfg.kill_mid_write && k == 0;
        c.fail_writer = cfg.fail_writer && k + 1 == files_.size();
        writers.emplace_back([this, k, c, &errors] { write_file(files_[k], c, &errors[k]); });
      }
    if (copy_out) {
      // Background staging, pipelined with the writers: each piece is published to its file's
      // writer once its bytes have landed, so the writes start before the whole snapshot is copied.
      // The training thread goes on until it is about to change the state (wait_staged()).
      const double t0 = wall_seconds();
      try {
        for (size_t k = 0; k < files_.size(); ++k) {
          int64_t done = 0, unpublished = 0;
          for (size_t i : files_[k].pieces) {
            const int64_t b = pieces_[i].bytes();
            if (b > 0) copy_out(i, staged_piece(i));
            done += b, unpublished += b;
            // Queued device copies are waited for in batches before their bytes are published.
            if (unpublished >= (int64_t(16) << 20) || i == files_[k].pieces.back()) {
              if (wait_copies) wait_copies();
              publish_file_staged(k, done);
              unpublished = 0;
            }
          }
        }
        if (wait_copies) wait_copies();
      } catch (const std::exception& e) {
        if (result_.error.empty()) result_.error = "rank " + std::to_string(rank_) + ": staging copy failed: " + e.what();
        std::lock_guard<std::mutex> lock(mu_);
        stage_failed_ = true;
      }
      stage_s_ = wall_seconds() - t0;
      mark_staged();
    }
    // Checksums from the staging copy while the writers run (the bytes they write).
    std::vector<IndexEntry> entries;
    if (!stage_failed_)
      for (size_t i = 0; i < pieces_.size(); ++i) {
        const File* f = files_.empty() ? nullptr : &files_[piece_file_[i]];
        std::string name = f ? f->name : shard_file_name(rank_, 0);
        const char* p = f ? staged_piece(i) : nullptr;
        uint64_t sum = xxh64_checksum(p, size_t(pieces_[i].bytes()));
        entries.push_back(make_index_entry(pieces_[i], name, f ? piece_offset_in_file_[i] : 0, sum));
      }
    for (std::thread& t : writers) t.join();
    result_.end_s = wall_seconds();
    result_.entries = std::move(entries);
    for (const File& f : files_) result_.bytes += f.bytes;
    for (const std::string& e : errors)
      if (!e.empty() && result_.error.empty()) result_.error = e;
    done_ = true;
  });
}

void RankWriter::publish_file_staged(size_t k, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  file_staged_[k] = bytes;
  cv_.notify_all();
}

bool RankWriter::wait_file_staged(size_t k, int64_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return file_staged_[k] >= bytes || stage_failed_ || staged_.load(); });
  return !stage_failed_;
}

void RankWriter::wait() {
  release_staging();  // a held staging (test hook) must not outlive the save
  if (thread_.joinable()) thread_.join();
}

// --- load ----------------------------------------------------------------------------------------
int file_rank(const std::string& file) {
  if (file.size() < 4 || file.compare(0, 2, "__") != 0) return -1;
  size_t us = file.find('_', 2);
  if (us == std::string::npos) return -1;
  try {
    return std::stoi(file.substr(2, us - 2));
  } catch (...) {
    return -1;
  }
}

CheckpointReader::~CheckpointReader() {
  for (auto& f : fds_)
    if (f.second >= 0) ::close(f.second);
}

int CheckpointReader::fd(const std::string& file, LoadProblem* problem) {
  for (auto& f : fds_)
    if (f.first == file) return f.second;
  const std::string path = dir_ + "/" + file;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 && problem && !problem->any()) {
    problem->message = "open " + path + ": " + std::strerror(errno);
    problem->offset = 0;
    problem->culprit = file_rank(file);
  }
  fds_.push_back({file, fd});
  return fd;
}

namespace {
// pread of exactly n bytes; returns bytes actually read (short when the file ends early).
int64_t read_exact(int fd, char* dst, int64_t n, int64_t off, int* err) {
  int64_t done = 0;
  *err = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, dst + done, size_t(n - done), off_t(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *err = errno;
      break;
    }
    if (r == 0) break;
    done += r;
  }
  return done;
}
}  // namespace

int64_t CheckpointReader::read_piece(const ShardedPiece& requested, void* dst, LoadProblem* problem,
                                     std::vector<PieceRead>* reads_out) {
  std::vector<PieceRead> reads = plan_read(index_, requested);
  int64_t total = 0;
  char* out = static_cast<char*>(dst);
  for (const PieceRead& r : reads) {
    int f = fd(r.entry->file, problem);
    for (const ByteRange& br : r.ranges) {
      if (f < 0) continue;
      int err = 0;
      int64_t got = read_exact(f, out + br.dst_offset, br.length, br.src_offset, &err);
      total += got;
      if (got < br.length && !problem->any()) {
        const std::string path = dir_ + "/" + r.entry->file;
        problem->offset = br.src_offset + got;
        problem->culprit = file_rank(r.entry->file);
        problem->message = err ? "read " + path + " at byte offset " + std::to_string(br.src_offset + got) + ": " +
                                     std::strerror(err)
                               : path + " is truncated: it ends at byte offset " + std::to_string(br.src_offset + got) +
                                     " but key '" + r.entry->key + "' needs bytes [" + std::to_string(br.src_offset) +
                                     ", " + std::to_string(br.src_offset + br.length) + ")";
      }
    }
  }
  if (reads_out) *reads_out = std::move(reads);
  return total;
}

LoadProblem CheckpointReader::check_file_size(const std::string& file) {
  LoadProblem p;
  int64_t need = 0;
  for (const IndexEntry& e : index_.entries())
    if (e.file == file) need = std::max(need, e.byte_offset + e.byte_length);
  const std::string path = dir_ + "/" + file;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (need == 0) return p;  // a rank whose pieces are all empty writes no file
    p.message = "stat " + path + ": " + std::strerror(errno), p.offset = 0, p.culprit = file_rank(file);
    return p;
  }
  if (int64_t(st.st_size) != need) {
    p.offset = std::min<int64_t>(st.st_size, need);
    p.culprit = file_rank(file);
    p.message = path + (int64_t(st.st_size) < need ? " is truncated: " : " has the wrong size: ") +
                std::to_string(st.st_size) + " bytes, the index needs " + std::to_string(need) +
                " (first missing byte at offset " + std::to_string(p.offset) + ")";
  }
  return p;
}

int64_t CheckpointReader::verify_checksum(const IndexEntry& e, LoadProblem* problem) {
  if (e.byte_length == 0) return 0;
  std::vector<char> buf(size_t(e.byte_length));
  int f = fd(e.file, problem);
  if (f < 0) return 0;
  int err = 0;
  int64_t got = read_exact(f, buf.data(), e.byte_length, e.byte_offset, &err);
  const std::string path = dir_ + "/" + e.file;
  if (got < e.byte_length) {
    if (!problem->any()) {
      problem->offset = e.byte_offset + got;
      problem->culprit = file_rank(e.file);
      problem->message = path + (err ? std::string(": read error ") + std::strerror(err) : " is truncated") +
                         " at byte offset " + std::to_string(e.byte_offset + got) + " (key '" + e.key + "')";
    }
    return got;
  }
  uint64_t sum = xxh64_checksum(buf.data(), buf.size());
  if (sum != e.checksum && !problem->any()) {
    // Locate the first bad byte: the saved values are closed-form functions of the index's step.
    std::vector<char> want(buf.size());
    fill_ckpt_values(e.dtype, step_key_hash(e.key, index_.step()), e.global_shape, e.global_offset, e.local_shape,
                     want.data());
    int64_t at = -1;
    for (size_t i = 0; i < buf.size(); ++i)
      if (buf[i] != want[i]) {
        at = int64_t(i);
        break;
      }
    char hex[80];
    std::snprintf(hex, sizeof hex, "xxh64 %016llx, index says %016llx", (unsigned long long)sum,
                  (unsigned long long)e.checksum);
    problem->offset = at >= 0 ? e.byte_offset + at : e.byte_offset;
    problem->culprit = file_rank(e.file);
    problem->message = "checksum mismatch in " + path + " at byte offset " + std::to_string(problem->offset) +
                       " (key '" + e.key + "', piece bytes [" + std::to_string(e.byte_offset) + ", " +
                       std::to_string(e.byte_offset + e.byte_length) + "), " + hex + ")";
  }
  return got;
}

int64_t first_wrong_element(const ShardedPiece& req, int64_t step, const void* data, int64_t* n_wrong) {
  const size_t es = dtype_size(req.dtype);
  std::vector<char> want(size_t(req.bytes()));
  fill_piece(req, step, want.data());
  const char* got = static_cast<const char*>(data);
  int64_t first = -1;
  *n_wrong = 0;
  if (want.empty() || std::memcmp(got, want.data(), want.size()) == 0) return first;  // the common case, fast
  for (int64_t i = 0; i < req.numel(); ++i)
    if (std::memcmp(got + size_t(i) * es, want.data() + size_t(i) * es, es) != 0) {
      if (first < 0) first = i;
      ++*n_wrong;
    }
  return first;
}

int culprit_of_element(const ShardedPiece& req, const std::vector<PieceRead>& reads, int64_t elem) {
  TensorShape box = req.box_shape(), idx(box.size());
  int64_t rest = elem;
  for (size_t a = box.size(); a-- > 0;) {
    idx[a] = req.global_offset[a] + (box[a] ? rest % box[a] : 0);
    rest = box[a] ? rest / box[a] : 0;
  }
  for (const PieceRead& r : reads) {
    bool inside = true;
    for (size_t a = 0; a < idx.size(); ++a)
      inside = inside && idx[a] >= r.box.offset[a] && idx[a] < r.box.offset[a] + r.box.shape[a];
    if (inside) return file_rank(r.entry->file);
  }
  return -1;
}

}  // namespace dtbench
