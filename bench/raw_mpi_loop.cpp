// The peer for dtbench-coll's host backend: plain MPI collectives on float buffers, timed exactly
// as dtbench times them (warm-up, then per iteration: barrier, one call; the iteration's time is the
// maximum over ranks; report the median). Prints CSV: op,bytes,time_med_us,busbw_GBps.
// --p2p: instead, the peer of dtbench-p2p: ranks 0 and 1 exchange one message of each size with
// MPI_Isend/MPI_Irecv + MPI_Waitall (p2p_uni: 0 -> 1; p2p_bi: both ways at once), the other ranks
// idle; the time of an iteration is the later of the two ranks; busbw_GBps = bytes / median time.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double busbw_factor(const std::string& op, int n) {
  if (op == "all_reduce") return 2.0 * (n - 1) / n;
  return double(n - 1) / n;
}

uint64_t parse_size(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end == 'K') v *= 1024;
  else if (*end == 'M') v *= 1024 * 1024;
  else if (*end == 'G') v *= 1024.0 * 1024 * 1024;
  return uint64_t(v);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  uint64_t min_b = 1 << 20, max_b = 16 << 20;
  int iters = 20, warmup = 5;
  double factor = 2;
  bool p2p = false;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--p2p") p2p = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--p2p") {
      --i;
      continue;
    }
    if (f == "-b") min_b = parse_size(argv[i + 1]);
    else if (f == "-e") max_b = parse_size(argv[i + 1]);
    else if (f == "-f") factor = std::atof(argv[i + 1]);
    else if (f == "-n") iters = std::atoi(argv[i + 1]);
    else if (f == "-w") warmup = std::atoi(argv[i + 1]);
  }
  std::vector<float> send(max_b / 4 + size_t(n)), recv(max_b / 4 + size_t(n));
  for (size_t i = 0; i < send.size(); ++i) send[i] = float(i % 64);
  if (rank == 0) std::printf("op,bytes,time_med_us,busbw_GBps\n");
  auto median_of_max = [&](std::vector<double>& t) {
    std::vector<double> worst(t.size());
    MPI_Allreduce(t.data(), worst.data(), int(t.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    std::sort(worst.begin(), worst.end());
    const size_t k = worst.size();
    return k % 2 ? worst[k / 2] : 0.5 * (worst[k / 2 - 1] + worst[k / 2]);
  };
  if (p2p) {
    for (const std::string op : {"p2p_uni", "p2p_bi"}) {
      for (double b = double(min_b); b <= double(max_b) + 0.5; b *= factor) {
        const int count = int(size_t(b) / 4);
        if (count == 0) continue;
        auto call = [&] {
          if (rank > 1) return;
          MPI_Request r[2];
          int k = 0;
          const int peer = 1 - rank;
          if (op == "p2p_bi" || rank == 1) MPI_Irecv(recv.data(), count, MPI_FLOAT, peer, 7, MPI_COMM_WORLD, &r[k++]);
          if (op == "p2p_bi" || rank == 0) MPI_Isend(send.data(), count, MPI_FLOAT, peer, 7, MPI_COMM_WORLD, &r[k++]);
          MPI_Waitall(k, r, MPI_STATUSES_IGNORE);
        };
        for (int i = 0; i < warmup; ++i) call();
        std::vector<double> t(static_cast<size_t>(iters));
        for (int i = 0; i < iters; ++i) {
          MPI_Barrier(MPI_COMM_WORLD);
          const double t0 = MPI_Wtime();
          call();
          t[size_t(i)] = MPI_Wtime() - t0;
        }
        const double med = median_of_max(t);
        if (rank == 0) std::printf("%s,%d,%.3f,%.6f\n", op.c_str(), count * 4, med * 1e6, double(count) * 4 / med / 1e9);
      }
    }
    MPI_Finalize();
    return 0;
  }
  for (const std::string op : {"all_reduce", "reduce_scatter", "all_gather", "all_to_all"}) {
    for (double b = double(min_b); b <= double(max_b) + 0.5; b *= factor) {
      size_t elems = size_t(b) / 4;
      int count = int(op == "all_reduce" ? elems : elems / size_t(n));
      if (count == 0) continue;
      auto call = [&] {
        if (op == "all_reduce") MPI_Allreduce(send.data(), recv.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else if (op == "reduce_scatter")
          MPI_Reduce_scatter_block(send.data(), recv.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else if (op == "all_gather")
          MPI_Allgather(send.data(), count, MPI_FLOAT, recv.data(), count, MPI_FLOAT, MPI_COMM_WORLD);
        else MPI_Alltoall(send.data(), count, MPI_FLOAT, recv.data(), count, MPI_FLOAT, MPI_COMM_WORLD);
      };
      for (int i = 0; i < warmup; ++i) call();
      std::vector<double> t(static_cast<size_t>(iters)), worst(static_cast<size_t>(iters));
      for (int i = 0; i < iters; ++i) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        call();
        t[size_t(i)] = MPI_Wtime() - t0;
      }
      MPI_Allreduce(t.data(), worst.data(), iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      std::sort(worst.begin(), worst.end());
      double med = iters % 2 ? worst[size_t(iters / 2)] : 0.5 * (worst[size_t(iters / 2 - 1)] + worst[size_t(iters / 2)]);
      size_t quoted = op == "all_reduce" ? size_t(count) * 4 : size_t(count) * 4 * size_t(n);
      if (rank == 0)
        std::printf("%s,%zu,%.3f,%.6f\n", op.c_str(), quoted, med * 1e6, double(quoted) / med / 1e9 * busbw_factor(op, n));
    }
  }
  MPI_Finalize();
  return 0;
}
