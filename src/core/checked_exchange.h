#pragma once
// Exchanges of small text (piece lists, index entries, paths, verdicts) that a corrupting fabric
// cannot turn into a crash, a hang or a silently wrong checkpoint. Each rank's text travels on the
// data communicator (the MPI path under test) as a frame: magic, source rank, sequence number and an
// xxh64 of the payload seeded with both, so a rotated, truncated, swapped, duplicated, stale or
// bit-flipped frame is seen by the rank that received it. Frame lengths and the verdict travel on a
// control communicator (the harness's own, like its check verdicts), so a corrupted length can
// never make a receive too short or leave ranks in different collectives. When any rank received a
// bad frame, every rank throws CorruptExchange from the same call.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace dtbench {

class CorruptExchange : public RuntimeError {
 public:
  CorruptExchange(std::string exchange, std::string local, const std::string& summary)
      : RuntimeError(exchange + ": corrupted frames: " + summary), exchange_(std::move(exchange)),
        local_(std::move(local)) {}
  // Which exchange ("all_gather pieces").
  const std::string& exchange() const { return exchange_; }
  // What this rank found wrong in what it received; empty when its frames were intact.
  const std::string& local() const { return local_; }

 private:
  std::string exchange_, local_;
};

// The frame format (exposed for unit tests). A frame is kFrameHeader bytes then the payload.
constexpr size_t kFrameHeader = 24;
std::string make_frame(const std::string& payload, int source, uint64_t seq);
// "" when `frame` is the intact frame of `source` at `seq` (its payload then goes to *payload),
// else what arrived instead, in words ("the frame of rank 3 (a block from the wrong rank)").
std::string check_frame(const char* frame, size_t len, int source, uint64_t seq, std::string* payload);

class CheckedExchange {
 public:
  // Both communicators span the same group and stay owned by the caller. Every rank must make the
  // same calls in the same order (they are collective on both).
  CheckedExchange(MPI_Comm data, MPI_Comm control);

  // Every rank's text, on every rank.
  std::vector<std::string> all_gather(const std::string& what, const std::string& mine);
  // Every rank's text on `root` (an empty vector elsewhere).
  std::vector<std::string> gather(const std::string& what, const std::string& mine, int root);
  // Root's text on every rank.
  std::string broadcast(const std::string& what, const std::string& text, int root);

  // Fault injection inside dtbench (--inject-fault corrupt-frame): in the nth exchange (from 0) in
  // which this rank receives another rank's frame, one bit of that frame is flipped after MPI
  // delivered it, as a bad link would. The check must then fail on this rank; corrupted() says
  // whether the nth exchange came.
  void corrupt_received(int64_t nth) { corrupt_nth_ = nth; }
  bool corrupted() const { return corrupted_; }

 private:
  // The test fault above: flips the last byte of the frame at `frame` (len > 0) when this is the
  // receiving exchange it targets; counts receiving exchanges.
  void maybe_corrupt(char* frame, size_t len);
  // Agrees on the frames' verdict (control communicator); throws CorruptExchange everywhere if any
  // rank's `local` finding is not empty.
  void agree(const std::string& what, const std::string& local);
  std::vector<int> frame_lengths(int mine);  // every rank's frame length (control communicator)

  MPI_Comm data_, control_;
  int rank_ = 0, size_ = 1;
  uint64_t seq_ = 0;  // calls made so far: the same on every rank
  int64_t corrupt_nth_ = -1, received_ = 0;
  bool corrupted_ = false;
};

}  // namespace dtbench
