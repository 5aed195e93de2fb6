#pragma once
// AsyncCheckpointer: the MPI side of dtbench-ckpt's save (after Megatron-Core's dist_checkpointing.save,
// its async save in strategies/async_utils.py and filesystem_async.py and the fully-parallel save of
// strategies/fully_parallel.py; one save in flight, a reused staging buffer, its own communicators).
// Its traffic goes only from the calling (training) thread at step boundaries; background threads
// only do file I/O. Two duplicates of MPI_COMM_WORLD carry it: the metadata that
// becomes the checkpoint (piece lists, index entries, paths, verdicts) as checked frames on the data
// communicator (CheckedExchange: a corrupting fabric raises CorruptExchange on every rank, never a
// crash, hang or wrong index), and the flags, frame lengths and metrics that steer the protocol on
// a control communicator named "dtbench-control-ckpt", like the harness's own verdict traffic.
//
//   schedule(step)  collective: finalize the save in flight first (at most one), rank 0 prepares
//                   <root>/step_<N>, mark the snapshot point, start the save thread, which stages
//                   into the reused host buffer and then writes. With background staging it returns
//                   at once and the training thread calls wait_staged() before its next optimizer
//                   step changes the state (PyTorch DCP's async staging); otherwise it returns
//                   once the copy is complete.
//   poll(blocking)  collective at a step boundary: all-reduce "my writers are done"; when every
//                   rank is done, finalize (FIFO, call index agreed with an all-reduce MAX): gather
//                   every rank's write results to rank 0, which commits (index, COMMIT, latest) only
//                   if no rank failed; the outcome (and the first error) is broadcast to every rank.
#include <mpi.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/checked_exchange.h"
#include "ckpt/ckpt_io.h"

namespace dtbench {

struct SaveOutcome {
  int64_t step = -1;
  int call_idx = 0;
  bool committed = false;
  bool failed_here = false;       // this rank's writers (or rank 0's commit) failed
  std::string error;              // first error, lowest failing rank (same on every rank)
  std::vector<int> failed_ranks;  // same on every rank
  // Metrics (same on every rank).
  double blocking_s = 0;          // max over ranks: time the training thread waited (schedule() + wait_staged())
  double queued_s = 0;            // max over ranks: time schedule() first waited for the previous save
  double stage_s = 0;             // max over ranks: the staging copy
  double stage_gbps = 0;          // aggregate bytes staged / stage_s
  int64_t bytes = 0;              // all ranks
  double write_gbps = 0;          // bytes / (last writer end - first writer start)
  double slowest_rank_gbps = 0;   // min over ranks of own bytes / own write time
  double durable_s = 0;           // schedule() entry (earliest rank) to commit (rank 0)
  double write_start_s = 0;       // schedule() entry (earliest rank) to the first writer's start
  double staging_bytes_per_rank = 0;  // max staging capacity (host memory cost)
};

struct SaveValidation {
  bool ok = true;
  std::string error;
  std::vector<int> culprits;
};

class AsyncCheckpointer {
 public:
  // `writers`: files (writer threads) per rank for every save.
  AsyncCheckpointer(int writers, bool overwrite, bool fully_parallel);
  ~AsyncCheckpointer();
  AsyncCheckpointer(const AsyncCheckpointer&) = delete;
  AsyncCheckpointer& operator=(const AsyncCheckpointer&) = delete;

  int rank() const { return rank_; }

  // Collective, once per layout: gathers every rank's pieces, checks them (validate_sharding), and
  // with fully_parallel spreads replicated main shards over their holders (like Megatron's
  // distribute_shards_to_ranks). Returns which pieces this rank writes (main replicas) as indices
  // into `pieces`.
  SaveValidation prepare(const std::vector<ShardedPiece>& pieces, std::vector<size_t>* to_write);

  // Allocates (and pre-faults) the staging buffer the saves of `to_write` need, so that no save pays
  // for it; the saves reuse it. Not collective.
  void reserve_staging(const std::vector<ShardedPiece>& pieces, const std::vector<size_t>& to_write);

  // Collective. Any save in flight is finalized first (its outcome is returned through *previous).
  // Throws CheckpointingError (same text on every rank) when the step directory exists and
  // overwrite is off.
  void schedule(const std::string& root, int64_t step, const std::vector<ShardedPiece>& pieces,
                const std::vector<size_t>& to_write, const std::function<void(size_t, void*)>& copy_out,
                const WriterConfig& cfg, std::optional<SaveOutcome>* previous);
  // Collective at a step boundary. Returns the finalized outcome when the save in flight completed
  // on every rank (or, with blocking, after waiting for it); nothing when none is in flight or it
  // is still running somewhere.
  std::optional<SaveOutcome> poll(bool blocking);
  // Before the training thread changes the state: waits until the save in flight has its snapshot.
  // Returns the seconds waited, which count as blocking time. Not collective.
  double wait_staged();
  // Test hook (WriterConfig::hold_staging): lets the held background staging start.
  void release_staging_hold() { writer_.release_staging(); }
  bool in_flight() const { return in_flight_; }
  void barrier() { MPI_Barrier(control_); }
  // The metadata exchange, for its test fault (CheckedExchange::corrupt_received).
  CheckedExchange& exchange() { return *exchange_; }

  // Staging memory, the snapshot point (on the training thread) and the wait for queued
  // device-to-host copies (Backend::alloc_host_staging / begin_staging / wait_staging); without it,
  // aligned host memory and synchronous copies.
  void use_staging(std::function<void*(size_t)> alloc, std::function<void(void*)> release,
                   std::function<void()> begin_copies, std::function<void()> wait_copies);

  // The first non-empty message of the lowest rank, on every rank (collective; a checked
  // all-gather, `what` names it in a CorruptExchange).
  std::string agree_message(const std::string& mine, const std::string& what = "all_gather of a message");

 private:
  SaveOutcome finalize();
  MPI_Comm comm_ = MPI_COMM_NULL, control_ = MPI_COMM_NULL;
  std::optional<CheckedExchange> exchange_;
  int rank_ = 0, size_ = 1, writers_;
  bool overwrite_, fully_parallel_;
  StagingBuffer staging_;
  RankWriter writer_;
  std::function<void()> begin_copies_, wait_copies_;
  bool in_flight_ = false;
  int call_idx_ = 0;
  std::string root_, write_dir_;  // write_dir_: where the save in flight writes (see schedule)
  int64_t step_ = -1;
  double schedule_start_ = 0, blocking_s_ = 0, queued_s_ = 0;
  int64_t staged_bytes_ = 0;
};

}  // namespace dtbench
