#include "ckpt/ckpt_async.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "ckpt/ckpt_state.h"

namespace dtbench {
namespace {

// This rank's index entries as index-file piece lines, for the gather to rank 0.
std::string entries_text(const std::vector<IndexEntry>& es) {
  std::string out;
  for (const IndexEntry& e : es) out += index_entry_line(e);
  return out;
}

}  // namespace

AsyncCheckpointer::AsyncCheckpointer(int writers, bool overwrite, bool fully_parallel)
    : writers_(writers), overwrite_(overwrite), fully_parallel_(fully_parallel), writer_(staging_) {
  // Checkpoint coordination never shares ordering with training traffic.
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_dup(MPI_COMM_WORLD, &control_);
  MPI_Comm_set_name(control_, "dtbench-control-ckpt");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  exchange_.emplace(comm_, control_);
}

AsyncCheckpointer::~AsyncCheckpointer() {
  writer_.wait();
  exchange_.reset();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (control_ != MPI_COMM_NULL) MPI_Comm_free(&control_);
}

std::string AsyncCheckpointer::agree_message(const std::string& mine, const std::string& what) {
  for (const std::string& s : exchange_->all_gather(what, mine))
    if (!s.empty()) return s;
  return "";
}

SaveValidation AsyncCheckpointer::prepare(const std::vector<ShardedPiece>& pieces, std::vector<size_t>* to_write) {
  std::vector<std::vector<ShardedPiece>> by_rank;
  for (const std::string& s : exchange_->all_gather("all_gather of the piece lists", serialize_pieces(pieces)))
    by_rank.push_back(parse_pieces(s));
  if (fully_parallel_) {
    ShardDistribution dist = determine_main_replica_distribution(by_rank);
    for (size_t r = 0; r < by_rank.size(); ++r) apply_distribution(by_rank[r], int(r), dist);
  }
  SaveValidation v;
  try {
    validate_sharding(by_rank);
  } catch (const CheckpointingError& e) {
    v.ok = false;
    v.error = e.what();
    v.culprits = overlapping_main_ranks(by_rank);
  }
  to_write->clear();
  const std::vector<ShardedPiece>& mine = by_rank[size_t(rank_)];
  for (size_t i = 0; i < mine.size(); ++i)
    if (mine[i].is_main_replica()) to_write->push_back(i);
  return v;
}

void AsyncCheckpointer::schedule(const std::string& root, int64_t step, const std::vector<ShardedPiece>& pieces,
                                 const std::vector<size_t>& to_write,
                                 const std::function<void(size_t, void*)>& copy_out, const WriterConfig& cfg,
                                 std::optional<SaveOutcome>* previous) {
  // At most one save in flight: the next one waits for the previous to finalize. That wait is
  // reported apart from the blocking time: it comes from saving more often than a save takes.
  const double queue_start = wall_seconds();
  if (in_flight_) *previous = poll(true);
  const double t0 = wall_seconds();
  queued_s_ = t0 - queue_start;
  const std::string dir = root + "/" + step_dir_name(step);
  // Rank 0 decides where this save writes: step_<N> itself, or (--overwrite of an existing step) a
  // hidden directory beside it that replaces it only at commit, so the old step stays loadable.
  std::string problem, write_dir = dir;
  if (rank_ == 0) {
    try {
      if (path_exists(dir)) {
        if (!overwrite_)
          throw CheckpointingError("checkpoint directory " + dir + " already exists; refusing to overwrite it (pass --overwrite)");
        write_dir = overwrite_build_dir(root, step);
        remove_tree(write_dir);  // what an earlier, interrupted overwrite left (never committed as step_<N>)
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  problem = exchange_->broadcast("broadcast of the step directory check", problem.empty() ? "ok " + write_dir : problem, 0);
  if (problem.compare(0, 3, "ok ") != 0) throw CheckpointingError(problem);
  write_dir_ = problem.substr(3);

  std::vector<ShardedPiece> mine;
  for (size_t i : to_write) mine.push_back(pieces[i]);
  staged_bytes_ = writer_.plan(rank_, mine, writers_);
  if (begin_copies_) begin_copies_();  // the snapshot point: later copies see the state as of now
  writer_.start(write_dir_, cfg, [copy_out, to_write](size_t i, void* dst) { copy_out(to_write[i], dst); }, wait_copies_);
  root_ = root;
  step_ = step;
  schedule_start_ = t0;
  in_flight_ = true;
  ++call_idx_;
  if (!cfg.stage_in_background) writer_.wait_staged();  // the training thread waits for the copy
  blocking_s_ = wall_seconds() - t0;
}

void AsyncCheckpointer::reserve_staging(const std::vector<ShardedPiece>& pieces, const std::vector<size_t>& to_write) {
  std::vector<ShardedPiece> mine;
  for (size_t i : to_write) mine.push_back(pieces[i]);
  writer_.plan(rank_, mine, writers_);
}

double AsyncCheckpointer::wait_staged() {
  if (!in_flight_ || writer_.staged()) return 0;
  const double t0 = wall_seconds();
  writer_.wait_staged();
  const double waited = wall_seconds() - t0;
  blocking_s_ += waited;
  return waited;
}

std::optional<SaveOutcome> AsyncCheckpointer::poll(bool blocking) {
  int any = in_flight_ ? 1 : 0, any_all = 0;
  MPI_Allreduce(&any, &any_all, 1, MPI_INT, MPI_MAX, control_);
  if (!any_all) return std::nullopt;
  if (blocking) writer_.wait();
  int done = writer_.done() ? 1 : 0, all_done = 0;
  MPI_Allreduce(&done, &all_done, 1, MPI_INT, MPI_MIN, control_);
  if (!all_done) return std::nullopt;
  writer_.wait();
  return finalize();
}

SaveOutcome AsyncCheckpointer::finalize() {
  const RankWriteResult& res = writer_.result();
  const double stage_s = writer_.stage_seconds();
  SaveOutcome out;
  out.step = step_;
  // FIFO: every rank must be finalizing the same call.
  int max_idx = 0;
  MPI_Allreduce(&call_idx_, &max_idx, 1, MPI_INT, MPI_MAX, control_);
  out.call_idx = call_idx_;
  std::string my_error = res.error;
  if (max_idx != call_idx_ && my_error.empty())
    my_error = "rank " + std::to_string(rank_) + ": finalizing save call " + std::to_string(call_idx_) +
               " while another rank finalizes call " + std::to_string(max_idx);

  // Write results to rank 0: "<error-or-empty>\n<entry lines>".
  std::string mine = (my_error.empty() ? std::string("ok") : "error " + my_error) + "\n" +
                     (my_error.empty() ? entries_text(res.entries) : "");
  std::vector<std::string> all;
  try {
    all = exchange_->gather("gather of the index entries", mine, 0);
  } catch (const CorruptExchange&) {
    // Nothing is committed from corrupted metadata; what this save wrote goes (every writer is done).
    in_flight_ = false;
    const std::string& dir = write_dir_;
    if (rank_ == 0 && path_exists(dir) && !path_exists(dir + "/" + kCommitName)) {
      try {
        remove_tree(dir);
      } catch (const std::exception&) {  // the corruption is the error to report
      }
    }
    throw;
  }
  std::string verdict;  // rank 0: "" committed, else "failed <ranks>\n<message>"
  double commit_time = 0;
  if (rank_ == 0) {
    std::string failed, first_error;
    std::string body = "dtbench-ckpt-index 1\nworld_size " + std::to_string(size_) + "\nstep " + std::to_string(step_) + "\n";
    std::string lines;
    int64_t n = 0;
    for (int r = 0; r < size_; ++r) {
      const std::string& s = all[size_t(r)];
      size_t nl = s.find('\n');
      std::string head = s.substr(0, nl);
      if (head != "ok") {
        failed += (failed.empty() ? "" : ",") + std::to_string(r);
        if (first_error.empty()) first_error = head.substr(6);
        continue;
      }
      std::string rest = s.substr(nl + 1);
      lines += rest;
      n += std::count(rest.begin(), rest.end(), '\n');
    }
    if (failed.empty()) {
      try {
        CheckpointIndex index = CheckpointIndex::parse(body + "pieces " + std::to_string(n) + "\n" + lines + "end\n",
                                                       root_ + "/" + step_dir_name(step_) + "/index");
        const std::string final_dir = root_ + "/" + step_dir_name(step_);
        commit_checkpoint(root_, step_, index, write_dir_ == final_dir ? "" : write_dir_);
        commit_time = wall_seconds();
      } catch (const std::exception& e) {
        failed = "0";
        first_error = std::string("rank 0: commit of ") + root_ + "/" + step_dir_name(step_) + " failed: " + e.what();
      }
    }
    if (!failed.empty()) {
      verdict = "failed " + failed + "\n" + first_error;
      // Every writer has finished (poll waited for all), and the directory is this save's own (a new
      // step_<N>, or the hidden directory an overwrite builds beside the old step, which stays):
      // remove what the failed save wrote, so the next save starts clean and nothing partial is left.
      const std::string& dir = write_dir_;
      try {
        if (path_exists(dir) && !path_exists(dir + "/" + kCommitName)) remove_tree(dir);
      } catch (const std::exception& e) {
        verdict += " (the partial " + dir + " could not be removed: " + e.what() + ")";
      }
    }
  }
  MPI_Bcast(&commit_time, 1, MPI_DOUBLE, 0, control_);
  try {
    verdict = exchange_->broadcast("broadcast of the commit verdict", verdict, 0);
  } catch (const CorruptExchange&) {
    in_flight_ = false;
    throw;
  }
  out.committed = verdict.empty();
  if (!out.committed) {
    size_t nl = verdict.find('\n');
    std::stringstream ranks(verdict.substr(7, nl - 7));
    std::string r;
    while (std::getline(ranks, r, ',')) out.failed_ranks.push_back(std::stoi(r));
    out.error = verdict.substr(nl + 1);
    out.failed_here = std::find(out.failed_ranks.begin(), out.failed_ranks.end(), rank_) != out.failed_ranks.end();
  }

  // Metrics, reduced over the checkpoint communicator.
  double mx_in[5] = {blocking_s_, stage_s, res.end_s, double(staging_.capacity()), queued_s_}, mx[5];
  MPI_Allreduce(mx_in, mx, 5, MPI_DOUBLE, MPI_MAX, control_);
  double own_rate = res.end_s > res.start_s && res.bytes > 0 ? double(res.bytes) / (res.end_s - res.start_s) / 1e9 : 1e300;
  double mn_in[3] = {res.start_s, schedule_start_, own_rate}, mn[3];
  MPI_Allreduce(mn_in, mn, 3, MPI_DOUBLE, MPI_MIN, control_);
  double sm_in[2] = {double(res.bytes), double(staged_bytes_)}, sm[2];
  MPI_Allreduce(sm_in, sm, 2, MPI_DOUBLE, MPI_SUM, control_);
  out.blocking_s = mx[0];
  out.stage_s = mx[1];
  out.staging_bytes_per_rank = mx[3];
  out.queued_s = mx[4];
  out.bytes = int64_t(sm[0]);
  out.stage_gbps = mx[1] > 0 ? sm[1] / mx[1] / 1e9 : 0;
  out.write_gbps = mx[2] > mn[0] ? sm[0] / (mx[2] - mn[0]) / 1e9 : 0;
  out.slowest_rank_gbps = mn[2] >= 1e299 ? 0 : mn[2];
  out.durable_s = out.committed ? commit_time - mn[1] : 0;
  out.write_start_s = std::max(0.0, mn[0] - mn[1]);
  in_flight_ = false;
  return out;
}

void AsyncCheckpointer::use_staging(std::function<void*(size_t)> alloc, std::function<void(void*)> release,
                                    std::function<void()> begin_copies, std::function<void()> wait_copies) {
  staging_.use_allocator(std::move(alloc), std::move(release));
  begin_copies_ = std::move(begin_copies);
  wait_copies_ = std::move(wait_copies);
}

}  // namespace dtbench
