#pragma once
// The on-disk side of dtbench-ckpt, without MPI (so it has unit tests): durable files, the commit
// protocol's pieces, the reusable staging buffer, one rank's background writer, and the loader's
// reads and verifications. The MPI coordination lives in ckpt_async.
//
// Checkpoint root layout:
//   <root>/step_<N>/__<rank>_<k>   data files, pieces packed row-major (see CheckpointIndex)
//   <root>/step_<N>/index          the global index (CheckpointIndex text), rank 0, after all writes
//   <root>/step_<N>/COMMIT         the commit marker, last: "dtbench-ckpt-commit 1 step <N> index <xxh64>"
//   <root>/latest                  "step_<N>", moved only after COMMIT is durable
// Every metadata file is written as <name>.tmp, fsynced, renamed, then the directory is fsynced, so a
// crash leaves either the old file or the new one. A step directory without COMMIT is a partial save
// and is refused by the loader.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/sharded_index.h"

namespace dtbench {

// --- durable files -------------------------------------------------------------------------------
// An I/O failure; the message names the path, the offset where relevant, and strerror.
struct CkptIOError : RuntimeError {
  using RuntimeError::RuntimeError;
};

void fsync_dir(const std::string& dir);  // throws CkptIOError
// <dir>/<name>.tmp, write, fsync, rename to <dir>/<name>, fsync <dir>.
void write_file_durable(const std::string& dir, const std::string& name, const std::string& content);
std::string read_text_file(const std::string& path);  // throws CkptIOError
bool path_exists(const std::string& path);
void make_dirs(const std::string& dir);          // mkdir -p; throws CkptIOError
void remove_tree(const std::string& path);       // rm -rf (best effort)

std::string step_dir_name(int64_t step);  // "step_<N>"
std::string commit_text(int64_t step, const std::string& index_text);
extern const char* const kIndexName;   // "index"
extern const char* const kCommitName;  // "COMMIT"
extern const char* const kLatestName;  // "latest"

// Where a save of `step` that replaces an existing <root>/step_<N> (--overwrite) is written: a
// hidden directory beside it, swapped into place only at commit, so the old step (and the `latest`
// that names it) stays loadable until the new one is complete.
std::string overwrite_build_dir(const std::string& root, int64_t step);

// rank 0's commit after every rank's write results arrived: index, then COMMIT, then latest. With
// `built_in` (an overwrite_build_dir), index and COMMIT go there first and the directory then
// replaces <root>/step_<N> in one atomic exchange (renameat2 RENAME_EXCHANGE; where the filesystem
// has none, two renames with the old step moved aside first); the old step is removed after.
void commit_checkpoint(const std::string& root, int64_t step, const CheckpointIndex& index,
                       const std::string& built_in = "");

// Resolves <root>/latest (step < 0) or <root>/step_<step>. Throws CheckpointingError with a clear
// message when there is no such checkpoint.
std::string resolve_checkpoint_dir(const std::string& root, int64_t step);
// Reads a committed checkpoint's index. Throws CheckpointingError "... is not committed (no COMMIT
// marker) ..." for a partial save, and when COMMIT does not match the index (torn/corrupt index).
CheckpointIndex open_committed(const std::string& dir);

// --- staging -------------------------------------------------------------------------------------
// Host memory the blocking part of a save copies into: 4 KiB aligned (O_DIRECT), pre-touched when
// (re)allocated, and kept between saves; it only grows.
class StagingBuffer {
 public:
  StagingBuffer() = default;
  ~StagingBuffer();
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;
  void reserve(size_t bytes);  // no-op when large enough
  // Where the memory comes from: by default aligned host memory; GPU backends pass pinned memory
  // (Backend::alloc_host_staging) so device-to-host staging copies run asynchronously.
  void use_allocator(std::function<void*(size_t)> alloc, std::function<void(void*)> release);
  char* data() { return data_; }
  size_t capacity() const { return capacity_; }
  int allocations() const { return allocations_; }

 private:
  void release();
  char* data_ = nullptr;
  size_t capacity_ = 0;
  int allocations_ = 0;
  std::function<void*(size_t)> alloc_;
  std::function<void(void*)> free_;
};

// --- one rank's save -----------------------------------------------------------------------------
// How one save writes (the file count is RankWriter::plan's `writers`).
struct WriterConfig {
  bool direct = false;      // O_DIRECT (4 KiB aligned writes, then ftruncate to the real size)
  bool direct_fallback = false;  // O_DIRECT refused by the filesystem (EINVAL): write buffered
  bool kill_mid_write = false;  // test: SIGKILL this process halfway through its first file
  bool fail_writer = false;     // test: the last writer thread fails halfway
  bool stage_in_background = false;  // AsyncCheckpointer::schedule returns before the staging copy ends
  bool hold_staging = false;    // test: background staging waits for release_staging()
};

struct RankWriteResult {
  std::vector<IndexEntry> entries;  // one per piece written (empty pieces included, 0 bytes)
  std::string error;                // first failure of any writer thread, empty when all succeeded
  int64_t bytes = 0;
  double start_s = 0, end_s = 0;    // wall clock (seconds since the epoch) of first open / last fsync
};

// Plans the files, stages the pieces and writes them from background threads. Staging is either
// done by the caller (stage(), blocking) or by the background thread before it writes (plan() then
// start() with a copy function): then the caller must wait_staged() before it modifies the state.
class RankWriter {
 public:
  explicit RankWriter(StagingBuffer& staging) : staging_(staging) {}
  ~RankWriter();  // joins

  // Plans at most `writers` files for `pieces` (main replicas only) and reserves the staging buffer.
  // Returns the bytes to stage.
  int64_t plan(int rank, const std::vector<ShardedPiece>& pieces, int writers);
  // Blocking: plan(), then copy each piece into the staging buffer with copy_out(i, dst).
  int64_t stage(int rank, const std::vector<ShardedPiece>& pieces, int writers,
                const std::function<void(size_t, void*)>& copy_out);
  // Starts the background thread that writes <dir>/__<rank>_<k> (one writer thread per file) out of
  // what stage() copied.
  void start(const std::string& dir, const WriterConfig& cfg);
  // Same after plan(): the background thread first stages (copy_out per piece, then wait_copies for
  // queued device-to-host copies), signals wait_staged(), then writes.
  void start(const std::string& dir, const WriterConfig& cfg, std::function<void(size_t, void*)> copy_out,
             std::function<void()> wait_copies);
  // Blocks until the staged snapshot is complete (the state may change from then on).
  void wait_staged();
  bool staged() const { return staged_.load(); }
  double stage_seconds() const { return stage_s_; }  // the staging copy, once staged()
  // Test hook (WriterConfig::hold_staging): the background staging starts only after this call.
  void release_staging();
  bool done() const { return done_.load(); }
  void wait();
  const RankWriteResult& result() const { return result_; }  // after done()

 private:
  struct File {
    std::string name;
    size_t staging_offset = 0;
    int64_t bytes = 0;
    std::vector<size_t> pieces;  // indices into pieces_, in file order
  };
  void write_file(const File& f, const WriterConfig& cfg, std::string* error);
  char* staged_piece(size_t i);  // where piece i lives in the staging buffer (pieces with bytes)
  void copy_pieces(const std::function<void(size_t, void*)>& copy_out);
  void mark_staged();
  void publish_file_staged(size_t k, int64_t bytes);
  bool wait_file_staged(size_t k, int64_t bytes);  // false when the staging copy failed
  StagingBuffer& staging_;
  int rank_ = 0;
  std::string dir_;
  std::vector<ShardedPiece> pieces_;
  std::vector<int64_t> piece_offset_in_file_;
  std::vector<size_t> piece_file_;
  std::vector<File> files_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> staged_{true};
  double stage_s_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<int64_t> file_staged_;  // bytes of each file staged so far (under mu_)
  bool stage_failed_ = false;         // under mu_ once the save thread runs
  RankWriteResult result_;
};

double wall_seconds();  // CLOCK_REALTIME, comparable across ranks of one host

// --- load ----------------------------------------------------------------------------------------
int file_rank(const std::string& file);  // "__3_0" -> 3, -1 when not a data file name

// A problem found by the loader: which file, at which byte, whose file, and what.
struct LoadProblem {
  std::string message;  // names the file and offset
  int64_t offset = -1;
  int culprit = -1;     // the rank that wrote the file
  bool any() const { return !message.empty(); }
};

class CheckpointReader {
 public:
  CheckpointReader(std::string dir, const CheckpointIndex& index) : dir_(std::move(dir)), index_(index) {}
  ~CheckpointReader();
  // Reads only the byte ranges of `requested` that plan_read names into dst (requested.bytes()).
  // Returns bytes read; a short read (truncated file) or I/O error is recorded in *problem.
  int64_t read_piece(const ShardedPiece& requested, void* dst, LoadProblem* problem,
                     std::vector<PieceRead>* reads_out = nullptr);
  // File sizes against the index for the given files (the ones this rank checks).
  LoadProblem check_file_size(const std::string& file);
  // Reads a saved piece whole and checks its xxh64; on mismatch finds the first differing byte by
  // comparing with the closed-form values of the checkpoint's step. Returns bytes read.
  int64_t verify_checksum(const IndexEntry& entry, LoadProblem* problem);
  const std::string& dir() const { return dir_; }

 private:
  int fd(const std::string& file, LoadProblem* problem);
  std::string dir_;
  const CheckpointIndex& index_;
  std::vector<std::pair<std::string, int>> fds_;
};

// First element of `requested` (loaded into data) that differs bit-wise from its value at `step`;
// -1 when all match. *n_wrong counts them.
int64_t first_wrong_element(const ShardedPiece& requested, int64_t step, const void* data, int64_t* n_wrong);
// The rank whose file supplied element `elem` (row-major in the requested box) of a read.
int culprit_of_element(const ShardedPiece& requested, const std::vector<PieceRead>& reads, int64_t elem);

}  // namespace dtbench
