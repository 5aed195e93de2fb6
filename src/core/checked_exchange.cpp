#include "core/checked_exchange.h"

#include <xxhash.h>

#include <climits>
#include <cstring>

namespace dtbench {
namespace {

constexpr char kMagic[4] = {'D', 'T', 'B', 'X'};

// The payload hash is seeded with everything that identifies the frame, so a well-formed frame of
// another rank, call or length does not check out either.
uint64_t frame_hash(const char* payload, size_t len, int source, uint64_t seq) {
  const uint64_t seed = (seq * 0x9E3779B97F4A7C15ull) ^ (uint64_t(uint32_t(source)) << 32) ^ uint64_t(len);
  return XXH64(payload, len, seed);
}

void put64(char* at, uint64_t v) { std::memcpy(at, &v, 8); }
uint64_t get64(const char* at) {
  uint64_t v;
  std::memcpy(&v, at, 8);
  return v;
}

int checked_int(size_t n, const std::string& what) {
  if (n > size_t(INT_MAX)) throw RuntimeError(what + ": " + std::to_string(n) + " bytes exceed one MPI message");
  return int(n);
}

}  // namespace

std::string make_frame(const std::string& payload, int source, uint64_t seq) {
  std::string f(kFrameHeader + payload.size(), '\0');
  std::memcpy(&f[0], kMagic, 4);
  const uint32_t src = uint32_t(source);
  std::memcpy(&f[4], &src, 4);
  put64(&f[8], seq);
  put64(&f[16], frame_hash(payload.data(), payload.size(), source, seq));
  if (!payload.empty()) std::memcpy(&f[kFrameHeader], payload.data(), payload.size());
  return f;
}

std::string check_frame(const char* frame, size_t len, int source, uint64_t seq, std::string* payload) {
  if (len < kFrameHeader)
    return "a frame of " + std::to_string(len) + " B is shorter than its " + std::to_string(kFrameHeader) + " B header";
  if (std::memcmp(frame, kMagic, 4) != 0) return "no frame header (misplaced or overwritten bytes)";
  uint32_t src;
  std::memcpy(&src, frame + 4, 4);
  if (src != uint32_t(source)) return "the frame of rank " + std::to_string(src) + " (a block from the wrong rank)";
  const uint64_t got_seq = get64(frame + 8);
  if (got_seq != seq)
    return "the frame of exchange #" + std::to_string(got_seq) + " in exchange #" + std::to_string(seq) +
           (got_seq < seq ? " (stale data)" : "");
  const size_t n = len - kFrameHeader;
  if (get64(frame + 16) != frame_hash(frame + kFrameHeader, n, source, seq))
    return "a " + std::to_string(n) + " B payload that fails its xxh64 checksum (changed bytes)";
  payload->assign(frame + kFrameHeader, n);
  return "";
}

CheckedExchange::CheckedExchange(MPI_Comm data, MPI_Comm control) : data_(data), control_(control) {
  MPI_Comm_rank(data_, &rank_);
  MPI_Comm_size(data_, &size_);
  int control_size = 0;
  MPI_Comm_size(control_, &control_size);
  if (control_size != size_) throw RuntimeError("CheckedExchange: data and control communicators differ in size");
}

void CheckedExchange::maybe_corrupt(char* frame, size_t len) {
  if (received_++ != corrupt_nth_ || len == 0) return;
  frame[len - 1] ^= 0x10;  // the payload's last byte, or the checksum's when the payload is empty
  corrupted_ = true;
}

std::vector<int> CheckedExchange::frame_lengths(int mine) {
  std::vector<int> lens(size_t(size_), 0);
  MPI_Allgather(&mine, 1, MPI_INT, lens.data(), 1, MPI_INT, control_);
  return lens;
}

void CheckedExchange::agree(const std::string& what, const std::string& local) {
  int bad = local.empty() ? 0 : 1, any = 0;
  MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, control_);
  if (!any) return;
  // Every rank's finding, on the control communicator, for one summary line naming the receivers.
  const int len = checked_int(local.size(), what);
  std::vector<int> lens = frame_lengths(len), displs(size_t(size_), 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) displs[size_t(r)] = total, total += lens[size_t(r)];
  std::string all(size_t(total), '\0');
  MPI_Allgatherv(local.data(), len, MPI_CHAR, &all[0], lens.data(), displs.data(), MPI_CHAR, control_);
  std::string summary;
  for (int r = 0; r < size_; ++r)
    if (lens[size_t(r)] > 0)
      summary += (summary.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + " got, " +
                 all.substr(size_t(displs[size_t(r)]), size_t(lens[size_t(r)]));
  throw CorruptExchange(what, local, summary);
}

std::vector<std::string> CheckedExchange::all_gather(const std::string& what, const std::string& mine) {
  const std::string frame = make_frame(mine, rank_, seq_);
  std::vector<int> lens = frame_lengths(checked_int(frame.size(), what)), displs(size_t(size_), 0);
  size_t total = 0;
  for (int r = 0; r < size_; ++r) displs[size_t(r)] = checked_int(total, what), total += size_t(lens[size_t(r)]);
  checked_int(total, what);
  // Zero-filled: bytes that never arrive cannot look like a frame header.
  std::string all(total, '\0');
  MPI_Allgatherv(frame.data(), int(frame.size()), MPI_BYTE, &all[0], lens.data(), displs.data(), MPI_BYTE, data_);
  const int next = (rank_ + 1) % size_;  // the frame a corrupt-frame fault changes (own one at 1 rank)
  maybe_corrupt(&all[size_t(displs[size_t(next)])], size_t(lens[size_t(next)]));
  std::vector<std::string> out(static_cast<size_t>(size_));
  std::string local;
  for (int r = 0; r < size_; ++r) {
    const std::string why = check_frame(all.data() + displs[size_t(r)], size_t(lens[size_t(r)]), r, seq_, &out[size_t(r)]);
    if (!why.empty()) local += (local.empty() ? "" : ", ") + std::string("in rank ") + std::to_string(r) + "'s block " + why;
  }
  ++seq_;
  agree(what, local);
  return out;
}

std::vector<std::string> CheckedExchange::gather(const std::string& what, const std::string& mine, int root) {
  const std::string frame = make_frame(mine, rank_, seq_);
  std::vector<int> lens = frame_lengths(checked_int(frame.size(), what)), displs(size_t(size_), 0);
  size_t total = 0;
  for (int r = 0; r < size_; ++r) displs[size_t(r)] = checked_int(total, what), total += size_t(lens[size_t(r)]);
  checked_int(total, what);
  std::string all(rank_ == root ? total : 0, '\0');
  MPI_Gatherv(frame.data(), int(frame.size()), MPI_BYTE, rank_ == root ? &all[0] : nullptr, lens.data(),
              displs.data(), MPI_BYTE, root, data_);
  if (rank_ == root) {
    const int next = (root + 1) % size_;
    maybe_corrupt(&all[size_t(displs[size_t(next)])], size_t(lens[size_t(next)]));
  }
  std::vector<std::string> out;
  std::string local;
  if (rank_ == root) {
    out.resize(size_t(size_));
    for (int r = 0; r < size_; ++r) {
      const std::string why =
          check_frame(all.data() + displs[size_t(r)], size_t(lens[size_t(r)]), r, seq_, &out[size_t(r)]);
      if (!why.empty()) local += (local.empty() ? "" : ", ") + std::string("in rank ") + std::to_string(r) + "'s block " + why;
    }
  }
  ++seq_;
  agree(what, local);
  return out;
}

std::string CheckedExchange::broadcast(const std::string& what, const std::string& text, int root) {
  std::string frame = rank_ == root ? make_frame(text, root, seq_) : std::string();
  int len = rank_ == root ? checked_int(frame.size(), what) : 0;
  MPI_Bcast(&len, 1, MPI_INT, root, control_);
  frame.resize(size_t(len), '\0');
  MPI_Bcast(&frame[0], len, MPI_BYTE, root, data_);
  if (rank_ != root) maybe_corrupt(&frame[0], frame.size());
  std::string out = text, local;
  if (rank_ != root) {
    const std::string why = check_frame(frame.data(), frame.size(), root, seq_, &out);
    if (!why.empty()) local = "from root " + std::to_string(root) + " " + why;
  }
  ++seq_;
  agree(what, local);
  return out;
}

}  // namespace dtbench
